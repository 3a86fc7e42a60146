// Package cache is fiberchat's one in-process cache of database rows: the
// sessions the auth gate checks (middleware.TokenCache), the API clients
// the signature gate checks (middleware.Signature) and the profiles
// /user/info shows (models.ProfileCache). It gives each of them the same
// guarantees:
//
//   - bounded: at most Size entries; past it a random eighth is dropped,
//     which costs nothing on a hit, unlike LRU bookkeeping;
//   - swept: an entry no longer fresh is dropped within a quarter of a
//     TTL of going stale (see Sweep), so that a burst of keys never seen
//     again (the sessions of streams opened at once, say) does not hold
//     memory until eviction reaches it;
//   - fresh: an entry is served for TTL after it was read, and not at all
//     once the clock has gone back past its read time;
//   - invalidation: Forget drops one key, ForgetGroup every key of a group
//     (all of a user's sessions, say);
//   - no stale refill: a value read from the source while an invalidation
//     ran is returned but not stored, so a change made during the read is
//     never hidden behind a cached copy;
//   - a cap: CapTTL shortens the TTL while invalidations from other
//     processes cannot arrive (Redis down), and lifting it drops every
//     entry, since invalidations may have been missed meanwhile.
//
// It is hand-written rather than built on golang-lru's expirable cache
// because that has neither groups nor the last guarantee, and wrapping it
// to add both would be longer than this file.
package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Config sizes a cache. A Config with TTL or Size not positive, or without
// Now, gives a cache that holds nothing: every lookup goes to the source.
type Config struct {
	// TTL is how long an entry is served after it was read from the source.
	TTL time.Duration
	// Size bounds how many entries are held.
	Size int
	// Now is the clock. The sweeper calls it on a goroutine of its own,
	// so it must be safe to call concurrently (time.Now is).
	Now func() time.Time
}

// Cache maps keys K to values V, each key in a group G. Use New when no
// group is needed; its group type is struct{}. Its methods are safe for
// concurrent use.
type Cache[K, G comparable, V any] struct {
	cfg   Config
	group func(V) G // nil: no group index

	// capTTL, when positive, shortens cfg.TTL (see CapTTL).
	capTTL atomic.Int64
	// hits and misses are counted for Stats.
	hits, misses atomic.Uint64

	mu sync.Mutex
	// epoch counts invalidations; a Put stamped before one is refused.
	epoch   uint64
	entries map[K]entry[G, V]
	groups  map[G]map[K]struct{}
	// gens holds, oldest first, the keys stored in each quarter of a TTL,
	// so that Sweep finds the stale entries without reading the fresh
	// ones. A key stored again is in several; one forgotten or evicted
	// stays in its generation until swept, and is then skipped.
	gens []generation[K]
	// sweeper runs Sweep every quarter of a TTL while gens holds keys;
	// nil when it is not armed.
	sweeper *time.Timer
}

// generation is the keys stored from start to last.
type generation[K comparable] struct {
	start, last time.Time
	keys        []K
}

type entry[G comparable, V any] struct {
	v       V
	g       G
	fetched time.Time
}

// New returns a cache without groups.
func New[K comparable, V any](cfg Config) *Cache[K, struct{}, V] {
	return &Cache[K, struct{}, V]{cfg: cfg, entries: make(map[K]entry[struct{}, V])}
}

// NewGrouped returns a cache whose entries are in the group that group
// gives for their value, for ForgetGroup.
func NewGrouped[K, G comparable, V any](cfg Config, group func(V) G) *Cache[K, G, V] {
	return &Cache[K, G, V]{cfg: cfg, group: group, entries: make(map[K]entry[G, V]), groups: make(map[G]map[K]struct{})}
}

func (c *Cache[K, G, V]) enabled() bool {
	return c.cfg.TTL > 0 && c.cfg.Size > 0 && c.cfg.Now != nil
}

// Get returns key's value if it is cached and fresh.
func (c *Cache[K, G, V]) Get(key K) (V, bool) {
	var zero V
	if !c.enabled() {
		return zero, false
	}
	now := c.cfg.Now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	// A read time in the future means the clock went back: the entry's age
	// is unknown, so it is not trusted.
	if !ok || now.Before(e.fetched) || now.Sub(e.fetched) >= c.ttl() {
		return zero, false
	}
	c.hits.Add(1)
	return e.v, true
}

// Stats reports how many lookups the cache answered (hits) and how many
// went to the source (misses). A hit is a Get that found a fresh entry; a
// miss is a Stamp, which every read from the source takes, so a caller
// that tries Get before Load counts one miss, not two. A cache that holds
// nothing counts neither.
func (c *Cache[K, G, V]) Stats() (hits, misses uint64) {
	return c.hits.Load(), c.misses.Load()
}

// ttl is cfg.TTL, or the cap when shorter.
func (c *Cache[K, G, V]) ttl() time.Duration {
	if d := time.Duration(c.capTTL.Load()); d > 0 && d < c.cfg.TTL {
		return d
	}
	return c.cfg.TTL
}

// CapTTL serves entries for at most d, however long the TTL, until
// CapTTL(0) lifts the cap. Lifting it drops every entry (and keeps reads
// under way from storing theirs): the cap is set while changes made
// elsewhere cannot be heard of, so an entry read before or during it may
// hide one, and must not live on at the full TTL.
func (c *Cache[K, G, V]) CapTTL(d time.Duration) {
	if d > 0 {
		c.capTTL.Store(int64(d))
		return
	}
	if c.capTTL.Swap(0) == 0 {
		return
	}
	c.mu.Lock()
	c.epoch++
	clear(c.entries)
	if c.groups != nil {
		clear(c.groups)
	}
	c.gens = nil
	c.mu.Unlock()
}

