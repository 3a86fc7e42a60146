package main

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
)

// The client IP, which rate limits key on, comes from --proxy-header only
// on a connection from one of --trusted-proxies; from anyone else the
// header is ignored, so a client cannot pick its own IP.
func TestProxyFlags(t *testing.T) {
	gdb, err := database.Open(context.Background(), tempDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(gdb)
	chat, err := module.New(module.Config{DB: gdb, UploadDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer chat.Close()

	fs, _ := newFlags("serve", io.Discard)
	header := fs.String("proxy-header", "", "")
	trusted := fs.String("trusted-proxies", "", "")
	if _, ok := parseFlags(fs, []string{"--proxy-header", "X-Forwarded-For", "--trusted-proxies", "10.0.0.1, 0.0.0.0"}, func(string) string { return "" }); !ok {
		t.Fatal("flags refused")
	}
	// app.Test's connections come from 0.0.0.0.
	for _, tc := range []struct {
		header, trusted, want string
	}{
		{"", "", "0.0.0.0"},
		{"X-Forwarded-For", "10.0.0.1", "0.0.0.0"},
		{*header, *trusted, "203.0.113.7"},
	} {
		cfg := appConfig(chat, tc.header, tc.trusted)
		app := fiber.New(cfg)
		app.Get("/ip", func(c *fiber.Ctx) error { return c.SendString(c.IP()) })
		req := httptest.NewRequest("GET", "/ip", nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != tc.want {
			t.Errorf("header %q, trusted %q: client IP %q, want %q", tc.header, tc.trusted, got, tc.want)
		}
	}
}
