package module_test

import (
	"context"
	"testing"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
)

// TestRelationsChangedElsewhere changes a pair's contact and block through
// a second instance of the module, between Sends through the first: each
// Send must see the change, though the first instance checked the pair
// before (on MySQL its batches keep what they read of a pair while the
// recipient's relations_seq stays the same).
func TestRelationsChangedElsewhere(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		other := s.Twin(t, chattest.Options{})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		ctx := context.Background()
		mustSend(t, s, a, b, "checked once")
		mustSend(t, s, a, b, "and again")

		if n, err := other.SDKFor(t, b).Block(ctx, a.UID); err != nil || n != 1 {
			t.Fatalf("block: %d, %v", n, err)
		}
		chattest.ExpectErr(t, sendErr(t, s, a, b, "blocked elsewhere"), 403, client.CodeForbidden)
		chattest.ExpectErr(t, sendErr(t, s, b, a, "nor back"), 403, client.CodeForbidden)

		if n, err := other.SDKFor(t, b).Unblock(ctx, a.UID); err != nil || n != 1 {
			t.Fatalf("unblock: %d, %v", n, err)
		}
		// The block ended the contact, and unblocking restores none.
		chattest.ExpectErr(t, sendErr(t, s, a, b, "a stranger now"), 403, client.CodeForbidden)

		if _, err := other.SDKFor(t, a).AddContacts(ctx, b.UID); err != nil {
			t.Fatal(err)
		}
		if _, err := other.SDKFor(t, b).AddContacts(ctx, a.UID); err != nil {
			t.Fatal(err)
		}
		mustSend(t, s, a, b, "contacts again")

		if n, err := other.SDKFor(t, a).DeleteContacts(ctx, b.UID); err != nil || n != 1 {
			t.Fatalf("delete contact: %d, %v", n, err)
		}
		chattest.ExpectErr(t, sendErr(t, s, a, b, "no longer a contact"), 403, client.CodeForbidden)
		if n := s.Count(t, "messages", "from_uid = ? AND to_uid = ?", a.UID, b.UID); n != 3 {
			t.Fatalf("%d messages stored from a to b, want 3", n)
		}
	})
}
