package module

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/handlers"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/gofiber/fiber/v2"
)

// Mount puts the module's routes on r: the seeds' URLs relative to r's
// prefix, GET /avatar/:name for uploaded avatars, GET /static/fiberchat.js
// (the browser client, web.ClientJS), and a JSON 404 for every
// other path under the prefix (so register a host's own routes under the
// same prefix before Mount). Each route carries its own error boundary and
// body limit; nothing is added to r as a whole, so the host's routes,
// middleware and error handler are untouched.
func (m *Module) Mount(r fiber.Router) {
	prefix := ""
	if g, ok := r.(*fiber.Group); ok {
		prefix = strings.TrimSuffix(g.Prefix, "/")
	}
	m.mountPrefix.Store(&prefix)

	auth := m.newAuth()
	log := m.cfg.Logger
	jsonLimit := bodyLimit(m.cfg.BodyLimit)
	uploadLimit := bodyLimit(m.uploadLimit())

	// route mounts one API route: metrics and access log (when on),
	// boundary, body limit, the signature for this path, then the given
	// gates, the session check if authed, and the handler. The signature
	// comes before every limit, so that requests without a valid
	// api_token, which cost nothing to send, never count against a real
	// client's budget; gates keyed by user (KeyUser) go in after, which
	// run after the session check.
	route := func(method, path string, failure map[string]any, limit fiber.Handler, before []fiber.Handler, authed bool, h fiber.Handler, after ...fiber.Handler) {
		chain := append(m.observed(), handlers.Boundary(log, failure), limit, m.signature.Require(middleware.RouteName(path)))
		chain = append(chain, before...)
		if authed {
			chain = append(chain, auth)
		}
		chain = append(chain, after...)
		r.Add(method, path, append(chain, h)...)
	}
	post := func(path string, failure map[string]any, limit fiber.Handler, before []fiber.Handler, authed bool, h fiber.Handler, after ...fiber.Handler) {
		route(fiber.MethodPost, path, failure, limit, before, authed, h, after...)
	}
	m.mountUsers(post, jsonLimit, uploadLimit)

	ct := m.contacts
	post("/Contacts/list", nil, jsonLimit, nil, true, ct.List())
	post("/Contacts/Info", nil, jsonLimit, nil, true, ct.Info())
	post("/Contacts/IO/addContacts", nil, jsonLimit, nil, true, ct.Add())
	post("/Contacts/IO/delContacts", nil, jsonLimit, nil, true, ct.Delete())
	post("/Contacts/list/add", nil, jsonLimit, nil, true, ct.Requests())
	post("/Contacts/IO/acceptContacts", nil, jsonLimit, nil, true, ct.Answer())
	post("/Contacts/IO/block", nil, jsonLimit, nil, true, ct.Block())
	post("/Contacts/IO/unblock", nil, jsonLimit, nil, true, ct.Unblock())
	post("/Contacts/blocked", nil, jsonLimit, nil, true, ct.Blocked())
	ms := m.messages
	post("/Message/Send", nil, jsonLimit, nil, true, ms.Send())
	post("/Message/Recv", nil, jsonLimit, nil, true, ms.Recv())
	// GET too, with everything in the query, for a browser's EventSource.
	post("/Message/Stream", nil, jsonLimit, nil, true, ms.Stream())
	route(fiber.MethodGet, "/Message/Stream", nil, jsonLimit, nil, true, ms.Stream())
	cv := m.conversations
	post("/Message/History", nil, jsonLimit, nil, true, cv.History())
	post("/Message/Read", nil, jsonLimit, nil, true, cv.Read())
	post("/Message/Unread", nil, jsonLimit, nil, true, cv.Unread())

	r.Get("/avatar/:name", append(m.observed(), handlers.Boundary(log, nil), m.users.ServeAvatar())...)
	r.Get("/static/fiberchat.js", append(m.observed(), serveClientScript)...) // web.ClientJS, for host pages
	r.All("/*", append(m.observed(), handlers.Boundary(log, nil), func(*fiber.Ctx) error { return errNoRoute })...)
}

// newAuth is the session gate of the routes that need a user.
func (m *Module) newAuth() fiber.Handler {
	return middleware.NewAuth(middleware.AuthConfig{
		Tokens:        m.tokens,
		IdleLifetime:  m.cfg.TokenIdleLifetime,
		TouchInterval: m.cfg.TokenTouchInterval,
		Now:           m.cfg.Now,
	})
}

// postFunc mounts one POST route as Mount's post does.
type postFunc func(path string, failure map[string]any, limit fiber.Handler, before []fiber.Handler, authed bool, h fiber.Handler, after ...fiber.Handler)