// A Stamp is taken before a value is read from the source and handed to
// Put with it: it remembers when the read began, which is when the entry
// starts ageing, and which invalidations had happened by then.
type Stamp struct {
	epoch uint64
	at    time.Time
}

// Stamp starts a read from the source.
func (c *Cache[K, G, V]) Stamp() Stamp {
	if !c.enabled() {
		return Stamp{}
	}
	c.misses.Add(1)
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stamp{epoch: c.epoch, at: now}
}

// Put stores v, read from the source since s was taken, under key. It
// stores nothing, and reports false, when Forget or ForgetGroup ran since:
// the value may predate that change.
func (c *Cache[K, G, V]) Put(s Stamp, key K, v V) bool {
	if !c.enabled() {
		return false
	}
	var g G
	if c.group != nil {
		g = c.group(v)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != s.epoch {
		return false
	}
	if old, ok := c.entries[key]; ok {
		c.removeLocked(key, old)
	} else if len(c.entries) >= c.cfg.Size {
		c.evictLocked()
	}
	c.entries[key] = entry[G, V]{v: v, g: g, fetched: s.at}
	if c.group != nil {
		set := c.groups[g]
		if set == nil {
			set = make(map[K]struct{}, 1)
			c.groups[g] = set
		}
		set[key] = struct{}{}
	}
	c.noteLocked(key)
	return true
}

// noteLocked records key in the current generation, begun anew every
// quarter of a TTL, and arms the sweeper.
func (c *Cache[K, G, V]) noteLocked(key K) {
	now := c.cfg.Now()
	span := c.span()
	if n := len(c.gens); n == 0 || now.Sub(c.gens[n-1].start) >= span || now.Before(c.gens[n-1].start) {
		c.gens = append(c.gens, generation[K]{start: now})
	}
	g := &c.gens[len(c.gens)-1]
	g.keys = append(g.keys, key)
	g.last = now
	if c.sweeper == nil {
		c.sweeper = time.AfterFunc(span, c.sweepTick)
	}
}

// span is how long a generation lasts, and how often the sweeper runs.
func (c *Cache[K, G, V]) span() time.Duration {
	return max(c.cfg.TTL/4, time.Millisecond)
}

// sweepTick is the sweeper: it sweeps, and runs again while any key is
// left to sweep. A cache nobody uses any more is thus swept empty, and
// then holds no timer.
func (c *Cache[K, G, V]) sweepTick() {
	c.Sweep()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.gens) == 0 {
		c.sweeper = nil
		return
	}
	c.sweeper.Reset(c.span())
}

// Sweep drops the entries of every generation whose keys were all stored
// at least a TTL ago (a capped one, under CapTTL) and are no longer
// fresh. A key stored again since is fresh, and stays. It runs by itself
// every quarter of a TTL while the cache holds entries; it is exported
// for tests and for a host that wants memory back at once.
func (c *Cache[K, G, V]) Sweep() {
	if !c.enabled() {
		return
	}
	now := c.cfg.Now()
	ttl := c.ttl()
	c.mu.Lock()
	defer c.mu.Unlock()
	done := 0
	for _, g := range c.gens {
		// A generation stored in the future (the clock went back) waits
		// until the clock passes it again.
		if now.Before(g.last) || now.Sub(g.last) < ttl {
			break
		}
		for _, key := range g.keys {
			if e, ok := c.entries[key]; ok && (now.Before(e.fetched) || now.Sub(e.fetched) >= ttl) {
				c.removeLocked(key, e)
			}
		}
		done++
	}
	if done > 0 {
		clear(c.gens[:done])
		c.gens = c.gens[done:]
	}
}

// Load returns key's cached value, or reads it with load and caches it.
// An error from load is returned and not cached.
func (c *Cache[K, G, V]) Load(ctx context.Context, key K, load func(context.Context) (V, error)) (V, error) {
	if v, ok := c.Get(key); ok {
		return v, nil
	}
	s := c.Stamp()
	v, err := load(ctx)
	if err != nil {
		return v, err
	}
	c.Put(s, key, v)
	return v, nil
}

// Forget drops key, and keeps a read already under way from storing it.
func (c *Cache[K, G, V]) Forget(key K) {
	c.mu.Lock()
	c.epoch++
	if e, ok := c.entries[key]; ok {
		c.removeLocked(key, e)
	}
	c.mu.Unlock()
}

// ForgetGroup drops every key of group g, and keeps a read already under
// way from storing one.
func (c *Cache[K, G, V]) ForgetGroup(g G) {
	c.mu.Lock()
	c.epoch++
	for key := range c.groups[g] {
		delete(c.entries, key)
	}
	delete(c.groups, g)
	c.mu.Unlock()
}

// Len reports how many entries are held, fresh or not.
func (c *Cache[K, G, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *Cache[K, G, V]) removeLocked(key K, e entry[G, V]) {
	delete(c.entries, key)
	if c.group == nil {
		return
	}
	if set := c.groups[e.g]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(c.groups, e.g)
		}
	}
}

// evictLocked drops about an eighth of the entries, chosen by Go's random
// map order: cheaper than LRU bookkeeping on every hit, and fair enough.
func (c *Cache[K, G, V]) evictLocked() {
	n := c.cfg.Size/8 + 1
	for key, e := range c.entries {
		c.removeLocked(key, e)
		if n--; n <= 0 {
			return
		}
	}
}
