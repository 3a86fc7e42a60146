package models_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
)

// TestBatchSenderGone checks that a pair a batch has checked before is
// checked afresh once the host has deleted its sender: the contacts go
// by cascade, past the module, and no relations_seq tells of it.
func TestBatchSenderGone(t *testing.T) {
	eachPool(t, func(t *testing.T, s *chattest.Server, store *models.Store, _ bool) {
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		w := models.NewMessageWriter(store, 16)
		w.Start(1)
		t.Cleanup(w.Stop)
		send := func(body string) error {
			_, err := w.CreateMessage(context.Background(), &models.Message{FromUID: a.UID, ToUID: b.UID, Body: body, CreatedAt: 1}, true)
			return err
		}
		for _, body := range []string{"checked once", "and again"} {
			if err := send(body); err != nil {
				t.Fatalf("send %q: %v", body, err)
			}
		}
		if err := s.Module.DB().Exec("DELETE FROM chat_users WHERE uid = ?", a.UID).Error; err != nil {
			t.Fatal(err)
		}
		if err := send("from a user gone"); !errors.Is(err, models.ErrNotContact) {
			t.Fatalf("send from a deleted user: %v, want ErrNotContact", err)
		}
		if n := s.Count(t, "messages", "from_uid = ?", a.UID); n != 2 {
			t.Fatalf("%d messages from the deleted user, want 2", n)
		}
	})
}
