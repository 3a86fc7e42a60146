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

// AvatarOwner records the avatar a user uploaded last. It is what makes an
// avatar deletable: head_img is only a URL, which /user/info/update lets a
// user point at anyone's avatar, so it proves nothing about who owns the
// file it names.
type AvatarOwner struct {
	UID  int64  `gorm:"column:uid;primaryKey;autoIncrement:false"`
	Name string `gorm:"column:name;size:40;not null;uniqueIndex"`
}

// SetAvatar makes name, an avatar uid has just stored, its head_img (as
// url) and its recorded avatar, in one transaction, and returns the name
// it recorded before ("" for none): the one avatar the caller may now
// delete, or "" too while another user's head_img names it (API.md §3:
// an upload never removes a file another user shows). The user's row is
// updated first, so that its lock orders two uploads of one user on
// MySQL, and each sees the other's record. ErrUserGone when the user no
// longer exists.
func (s *Store) SetAvatar(ctx context.Context, uid int64, name, url string, now int64) (prev string, err error) {
	db, done := s.with(ctx)
	defer done()
	err = db.Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&User{}).Where("uid = ?", uid).
			Updates(map[string]any{"head_img": url, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrUserGone
		}
		var old AvatarOwner
		err := tx.Where("uid = ?", uid).Take(&old).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			return tx.Create(&AvatarOwner{UID: uid, Name: name}).Error
		case err != nil:
			return err
		}
		if err := tx.Model(&AvatarOwner{}).Where("uid = ?", uid).Update("name", name).Error; err != nil {
			return err
		}
		shown, err := shownByOthers(tx, uid, old.Name)
		if !shown {
			prev = old.Name
		}
		return err
	})
	return prev, err
}

// shownByOthers reports whether a user other than uid has a head_img
// naming the avatar name. It scans the users table, which only an
// avatar upload (rate-limited per user) pays for; names are hex and a
// dot, so nothing in them is a LIKE wildcard.
func shownByOthers(tx *gorm.DB, uid int64, name string) (bool, error) {
	var n int64
	err := tx.Model(&User{}).Where("uid <> ? AND head_img LIKE ?", uid, "%/avatar/"+name).Limit(1).Count(&n).Error
	return n > 0, err
}
