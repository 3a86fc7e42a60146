package module

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/handlers"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/gofiber/fiber/v2"
)

// Mount puts the module's routes on r: the seeds' URLs relative to r's
// prefix, GET /avatar/:name for uploaded avatars, GET /file/:id/:variant
// for message files (signed URLs), GET /static/fiberchat.js
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

	rt := m.newRouter(r)
	m.mountUsers(rt)

	ct := m.contacts
	rt.post("/Contacts/list", ct.List())
	rt.post("/Contacts/Info", ct.Info())
	rt.post("/Contacts/IO/addContacts", ct.Add())
	rt.post("/Contacts/IO/delContacts", ct.Delete())
	rt.post("/Contacts/list/add", ct.Requests())
	rt.post("/Contacts/IO/acceptContacts", ct.Answer())
	rt.post("/Contacts/IO/block", ct.Block())
	rt.post("/Contacts/IO/unblock", ct.Unblock())
	rt.post("/Contacts/blocked", ct.Blocked())
	rt.post("/Contacts/search", handlers.Search(m.store, m.decoder, m.cfg.SearchNameScan), routeOpts{
		afterSession: []fiber.Handler{m.rateLimit("search", m.cfg.SearchRateLimit, middleware.KeyUser)},
	})

	gr := m.groups
	rt.post("/Group/create", gr.Create())
	rt.post("/Group/list", gr.List())
	rt.post("/Group/info", gr.Info())
	rt.post("/Group/IO/addMembers", gr.AddMembers())
	rt.post("/Group/IO/removeMembers", gr.RemoveMembers())
	rt.post("/Group/IO/leave", gr.Leave())
	rt.post("/Group/IO/update", gr.Update())
	rt.post("/Group/IO/role", gr.Role())

	ms := m.messages
	rt.post("/Message/Send", ms.Send())
	rt.post("/Message/Recv", ms.Recv())
	rt.post("/Message/Typing", handlers.Typing(m.typing()))
	rt.post("/Message/Edit", ms.Edit()) // replies, edits, deletes, reactions (API.md §13)
	rt.post("/Message/Delete", ms.Delete())
	rt.post("/Message/React", ms.React())
	// Streamed where the host lets fasthttp stream bodies: UploadForm
	// reads the fields before the file part (credentials) before the
	// session gate, and leaves the file for Upload.
	rt.post("/Message/Upload", m.files.Upload(), routeOpts{
		file: true, beforeSession: []fiber.Handler{handlers.UploadForm()},
	})
	// GET too, with everything in the query, for a browser's EventSource.
	rt.post("/Message/Stream", ms.Stream())
	rt.get("/Message/Stream", ms.Stream())

	cv := m.conversations
	rt.post("/Message/History", cv.History())
	rt.post("/Message/Read", cv.Read())
	rt.post("/Message/Unread", cv.Unread())

	ks := m.keys // end-to-end encryption's device keys (API.md §15)
	rt.post("/user/keys/publish", ks.Publish())
	rt.post("/user/keys/get", ks.Get())

	ps := m.push // Web Push (API.md §14)
	rt.post("/user/push/subscribe", ps.Subscribe(), routeOpts{
		afterSession: []fiber.Handler{m.rateLimit("push", m.cfg.AccountRateLimit, middleware.KeyUser)},
	})
	rt.post("/user/push/unsubscribe", ps.Unsubscribe())
	rt.raw(fiber.MethodGet, "/push/key", handlers.Boundary(m.cfg.Logger, nil), ps.Key())

	rt.raw(fiber.MethodGet, "/avatar/:name", handlers.Boundary(m.cfg.Logger, nil), m.users.ServeAvatar())
	rt.raw(fiber.MethodGet, "/file/:id/:variant", handlers.Boundary(m.cfg.Logger, nil), m.files.Serve()) // signed URLs
	rt.raw(fiber.MethodGet, "/static/fiberchat.js", serveClientScript)                                   // web.ClientJS, for host pages
	rt.raw("", "/*", handlers.Boundary(m.cfg.Logger, nil), func(*fiber.Ctx) error { return errNoRoute })
}

