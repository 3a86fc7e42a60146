package models

import (
	"context"
	"sync"
	"time"
)

// UserProfile is what /user/info shows of a user.
type UserProfile struct {
	UID       int64  `gorm:"column:uid"`
	Name      string `gorm:"column:name"`
	HeadImg   string `gorm:"column:head_img"`
	CreatedAt int64  `gorm:"column:created_at"`
}

// UserProfile reads one user's profile; ErrNotFound if there is none.
func (s *Store) UserProfile(ctx context.Context, uid int64) (UserProfile, error) {
	var p UserProfile
	err := s.with(ctx).Model(&User{}).Select("uid", "name", "head_img", "created_at").
		Where("uid = ?", uid).Take(&p).Error
	return p, notFound(err)
}

// ProfileCache serves profiles from memory, so /user/info costs no
// database read. Only public profile fields are cached, never a password
// hash: logins always read the database. Changes made through the module
// call Forget and show at once in this process; changes made elsewhere
// (another process, the host writing the table) show within the TTL.
type ProfileCache struct {
	src interface {
		UserProfile(ctx context.Context, uid int64) (UserProfile, error)
	}
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex
	// epoch counts Forgets; a read that raced one is not cached, so a
	// profile changed while it was being read is never remembered stale.
	epoch   uint64
	entries map[int64]cachedProfile
}

type cachedProfile struct {
	p       UserProfile
	fetched time.Time
}

// NewProfileCache caches up to max profiles of store for ttl each.
func NewProfileCache(store *Store, ttl time.Duration, max int, now func() time.Time) *ProfileCache {
	return &ProfileCache{src: store, ttl: ttl, max: max, now: now, entries: make(map[int64]cachedProfile)}
}

// UserProfile serves a fresh cached profile or reads it. Missing users are
// not cached.
func (c *ProfileCache) UserProfile(ctx context.Context, uid int64) (UserProfile, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[uid]
	epoch := c.epoch
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < c.ttl && !now.Before(e.fetched) {
		return e.p, nil
	}
	p, err := c.src.UserProfile(ctx, uid)
	if err != nil {
		return p, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return p, nil
	}
	if len(c.entries) >= c.max {
		// Drop about an eighth, in Go's random map order.
		n := c.max/8 + 1
		for k := range c.entries {
			delete(c.entries, k)
			if n--; n <= 0 {
				break
			}
		}
	}
	c.entries[uid] = cachedProfile{p: p, fetched: now}
	return p, nil
}

// Forget drops uid's cached profile after a change.
func (c *ProfileCache) Forget(uid int64) {
	c.mu.Lock()
	c.epoch++
	delete(c.entries, uid)
	c.mu.Unlock()
}
