package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/fiberchat/fiberchat/module"
	"github.com/fiberchat/fiberchat/web"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
)

// webClientID is the API client the chat page signs with: the one serve
// creates on a fresh database.
const webClientID = "demo"

// mountWebApp serves the web chat page (web.App) at /app/, and at
// /app/config.json the settings it starts from: the mount prefix, the
// client id and the day's api_tokens from BrowserTokens, never the client
// secret. The page loads fiberchat.js from the module's own
// /static/fiberchat.js. Register it before chat.Mount, whose catch-all 404
// would otherwise answer /app/.
func mountWebApp(app *fiber.App, chat *module.Module, clientID string) {
	app.Get("/app/config.json", pageConfig(chat, "", clientID))
	app.Use("/app", pageHeaders, filesystem.New(filesystem.Config{Root: http.FS(web.App()), Index: "index.html"}))
}

// pageHeaders send /app to /app/, and keep the page from being framed or its files sniffed, and
// from loading script from anywhere but this server; avatars may come
// from Config.PublicURL's host, hence any img-src.
func pageHeaders(c *fiber.Ctx) error {
	if c.Path() == "/app" {
		// The page's links are relative: they need the trailing slash.
		return c.Redirect("/app/", fiber.StatusMovedPermanently)
	}
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'self'; img-src * data: blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.Next()
}

// pageSettings is /app/config.json; see web/app/app.js.
type pageSettings struct {
	Error    int                          `json:"error"`
	Msg      string                       `json:"msg"`
	Base     string                       `json:"base"`
	ClientID string                       `json:"client_id"`
	Tokens   map[string]map[string]string `json:"tokens"`
}

// pageConfig answers GET /app/config.json. The tokens are worth a day to
// whoever copies them, as the page itself is (README, "Chat in a browser").
func pageConfig(chat *module.Module, base, clientID string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
		defer cancel()
		tokens, err := chat.BrowserTokens(ctx, clientID)
		c.Set(fiber.HeaderCacheControl, "no-store")
		switch {
		case errors.Is(err, module.ErrNoSuchClient), errors.Is(err, module.ErrClientDisabled):
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"error": 1503,
				"msg": fmt.Sprintf("this server has no usable API client %q for the page (%s client create --id %s)", clientID, command, clientID)})
		case err != nil:
			return err // the envelope's error handler logs it and answers 500/503
		}
		return c.JSON(pageSettings{Msg: "success", Base: base, ClientID: clientID, Tokens: tokens})
	}
}

// pageURL is the chat page's address on a server listening at addr, as a
// browser on the same machine opens it: an address that listens on every
// interface (0.0.0.0, [::]) is reached at 127.0.0.1.
func pageURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/app/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/app/"
}
