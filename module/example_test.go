package module_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
)

// A host builds the module on its own *gorm.DB, applies the module's
// migrations, mounts its routes under a prefix and creates an API client
// for its app. Here a client registers a chat user through the mounted
// API, signing the request with the client's secret.
func ExampleNew() {
	ctx := context.Background()
	gdb, err := database.Open(ctx, "sqlite::memory:") // or the host's own *gorm.DB
	if err != nil {
		fmt.Println(err)
		return
	}
	defer database.Close(gdb)
	uploads, _ := os.MkdirTemp("", "fiberchat-example")
	defer os.RemoveAll(uploads)

	chat, err := module.New(module.Config{
		DB:        gdb,
		UploadDir: uploads,
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer chat.Close() // before the app shuts down: it answers held long polls
	if err := chat.Migrate(ctx); err != nil {
		fmt.Println(err)
		return
	}

	app := fiber.New()
	chat.Mount(app.Group("/chat"))

	// An empty secret is generated; keep it for the client. Creating a
	// client that exists is module.ErrClientExists.
	secret, err := chat.CreateClient(ctx, "web", "", "Web client")
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = chat.CreateClient(ctx, "web", "", "Web client")
	fmt.Println("again:", errors.Is(err, module.ErrClientExists))

	// api_token signs the path after the mount prefix, for today in the
	// module's Location (UTC unless Config.Location says otherwise).
	path := "/user/reg/ajax_reg"
	token := chat.APIToken(path, secret, time.Now())
	q := url.Values{"client_id": {"web"}, "api_token": {token}}
	req := httptest.NewRequest("POST", "/chat"+path+"?"+q.Encode(), strings.NewReader(`{"name":"Alice","passwd":"secret1"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := app.Test(req, -1)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// again: true
	// 200 {"reg":1,"uid":10000001,"msg":"success","error":0}
}

// Mount leaves the host's routes and error handler alone: only paths under
// the prefix are the module's, answered in its JSON envelope.
func ExampleModule_Mount() {
	ctx := context.Background()
	gdb, err := database.Open(ctx, "sqlite::memory:")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer database.Close(gdb)
	chat, err := module.New(module.Config{DB: gdb, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer chat.Close()
	if err := chat.Migrate(ctx); err != nil {
		fmt.Println(err)
		return
	}

	app := fiber.New(fiber.Config{
		// The host's own error handler: plain text.
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			return c.Status(fiber.StatusNotFound).SendString("host: page not found")
		},
	})
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString("host: home") })
	// A host route under the prefix goes before Mount, whose catch-all
	// would answer it otherwise.
	app.Get("/chat/help", func(c *fiber.Ctx) error { return c.SendString("host: chat help") })
	chat.Mount(app.Group("/chat"))

	for _, path := range []string{"/", "/nosuch", "/chat/help", "/chat/nosuch"} {
		resp, err := app.Test(httptest.NewRequest("GET", path, nil), -1)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%-13s %d %s\n", path, resp.StatusCode, body)
	}
	// Output:
	// /             200 host: home
	// /nosuch       404 host: page not found
	// /chat/help    200 host: chat help
	// /chat/nosuch  404 {"error":1006,"msg":"no such route"}
}

// A host whose users already sign in on its own site maps each account to
// a chat user once, keyed by the host's own account id, and opens chat
// sessions for it without a chat password.
func ExampleModule_ProvisionUser() {
	ctx := context.Background()
	gdb, err := database.Open(ctx, "sqlite::memory:")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer database.Close(gdb)
	chat, err := module.New(module.Config{DB: gdb, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer chat.Close()
	if err := chat.Migrate(ctx); err != nil {
		fmt.Println(err)
		return
	}

	// In a handler behind the host's login: hostRef is the host's stable
	// account id, name the chat profile's first name.
	uid, err := chat.ProvisionUser(ctx, "host-user-42", "Alice")
	if err != nil {
		fmt.Println(err)
		return
	}
	again, err := chat.ProvisionUser(ctx, "host-user-42", "Alice (renamed)")
	if err != nil {
		fmt.Println(err)
		return
	}
	sess, err := chat.IssueToken(ctx, uid)
	if err != nil {
		fmt.Println(err)
		return
	}
	// sess goes to the host's client as uid and access_token.
	fmt.Println("uid:", uid)
	fmt.Println("same uid:", again == uid)
	fmt.Println("token length:", len(sess.AccessToken))
	fmt.Println("expires later:", sess.ExpireTime > time.Now().Unix())
	_, err = chat.IssueToken(ctx, 99999999)
	fmt.Println("unknown uid:", errors.Is(err, module.ErrNoSuchUser))
	// Output:
	// uid: 10000001
	// same uid: true
	// token length: 32
	// expires later: true
	// unknown uid: true
}

// A client holding no *Module (a load generator, another service) signs
// with the package's APIToken, giving the time in the server's
// Config.Location: here the default, UTC.
func ExampleAPIToken() {
	at := time.Date(2026, 3, 15, 23, 30, 0, 0, time.UTC)
	fmt.Println(module.APIToken("/Message/Send", "s3cret-key", at))
	// The same instant is already the 16th in UTC+8: another day's token.
	fmt.Println(module.APIToken("/Message/Send", "s3cret-key", at.In(time.FixedZone("UTC+8", 8*3600))))
	// Output:
	// 5799fd7292888711230dc1504306788e
	// 0b2edd24ceaefdb9e71da4ba048ef8f4
}
