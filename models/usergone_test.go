package models_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
)

// TestSessionUserGone checks that a store method acting for a session whose
// user the host has deleted says so with ErrUserGone, which the API
// answers as a dead token, while a missing peer stays ErrNotFound.
func TestSessionUserGone(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		store := models.NewStore(s.Module.DB(), 0)
		ctx := context.Background()
		if err := store.AnswerRequest(ctx, a.UID, b.UID, true, 1); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("answering no request: got %v, want ErrNotFound", err)
		}
		if _, err := store.SessionUser(ctx, 99999999); !errors.Is(err, models.ErrUserGone) {
			t.Fatalf("SessionUser of nobody: got %v, want ErrUserGone", err)
		}
		if _, err := store.UserByID(ctx, 99999999); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("UserByID of nobody: got %v, want ErrNotFound", err)
		}
		if err := s.Module.DB().Exec("DELETE FROM chat_users WHERE uid = ?", a.UID).Error; err != nil {
			t.Fatal(err)
		}
		calls := map[string]func() error{
			"SessionUser": func() error { _, err := store.SessionUser(ctx, a.UID); return err },
			"AddContacts": func() error { _, err := store.AddContacts(ctx, a.UID, []int64{b.UID}, 1); return err },
			"DeleteContacts": func() error {
				_, err := store.DeleteContacts(ctx, a.UID, []int64{b.UID})
				return err
			},
			"AnswerRequest": func() error { return store.AnswerRequest(ctx, a.UID, b.UID, true, 1) },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, models.ErrUserGone) {
				t.Errorf("%s: got %v, want ErrUserGone", name, err)
			}
		}
	})
}
