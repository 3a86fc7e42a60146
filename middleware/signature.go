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
	"strings"
	"sync"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// ClientSource looks API clients up by client_id; models.ErrNotFound when
// there is none.
type ClientSource interface {
	ClientByID(ctx context.Context, clientID string) (*models.APIClient, error)
}

// SignatureConfig configures the api_token check.
type SignatureConfig struct {
	// Clients is where API clients are looked up. Required.
	Clients ClientSource
	// Location decides which calendar day the token is for. Default: UTC.
	Location *time.Location
	// Skew is how close to midnight the neighbouring day's token is still
	// (or already) accepted. Default: 5 minutes.
	Skew time.Duration
	// CacheTTL is how long a client row is trusted before it is read again,
	// so that a client disabled by another process is refused within it.
	// Default: 30 seconds.
	CacheTTL time.Duration
	// CacheSize bounds how many client ids are remembered. Default: 10000.
	CacheSize int
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Signature checks api_tokens. Client rows are cached in process so that a
// request costs no database read for its client.
type Signature struct {
	cfg SignatureConfig

	mu    sync.RWMutex
	cache map[string]cachedClient
}

type cachedClient struct {
	secret  string // empty for an unknown or disabled client
	fetched time.Time
}

// NewSignature prepares the api_token check.
func NewSignature(cfg SignatureConfig) *Signature {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Skew == 0 {
		cfg.Skew = 5 * time.Minute
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Signature{cfg: cfg, cache: make(map[string]cachedClient)}
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
	now := s.cfg.Now().In(s.cfg.Location)
	ok := equal(Token(route, now.Format(time.DateOnly), secret), token)
	// The neighbouring day's token is accepted near midnight; every
	// candidate is compared, so timing does not tell which day matched.
	if prev := now.Add(-s.cfg.Skew); prev.Day() != now.Day() {
		ok = equal(Token(route, prev.Format(time.DateOnly), secret), token) || ok
	}
	if next := now.Add(s.cfg.Skew); next.Day() != now.Day() {
		ok = equal(Token(route, next.Format(time.DateOnly), secret), token) || ok
	}
	return ok
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// secret returns the client's secret, or "" when the client is unknown or
// disabled.
func (s *Signature) secret(ctx context.Context, clientID string) (string, error) {
	now := s.cfg.Now()
	s.mu.RLock()
	e, ok := s.cache[clientID]
	s.mu.RUnlock()
	if ok && now.Sub(e.fetched) < s.cfg.CacheTTL && !now.Before(e.fetched) {
		return e.secret, nil
	}
	c, err := s.cfg.Clients.ClientByID(ctx, clientID)
	secret := ""
	switch {
	case errors.Is(err, models.ErrNotFound):
	case err != nil:
		return "", err
	case !c.Disabled:
		secret = c.Secret
	}
	s.mu.Lock()
	if len(s.cache) >= s.cfg.CacheSize {
		// A flood of made-up client ids must not grow memory without bound;
		// dropping everything is crude but the cache refills in one read each.
		clear(s.cache)
	}
	s.cache[strings.Clone(clientID)] = cachedClient{secret: secret, fetched: now}
	s.mu.Unlock()
	return secret, nil
}

// Forget drops a client from the cache, so a change made in this process
// (create, disable) takes effect at once.
func (s *Signature) Forget(clientID string) {
	s.mu.Lock()
	delete(s.cache, clientID)
	s.mu.Unlock()
}
