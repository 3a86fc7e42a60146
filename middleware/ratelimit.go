package middleware

import (
	"errors"
	"strconv"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"
)

// RateLimitConfig configures a per-IP (or per-user) request limit. The module fills
// every field but Storage from its Config, which owns the defaults.
type RateLimitConfig struct {
	// Name tells limits apart when they share one Storage: a client's
	// counter is kept under Name + ":" + its key.
	Name string
	// Key is what a counter is kept for. Optional. Default: the client's
	// IP: the connection's address, or behind the app's ProxyHeader the
	// right-most address in it that is not one of the app's
	// TrustedProxies (not c.IP(), which a client can pick; see
	// docs/security.md). KeyUser keys by the authenticated user.
	Key func(*fiber.Ctx) string
	// Max is how many requests one IP may make in a window; not positive
	// disables the limit.
	Max int
	// Window is the length of a window, counted in whole seconds (rounded
	// up) on Fiber's own clock, which ticks once a second and cannot be
	// set: it starts at an IP's first request. Required when Max is
	// positive.
	Window time.Duration
	// Storage keeps the counters; give processes that serve one site a
	// shared one (Redis, say) so the limit is theirs together. Optional:
	// nil keeps them in this process, each for one window, so memory is
	// bounded by the IPs seen in a window.
	Storage fiber.Storage
}

// NewRateLimit returns a fixed-window per-IP limit, Fiber's limiter. Past
// it the request is refused with apierr.ErrRateLimited, which the module's
// boundary answers as 429/1010; the limiter has set Retry-After by then,
// to the seconds left in the window, at least 1.
func NewRateLimit(cfg RateLimitConfig) fiber.Handler {
	if cfg.Max <= 0 {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	if cfg.Window <= 0 {
		// The limiter would take its own default; the module owns ours.
		return failed(errors.New("fiberchat middleware: RateLimitConfig.Window must be positive"))
	}
	prefix := cfg.Name + ":"
	key := cfg.Key
	if key == nil {
		key = new(clientIP).key
	}
	return limiter.New(limiter.Config{
		Max:        cfg.Max,
		Expiration: cfg.Window,
		// A fresh string: safe to keep past the request.
		KeyGenerator: func(c *fiber.Ctx) string { return prefix + key(c) },
		LimitReached: func(*fiber.Ctx) error { return apierr.ErrRateLimited },
		Storage:      cfg.Storage,
	})
}

// KeyUser keys a RateLimitConfig by the session's user, for routes behind
// the auth gate (mount the limit after it): one user's requests share a
// budget whatever addresses and sessions they come from.
func KeyUser(c *fiber.Ctx) string { return strconv.FormatInt(SessionFrom(c).UID, 10) }