// mountUsers mounts the user group with its limits. With HostAccounts the
// routes that sign users up or in by password (register, login, password
// change) are left out: the host's own site does that, and a route that
// is not mounted cannot be signed for, nor called from a page.
func (m *Module) mountUsers(post postFunc, jsonLimit, uploadLimit fiber.Handler) {
	u := m.users
	limit := func(name string, max int, key func(*fiber.Ctx) string) fiber.Handler {
		return middleware.NewRateLimit(middleware.RateLimitConfig{Name: name, Max: max, Window: m.cfg.RateLimitWindow, Key: key, Storage: m.limitStorage()})
	}
	if !m.cfg.HostAccounts {
		loginThrottle := middleware.NewLoginThrottle(middleware.LoginThrottleConfig{
			Failures:   m.cfg.LoginFailures,
			MaxBackoff: m.cfg.LoginBackoffMax,
			Size:       m.cfg.TokenCacheSize,
			Now:        m.cfg.Now,
		})
		post("/user/reg/ajax_reg", map[string]any{"reg": 0}, jsonLimit, []fiber.Handler{limit("register", m.cfg.RegisterRateLimit, nil)}, false, u.Register())
		post("/user/login", map[string]any{"login": 0}, jsonLimit, []fiber.Handler{limit("login", m.cfg.LoginRateLimit, nil), loginThrottle}, false, u.Login())
		post("/user/info/passwd", nil, jsonLimit, nil, true, m.endsSessions(handlers.ByePassword, u.Password()), limit("passwd", m.cfg.AccountRateLimit, middleware.KeyUser))
	}
	post("/user/info", nil, jsonLimit, nil, true, u.Info())
	post("/user/logout", nil, jsonLimit, nil, true, m.endsSessions(handlers.ByeLogout, u.Logout()))
	post("/user/info/head_img", nil, uploadLimit, nil, true, u.HeadImg(), limit("head_img", m.cfg.AccountRateLimit, middleware.KeyUser))
	post("/user/info/update", nil, jsonLimit, nil, true, u.Update())
}

// bodyLimit refuses bodies past limit bytes with 413/1009, and compressed
// bodies outright: decompressing them is how a small request becomes a
// memory bomb.
func bodyLimit(limit int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if enc := c.Get(fiber.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
			return apierr.Invalid("malformed body: Content-Encoding is not supported")
		}
		if c.Request().Header.ContentLength() > limit || len(c.Request().Body()) > limit {
			return apierr.TooLarge("body too large")
		}
		return c.Next()
	}
}

// avatarURL is where a stored avatar is served: PublicURL when set, else
// the upload request's own scheme and host plus the mount prefix.
func (m *Module) avatarURL(c *fiber.Ctx, name string) string {
	base := m.cfg.PublicURL
	if base == "" {
		base = c.BaseURL() + *m.mountPrefix.Load()
	}
	return strings.TrimSuffix(base, "/") + "/avatar/" + name
}

// ErrorHandler answers errors with the API.md envelope. Give it to
// fiber.Config.ErrorHandler only when the app serves fiberchat alone (as
// the sample app does), so that failures before any route runs, such as a
// body past the server's own limit, are answered in the envelope too.
func (m *Module) ErrorHandler() fiber.ErrorHandler { return handlers.ErrorHandler(m.cfg.Logger) }

// uploadLimit is the avatar route's body limit: the file plus room for
// the credentials and the multipart framing.
func (m *Module) uploadLimit() int { return int(m.cfg.AvatarMaxBytes) + 64<<10 }

// MaxBodySize is the largest request body any of the module's routes
// accepts. Give it to the host app's fiber.Config.BodyLimit (or the
// largest of it and the host's own routes' needs): fasthttp enforces that
// limit while it reads a body, and refuses one whose Content-Length is
// past it before reading any, whereas the module's per-route limits run
// once the body has been buffered. With Fiber's default (4 MiB), or
// anything larger, a client can make the server buffer that much before
// the module refuses it.
func (m *Module) MaxBodySize() int { return max(m.cfg.BodyLimit, m.uploadLimit()) }

// AppConfig is a fiber.Config for an app that serves the chat alone, as
// the sample app does: the envelope's error handler for failures before
// any route runs, the module's largest body limit as the server's (see
// MaxBodySize), so that no larger body is ever read, read and write timeouts that
// outlast the longest long poll by 10 s, and keep-alive connections that
// may idle longer than a poll. name is the app's name.
func (m *Module) AppConfig(name string) fiber.Config {
	hold := max(m.cfg.MaxWait, 30*time.Second) + 10*time.Second
	return fiber.Config{
		AppName:               name,
		ErrorHandler:          m.ErrorHandler(),
		BodyLimit:             m.MaxBodySize(),
		ReadTimeout:           hold,
		WriteTimeout:          hold,
		IdleTimeout:           75 * time.Second,
		DisableStartupMessage: true,
	}
}

// HealthHandler answers GET /healthz: 200 {"error":0,"msg":"ok"} when the
// database answers within healthTimeout (with Config.Redis, plus "redis":
// "up" or "down": without Redis the instance still serves, so that is not
// a failure), otherwise 503/1503 in the
// envelope every route answers with (through handlers.WriteError, which
// also logs the cause with a request id).
func (m *Module) HealthHandler() fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), healthTimeout)
		defer cancel()
		if err := m.Ping(ctx); err != nil {
			return handlers.WriteError(c, m.cfg.Logger, fmt.Errorf("health check: %w: %w", apierr.ErrUnavailable, err), nil)
		}
		return c.JSON(m.redisHealth(fiber.Map{"error": 0, "msg": "ok"}))
	}
}

// healthTimeout bounds the health check's ping: a database that hangs is
// as unavailable as one that refuses, and a load balancer's probe should
// learn it before its own timeout.
const healthTimeout = 2 * time.Second
