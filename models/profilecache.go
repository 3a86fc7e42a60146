package models

import (
	"context"
	"errors"
	"time"

	"github.com/fiberchat/fiberchat/internal/cache"
	"gorm.io/gorm"
)

// UserProfile is what /user/info shows of a user.
type UserProfile struct {
	UID     int64  `gorm:"column:uid"`
	Name    string `gorm:"column:name"`
	HeadImg string `gorm:"column:head_img"`
	Handle  string `gorm:"column:handle"` // "" for none
	// Discoverable is only the user's own to see (/user/info).
	Discoverable bool  `gorm:"column:discoverable"`
	CreatedAt    int64 `gorm:"column:created_at"`
}

// UserProfile reads the profile of a session's own user; ErrUserGone if
// the user no longer exists (deleted by the host).
func (s *Store) UserProfile(ctx context.Context, uid int64) (UserProfile, error) {
	db, done := s.with(ctx)
	defer done()
	var p UserProfile
	err := db.Model(&User{}).Select("uid, name, head_img, created_at, discoverable, "+handleColumn).
		Where("uid = ?", uid).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return p, ErrUserGone
	}
	return p, err
}

// ProfileCache serves profiles from memory, so /user/info costs no
// database read. Only public profile fields are cached, never a password
// hash: logins always read the database. Changes made through the module
// call Forget and show at once in this process; changes made elsewhere
// (another process, the host writing the table) show within the TTL.
type ProfileCache struct {
	store *Store
	cache *cache.Cache[int64, struct{}, UserProfile]
}

// NewProfileCache caches up to max profiles of store for ttl each, on the
// clock now. A ttl or max that is not positive, or a nil now, caches
// nothing.
func NewProfileCache(store *Store, ttl time.Duration, max int, now func() time.Time) *ProfileCache {
	return &ProfileCache{store: store, cache: cache.New[int64, UserProfile](cache.Config{TTL: ttl, Size: max, Now: now})}
}

// UserProfile serves a fresh cached profile or reads it. Missing users are
// not cached.
func (c *ProfileCache) UserProfile(ctx context.Context, uid int64) (UserProfile, error) {
	return c.cache.Load(ctx, uid, func(ctx context.Context) (UserProfile, error) {
		return c.store.UserProfile(ctx, uid)
	})
}

// Forget drops uid's cached profile after a change; a read already under
// way is not cached, so the change is never hidden behind it.
func (c *ProfileCache) Forget(uid int64) { c.cache.Forget(uid) }

// Stats reports the profile lookups served from memory (hits) and read
// from the store (misses).
func (c *ProfileCache) Stats() (hits, misses uint64) { return c.cache.Stats() }

// CapTTL serves profiles for at most d until CapTTL(0), which lifts the
// cap and drops every cached profile (see cache.Cache.CapTTL).
func (c *ProfileCache) CapTTL(d time.Duration) { c.cache.CapTTL(d) }
