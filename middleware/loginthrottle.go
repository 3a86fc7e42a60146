package middleware

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
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
	// Store keeps each uid's run. Give processes that serve one site a
	// shared one (the rate limits' Storage on Redis) so that guesses
	// spread over them count together. Required when Failures is
	// positive.
	Store Counters
	// Now is the clock. Required when Failures is positive.
	Now func() time.Time
}

// Counters is a store whose Incr and SetNX are one step each, whatever
// the number of callers and processes: what the throttle reserves an
// attempt with. A Get, count, Set (as Fiber's limiter does) would let
// parallel logins all read the same count. redisstore.Storage is one on
// Redis, redisstore.Local one in a process.
type Counters interface {
	Get(key string) ([]byte, error)
	Set(key string, val []byte, exp time.Duration) error
	Delete(key string) error
	// Incr adds delta to the integer under key (none counts as 0), keeps
	// it for exp from now, and returns the sum.
	Incr(key string, delta int64, exp time.Duration) (int64, error)
	// SetNX stores val under key for exp unless key holds a value, and
	// reports whether it did.
	SetNX(key string, val []byte, exp time.Duration) (bool, error)
}

const (
	// loginBackoffBase is the first wait past the allowed failures; each
	// further failure doubles it, up to MaxBackoff. One second lets a user
	// who mistyped a few times more try again at once, while an
	// attacker's guesses at one account fall to one per MaxBackoff within
	// minutes.
	loginBackoffBase = time.Second
	// loginRunTTL is how long a run is remembered after its last attempt.
	loginRunTTL = 24 * time.Hour
	// loginAttemptLease bounds how long an attempt past the threshold
	// holds the account's one place: a process that dies with it in
	// flight frees it by then. Far above a login's own bounds (bcrypt,
	// and one QueryTimeout of database calls).
	loginAttemptLease = time.Minute
	// loginInFlight is the gate's value while an attempt holds it, rather
	// than the Unix milliseconds a wait ends at.
	loginInFlight = "0"
)

// NewLoginThrottle returns the per-account throttle of /user/login, which
// goes beside the per-IP limit: that one stops a single address, this one
// an attacker who spreads guesses at one account over many addresses.
// After Failures failed logins in a row for a uid (wrong password, or no
// such uid), its next attempt goes alone: no other attempt at the uid is
// checked while it is, and if it fails too the next must wait one second,
// each further failure doubling the wait up to MaxBackoff. An attempt made
// while another is in flight or while waiting is refused with 429/1010
// and Retry-After, without checking the password. A successful login
// clears the uid's run.
//
// Each attempt is counted in Store before its password is checked, in one
// step (Incr), and the one attempt past the threshold takes the uid's gate
// (SetNX), which holds the wait after it fails: so parallel guesses, on
// any of the processes sharing Store, cannot all be checked against one
// count.
//
// The cap is what keeps the throttle from locking a user out: an attacker
// who keeps guessing holds the account's password logins to one attempt
// per MaxBackoff, shared with its owner, but never shuts them out for
// longer, and sessions already open keep working. Runs are remembered for
// at most a day after their last attempt.
func NewLoginThrottle(cfg LoginThrottleConfig) fiber.Handler {
	if cfg.Failures <= 0 {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	switch {
	case cfg.MaxBackoff <= 0:
		return failed(errors.New("fiberchat middleware: LoginThrottleConfig.MaxBackoff must be positive"))
	case cfg.Store == nil:
		return failed(errMissing("LoginThrottleConfig.Store"))
	case cfg.Now == nil:
		return failed(errMissing("LoginThrottleConfig.Now"))
	}
	th := loginThrottle(cfg)
	return th.handle
}

type loginThrottle LoginThrottleConfig

// loginAttempt is one reserved attempt at a uid.
type loginAttempt struct {
	run, gate string
	n         int64 // the attempt's place in the run, from 1
	gated     bool  // it holds the gate
}

func (th loginThrottle) handle(c *fiber.Ctx) error {
	account, ok := loginAccount(c)
	if !ok {
		return c.Next() // the handler refuses it
	}
	a, wait, err := th.reserve(account)
	if err != nil {
		return err
	}
	if wait > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10))
		return apierr.ErrRateLimited
	}
	// A panic below is answered by the boundary as a 500: the attempt is
	// given back, as any other outcome that is no verdict on the password.
	settled := false
	defer func() {
		if !settled {
			th.release(a)
		}
	}()
	err = c.Next()
	settled = true
	switch {
	case err == nil && c.Response().StatusCode() == fiber.StatusOK:
		th.clear(a)
	case errors.Is(err, apierr.ErrBadLogin):
		th.failed(a)
	default:
		th.release(a)
	}
	return err
}

