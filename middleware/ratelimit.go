package middleware

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/gofiber/fiber/v2"
)

// RateLimitConfig configures a per-IP request limit.
type RateLimitConfig struct {
	// Max is how many requests one IP may make in a window; 0 disables the
	// limit.
	Max int
	// Window is the length of a window. Default: 1 minute.
	Window time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// NewRateLimit returns a fixed-window per-IP limit. Past it the request is
// a 429/1010 with a Retry-After header. Counters live for one window only,
// so memory is bounded by the IPs seen in one window.
func NewRateLimit(cfg RateLimitConfig) fiber.Handler {
	if cfg.Max <= 0 {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	if cfg.Window == 0 {
		cfg.Window = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var (
		mu     sync.Mutex
		start  time.Time
		counts = map[string]int{}
	)
	return func(c *fiber.Ctx) error {
		now := cfg.Now()
		ip := strings.Clone(c.IP()) // kept past the request; fasthttp reuses buffers
		mu.Lock()
		if now.Sub(start) >= cfg.Window || now.Before(start) {
			start = now.Truncate(cfg.Window)
			clear(counts)
		}
		counts[ip]++
		n := counts[ip]
		reset := start.Add(cfg.Window)
		mu.Unlock()
		if n > cfg.Max {
			wait := int(reset.Sub(now).Round(time.Second) / time.Second)
			if wait < 1 {
				wait = 1
			}
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(wait))
			return apierr.ErrRateLimited
		}
		return c.Next()
	}
}
