package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// VapidKey is the server's one VAPID key pair (RFC 8292), row id 1:
// base64url of the raw P-256 private scalar and of the uncompressed
// public point.
type VapidKey struct {
	ID         int    `gorm:"column:id;primaryKey;autoIncrement:false"`
	PrivateKey string `gorm:"column:private_key;not null;size:64"`
	PublicKey  string `gorm:"column:public_key;not null;size:100"`
	CreatedAt  int64  `gorm:"column:created_at;not null;autoCreateTime:false"`
}

// PushSubscription is one browser's Web Push subscription (API.md §14).
type PushSubscription struct {
	ID           int64  `gorm:"column:id;primaryKey"`
	UID          int64  `gorm:"column:uid;not null"`
	EndpointHash string `gorm:"column:endpoint_hash;not null;size:64"`
	Endpoint     string `gorm:"column:endpoint;not null;size:1024"`
	P256dh       string `gorm:"column:p256dh;not null;size:100"`
	Auth         string `gorm:"column:auth;not null;size:64"`
	CreatedAt    int64  `gorm:"column:created_at;not null;autoCreateTime:false"`
}

// vapidKeyID is the one row's id.
const vapidKeyID = 1

// VAPIDKeyPair returns the server's VAPID key pair, making it with
// generate if there is none yet. Instances that start at once may all
// generate one: each inserts with its conflict ignored, then reads back
// the row, so all use the one that was inserted first.
func (s *Store) VAPIDKeyPair(ctx context.Context, now int64, generate func() (priv, pub string, err error)) (VapidKey, error) {
	db, done := s.with(ctx)
	defer done()
	var k VapidKey
	res := db.Where("id = ?", vapidKeyID).Limit(1).Find(&k)
	if res.Error != nil {
		return VapidKey{}, fmt.Errorf("read vapid key: %w", res.Error)
	}
	if res.RowsAffected > 0 {
		return k, nil
	}
	priv, pub, err := generate()
	if err != nil {
		return VapidKey{}, fmt.Errorf("generate vapid key: %w", err)
	}
	k = VapidKey{ID: vapidKeyID, PrivateKey: priv, PublicKey: pub, CreatedAt: now}
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&k).Error; err != nil {
		return VapidKey{}, fmt.Errorf("store vapid key: %w", err)
	}
	k = VapidKey{}
	if err := db.Where("id = ?", vapidKeyID).Take(&k).Error; err != nil {
		return VapidKey{}, fmt.Errorf("read vapid key: %w", err)
	}
	return k, nil
}

// EndpointHash is the key a subscription's endpoint is stored under.
func EndpointHash(endpoint string) string {
	h := sha256.Sum256([]byte(endpoint))
	return hex.EncodeToString(h[:])
}

// SavePushSubscription stores sub (for sub.UID), replacing a
// subscription with the same endpoint (whoever held it), and keeps
// uid's newest max subscriptions: a browser that subscribed anew left its
// old ones behind, and no user makes the server push to more than max
// places. The newest is the latest subscribed: sub takes a new row, so
// that an endpoint subscribed again, or moved over from another user,
// is not the one the cap cuts.
func (s *Store) SavePushSubscription(ctx context.Context, sub PushSubscription, max int) error {
	db, done := s.with(ctx)
	defer done()
	sub.ID = 0
	sub.EndpointHash = EndpointHash(sub.Endpoint)
	err := db.Transaction(func(tx *gorm.DB) error {
		// By its id: a DELETE by endpoint_hash that finds no row would
		// take a gap lock on MySQL, on which two first subscriptions
		// could deadlock.
		var old []int64
		if err := tx.Model(&PushSubscription{}).Where("endpoint_hash = ?", sub.EndpointHash).Pluck("id", &old).Error; err != nil {
			return err
		}
		if len(old) > 0 {
			if err := tx.Where("id IN ?", old).Delete(&PushSubscription{}).Error; err != nil {
				return err
			}
		}
		// One saved meanwhile by another request keeps its row.
		err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "endpoint_hash"}},
			DoUpdates: clause.AssignmentColumns([]string{"uid", "p256dh", "auth", "created_at"}),
		}).Create(&sub).Error
		if err != nil {
			return err
		}
		var keep []int64
		err = tx.Model(&PushSubscription{}).Where("uid = ?", sub.UID).
			Order("id DESC").Limit(max).Pluck("id", &keep).Error
		if err != nil || len(keep) < max {
			return err
		}
		return tx.Where("uid = ? AND id NOT IN ?", sub.UID, keep).Delete(&PushSubscription{}).Error
	})
	if err != nil {
		if isMissingParent(err) {
			return ErrUserGone
		}
		return fmt.Errorf("save push subscription: %w", err)
	}
	return nil
}

// DeletePushSubscription removes the subscription at endpoint if uid
// holds it (uid 0: whoever holds it, for a push service that answered
// that it is gone).
func (s *Store) DeletePushSubscription(ctx context.Context, uid int64, endpoint string) error {
	db, done := s.with(ctx)
	defer done()
	q := db.Where("endpoint_hash = ?", EndpointHash(endpoint))
	if uid != 0 {
		q = q.Where("uid = ?", uid)
	}
	if err := q.Delete(&PushSubscription{}).Error; err != nil {
		return fmt.Errorf("delete push subscription: %w", err)
	}
	return nil
}

// PushSubscriptions returns the subscriptions of uids.
func (s *Store) PushSubscriptions(ctx context.Context, uids []int64) ([]PushSubscription, error) {
	db, done := s.with(ctx)
	defer done()
	var out []PushSubscription
	if err := db.Where("uid IN ?", uids).Order("uid, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read push subscriptions: %w", err)
	}
	return out, nil
}

// PushPreviews returns, by id, what a push shows of each of ids that
// is still there and not deleted: its text (the latest edit's), and
// whether it is encrypted. A push is sent some time after its message
// (Config.PushDelay), and a message deleted or edited meanwhile must
// not be pushed as it was.
func (s *Store) PushPreviews(ctx context.Context, ids []int64) (map[int64]Message, error) {
	out := make(map[int64]Message, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	db, done := s.with(ctx)
	defer done()
	var ms []Message
	if err := db.Select("id", "body", "enc").Where("id IN ? AND deleted = ?", ids, false).Find(&ms).Error; err != nil {
		return nil, fmt.Errorf("read messages to push: %w", err)
	}
	for _, m := range ms {
		out[m.ID] = m
	}
	return out, nil
}