// reserve counts an attempt at an account (loginAccount's key), and past
// the threshold takes the gate; when it may not go on it returns how long
// to wait instead.
func (th loginThrottle) reserve(account string) (loginAttempt, time.Duration, error) {
	key := "throttle:" + account
	a := loginAttempt{run: key, gate: key + ":gate"}
	n, err := th.Store.Incr(a.run, 1, loginRunTTL)
	if err != nil {
		return a, 0, err
	}
	a.n = n
	if n <= int64(th.Failures) {
		return a, 0, nil
	}
	ok, err := th.Store.SetNX(a.gate, []byte(loginInFlight), loginAttemptLease)
	if err == nil && ok {
		a.gated = true
		return a, 0, nil
	}
	_, _ = th.Store.Incr(a.run, -1, loginRunTTL)
	if err != nil {
		return a, 0, err
	}
	return a, th.wait(a.gate), nil
}

// wait is how long until the gate may open: what is left of a failure's
// wait, or a second while an attempt is in flight.
func (th loginThrottle) wait(gate string) time.Duration {
	val, _ := th.Store.Get(gate)
	ms, err := strconv.ParseInt(string(val), 10, 64)
	if err != nil {
		return time.Second
	}
	return max(time.UnixMilli(ms).Sub(th.Now()), time.Second)
}

// The settling calls' errors are dropped: a count they fail to change
// expires with its key, and the store's own fallback is its business.

// failed keeps the attempt counted and, past the threshold, turns the
// gate it holds into the wait.
func (th loginThrottle) failed(a loginAttempt) {
	if !a.gated {
		return
	}
	d := backoff(int(a.n)-th.Failures, th.MaxBackoff)
	until := strconv.AppendInt(nil, th.Now().Add(d).UnixMilli(), 10)
	_ = th.Store.Set(a.gate, until, d)
}

// release gives back an attempt that said nothing about the password.
func (th loginThrottle) release(a loginAttempt) {
	_, _ = th.Store.Incr(a.run, -1, loginRunTTL)
	if a.gated {
		_ = th.Store.Delete(a.gate)
	}
}

// clear ends the run after a successful login. Below the threshold
// there is no gate to open, which spares most logins a round trip.
func (th loginThrottle) clear(a loginAttempt) {
	_ = th.Store.Delete(a.run)
	if a.n > int64(th.Failures) {
		_ = th.Store.Delete(a.gate)
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

// loginAccount is the key of the account a login names, if it names one
// validly: its uid in decimal, or "h:" and its handle lower-cased when it
// names it by handle (the handler's rule: a uid wins over a handle). The
// throttle resolves no handle to its uid, which would cost a database
// read before every login: an account named both ways keeps two runs, so
// an attacker gets twice Failures guesses before the waits, and the
// waits then hold each name to one guess a MaxBackoff (docs/security.md).
func loginAccount(c *fiber.Ctx) (string, bool) {
	fields, err := wire.Fields(c)
	if err != nil {
		return "", false
	}
	// A null is no uid, as the handler's decoder has it: counted as one
	// (invalid, so unthrottled), it would let a login by handle past the
	// throttle.
	if raw, ok := fields["uid"]; ok && string(raw) != "null" {
		var u wire.UID
		if u.UnmarshalJSON(raw) != nil {
			return "", false
		}
		return strconv.FormatInt(int64(u), 10), true
	}
	var h string
	if raw, ok := fields["handle"]; !ok || json.Unmarshal(raw, &h) != nil || !wire.ValidHandle(h) {
		return "", false
	}
	return "h:" + strings.ToLower(h), true
}
