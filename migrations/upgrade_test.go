package migrations_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/migrations"
)

// TestUpgradeFilledDatabase fills a database under the schema before
// conversations (version 4), then migrates it in place: every message
// gets its pair columns, and every (recipient, sender) a conversation row
// counting all its messages as unread, since nothing was marked read then.
func TestUpgradeFilledDatabase(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ctx := context.Background()
		pool, err := db.Gorm.DB()
		if err != nil {
			t.Fatal(err)
		}
		if err := migrations.UpTo(ctx, pool, dialectOf(db), "chat_", 4); err != nil {
			t.Fatal(err)
		}
		g := db.Gorm
		exec := func(q string, args ...any) {
			t.Helper()
			if err := g.Exec(q, args...).Error; err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		for _, uid := range []int64{10000001, 10000002, 10000003} {
			exec("INSERT INTO chat_users (uid, name, passwd_hash, head_img, created_at, updated_at) VALUES (?, 'u', '', '', 1, 1)", uid)
		}
		// 10000001 → 10000002 three times, 10000003 → 10000002 once,
		// 10000002 → 10000001 twice.
		for _, m := range [][2]int64{{10000001, 10000002}, {10000002, 10000001}, {10000001, 10000002}, {10000003, 10000002}, {10000001, 10000002}, {10000002, 10000001}} {
			exec("INSERT INTO chat_messages (from_uid, to_uid, body, created_at) VALUES (?, ?, 'old', 1)", m[0], m[1])
		}
		if err := migrations.Up(ctx, pool, dialectOf(db), "chat_", slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		var bad int64
		if err := g.Raw("SELECT COUNT(*) FROM chat_messages WHERE pair_lo <> LEAST(from_uid, to_uid) OR pair_hi <> GREATEST(from_uid, to_uid)").Scan(&bad).Error; err != nil {
			// SQLite has no LEAST/GREATEST; its scalar min/max do the same.
			if err := g.Raw("SELECT COUNT(*) FROM chat_messages WHERE pair_lo <> min(from_uid, to_uid) OR pair_hi <> max(from_uid, to_uid)").Scan(&bad).Error; err != nil {
				t.Fatal(err)
			}
		}
		if bad != 0 {
			t.Fatalf("%d messages without their pair", bad)
		}
		type conv struct {
			UID, PeerUID, LastID, ReadID, Unread int64
		}
		var got []conv
		if err := g.Raw("SELECT uid, peer_uid, last_id, read_id, unread FROM chat_conversations ORDER BY uid, peer_uid").Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		want := []conv{{10000001, 10000002, 6, 0, 2}, {10000002, 10000001, 5, 0, 3}, {10000002, 10000003, 4, 0, 1}}
		if len(got) != len(want) {
			t.Fatalf("conversations %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("conversations %+v, want %+v", got, want)
			}
		}
	})
}

// TestUpgradeToGroups fills a database under the schema before groups
// (version 7), purges its newest message, and migrates: every message is
// kept as it was (a 1:1 message, gid 0), ids go on past the purged one
// (SQLite rebuilds the table and must keep its high-water mark, or a
// cursor past the purged id would never see the next message), a group
// message stores with no recipient, and gids start at 20000001.
func TestUpgradeToGroups(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ctx := context.Background()
		pool, err := db.Gorm.DB()
		if err != nil {
			t.Fatal(err)
		}
		if err := migrations.UpTo(ctx, pool, dialectOf(db), "chat_", 7); err != nil {
			t.Fatal(err)
		}
		g := db.Gorm
		exec := func(q string, args ...any) {
			t.Helper()
			if err := g.Exec(q, args...).Error; err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		for _, uid := range []int64{10000001, 10000002} {
			exec("INSERT INTO chat_users (uid, name, passwd_hash, head_img, created_at, updated_at) VALUES (?, 'u', '', '', 1, 1)", uid)
		}
		for range 3 {
			exec("INSERT INTO chat_messages (from_uid, to_uid, body, created_at, pair_lo, pair_hi) VALUES (10000001, 10000002, 'old', 1, 10000001, 10000002)")
		}
		exec("DELETE FROM chat_messages WHERE id = 3")
		if err := migrations.Up(ctx, pool, dialectOf(db), "chat_", slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		var kept int64
		if err := g.Raw("SELECT COUNT(*) FROM chat_messages WHERE to_uid = 10000002 AND gid = 0 AND body = 'old' AND pair_lo = 10000001").Scan(&kept).Error; err != nil {
			t.Fatal(err)
		}
		if kept != 2 {
			t.Fatalf("%d old messages kept as they were, want 2", kept)
		}
		exec("INSERT INTO chat_groups (name, created_at, updated_at) VALUES ('g', 1, 1)")
		var gid int64
		if err := g.Raw("SELECT MAX(gid) FROM chat_groups").Scan(&gid).Error; err != nil {
			t.Fatal(err)
		}
		if gid != 20000001 {
			t.Fatalf("first gid %d, want 20000001", gid)
		}
		exec("INSERT INTO chat_messages (from_uid, to_uid, body, created_at, gid, gseq) VALUES (10000001, NULL, 'new', 2, ?, 1)", gid)
		var id int64
		if err := g.Raw("SELECT id FROM chat_messages WHERE body = 'new'").Scan(&id).Error; err != nil {
			t.Fatal(err)
		}
		if id != 4 {
			t.Fatalf("the first message after the upgrade got id %d, want 4 (ids must not come round again)", id)
		}
	})
}
