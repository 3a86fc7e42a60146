package middleware

import (
	"context"
	"sync"
	"time"

	"github.com/fiberchat/fiberchat/models"
)

// TokenCache remembers recently verified sessions, so an authenticated
// request costs no database read. It wraps the real TokenSource; every
// change that ends sessions (logout, password change, the session cap)
// must call ForgetUser, which takes effect in this process at once. Other
// processes sharing the database see the change within TTL.
type TokenCache struct {
	src TokenSource
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex
	// epoch counts invalidations; a read that raced one is not cached, so
	// a session ended while its row was being read is never remembered.
	epoch   uint64
	entries map[string]cachedToken        // by token hash
	byID    map[int64]string              // token id → hash
	byUID   map[int64]map[string]struct{} // the hashes cached for each user
}

type cachedToken struct {
	token   models.UserToken
	fetched time.Time
}

// NewTokenCache caches up to max sessions of src for ttl each.
func NewTokenCache(src TokenSource, ttl time.Duration, max int, now func() time.Time) *TokenCache {
	if now == nil {
		now = time.Now
	}
	return &TokenCache{
		src: src, ttl: ttl, max: max, now: now,
		entries: make(map[string]cachedToken),
		byID:    make(map[int64]string),
		byUID:   make(map[int64]map[string]struct{}),
	}
}

// TokenByHash serves a fresh cached session or reads it from the source.
// Unknown tokens are not cached: a miss always asks the database, so a
// session created elsewhere is seen at once.
func (c *TokenCache) TokenByHash(ctx context.Context, hash string) (*models.UserToken, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[hash]
	epoch := c.epoch
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < c.ttl && !now.Before(e.fetched) {
		t := e.token
		return &t, nil
	}
	t, err := c.src.TokenByHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return t, nil
	}
	if len(c.entries) >= c.max {
		c.evictLocked()
	}
	c.entries[hash] = cachedToken{token: *t, fetched: now}
	c.byID[t.ID] = hash
	set := c.byUID[t.UID]
	if set == nil {
		set = make(map[string]struct{}, 1)
		c.byUID[t.UID] = set
	}
	set[hash] = struct{}{}
	return t, nil
}

// ExtendToken writes the new expiry and keeps the cached copy in step.
func (c *TokenCache) ExtendToken(ctx context.Context, id, expire int64) error {
	if err := c.src.ExtendToken(ctx, id, expire); err != nil {
		return err
	}
	c.mu.Lock()
	if e, ok := c.entries[c.byID[id]]; ok {
		e.token.ExpireTime = expire
		c.entries[c.byID[id]] = e
	}
	c.mu.Unlock()
	return nil
}

// ForgetUser drops every cached session of uid, so the next request of
// each is checked against the database.
func (c *TokenCache) ForgetUser(uid int64) {
	c.mu.Lock()
	c.epoch++
	for hash := range c.byUID[uid] {
		delete(c.byID, c.entries[hash].token.ID)
		delete(c.entries, hash)
	}
	delete(c.byUID, uid)
	c.mu.Unlock()
}

// evictLocked drops about an eighth of the entries, chosen by Go's random
// map order: cheaper than LRU bookkeeping on every hit, and fair enough.
func (c *TokenCache) evictLocked() {
	n := c.max/8 + 1
	for hash, e := range c.entries {
		delete(c.entries, hash)
		delete(c.byID, e.token.ID)
		if set := c.byUID[e.token.UID]; set != nil {
			delete(set, hash)
			if len(set) == 0 {
				delete(c.byUID, e.token.UID)
			}
		}
		if n--; n <= 0 {
			return
		}
	}
}

// Len reports how many sessions are cached.
func (c *TokenCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
