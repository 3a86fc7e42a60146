package models_test

import (
	"context"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
)

// TestReaddAfterSweep: a member added back whose ended membership the
// sweep deleted after the add read it (the sweep takes no group lock)
// is a member again, with a row of their own: the add wrote through an
// UPDATE of the row it had read, which was gone, and answered "added"
// with no membership behind it.
func TestReaddAfterSweep(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		store := models.NewStore(s.Module.DB(), 0)
		ctx := context.Background()
		gid, _, err := store.CreateGroup(ctx, a.UID, "g", nil, 1, models.GroupLimits{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := models.ReaddSwept(ctx, store, gid, a.UID, b.UID)
		if err != nil || st != models.GroupAdded {
			t.Fatalf("add: %v, %v", st, err)
		}
		if n := s.Count(t, "group_members", "gid = ? AND uid = ? AND until_id = 0", gid, b.UID); n != 1 {
			t.Fatalf("b has %d memberships of the group, want 1", n)
		}
	})
}
