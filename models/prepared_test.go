package models_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
)

// TestPreparedReads runs Recv's, Unread's and History's reads more
// times, and with more distinct limits, than the store keeps statements
// prepared for: every answer is right, each sees the rows committed
// before it, and on SQLite at most 64 statements stay prepared (on MySQL
// none).
func TestPreparedReads(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		store := models.NewStore(s.Module.DB(), 0)
		ctx := context.Background()
		const sent = 80
		for i := range sent {
			chattest.Expect(t, s.Post(t, "/Message/Send", a.Creds(map[string]any{"uid_to": b.UID, "data": fmt.Sprint("message ", i)})), 200, 0)
			unread, err := store.Unread(ctx, b.UID)
			if err != nil {
				t.Fatal(err)
			}
			if len(unread) != 1 || unread[0].PeerUID != a.UID || unread[0].Count != int64(i+1) {
				t.Fatalf("after %d Sends, Unread = %+v", i+1, unread)
			}
		}
		for limit := 1; limit <= sent; limit++ {
			msgs, err := store.MessagesFor(ctx, b.UID, 0, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != limit {
				t.Fatalf("limit %d: %d messages", limit, len(msgs))
			}
			for i := 1; i < len(msgs); i++ {
				if msgs[i].ID <= msgs[i-1].ID || msgs[i].FromUID != a.UID {
					t.Fatalf("limit %d: messages %+v", limit, msgs)
				}
			}
		}
		for _, limit := range []int{1, 20, 50} {
			page, err := store.History(ctx, a.UID, b.UID, 0, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Messages) != limit {
				t.Fatalf("History, limit %d: %d messages", limit, len(page.Messages))
			}
			before := page.Messages[len(page.Messages)-1].ID
			older, err := store.History(ctx, b.UID, a.UID, before, limit)
			if err != nil {
				t.Fatal(err)
			}
			if want := min(limit, sent-limit); len(older.Messages) != want || older.Messages[0].ID >= before {
				t.Fatalf("History before %d, limit %d: %d messages, want %d", before, limit, len(older.Messages), want)
			}
		}
		// Fresh store, many first calls at once: each text ends up
		// prepared once, and every call is answered.
		fresh := models.NewStore(s.Module.DB(), 0)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Go(func() {
				if unread, err := fresh.Unread(ctx, b.UID); err != nil || len(unread) != 1 || unread[0].Count != sent {
					errs <- fmt.Errorf("Unread = %+v, %v", unread, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := models.PreparedReads(fresh); db.Name == "sqlite" && n != 1 {
			t.Errorf("SQLite: %d statements prepared for Unread, want 1", n)
		}
		n := models.PreparedReads(store)
		switch {
		case db.Name == "mysql" && n != 0:
			t.Errorf("MySQL: %d statements prepared, want none", n)
		case db.Name == "sqlite" && (n == 0 || n > 64):
			t.Errorf("SQLite: %d statements prepared, want 1 to 64", n)
		}
	})
}
