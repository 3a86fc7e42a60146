package middleware

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/fiberchat/fiberchat/internal/cache"
	"github.com/fiberchat/fiberchat/models"
)

// TokenCache remembers recently verified sessions, so an authenticated
// request costs no database read. It wraps the real TokenSource; every
// change that ends sessions (logout, password change, the session cap)
// must call ForgetUser, which takes effect in this process at once. Other
// processes sharing the database see the change within the TTL.
type TokenCache struct {
	src TokenSource
	// byHash serves lookups; its groups are users, for ForgetUser.
	byHash *cache.Cache[string, int64, *cachedSession]
	// byID finds a cached session for ExtendToken, which knows only the
	// id. A session is served only while both hold the same copy, so one
	// that byID evicted, and so could not be kept in step, is read again.
	byID *cache.Cache[int64, struct{}, *cachedSession]
	// unknown remembers hashes the source did not find, so a client
	// repeating a wrong token costs no read each. It is a cache of its
	// own, so that a flood of made-up tokens evicts only other misses,
	// never a good session.
	unknown *cache.Cache[string, struct{}, struct{}]
}

// cachedSession is one session shared by both indexes; its expiry moves
// when ExtendToken slides it.
type cachedSession struct {
	token  models.UserToken // ExpireTime is in expire
	expire atomic.Int64
}

// NewTokenCache caches up to max sessions of src for ttl each, on the
// clock now, which must be safe to call concurrently (its sweeper calls
// it too). A ttl or max that is not positive, or a nil now, caches
// nothing.
func NewTokenCache(src TokenSource, ttl time.Duration, max int, now func() time.Time) *TokenCache {
	cfg := cache.Config{TTL: ttl, Size: max, Now: now}
	return &TokenCache{
		src:     src,
		byHash:  cache.NewGrouped[string](cfg, func(s *cachedSession) int64 { return s.token.UID }),
		byID:    cache.New[int64, *cachedSession](cfg),
		unknown: cache.New[string, struct{}](cache.Config{TTL: min(ttl, maxUnknownTTL), Size: max, Now: now}),
	}
}

// maxUnknownTTL bounds how long an unknown token is remembered. A
// token's hash can be unknown and later exist only if someone asked for
// it before it was made, which a 165-bit random token rules out; the
// bound is there so that even then it is seen soon.
const maxUnknownTTL = time.Second

// TokenByHash serves a fresh cached session or reads it from the source.
// A hash the source did not find is answered models.ErrNotFound without a
// read for a short while (at most a second).
func (c *TokenCache) TokenByHash(ctx context.Context, hash string) (*models.UserToken, error) {
	if s, ok := c.byHash.Get(hash); ok {
		if same, ok := c.byID.Get(s.token.ID); ok && same == s {
			t := s.token
			t.ExpireTime = s.expire.Load()
			return &t, nil
		}
	}
	if _, ok := c.unknown.Get(hash); ok {
		return nil, models.ErrNotFound
	}
	byHash, byID, unknown := c.byHash.Stamp(), c.byID.Stamp(), c.unknown.Stamp()
	t, err := c.src.TokenByHash(ctx, hash)
	if errors.Is(err, models.ErrNotFound) {
		c.unknown.Put(unknown, hash, struct{}{})
	}
	if err != nil {
		return nil, err
	}
	s := &cachedSession{token: *t}
	s.expire.Store(t.ExpireTime)
	c.byID.Put(byID, t.ID, s)
	c.byHash.Put(byHash, hash, s)
	return t, nil
}

// ExtendToken writes the new expiry and keeps the cached copy in step.
func (c *TokenCache) ExtendToken(ctx context.Context, id, expire int64) error {
	if err := c.src.ExtendToken(ctx, id, expire); err != nil {
		return err
	}
	if s, ok := c.byID.Get(id); ok {
		// Never back, as in the store: a slower extension that lost the
		// race must not undo a newer one.
		for {
			old := s.expire.Load()
			if old >= expire || s.expire.CompareAndSwap(old, expire) {
				break
			}
		}
	}
	return nil
}

// ForgetUser drops every cached session of uid, so the next request of
// each is checked against the database.
func (c *TokenCache) ForgetUser(uid int64) { c.byHash.ForgetGroup(uid) }

// Stats reports the session lookups served from memory (hits) and read
// from the source (misses). A session whose second index lost it, which is
// rare, is read again and counts as both.
func (c *TokenCache) Stats() (hits, misses uint64) { return c.byHash.Stats() }

// Len reports how many sessions are cached.
func (c *TokenCache) Len() int { return c.byHash.Len() }

// CapTTL serves sessions for at most d until CapTTL(0), which lifts the
// cap and drops every cached session (see cache.Cache.CapTTL): the module
// caps while it cannot hear of sessions ended by other processes.
func (c *TokenCache) CapTTL(d time.Duration) {
	c.byHash.CapTTL(d)
	c.byID.CapTTL(d)
}
