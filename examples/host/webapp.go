package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/fiberchat/fiberchat/module"
	"github.com/fiberchat/fiberchat/web"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
)

// mountChatPage serves fiberchat's web chat page (web.App) at /app/ to the
// host's signed-in users, with no second login: /app/config.json hands
// the page the mount prefix, the web client's api_tokens for the day
// (BrowserTokens: the client secret stays here), the user's chat uid and
// where to get a chat session (/chat-token, which provisions the chat
// user and issues its token). The page keeps that session in the
// browser's localStorage while the uid matches, so a reload opens no new
// one. A visitor who is not signed in is sent to the home page.
func mountChatPage(app *fiber.App, user fiber.Handler, chat *module.Module, clientID string) {
	app.Get("/app/config.json", user, requireUser, chatPageConfig(chat, clientID))
	app.Use("/app", user, func(c *fiber.Ctx) error {
		if currentUser(c) == nil {
			return c.Redirect("/", fiber.StatusSeeOther)
		}
		if c.Path() == "/app" {
			return c.Redirect("/app/", fiber.StatusMovedPermanently) // the page's links are relative
		}
		c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'self'; img-src * data: blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		c.Set(fiber.HeaderCacheControl, "no-cache")
		return c.Next()
	}, filesystem.New(filesystem.Config{Root: http.FS(web.App()), Index: "index.html"}))
}

// chatPageSettings is /app/config.json; see web/app/app.js.
type chatPageSettings struct {
	Error      int                          `json:"error"`
	Msg        string                       `json:"msg"`
	Base       string                       `json:"base"`
	ClientID   string                       `json:"client_id"`
	Tokens     map[string]map[string]string `json:"tokens"`
	SessionURL string                       `json:"session_url"`
	UID        int64                        `json:"uid"`
}

func chatPageConfig(chat *module.Module, clientID string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
		defer cancel()
		u := currentUser(c)
		uid, err := chat.ProvisionUser(ctx, hostRef(u), chatName(u))
		if err != nil {
			return fmt.Errorf("provision chat user: %w", err)
		}
		tokens, err := chat.BrowserTokens(ctx, clientID)
		if err != nil {
			return fmt.Errorf("chat page tokens: %w", err)
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(chatPageSettings{Msg: "success", Base: "/chat", ClientID: clientID, Tokens: tokens, SessionURL: "/chat-token", UID: uid})
	}
}
