package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"gorm.io/gorm"
)

// hostConfig is what the host site needs besides its database.
type hostConfig struct {
	// SessionKey signs the host's session cookies; at least 32 bytes.
	// Required.
	SessionKey []byte
	// SessionTTL is how long a host login lasts. Default: 24 hours.
	SessionTTL time.Duration
	// SecureCookie marks the session cookie HTTPS-only; set it behind TLS.
	SecureCookie bool
	// ChatClientID is the API client of the host's web page. Default: "web".
	ChatClientID string
	// ChatClientSecret is that client's secret. Default: generated on the
	// first start and kept in the module's table.
	ChatClientSecret string
	// SpamWords are refused in chat messages (403/1008). Default:
	// "free money" and "cheap pills".
	SpamWords []string
	// UploadDir is where the chat keeps avatars. Default: "./uploads".
	UploadDir string
	// Logger receives the host's and the chat's logs. Default: slog.Default().
	Logger *slog.Logger
	// Now is the host's clock. Default: time.Now.
	Now func() time.Time
}

func (cfg hostConfig) withDefaults() (hostConfig, error) {
	if len(cfg.SessionKey) < 32 {
		return cfg, errors.New("host: SessionKey must be at least 32 bytes")
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 24 * time.Hour
	}
	if cfg.ChatClientID == "" {
		cfg.ChatClientID = "web"
	}
	if cfg.SpamWords == nil {
		cfg.SpamWords = []string{"free money", "cheap pills"}
	}
	if cfg.UploadDir == "" {
		cfg.UploadDir = "./uploads"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}

// Server timeouts. The write timeout leaves room for a chat long poll,
// which the module holds for up to 30 seconds.
const (
	readTimeout     = 15 * time.Second
	writeTimeout    = 45 * time.Second
	idleTimeout     = 2 * time.Minute
	shutdownTimeout = 10 * time.Second
)

// newApp builds the host site on gdb: its own tables, login and pages, with
// fiberchat mounted at /chat. The caller closes the returned module (before
// shutting the app down) and owns gdb.
func newApp(ctx context.Context, gdb *gorm.DB, cfg hostConfig) (*fiber.App, *module.Module, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	log := cfg.Logger
	if err := migrateHost(ctx, gdb); err != nil {
		return nil, nil, err
	}

	// 1. The chat module, on the host's database, with the host's hooks.
	chat, err := module.New(module.Config{
		DB:         gdb,
		UploadDir:  cfg.UploadDir,
		Logger:     log,
		OnEvent:    auditor(gdb),
		BeforeSend: spamFilter(cfg.SpamWords),
	})
	if err != nil {
		return nil, nil, err
	}
	secret, err := prepareChat(ctx, gdb, chat, cfg)
	if err != nil {
		_ = chat.Close()
		return nil, nil, err
	}

	// 2. The host's app, with its own error handler; the module does not
	// change it (each chat route answers its own errors in JSON).
	app := fiber.New(fiber.Config{
		AppName:               "fiberchat example host",
		ErrorHandler:          hostErrorHandler(log),
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           idleTimeout,
		DisableStartupMessage: true,
	})
	// The host's own panic handling: a panic becomes a 500 for its error
	// handler. (Chat routes recover their own panics first.)
	app.Use(recover.New())

	// 3. The host's routes. Each reads the host session itself instead of
	// an app-wide middleware, so chat requests cost no session lookup.
	sess := &sessions{key: cfg.SessionKey, ttl: cfg.SessionTTL, secure: cfg.SecureCookie, now: cfg.Now}
	user := loadUser(sess, gdb)
	app.Get("/", user, home(gdb))
	app.Post("/login", login(sess, gdb))
	app.Post("/logout", func(c *fiber.Ctx) error { sess.end(c); return c.Redirect("/", fiber.StatusSeeOther) })
	app.Get("/me", user, requireUser, me)
	app.Get("/chat-token", user, requireUser, chatToken(chat, gdb, cfg.ChatClientID, secret, cfg.Now, log))
	app.Get("/boom", func(*fiber.Ctx) error { panic("a bug in the host's own code") })
	mountChatPage(app, user, chat, cfg.ChatClientID) // fiberchat's web chat page at /app/

	// 4. The chat API, last: it ends with a JSON 404 for any other path
	// under /chat, so host routes under /chat must come before it.
	chat.Mount(app.Group("/chat"))
	return app, chat, nil
}

// prepareChat applies the module's migrations, then the host's columns on
// the chat users table (which needs the table to exist), and makes sure
// the web page's API client exists; it returns that client's secret.
func prepareChat(ctx context.Context, gdb *gorm.DB, chat *module.Module, cfg hostConfig) (string, error) {
	if err := chat.Migrate(ctx); err != nil {
		return "", fmt.Errorf("migrate chat: %w", err)
	}
	// ChatUser names its table statically; catch a changed TablePrefix here
	// rather than in the first query.
	if want := chat.TableName("users"); (ChatUser{}).TableName() != want {
		return "", fmt.Errorf("ChatUser.TableName is %q, the module's table is %q", ChatUser{}.TableName(), want)
	}
	if err := migrateChatUserColumns(ctx, gdb); err != nil {
		return "", err
	}
	return ensureClient(ctx, chat, cfg.ChatClientID, cfg.ChatClientSecret)
}

// login answers POST /login (form fields email, password): a session
// cookie and a redirect home, or the host's 401 page.
func login(sess *sessions, gdb *gorm.DB) fiber.Handler {
	return func(c *fiber.Ctx) error {
		u, err := authenticate(c.UserContext(), gdb, c.FormValue("email"), c.FormValue("password"))
		if errors.Is(err, errBadLogin) {
			return fiber.NewError(fiber.StatusUnauthorized, "Wrong email or password.")
		}
		if err != nil {
			return err
		}
		sess.start(c, u.ID)
		return c.Redirect("/", fiber.StatusSeeOther)
	}
}

type meResponse struct {
	ID          int64  `json:"id"`
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	Level       int    `json:"level"`
}

// me answers GET /me: the signed-in host account.
func me(c *fiber.Ctx) error {
	u := currentUser(c)
	return c.JSON(meResponse{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Level: u.Level})
}

var homePage = template.Must(template.New("home").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Host site</title></head><body>
<h1>Host site</h1>
{{if .User}}<p>Signed in as {{.User.DisplayName}} ({{.User.Email}}).</p>
<p><a href="/app/">Open the chat</a> · <a href="/chat-token">a chat session as JSON</a> (for a client of its own)</p>
<form method="post" action="/logout"><button>Sign out</button></form>
{{else}}<form method="post" action="/login">
<label>Email <input name="email" type="email"></label>
<label>Password <input name="password" type="password"></label>
<button>Sign in</button></form>
{{end}}<p>Chat messages stored so far: <span id="messages">{{.Messages}}</span></p>
</body></html>
`))

// home answers GET /: the sign-in form or the signed-in user, and the
// count of chat messages from the host's audit log.
func home(gdb *gorm.DB) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var n int64
		if err := gdb.WithContext(c.UserContext()).Model(&AuditEntry{}).Where("kind = ?", "message.stored").Count(&n).Error; err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return homePage.Execute(c, struct {
			User     *User
			Messages int64
		}{currentUser(c), n})
	}
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Status}} · Host site</title></head><body>
<h1>{{.Status}}</h1>
<p class="host-error">{{.Message}}</p>
<p><a href="/">Back to the host site</a></p>
</body></html>
`))

// hostErrorHandler is the host's own error handler: HTML pages. It sees
// the host's errors only; the chat routes answer theirs themselves.
func hostErrorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		code, msg := fiber.StatusInternalServerError, ""
		var fe *fiber.Error
		if errors.As(err, &fe) {
			code, msg = fe.Code, fe.Message
		}
		if code >= fiber.StatusInternalServerError {
			// Details go to the log, never to the page.
			log.ErrorContext(c.UserContext(), "host request failed", "method", c.Method(), "path", c.Path(), "error", err.Error())
			msg = "Something went wrong on our side."
		}
		c.Status(code)
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return errorPage.Execute(c, struct {
			Status  string
			Message string
		}{fmt.Sprintf("%d %s", code, http.StatusText(code)), msg})
	}
}
