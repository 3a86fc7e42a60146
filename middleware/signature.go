// Package middleware holds fiberchat's request gates: the api_token
// signature of every route (seed 003's interface token), the user_token
// session check, and per-IP rate limits. module puts them on each route in
// its routes.go. Each gate returns an *apierr.Error and leaves writing the
// envelope to the module's one error boundary.
package middleware

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/internal/cache"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// ClientSource looks API clients up by client_id; models.ErrNotFound when
// there is none.
type ClientSource interface {
	ClientByID(ctx context.Context, clientID string) (*models.APIClient, error)
}

// SignatureConfig configures the api_token check. The module fills every
// field from its Config, which owns the defaults.
type SignatureConfig struct {
	// Clients is where API clients are looked up. Required.
	Clients ClientSource
	// Location decides which calendar day the token is for. Required.
	Location *time.Location
	// Skew is how close to midnight the neighbouring day's token is still
	// (or already) accepted; 0 accepts only the current day's.
	Skew time.Duration
	// CacheTTL is how long a client row is trusted before it is read again,
	// so that a client disabled by another process is refused within it.
	// Not positive: every request reads its client.
	CacheTTL time.Duration
	// CacheSize bounds how many clients are remembered, and, apart, how
	// many unknown or disabled ids. Not positive: nothing is remembered.
	CacheSize int
	// Now is the clock. Required.
	Now func() time.Time
}

// Signature checks api_tokens. Client rows are cached in process so that a
// request costs no database read for its client.
type Signature struct {
	cfg SignatureConfig
	// err is why cfg cannot be used; every request is then refused with it.
	err error
	// clients holds each known client's secret; unknown holds the ids of
	// unknown and disabled clients. A flood of made-up ids so costs one
	// read each per TTL, cannot grow memory past CacheSize, and, kept
	// apart, evicts only other unknown ids, never a real client.
	clients *cache.Cache[string, struct{}, string]
	unknown *cache.Cache[string, struct{}, struct{}]

	// routes are the route names Require was asked for: the module's
	// mounted routes, which Tokens hands out tokens for, so that the list
	// a browser gets cannot drift from the routes that check it.
	routesMu sync.Mutex
	routes   []string
	// window is the last list of accepted days, and when it holds.
	window atomic.Pointer[dayWindow]
}

// NewSignature prepares the api_token check. A config without Clients,
// Location or Now is a caller's mistake: every request through it is then
// refused with an internal error naming the field, rather than a panic.
func NewSignature(cfg SignatureConfig) *Signature {
	cc := cache.Config{TTL: cfg.CacheTTL, Size: cfg.CacheSize, Now: cfg.Now}
	s := &Signature{
		cfg:     cfg,
		clients: cache.New[string, string](cc),
		unknown: cache.New[string, struct{}](cc),
	}
	switch {
	case cfg.Clients == nil:
		s.err = errMissing("SignatureConfig.Clients")
	case cfg.Location == nil:
		s.err = errMissing("SignatureConfig.Location")
	case cfg.Now == nil:
		s.err = errMissing("SignatureConfig.Now")
	}
	return s
}

// RouteName is the module+controller+action string a route's api_token is
// computed from: the first three path segments after the mount prefix,
// lower-cased, a missing one being "index".
func RouteName(path string) string {
	segs := strings.FieldsFunc(strings.ToLower(path), func(r rune) bool { return r == '/' })
	for len(segs) < 3 {
		segs = append(segs, "index")
	}
	return segs[0] + segs[1] + segs[2]
}

// Require returns the gate for one route; route is RouteName of its path,
// computed once when the route is mounted.
func (s *Signature) Require(route string) fiber.Handler {
	if s.err != nil {
		return failed(s.err)
	}
	s.routesMu.Lock()
	if !slices.Contains(s.routes, route) {
		s.routes = append(s.routes, route)
	}
	s.routesMu.Unlock()
	return func(c *fiber.Ctx) error {
		clientID := c.Query("client_id")
		if clientID == "" {
			clientID = c.Get("X-Client-Id")
		}
		token := c.Query("api_token")
		if token == "" {
			token = c.Get("X-Api-Token")
		}
		if clientID == "" || len(token) != md5.Size*2 || len(clientID) > 20 {
			return apierr.ErrAccessDeny
		}
		secret, err := s.secret(c.UserContext(), clientID)
		if err != nil {
			return err
		}
		if secret == "" || !s.valid(route, secret, strings.ToLower(token)) {
			return apierr.ErrAccessDeny
		}
		return c.Next()
	}
}

// Token computes the api_token for route on day (YYYY-MM-DD).
func Token(route, day, secret string) string {
	sum := md5.Sum([]byte(route + day + secret))
	return hex.EncodeToString(sum[:])
}

func (s *Signature) valid(route, secret, token string) bool {
	// Every accepted day's candidate is compared, so timing does not tell
	// which day matched.
	ok := false
	for _, day := range s.days() {
		ok = equal(Token(route, day, secret), token) || ok
	}
	return ok
}

