package models

import (
	"context"
	"fmt"
)

// wakeScanLimit bounds the rows one WakeScan reads; past it the next scan
// goes on from where this one stopped.
const wakeScanLimit = 5000

// WakeScan reports the recipients of the messages stored after cursor (a
// message id), or, when cursor is 0, of those stamped at or after since
// (unix seconds), at most wakeScanLimit messages' worth, and the id to go
// on from (cursor itself when none was found). It is what a process asks
// its database, once for all its long polls, while the wake-ups from
// other processes cannot reach it (see notify.Redis).
//
// Sends to different users commit in any order, so a message may commit
// after a scan has moved past its id; its recipient's poll then finds it
// when its own wait runs out, or at its next wake-up. Nothing is lost,
// only late, and only while wake-ups are down.
func (s *Store) WakeScan(ctx context.Context, since, cursor int64) (uids []int64, next int64, err error) {
	var rows []struct {
		ID    int64
		ToUID int64
		GID   int64 `gorm:"column:gid"`
	}
	db, done := s.with(ctx)
	defer done()
	q := db.Model(&Message{}).Select("id", "COALESCE(to_uid, 0) AS to_uid", "gid")
	if cursor > 0 {
		q = q.Where("id > ?", cursor)
	} else {
		q = q.Where("created_at >= ?", since)
	}
	if err := q.Order("id").Limit(wakeScanLimit).Find(&rows).Error; err != nil {
		return nil, cursor, fmt.Errorf("wake scan: %w", err)
	}
	next = cursor
	seen := make(map[int64]struct{}, len(rows))
	add := func(uid int64) {
		if _, ok := seen[uid]; !ok {
			seen[uid] = struct{}{}
			uids = append(uids, uid)
		}
	}
	var gids []int64
	for _, r := range rows {
		next = max(next, r.ID)
		if r.GID != 0 {
			gids = append(gids, r.GID)
			continue
		}
		add(r.ToUID)
	}
	if len(gids) > 0 {
		// A group message wakes every member (its sender too: harmless).
		var members []int64
		if err := db.Model(&GroupMember{}).Distinct("uid").Where("gid IN ? AND until_id = 0", gids).
			Pluck("uid", &members).Error; err != nil {
			return nil, cursor, fmt.Errorf("wake scan: %w", err)
		}
		for _, uid := range members {
			add(uid)
		}
	}
	return uids, next, nil
}
