package middleware_test

import (
	"context"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// The benchmarks drive a Fiber app's handler directly on one
// fasthttp.RequestCtx: the gate's cost with Fiber's routing around it,
// but without sockets, so the figures are the middleware's and not the
// network's. Everything a gate would read from the database is served
// from memory, and the caches are warm, as they are on a busy server.

var benchNow = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// benchClients is a ClientSource with one client.
type benchClients map[string]string

func (c benchClients) ClientByID(_ context.Context, id string) (*models.APIClient, error) {
	secret, ok := c[id]
	if !ok {
		return nil, models.ErrNotFound
	}
	return &models.APIClient{ClientID: id, Secret: secret}, nil
}

// benchTokens is a TokenSource with one session.
type benchTokens struct{ t models.UserToken }

func (s benchTokens) TokenByHash(_ context.Context, hash string) (*models.UserToken, error) {
	if hash != s.t.TokenHash {
		return nil, models.ErrNotFound
	}
	t := s.t
	return &t, nil
}

func (benchTokens) ExtendToken(context.Context, int64, int64) error { return nil }

// serveFunc builds a request once and returns what runs it through h,
// answering the response status.
func serveFunc(h fasthttp.RequestHandler, uri, body string) func() int {
	var req fasthttp.Request
	req.Header.SetMethod(fiber.MethodPost)
	req.SetRequestURI(uri)
	if body != "" {
		req.Header.SetContentType(fiber.MIMEApplicationJSON)
		req.SetBodyString(body)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	return func() int {
		ctx.Response.Reset()
		h(&ctx)
		return ctx.Response.StatusCode()
	}
}

func ok(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusOK) }

// BenchmarkSignature is one signed request through the api_token gate,
// its client cached.
func BenchmarkSignature(b *testing.B) {
	const secret = "benchmark-client-secret"
	sig := middleware.NewSignature(middleware.SignatureConfig{
		Clients:   benchClients{"bench": secret},
		Location:  time.UTC,
		CacheTTL:  time.Hour,
		CacheSize: 1000,
		Now:       func() time.Time { return benchNow },
	})
	route := middleware.RouteName("/user/info")
	app := fiber.New()
	app.Post("/user/info", sig.Require(route), ok)
	token := middleware.Token(route, benchNow.Format(time.DateOnly), secret)
	serve := serveFunc(app.Handler(), "/user/info?client_id=bench&api_token="+token, "")
	if got := serve(); got != fiber.StatusOK { // also fills the client cache
		b.Fatalf("signed request answered %d, want 200", got)
	}
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}

// BenchmarkAuth is one request through the access_token gate, credentials
// in a JSON body, the session in the token cache.
func BenchmarkAuth(b *testing.B) {
	token := "abcdefghijklmnopqrstuvwxyz012345"
	src := benchTokens{models.UserToken{ID: 1, UID: 10000001, TokenHash: models.HashToken(token), ExpireTime: benchNow.Add(30 * 24 * time.Hour).Unix()}}
	clock := func() time.Time { return benchNow }
	auth := middleware.NewAuth(middleware.AuthConfig{
		Tokens:        middleware.NewTokenCache(src, time.Hour, 1000, clock),
		IdleLifetime:  7 * 24 * time.Hour,
		TouchInterval: time.Minute,
		Now:           clock,
	})
	app := fiber.New()
	app.Post("/user/info", auth, ok)
	serve := serveFunc(app.Handler(), "/user/info", `{"uid":10000001,"access_token":"`+token+`"}`)
	if got := serve(); got != fiber.StatusOK { // also fills the token cache
		b.Fatalf("authenticated request answered %d, want 200", got)
	}
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}

// BenchmarkNoGate is the reference for the two above: the same app and
// request with no gate, so what they add is the difference.
func BenchmarkNoGate(b *testing.B) {
	app := fiber.New()
	app.Post("/user/info", ok)
	serve := serveFunc(app.Handler(), "/user/info?client_id=bench&api_token=0123456789abcdef0123456789abcdef", `{"uid":10000001,"access_token":"abcdefghijklmnopqrstuvwxyz012345"}`)
	if got := serve(); got != fiber.StatusOK {
		b.Fatalf("request answered %d, want 200", got)
	}
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}