// days are the dates (YYYY-MM-DD) whose tokens are accepted now: today in
// Location, and the neighbouring day within Skew of midnight. The list
// changes only at midnight and Skew either side of it, so it is kept
// until the next such instant: computing it took the calendar and two
// formattings on every request.
func (s *Signature) days() []string {
	now := s.cfg.Now()
	if w := s.window.Load(); w != nil && !now.Before(w.from) && now.Before(w.until) {
		return w.days
	}
	w := s.dayWindowAt(now)
	s.window.Store(w)
	return w.days
}

// dayWindow is the list days returns over [from, until). The list is
// shared: nobody may change it.
type dayWindow struct {
	from, until time.Time
	days        []string
}

// dayWindowAt computes days at now and the span around now over which
// they hold: from local midnight, or Skew after it, to Skew before the
// next, or the next. Within a day the list depends on two conditions, each
// of which changes once, so it holds over the span if it is the same at
// both ends; where a daylight-saving change makes the calendar's midnight
// the wrong one (Havana's clocks skip midnight itself), it is not, and the
// span is empty: days then computes its list every time, as it does for
// a Skew of half a day or more.
func (s *Signature) dayWindowAt(now time.Time) *dayWindow {
	loc, skew := s.cfg.Location, s.cfg.Skew
	days := acceptedDays(now, loc, skew)
	w := &dayWindow{from: now, until: now, days: days}
	if skew < 0 || skew >= 12*time.Hour {
		return w
	}
	y, m, d := now.In(loc).Date()
	from, until := time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	for _, edge := range [...]time.Time{from.Add(skew), until.Add(-skew)} {
		if !edge.After(now) && edge.After(from) {
			from = edge
		}
		if edge.After(now) && edge.Before(until) {
			until = edge
		}
	}
	if !from.After(now) && until.After(now) &&
		slices.Equal(acceptedDays(from, loc, skew), days) &&
		slices.Equal(acceptedDays(until.Add(-time.Nanosecond), loc, skew), days) {
		w.from, w.until = from, until
	}
	return w
}

// acceptedDays is the list days returns at now.
func acceptedDays(now time.Time, loc *time.Location, skew time.Duration) []string {
	local := now.In(loc)
	days := []string{local.Format(time.DateOnly)}
	if prev := local.Add(-skew); prev.Day() != local.Day() {
		days = append(days, prev.Format(time.DateOnly))
	}
	if next := local.Add(skew); next.Day() != local.Day() {
		days = append(days, next.Format(time.DateOnly))
	}
	return days
}

// Tokens computes, for a client's secret, the api_token of every route
// Require has been asked for, for each day accepted now: day → route name
// → token. It is what a server hands a web page so that the page signs
// its requests without holding the secret.
func (s *Signature) Tokens(secret string) map[string]map[string]string {
	if s.err != nil {
		return map[string]map[string]string{}
	}
	s.routesMu.Lock()
	routes := slices.Clone(s.routes)
	s.routesMu.Unlock()
	out := map[string]map[string]string{}
	for _, day := range s.days() {
		byRoute := make(map[string]string, len(routes))
		for _, r := range routes {
			byRoute[r] = Token(r, day, secret)
		}
		out[day] = byRoute
	}
	return out
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// secret returns the client's secret, or "" when the client is unknown or
// disabled.
func (s *Signature) secret(ctx context.Context, clientID string) (string, error) {
	if secret, ok := s.clients.Get(clientID); ok {
		return secret, nil
	}
	if _, ok := s.unknown.Get(clientID); ok {
		return "", nil
	}
	// The id outlives the request in the cache; fasthttp reuses its buffer.
	clientID = strings.Clone(clientID)
	known, unknown := s.clients.Stamp(), s.unknown.Stamp()
	c, err := s.cfg.Clients.ClientByID(ctx, clientID)
	switch {
	case errors.Is(err, models.ErrNotFound) || err == nil && c.Disabled:
		s.unknown.Put(unknown, clientID, struct{}{})
		return "", nil
	case err != nil:
		return "", err
	}
	s.clients.Put(known, clientID, c.Secret)
	return c.Secret, nil
}

// Stats reports the API client lookups served from memory (hits) and read
// from the database (misses).
func (s *Signature) Stats() (hits, misses uint64) { return s.clients.Stats() }

// Forget drops a client from the cache, so a change made in this process
// (create, disable) takes effect at once, even over a read under way.
func (s *Signature) Forget(clientID string) {
	s.clients.Forget(clientID)
	s.unknown.Forget(clientID)
}

// CapTTL serves client rows for at most d until CapTTL(0), which lifts
// the cap and drops every cached client (see cache.Cache.CapTTL).
func (s *Signature) CapTTL(d time.Duration) {
	s.clients.CapTTL(d)
	s.unknown.CapTTL(d)
}
