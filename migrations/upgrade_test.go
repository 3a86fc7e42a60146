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
