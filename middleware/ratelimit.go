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
	// set: it starts at an IP's first request; on an Incrementer (see
	// Storage), windows are aligned on the clock instead. Required when
	// Max is positive.
	Window time.Duration
	// Storage keeps the counters; give processes that serve one site a
	// shared one (Redis, say) so the limit is theirs together. Optional:
	// nil keeps them in this process, each for one window, so memory is
	// bounded by the IPs seen in a window. A Storage that can increment a
	// counter in one step (Incrementer: the module's Redis store) counts
	// with that, so that processes sharing it cannot pass the limit
	// together; with any other, Fiber's limiter reads the counter and
	// writes it back, which is one step only within a process.
	Storage fiber.Storage
}

// Incrementer is a Storage that increments a counter in one step.
type Incrementer interface {
	// Incr adds delta to the integer under key (none counts as 0), keeps
	// it for exp from now, and returns the sum.
	Incr(key string, delta int64, exp time.Duration) (int64, error)
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
	if counters, ok := cfg.Storage.(Incrementer); ok {
		return countedLimit(cfg, counters, prefix, key)
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

// countedLimit is NewRateLimit on an Incrementer: fixed windows of
// whole seconds, aligned on the clock (every process sharing the store
// counts in the same window), each counted under a key of its own by one
// increment a request. A store that fails lets the request through: the
// module's Redis store counts in this process then, by itself.
func countedLimit(cfg RateLimitConfig, counters Incrementer, prefix string, key func(*fiber.Ctx) string) fiber.Handler {
	window := int64((cfg.Window + time.Second - 1) / time.Second)
	return func(c *fiber.Ctx) error {
		t := time.Now().Unix()
		n := t / window
		k := prefix + key(c) + ":" + strconv.FormatInt(n, 10)
		count, err := counters.Incr(k, 1, time.Duration(window)*time.Second)
		if err != nil || count <= int64(cfg.Max) {
			return c.Next()
		}
		c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(max((n+1)*window-t, 1), 10))
		return apierr.ErrRateLimited
	}
}

// KeyUser keys a RateLimitConfig by the session's user, for routes behind
// the auth gate (mount the limit after it): one user's requests share a
// budget whatever addresses and sessions they come from.
func KeyUser(c *fiber.Ctx) string { return strconv.FormatInt(SessionFrom(c).UID, 10) }
