package module_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

type recorder struct {
	mu     sync.Mutex
	events []events.Event
	ctxOK  bool
}

func (r *recorder) handle(ctx context.Context, e events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	r.ctxOK = ctx != nil && ctx.Err() == nil
	if m, ok := e.(events.MessageStored); ok && strings.HasPrefix(m.Body, "panic") {
		panic("host hook bug")
	}
	if m, ok := e.(events.MessageStored); ok && strings.HasPrefix(m.Body, "fail") {
		return errors.New("audit log down")
	}
	return nil
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Kind())
	}
	return out
}

func TestEventsAndBeforeSend(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		rec := &recorder{}
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) {
			c.OnEvent = rec.handle
			c.BeforeSend = func(ctx context.Context, m events.Outgoing) error {
				switch {
				case strings.Contains(m.Body, "spam"):
					return apierr.Forbidden("not allowed: looks like spam")
				case strings.Contains(m.Body, "shout"):
					return apierr.Invalid("invalid data: no shouting")
				}
				return nil
			}
		}})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		ctx := context.Background()
		ac := s.SDKFor(t, a)
		if _, err := ac.AddContacts(ctx, b.UID); err != nil {
			t.Fatal(err)
		}
		if err := s.SDKFor(t, b).AnswerRequest(ctx, a.UID, true); err != nil {
			t.Fatal(err)
		}

		send := func(body string) error {
			_, err := ac.Send(ctx, b.UID, body)
			return err
		}
		if err := send("hello"); err != nil {
			t.Fatal(err)
		}
		chattest.ExpectErr(t, send("buy spam now"), 403, client.CodeForbidden)
		chattest.ExpectErr(t, send("shout"), 400, client.CodeInvalid)
		// A failing or panicking event handler neither breaks the request
		// nor loses the message.
		for _, body := range []string{"fail this", "panic now"} {
			if err := send(body); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
		}
		if n := s.Count(t, "messages", ""); n != 3 {
			t.Fatalf("%d messages stored, want 3 (the refused two are not)", n)
		}
		if _, err := ac.DeleteContacts(ctx, b.UID); err != nil {
			t.Fatal(err)
		}

		want := []string{
			"user.registered", "user.logged_in", "user.registered", "user.logged_in",
			"contact.requested", "contact.added",
			"message.stored", "message.stored", "message.stored",
			"contact.removed",
		}
		if got := rec.kinds(); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("events\n got %v\nwant %v", got, want)
		}
		if !rec.ctxOK {
			t.Fatal("hook did not get the request's live context")
		}
		if added := rec.events[5].(events.ContactAdded); added.UID != b.UID || added.PeerUID != a.UID {
			t.Fatalf("contact.added %+v", added)
		}
		if !strings.Contains(s.Logs.String(), "audit log down") || !strings.Contains(s.Logs.String(), "host hook bug") {
			t.Fatalf("hook failures not logged: %s", s.Logs.String())
		}

		// Host-side provisioning and sessions emit too.
		uid, err := s.Module.ProvisionUser(context.Background(), "acct-1", "Carol")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Module.ProvisionUser(context.Background(), "acct-1", "Carol"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Module.IssueToken(context.Background(), uid); err != nil {
			t.Fatal(err)
		}
		got := rec.kinds()
		if tail := strings.Join(got[len(got)-2:], " "); tail != "user.registered user.logged_in" || len(got) != len(want)+2 {
			t.Fatalf("host events: %v", got)
		}
	})
}

// TestConversationEvents: reading, blocking and unblocking tell the host,
// after commit, with what changed; marking what was read already, or
// blocking someone blocked already, tells nothing.
func TestConversationEvents(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		rec := &recorder{}
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) { c.OnEvent = rec.handle }})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		mustSend(t, s, a, b, "one")
		last := mustSend(t, s, a, b, "two")
		before := len(rec.kinds())
		markRead(t, s, b, a.UID, last)
		markRead(t, s, b, a.UID, last) // nothing new
		ac := s.SDKFor(t, a)
		for i, op := range []func(context.Context, ...int64) (int, error){ac.Block, ac.Block /* already blocked */, ac.Unblock} {
			if _, err := op(context.Background(), b.UID); err != nil {
				t.Fatalf("op %d: %v", i, err)
			}
		}
		got := rec.kinds()[before:]
		want := []string{"message.read", "contact.removed", "user.blocked", "user.unblocked"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("events\n got %v\nwant %v", got, want)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		read := rec.events[before].(events.MessagesRead)
		if read.UID != b.UID || read.PeerUID != a.UID || read.LastID != last || read.Num != 2 {
			t.Fatalf("message.read %+v", read)
		}
		if bl := rec.events[before+2].(events.UserBlocked); bl.UID != a.UID || bl.PeerUID != b.UID {
			t.Fatalf("user.blocked %+v", bl)
		}
	})
}
