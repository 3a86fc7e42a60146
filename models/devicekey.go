package models

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// DeviceKey is the public key one device of a user published for
// end-to-end encryption (API.md §15): Key is the base64 of a raw X25519
// public key. The server only relays it; it never holds a private key.
type DeviceKey struct {
	UID       int64  `gorm:"column:uid;primaryKey;autoIncrement:false"`
	DeviceID  string `gorm:"column:device_id;primaryKey;size:64"`
	Key       string `gorm:"column:pub_key;not null;size:64"`
	UpdatedAt int64  `gorm:"column:updated_at;not null;autoUpdateTime:false"`
}

// MaxDeviceKeys bounds the devices a user has keys for: a new device past
// it takes the place of the one whose key is oldest (published or last
// changed longest ago: republishing the same key changes nothing). Every
// encrypted message wraps its key for each device of both users, and
// every contact is told of each new one, so neither may grow without
// bound.
const MaxDeviceKeys = 32

// PublishDeviceKey stores k, replacing the key its device published
// before, and says whether anything changed: republishing the same key
// changes nothing (its time included), so a client may publish at every
// start without telling anyone. A new device past MaxDeviceKeys drops
// the oldest key.
func (s *Store) PublishDeviceKey(ctx context.Context, k DeviceKey) (changed bool, err error) {
	db, done := s.with(ctx)
	defer done()
	err = db.Transaction(func(tx *gorm.DB) error {
		var old DeviceKey
		res := tx.Clauses(clause.Locking{Strength: "UPDATE"}).
			Where("uid = ? AND device_id = ?", k.UID, k.DeviceID).Limit(1).Find(&old)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected > 0 && old.Key == k.Key {
			return nil
		}
		changed = true
		if err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "uid"}, {Name: "device_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"pub_key", "updated_at"}),
		}).Create(&k).Error; err != nil {
			return err
		}
		if res.RowsAffected > 0 {
			return nil // a device it had: no more of them
		}
		return dropOldDevices(tx, k)
	})
	if err != nil {
		return false, fmt.Errorf("publish device key: %w", err)
	}
	return changed, nil
}

// dropOldDevices deletes the keys of k.UID's devices past MaxDeviceKeys,
// the oldest first, never k's own.
func dropOldDevices(tx *gorm.DB, k DeviceKey) error {
	var all []DeviceKey
	if err := tx.Select("device_id").Where("uid = ? AND device_id <> ?", k.UID, k.DeviceID).
		Order("updated_at DESC, device_id DESC").Find(&all).Error; err != nil {
		return err
	}
	if len(all) < MaxDeviceKeys {
		return nil
	}
	stale := make([]string, 0, len(all)-MaxDeviceKeys+1)
	for _, d := range all[MaxDeviceKeys-1:] {
		stale = append(stale, d.DeviceID)
	}
	return tx.Where("uid = ? AND device_id IN ?", k.UID, stale).Delete(&DeviceKey{}).Error
}

// DeviceKeys returns every device key of uids, by uid and device id.
func (s *Store) DeviceKeys(ctx context.Context, uids []int64) ([]DeviceKey, error) {
	db, done := s.with(ctx)
	defer done()
	var out []DeviceKey
	if err := db.Where("uid IN ?", uids).Order("uid, device_id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read device keys: %w", err)
	}
	return out, nil
}

// ContactUIDs returns the uids of uid's contacts, the users who hear of
// its key changes.
func (s *Store) ContactUIDs(ctx context.Context, uid int64) ([]int64, error) {
	db, done := s.with(ctx)
	defer done()
	var out []int64
	if err := db.Model(&Contact{}).Where("uid = ?", uid).Order("peer_uid").Pluck("peer_uid", &out).Error; err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	return out, nil
}
