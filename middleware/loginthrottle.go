package middleware

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/internal/cache"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/gofiber/fiber/v2"
)

// LoginThrottleConfig configures the per-account login throttle. The
// module fills every field from its Config, which owns the defaults.
type LoginThrottleConfig struct {
	// Failures is how many failed logins in a row one uid may have before
	// its further attempts wait; not positive disables the throttle.
	Failures int
	// MaxBackoff caps the wait. Required when Failures is positive.
	MaxBackoff time.Duration
	// Size bounds how many uids' failures are remembered. Required when
	// Failures is positive.
	Size int
	// Now is the clock. Required when Failures is positive.
	Now func() time.Time
}

// loginBackoffBase is the first wait past the allowed failures; each
// further failure doubles it, up to MaxBackoff. One second lets a user who
// mistyped a few times more try again at once, while an attacker's
// guesses at one account fall to one per MaxBackoff within minutes.
const loginBackoffBase = time.Second

// loginFailures is one uid's run of failed logins.
type loginFailures struct {
	mu    sync.Mutex
	count int
	until time.Time // no attempt before this
}

// NewLoginThrottle returns the per-account throttle of /user/login, which
// goes beside the per-IP limit: that one stops a single address, this one
// an attacker who spreads guesses at one account over many addresses.
// After Failures failed logins in a row for a uid (wrong password, or no
// such uid), its next attempt must wait one second, and each further
// failure doubles the wait up to MaxBackoff; an attempt made while waiting
// is refused with 429/1010 and Retry-After, without checking the
// password. A successful login clears the uid's run.
//
// The cap is what keeps the throttle from locking a user out: an attacker
// who keeps guessing holds the account's password logins to one attempt
// per MaxBackoff, shared with its owner, but never shuts them out for
// longer, and sessions already open keep working. Runs are remembered in
// this process only, for at most a day since their last failure and for
// at most Size uids (past it a random eighth is forgotten): a throttle
// shared by several processes needs a shared store, and forgetting is the
// price of bounded memory.
func NewLoginThrottle(cfg LoginThrottleConfig) fiber.Handler {
	if cfg.Failures <= 0 {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	switch {
	case cfg.MaxBackoff <= 0:
		return failed(errors.New("fiberchat middleware: LoginThrottleConfig.MaxBackoff must be positive"))
	case cfg.Size <= 0:
		return failed(errors.New("fiberchat middleware: LoginThrottleConfig.Size must be positive"))
	case cfg.Now == nil:
		return failed(errMissing("LoginThrottleConfig.Now"))
	}
	runs := cache.New[int64, *loginFailures](cache.Config{TTL: 24 * time.Hour, Size: cfg.Size, Now: cfg.Now})
	// mu makes finding or adding a uid's run one step, so that concurrent
	// failures of a new uid count in one run.
	var mu sync.Mutex
	run := func(uid int64, create bool) *loginFailures {
		mu.Lock()
		defer mu.Unlock()
		if r, ok := runs.Get(uid); ok || !create {
			return r
		}
		r := &loginFailures{}
		runs.Put(runs.Stamp(), uid, r)
		return r
	}
	return func(c *fiber.Ctx) error {
		uid, ok := loginUID(c)
		if !ok {
			return c.Next() // the handler refuses it
		}
		if r := run(uid, false); r != nil {
			r.mu.Lock()
			wait := r.until.Sub(cfg.Now())
			r.mu.Unlock()
			if wait > 0 {
				c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10))
				return apierr.ErrRateLimited
			}
		}
		err := c.Next()
		switch {
		case err == nil && c.Response().StatusCode() == fiber.StatusOK:
			if r := run(uid, false); r != nil {
				runs.Forget(uid)
			}
		case errors.Is(err, apierr.ErrBadLogin):
			r := run(uid, true)
			r.mu.Lock()
			r.count++
			if over := r.count - cfg.Failures; over > 0 {
				r.until = cfg.Now().Add(backoff(over, cfg.MaxBackoff))
			}
			r.mu.Unlock()
		}
		return err
	}
}

// backoff is the wait after the n-th failure past the allowed ones:
// loginBackoffBase doubled n-1 times, at most max.
func backoff(n int, max time.Duration) time.Duration {
	d := loginBackoffBase
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// loginUID is the uid a login names, if it names a valid one.
func loginUID(c *fiber.Ctx) (int64, bool) {
	fields, err := wire.Fields(c)
	if err != nil {
		return 0, false
	}
	raw, ok := fields["uid"]
	if !ok {
		return 0, false
	}
	var u wire.UID
	if u.UnmarshalJSON(raw) != nil {
		return 0, false
	}
	return int64(u), true
}
