package models

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// What typing and presence (API.md §13) read and write. Neither stores
// anything of a typing notice; presence keeps one column of when a user
// was last seen, and whether they show their presence at all.

// MayMessage returns nil if from may message to now, as Send would
// decide it: errNoRecipient if to does not exist, else mayMessage's
// answer (ErrNotContact, ErrBlocked). Nothing is locked: a typing notice
// is not a message, and one racing a block is harmless.
func (s *Store) MayMessage(ctx context.Context, from, to int64, contactsOnly bool) error {
	db, done := s.with(ctx)
	defer done()
	var n int64
	if err := db.Model(&User{}).Where("uid = ?", to).Limit(1).Count(&n).Error; err != nil {
		return fmt.Errorf("read recipient: %w", err)
	}
	if n == 0 {
		return errNoRecipient
	}
	return mayMessage(db, from, to, contactsOnly)
}

// OtherMembers returns the members of gid now but uid, in uid order, if
// uid is one of them: ErrNoGroup if there is no such group, ErrNotMember
// if uid is not in it.
func (s *Store) OtherMembers(ctx context.Context, gid, uid int64) ([]int64, error) {
	db, done := s.with(ctx)
	defer done()
	if _, err := memberOf(db, gid, uid); err != nil {
		return nil, err
	}
	var uids []int64
	if err := db.Model(&GroupMember{}).Where("gid = ? AND until_id = 0 AND uid <> ?", gid, uid).
		Order("uid").Pluck("uid", &uids).Error; err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return uids, nil
}

// Presence is what the database keeps of a user's presence.
type Presence struct {
	UID          int64 `gorm:"column:uid"`
	LastSeen     int64 `gorm:"column:last_seen"`
	ShowPresence bool  `gorm:"column:show_presence"`
}

// PresenceOf returns the presence columns of those uids that exist, by
// uid.
func (s *Store) PresenceOf(ctx context.Context, uids []int64) (map[int64]Presence, error) {
	out := make(map[int64]Presence, len(uids))
	if len(uids) == 0 {
		return out, nil
	}
	db, done := s.with(ctx)
	defer done()
	var rows []Presence
	if err := db.Model(&User{}).Select("uid, last_seen, show_presence").
		Where("uid IN ?", uids).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read presence: %w", err)
	}
	for _, r := range rows {
		out[r.UID] = r
	}
	return out, nil
}

// PresenceWatchers returns whether uid shows their presence and, if so,
// the contacts of uid who may be told of it: those who show theirs
// (hiding one's presence hides everyone else's too, API.md §13).
func (s *Store) PresenceWatchers(ctx context.Context, uid int64) (bool, []int64, error) {
	db, done := s.with(ctx)
	defer done()
	var u User
	err := db.Select("uid, show_presence").Where("uid = ?", uid).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return false, nil, nil
	}
	if err != nil || !u.ShowPresence {
		return false, nil, err
	}
	uids, err := s.contactsShowing(db, uid)
	return err == nil, uids, err
}

// ContactsShowingPresence returns the contacts of uid who show their
// presence, whether or not uid shows theirs: those to tell when uid
// starts or stops showing it.
func (s *Store) ContactsShowingPresence(ctx context.Context, uid int64) ([]int64, error) {
	db, done := s.with(ctx)
	defer done()
	return s.contactsShowing(db, uid)
}

func (s *Store) contactsShowing(db *gorm.DB, uid int64) ([]int64, error) {
	contacts, users, err := s.tables(&Contact{}, &User{})
	if err != nil {
		return nil, err
	}
	var uids []int64
	err = db.Table(contacts+" AS c").
		Joins("JOIN "+users+" AS u ON u.uid = c.peer_uid").
		Where("c.uid = ? AND u.show_presence = ?", uid, true).
		Order("c.peer_uid").Pluck("c.peer_uid", &uids).Error
	if err != nil {
		return nil, fmt.Errorf("list presence watchers: %w", err)
	}
	return uids, nil
}

// SetLastSeen records that uid was seen online at t (unix seconds).
func (s *Store) SetLastSeen(ctx context.Context, uid, t int64) error {
	db, done := s.with(ctx)
	defer done()
	if err := db.Model(&User{}).Where("uid = ?", uid).Update("last_seen", t).Error; err != nil {
		return fmt.Errorf("set last seen: %w", err)
	}
	return nil
}
