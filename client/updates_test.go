package client_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
)

// TestUpdates: a reply, an edit, a reaction and a delete through the SDK
// reach the other side as updates past its cursor, and History shows
// their result (API.md §13).
func TestUpdates(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ctx := context.Background()
		_, newClient := live(t, db, chattest.Options{})
		alice, bob := newClient(), newClient()
		a, b := user(t, alice, "alice"), user(t, bob, "bob")
		befriend(t, alice, bob)

		first := must(alice.Send(ctx, b, "hello"))(t)
		reply := must(bob.Send(ctx, a, "hi back", client.ReplyTo(first.ID)))(t)
		if _, err := bob.Send(ctx, a, "x", client.ReplyTo(first.ID+100)); !client.IsCode(err, client.CodeInvalid) {
			t.Fatalf("reply to no message: %v", err)
		}
		edit := must(alice.Edit(ctx, first.ID, "hello, edited"))(t)
		react := must(bob.React(ctx, first.ID, "👍", true))(t)
		if again := must(bob.React(ctx, first.ID, "👍", true))(t); again != 0 {
			t.Errorf("repeated React = %d, want 0", again)
		}

		zero := int64(0)
		got := must(bob.Recv(ctx, client.RecvRequest{LastID: &zero}))(t)
		if len(got.Messages) != 2 || got.Messages[1].ID != edit || got.Messages[1].Kind != client.KindEdit ||
			got.Messages[1].RefID != first.ID || got.Messages[1].Message != "hello, edited" || !got.Messages[1].IsUpdate() {
			t.Fatalf("bob's Recv = %+v", got)
		}
		got = must(alice.Recv(ctx, client.RecvRequest{LastID: &zero}))(t)
		if len(got.Messages) != 2 || got.Messages[0].ReplyTo != first.ID || got.Messages[0].ID != reply.ID ||
			got.Messages[1].ID != react || got.Messages[1].Emoji != "👍" || !got.Messages[1].On {
			t.Fatalf("alice's Recv = %+v", got)
		}
		page := must(alice.History(ctx, client.HistoryRequest{With: b}))(t)
		m := page.Messages[1]
		if len(page.Messages) != 2 || m.Message.Message != "hello, edited" || m.EditedTime == 0 ||
			!reflect.DeepEqual(m.Reactions, []client.Reaction{{Emoji: "👍", UIDs: []int64{b}}}) {
			t.Fatalf("History = %+v", page)
		}

		if _, err := bob.Delete(ctx, first.ID); !client.IsCode(err, client.CodeForbidden) {
			t.Fatalf("bob deleting alice's message: %v", err)
		}
		del := must(alice.Delete(ctx, first.ID))(t)
		got = must(bob.Recv(ctx, client.RecvRequest{LastID: &edit}))(t)
		if len(got.Messages) != 1 || got.Messages[0].ID != del || got.Messages[0].Kind != client.KindDelete {
			t.Fatalf("bob's Recv of the delete = %+v", got)
		}
		page = must(bob.History(ctx, client.HistoryRequest{With: a}))(t)
		if m := page.Messages[1]; !m.Deleted || m.Message.Message != "" || m.Reactions != nil {
			t.Fatalf("History after the delete = %+v", page)
		}
	})
}