// mountUsers mounts the user group with its limits. With HostAccounts the
// routes that sign users up or in by password (register, login, password
// change) are left out: the host's own site does that, and a route that
// is not mounted cannot be signed for, nor called from a page.
func (m *Module) mountUsers(rt *router) {
	u := m.users
	if !m.cfg.HostAccounts {
		throttle := middleware.NewLoginThrottle(middleware.LoginThrottleConfig{
			Failures:   m.cfg.LoginFailures,
			MaxBackoff: m.cfg.LoginBackoffMax,
			Store:      m.loginRuns(),
			Now:        m.cfg.Now,
		})
		rt.post("/user/reg/ajax_reg", u.Register(), routeOpts{
			public: true, failure: map[string]any{"reg": 0},
			beforeSession: []fiber.Handler{m.rateLimit("register", m.cfg.RegisterRateLimit, nil)},
		})
		rt.post("/user/login", u.Login(), routeOpts{
			public: true, failure: map[string]any{"login": 0},
			beforeSession: []fiber.Handler{m.rateLimit("login", m.cfg.LoginRateLimit, nil), throttle},
		})
		rt.post("/user/info/passwd", m.endsSessions(handlers.ByePassword, u.Password()), routeOpts{
			afterSession: []fiber.Handler{m.rateLimit("passwd", m.cfg.AccountRateLimit, middleware.KeyUser)},
		})
	}
	rt.post("/user/info", u.Info())
	rt.post("/user/logout", m.endsSessions(handlers.ByeLogout, u.Logout()))
	rt.post("/user/info/head_img", u.HeadImg(), routeOpts{
		upload:       true,
		afterSession: []fiber.Handler{m.rateLimit("head_img", m.cfg.AccountRateLimit, middleware.KeyUser)},
	})
	rt.post("/user/info/update", u.Update())
}

// routeOpts says what an API route needs besides its path and handler.
// The zero value, and a route given none, is a JSON body behind the
// session check.
type routeOpts struct {
	// public routes (register, login) run without a session.
	public bool
	// failure is merged into the route's error answers: the seeds' login
	// and register answer {"login": 0} and {"reg": 0} on failure.
	failure map[string]any
	// upload takes the upload body limit instead of the JSON one.
	upload bool
	// file is /Message/Upload's: a body up to MaxFileBytes, not read
	// into memory when it streams.
	file bool
	// beforeSession gates run before the session check (limits keyed by
	// IP); afterSession gates after it (limits keyed by user).
	beforeSession, afterSession []fiber.Handler
}

// router mounts API routes on r, each with the module's chain.
type router struct {
	m                                            *Module
	r                                            fiber.Router
	rid, auth, jsonLimit, uploadLimit, fileLimit fiber.Handler
}

func (m *Module) newRouter(r fiber.Router) *router {
	return &router{
		m:   m,
		r:   r,
		rid: handlers.RequestID(),
		auth: middleware.NewAuth(middleware.AuthConfig{
			Tokens:        m.tokens,
			IdleLifetime:  m.cfg.TokenIdleLifetime,
			TouchInterval: m.cfg.TokenTouchInterval,
			Now:           m.cfg.Now,
		}),
		jsonLimit:   bodyLimit(m.cfg.BodyLimit),
		uploadLimit: bodyLimit(m.uploadLimit()),
		fileLimit:   streamLimit(m.fileLimit()),
	}
}

// post mounts a POST route; without opts it is the common one, a JSON
// body behind the session check.
func (rt *router) post(path string, h fiber.Handler, opts ...routeOpts) {
	rt.add(fiber.MethodPost, path, h, opts...)
}

// get mounts a GET route, as post does.
func (rt *router) get(path string, h fiber.Handler, opts ...routeOpts) {
	rt.add(fiber.MethodGet, path, h, opts...)
}

// add mounts one API route: the request id (read once, here, for the
// envelope and every log line), metrics and access log (when on),
// boundary, body limit, the signature for this path, then the gates
// before the session, the session check unless public, the gates after
// it, and the handler. The signature comes before every limit, so that
// requests without a valid api_token, which cost nothing to send, never
// count against a real client's budget.
func (rt *router) add(method, path string, h fiber.Handler, opts ...routeOpts) {
	var o routeOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	limit := rt.jsonLimit
	switch {
	case o.upload:
		limit = rt.uploadLimit
	case o.file:
		limit = rt.fileLimit
	}
	chain := append(rt.first(), handlers.Boundary(rt.m.cfg.Logger, o.failure), limit, rt.m.signature.Require(middleware.RouteName(path)))
	chain = append(chain, o.beforeSession...)
	if !o.public {
		chain = append(chain, rt.auth)
	}
	chain = append(chain, o.afterSession...)
	rt.r.Add(method, path, append(chain, h)...)
}

// raw mounts a route that is not signed (avatars, the script, the 404):
// only the request id, metrics and access log come before hs. An empty
// method mounts it for every method.
func (rt *router) raw(method, path string, hs ...fiber.Handler) {
	chain := append(append(rt.first(), CloseUnreadBody), hs...)
	if method == "" {
		rt.r.All(path, chain...)
		return
	}
	rt.r.Add(method, path, chain...)
}

// first returns the handlers every route starts with: the request id,
// then metrics and the access log (observed), which log it. The slice is
// new on every call, for the caller to append to.
func (rt *router) first() []fiber.Handler {
	return append([]fiber.Handler{rt.rid}, rt.m.observed()...)
}

