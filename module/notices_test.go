package module_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

// TestNoticesBypassOnEvent: the handlers hand the streams' notices to the
// hub themselves, so the host's OnEvent is not on their way. A hook that
// hangs holds up none of the notices of the request whose events it is
// handling, and one that panics loses none.
func TestNoticesBypassOnEvent(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		var stall atomic.Bool
		release := make(chan struct{})
		l := chattest.NewLive(t, db, chattest.Options{Config: func(c *module.Config) {
			c.OnEvent = func(_ context.Context, e events.Event) error {
				switch e.(type) {
				case events.ContactRequested:
					if stall.Load() {
						<-release // a host whose audit sink hangs
					}
				case events.MessagesRead:
					panic("host hook bug")
				}
				return nil
			}
		}})
		var once sync.Once
		unstall := func() { once.Do(func() { close(release) }) }
		t.Cleanup(unstall) // before the server's own cleanup
		a, d, e := l.NewUser(t, "a"), l.NewUser(t, "d"), l.NewUser(t, "e")
		streams := map[int64]*sseStream{}
		for _, u := range []chattest.User{a, d, e} {
			streams[u.UID] = openSSE(t, streamPOST(t, l, u, nil))
		}
		expect := func(u chattest.User, event, data string) {
			t.Helper()
			if ev := streams[u.UID].next(t); ev.event != event || ev.data != data {
				t.Fatalf("uid %d got %+v, want %s %s", u.UID, ev, event, data)
			}
		}

		// One request to two peers: the hook hangs on the first event,
		// and both peers have their notice meanwhile.
		stall.Store(true)
		sdk := l.Server.SDKFor(t, a)
		done := make(chan error, 1)
		go func() {
			_, err := sdk.AddContacts(context.Background(), d.UID, e.UID)
			done <- err
		}()
		request := fmt.Sprintf(`{"uid":%d,"what":"request"}`, a.UID)
		expect(d, "contact", request)
		expect(e, "contact", request)
		select {
		case err := <-done:
			t.Fatalf("addContacts answered (%v) while the hook hung", err)
		default:
		}
		stall.Store(false)
		unstall()
		if err := <-done; err != nil {
			t.Fatalf("addContacts: %v", err)
		}

		// The hook panics on the read receipt; the sender has it anyway.
		mustAnswer(t, l.Server, d, a.UID, true)
		expect(a, "contact", fmt.Sprintf(`{"uid":%d,"what":"accept"}`, d.UID))
		id := mustSend(t, l.Server, a, d, "read me")
		expectMessage(t, streams[d.UID], id, a, d, "read me")
		markRead(t, l.Server, d, a.UID, id)
		expect(a, "read", fmt.Sprintf(`{"uid":%d,"last_id":%d}`, d.UID, id))
	})
}

// TestIssueTokenEvictionEndsStream: a session that the host's IssueToken
// evicts (MaxSessions) ends its streams with bye "logout" at once, even
// while the host's hook is still handling the login: the streams are told
// after the cached sessions are dropped, not before, so that their check
// does not find the evicted session still cached.
func TestIssueTokenEvictionEndsStream(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		var stall atomic.Bool
		release := make(chan struct{})
		l := chattest.NewLive(t, db, chattest.Options{Config: func(c *module.Config) {
			c.MaxSessions = 1
			c.OnEvent = func(_ context.Context, e events.Event) error {
				if _, ok := e.(events.LoggedIn); ok && stall.Load() {
					<-release
				}
				return nil
			}
		}})
		var once sync.Once
		unstall := func() { once.Do(func() { close(release) }) }
		t.Cleanup(unstall)
		u := l.NewUser(t, "u")
		s := openSSE(t, streamPOST(t, l, u, nil))
		stall.Store(true)
		done := make(chan error, 1)
		go func() {
			_, err := l.Module.IssueToken(context.Background(), u.UID)
			done <- err
		}()
		s.expectBye(t, "logout")
		stall.Store(false)
		unstall()
		if err := <-done; err != nil {
			t.Fatalf("IssueToken: %v", err)
		}
	})
}
