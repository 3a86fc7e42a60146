package middleware_test

import (
	"maps"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/middleware"
	"github.com/gofiber/fiber/v2"
)

// A rate limit keys on the right-most address of the app's ProxyHeader
// that is not one of its TrustedProxies: a proxy appends what it saw to
// what the client sent, so everything left of that is the client's to
// pick. app.Test's connections come from 0.0.0.0.
func TestRateLimitClientIP(t *testing.T) {
	trusting := func(proxies ...string) fiber.Config {
		return fiber.Config{ProxyHeader: fiber.HeaderXForwardedFor, EnableTrustedProxyCheck: true, TrustedProxies: proxies}
	}
	for _, tc := range []struct {
		name   string
		cfg    fiber.Config
		header []string // X-Forwarded-For lines, in order
		want   string
	}{
		{"no proxy header: the socket", fiber.Config{}, []string{"203.0.113.7"}, "0.0.0.0"},
		{"untrusted connection: the socket", trusting("10.0.0.1"), []string{"203.0.113.7"}, "0.0.0.0"},
		{"one proxy", trusting("0.0.0.0"), []string{"203.0.113.7"}, "203.0.113.7"},
		{"forged start ignored", trusting("0.0.0.0"), []string{"1.2.3.4, 203.0.113.7"}, "203.0.113.7"},
		{"EnableIPValidation changes nothing", func() fiber.Config {
			c := trusting("0.0.0.0")
			c.EnableIPValidation = true
			return c
		}(), []string{"1.2.3.4,203.0.113.7"}, "203.0.113.7"},
		{"past a chain of trusted proxies", trusting("0.0.0.0", "10.0.0.0/8"), []string{"1.2.3.4, 203.0.113.7, 10.1.2.3, 10.0.0.9"}, "203.0.113.7"},
		{"several header lines", trusting("0.0.0.0", "10.0.0.0/8"), []string{"1.2.3.4, 203.0.113.7", "10.0.0.9"}, "203.0.113.7"},
		{"IPv6 and ports", trusting("0.0.0.0", "2001:db8::/32"), []string{"1.2.3.4, [2001:db9::1]:4711, 2001:db8::5"}, "2001:db9::1"},
		{"garbage from a trusted proxy: the last hop known", trusting("0.0.0.0", "10.0.0.0/8"), []string{"203.0.113.7, junk, 10.0.0.9"}, "10.0.0.9"},
		{"every hop trusted", trusting("0.0.0.0", "10.0.0.0/8"), []string{"10.0.0.1, 10.0.0.9"}, "10.0.0.1"},
		{"no header from a trusted proxy: the proxy", trusting("0.0.0.0"), nil, "0.0.0.0"},
		{"no trusted-proxy check: the last address only", fiber.Config{ProxyHeader: fiber.HeaderXForwardedFor}, []string{"1.2.3.4, 203.0.113.7"}, "203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStorage()
			app := fiber.New(tc.cfg)
			app.Post("/x", middleware.NewRateLimit(middleware.RateLimitConfig{Name: "x", Max: 10, Window: time.Minute, Storage: store}), ok)
			req := httptest.NewRequest("POST", "/x", nil)
			for _, h := range tc.header {
				req.Header.Add(fiber.HeaderXForwardedFor, h)
			}
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			store.mu.Lock()
			keys := slices.Sorted(maps.Keys(store.m))
			store.mu.Unlock()
			if want := []string{"x:" + tc.want}; !slices.Equal(keys, want) {
				t.Fatalf("counted under %q, want %q", keys, want)
			}
		})
	}
}
