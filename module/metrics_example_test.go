package module_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// A host without a Prometheus registry of its own gives the module a new
// one and serves it with MetricsHandler; a host with one passes it as
// Config.Metrics and serves it as it already does.
func ExampleModule_MetricsHandler() {
	ctx := context.Background()
	gdb, err := database.Open(ctx, "sqlite::memory:")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer database.Close(gdb)
	uploads, _ := os.MkdirTemp("", "fiberchat-example")
	defer os.RemoveAll(uploads)

	reg := prometheus.NewRegistry()
	chat, err := module.New(module.Config{
		DB:        gdb,
		UploadDir: uploads,
		Metrics:   reg,
		AccessLog: slog.New(slog.DiscardHandler), // the host's logger, say
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer chat.Close()
	if err := chat.Migrate(ctx); err != nil {
		fmt.Println(err)
		return
	}

	app := fiber.New()
	app.Get("/metrics", chat.MetricsHandler()) // keep it from the public at the proxy
	chat.Mount(app.Group("/chat"))

	_, _ = app.Test(httptest.NewRequest("POST", "/chat/user/info", nil), -1) // unsigned: refused, 403
	resp, err := app.Test(httptest.NewRequest("GET", "/metrics", nil), -1)
	if err != nil {
		fmt.Println(err)
		return
	}
	text, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "fiberchat_requests_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// fiberchat_requests_total{route="/chat/user/info",status="403"} 1
}