// rateLimit is a limit of max requests a window, named name, keyed by key
// (the client IP when nil), counted in the module's limit storage.
func (m *Module) rateLimit(name string, max int, key func(*fiber.Ctx) string) fiber.Handler {
	return middleware.NewRateLimit(middleware.RateLimitConfig{Name: name, Max: max, Window: m.cfg.RateLimitWindow, Key: key, Storage: m.limitStorage()})
}

// bodyLimit refuses bodies past limit bytes with 413/1009, and compressed
// bodies outright: decompressing them is how a small request becomes a
// memory bomb. A body fasthttp streams (StreamRequestBody) is read here,
// at most limit bytes of it: fasthttp does not bound a streamed body by
// its BodyLimit, and Request.Body would read all of it.
func bodyLimit(limit int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if enc := c.Get(fiber.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
			return closing(c, apierr.Invalid("malformed body: Content-Encoding is not supported"))
		}
		if c.Request().Header.ContentLength() > limit {
			return closing(c, apierr.TooLarge("body too large"))
		}
		if c.Request().IsBodyStream() {
			body, err := io.ReadAll(io.LimitReader(c.Context().RequestBodyStream(), int64(limit)+1))
			if err != nil {
				return closing(c, apierr.Invalid("malformed body: %s", "could not be read"))
			}
			if len(body) > limit {
				return closing(c, apierr.TooLarge("body too large"))
			}
			c.Request().SetBodyRaw(body)
		}
		if len(c.Request().Body()) > limit {
			return apierr.TooLarge("body too large")
		}
		return c.Next()
	}
}

// streamLimit is /Message/Upload's bodyLimit: it refuses a declared
// length past limit and compressed bodies, and leaves a streamed body
// unread, for UploadForm and Upload to stream (Upload counts what it
// reads against MaxFileBytes itself). Whatever answers the request (the
// signature or session gate, a limit, the handler), a streamed body not
// read to its end closes the connection.
func streamLimit(limit int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if enc := c.Get(fiber.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
			return closing(c, apierr.Invalid("malformed body: Content-Encoding is not supported"))
		}
		if c.Request().Header.ContentLength() > limit {
			return closing(c, apierr.TooLarge("body too large"))
		}
		err := c.Next()
		if !handlers.BodyRead(c) {
			_ = closing(c, nil)
		}
		return err
	}
}

// CloseUnreadBody is the first handler of the routes that read no body
// (the module's GETs and its 404): on an app that streams bodies
// (StreamRequestBody, as AppConfig's), fasthttp 1.51 reads what a
// handler leaves unread of a body as the connection's next request,
// which lets one request carry others past a proxy in front. After a
// request that came with a body, it closes the connection. Put it first
// on a host's own routes that read no body (a health check, static
// files) when the host uses AppConfig.
func CloseUnreadBody(c *fiber.Ctx) error {
	err := c.Next()
	if c.Request().Header.ContentLength() != 0 {
		_ = closing(c, nil)
	}
	return err
}

// closing answers err and closes the connection when the body streams
// and is left unread: fasthttp (1.51) would read the rest of it as the
// client's next request.
func closing(c *fiber.Ctx, err error) error {
	if c.Request().IsBodyStream() {
		c.Context().SetConnectionClose()
	}
	return err
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
// the module refuses it. (An app with StreamRequestBody, as AppConfig's,
// streams bodies past the limit instead: the module's routes then read
// at most their own limit of a body.)
func (m *Module) MaxBodySize() int { return max(m.cfg.BodyLimit, m.uploadLimit(), m.fileLimit()) }

// fileLimit is /Message/Upload's body limit: the file plus room for the
// credentials and the multipart framing.
func (m *Module) fileLimit() int { return int(m.cfg.MaxFileBytes) + 64<<10 }

// AppConfig is a fiber.Config for an app that serves the chat alone, as
// the sample app does: the envelope's error handler for failures before
// any route runs, the module's largest body limit as the server's (see
// MaxBodySize), streamed request bodies (StreamRequestBody and
// DisablePreParseMultipartForm: uploads are never held whole, and every
// route bounds what it reads itself), read and write timeouts that
// outlast the longest long poll by 10 s, and keep-alive connections that
// may idle longer than a poll. name is the app's name.
func (m *Module) AppConfig(name string) fiber.Config {
	hold := max(m.cfg.MaxWait, 30*time.Second) + 10*time.Second
	return fiber.Config{
		AppName:      name,
		ErrorHandler: m.ErrorHandler(),
		BodyLimit:    m.MaxBodySize(),
		// Uploads stream (API.md §13): fasthttp hands the handler a
		// body stream instead of reading the body whole, and multipart
		// bodies are not parsed ahead into memory or temporary files,
		// which StreamRequestBody would do with no limit at all. The
		// module bounds every body it reads itself (bodyLimit).
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  hold,
		WriteTimeout:                 hold,
		IdleTimeout:                  75 * time.Second,
		DisableStartupMessage:        true,
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
