package models

import (
	"context"
	"errors"

	"gorm.io/gorm"
)

// Avatar is a stored avatar image, by the name its URL ends with.
type Avatar struct {
	Name        string `gorm:"primaryKey;column:name"`
	ContentType string `gorm:"column:content_type;not null"`
	Data        []byte `gorm:"column:data;not null"`
	CreatedAt   int64  `gorm:"column:created_at;not null;autoCreateTime:false"`
}

// PutAvatar stores an avatar. Names are random, so one is never replaced.
func (s *Store) PutAvatar(ctx context.Context, a *Avatar) error {
	db, done := s.with(ctx)
	defer done()
	return db.Create(a).Error
}

// ErrNoAvatar is the ErrNotFound of an avatar that is not stored, for
// every store of avatars to return.
var ErrNoAvatar = ErrNotFound.WithMsg("no such image")

// GetAvatar reads an avatar by name; ErrNoAvatar when there is none.
func (s *Store) GetAvatar(ctx context.Context, name string) (*Avatar, error) {
	db, done := s.with(ctx)
	defer done()
	var a Avatar
	err := db.Where("name = ?", name).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNoAvatar
	}
	return &a, err
}

// DeleteAvatar removes an avatar by name; one already gone is no error.
func (s *Store) DeleteAvatar(ctx context.Context, name string) error {
	db, done := s.with(ctx)
	defer done()
	return db.Where("name = ?", name).Delete(&Avatar{}).Error
}
