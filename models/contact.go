package models

import "context"

// Contact is one direction of a mutual contact: both (a,b) and (b,a) are
// stored, so each user's list is one primary-key range.
type Contact struct {
	UID       int64 `gorm:"column:uid;primaryKey;autoIncrement:false"`
	PeerUID   int64 `gorm:"column:peer_uid;primaryKey;autoIncrement:false;index"`
	CreatedAt int64 `gorm:"not null;autoCreateTime:false"`
}

// ContactRequest is a pending request from FromUID to ToUID. Accepting or
// refusing it deletes the row, so a refused requester may ask again.
type ContactRequest struct {
	FromUID   int64 `gorm:"column:from_uid;primaryKey;autoIncrement:false"`
	ToUID     int64 `gorm:"column:to_uid;primaryKey;autoIncrement:false"`
	CreatedAt int64 `gorm:"not null;autoCreateTime:false"`
}

// AreContacts reports whether a and b are contacts.
func (s *Store) AreContacts(ctx context.Context, a, b int64) (bool, error) {
	var n int64
	err := s.with(ctx).Model(&Contact{}).Where("uid = ? AND peer_uid = ?", a, b).Limit(1).Count(&n).Error
	return n > 0, err
}
