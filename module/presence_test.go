package module_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
	"github.com/redis/go-redis/v9"
)

// Typing and presence (API.md §13) through real HTTP: the notices reach
// the streams of the other side only, on every instance, and are never
// stored. Each test ends a check that nothing (more) arrived with a
// sentinel message: everything relayed before it arrives before it.

// testGrace is the presence grace of these tests: long enough for a
// stream to be reopened at once, short enough to wait out.
const testGrace = 400 * time.Millisecond

func presenceConfig(c *module.Config) {
	c.PresenceGrace = testGrace
	// A closed stream is noticed at its next ping at the latest.
	c.StreamPingInterval = 100 * time.Millisecond
}

// nextOf returns st's next event that is not a presence notice (which
// streams opening in a test cause on their own).
func nextOf(t *testing.T, st *sseStream, skipPresence bool) sseEvent {
	t.Helper()
	for {
		ev := st.next(t)
		if !skipPresence || ev.event != "presence" {
			return ev
		}
	}
}

// sentinel sends to a message from from on s and checks it is st's next
// event (presence notices skipped when told): nothing else was relayed
// to st before it.
func sentinel(t *testing.T, s *chattest.Server, st *sseStream, from, to chattest.User, skipPresence bool) {
	t.Helper()
	text := fmt.Sprintf("sentinel %d", time.Now().UnixNano())
	gcall(t, s, from, "/Message/Send", map[string]any{"uid_to": to.UID, "data": text}, 200, 0)
	ev := nextOf(t, st, skipPresence)
	if ev.event != "message" || !strings.Contains(ev.data, text) {
		t.Fatalf("got %+v, want the sentinel message (nothing before it)", ev)
	}
}

func typing(t *testing.T, s *chattest.Server, u chattest.User, fields map[string]any, status int, code int64) *chattest.Response {
	t.Helper()
	return gcall(t, s, u, "/Message/Typing", fields, status, code)
}

func expectEvent(t *testing.T, st *sseStream, event, data string) {
	t.Helper()
	if ev := nextOf(t, st, event != "presence"); ev.event != event || ev.data != data {
		t.Fatalf("got %+v, want event %s %s", ev, event, data)
	}
}

func TestTyping(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		alice, bob, carol, dave := l.NewUser(t, "alice"), l.NewUser(t, "bob"), l.NewUser(t, "carol"), l.NewUser(t, "dave")
		l.Befriend(t, alice, bob)
		l.Befriend(t, alice, carol)
		gid := into[groupCreated](t, gcall(t, l.Server, alice, "/Group/create", map[string]any{"name": "g"}, 200, 0)).GID
		gcall(t, l.Server, alice, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(bob, carol)}, 200, 0)
		other := into[groupCreated](t, gcall(t, l.Server, dave, "/Group/create", map[string]any{"name": "d"}, 200, 0)).GID
		stA, stB := openSSE(t, streamPOST(t, l, alice, nil)), openSSE(t, streamPOST(t, l, bob, nil))
		sentinel(t, l.Server, stB, alice, bob, true)
		sentinel(t, l.Server, stA, bob, alice, true)

		r := typing(t, l.Server, alice, map[string]any{"uid_to": bob.UID}, 200, 0)
		if string(r.Raw) != `{"error":0,"msg":"success"}` {
			t.Fatalf("answer %s", r.Raw)
		}
		expectEvent(t, stB, "typing", fmt.Sprintf(`{"uid":%d}`, alice.UID))
		// Within the interval: answered the same, relayed no more.
		typing(t, l.Server, alice, map[string]any{"uid_to": bob.UID}, 200, 0)
		typing(t, l.Server, alice, map[string]any{"gid": gid}, 200, 0)
		expectEvent(t, stB, "typing", fmt.Sprintf(`{"uid":%d,"gid":%d}`, alice.UID, gid))
		typing(t, l.Server, alice, map[string]any{"gid": gid}, 200, 0)
		sentinel(t, l.Server, stB, alice, bob, true)
		// Never to me, never stored.
		sentinel(t, l.Server, stA, bob, alice, true)
		if n := l.Count(t, "messages", "from_uid = ? AND to_uid = ?", alice.UID, bob.UID); n != 2 {
			t.Fatalf("%d messages from alice to bob, want the 2 sentinels", n)
		}

		for _, c := range []struct {
			name   string
			fields map[string]any
			status int
			code   int64
			msg    string
		}{
			{"neither", map[string]any{}, 400, 1001, "uid_to"},
			{"both", map[string]any{"uid_to": bob.UID, "gid": gid}, 400, 1001, "gid"},
			{"bad uid", map[string]any{"uid_to": "x"}, 400, 1001, "uid_to"},
			{"not a contact", map[string]any{"uid_to": dave.UID}, 403, 1008, ""},
			{"no such user", map[string]any{"uid_to": 99999999}, 404, 1006, ""},
			{"not a member", map[string]any{"gid": other}, 403, 1008, ""},
			{"no such group", map[string]any{"gid": 29999999}, 404, 1006, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := typing(t, l.Server, alice, c.fields, c.status, c.code)
				if !strings.Contains(r.Str("msg"), c.msg) {
					t.Fatalf("msg %q does not name %q", r.Str("msg"), c.msg)
				}
			})
		}
	})
}

// livePair starts a redis-server and two Live instances on db sharing it.
func livePair(t *testing.T, db *chattest.DB, config func(*module.Config)) (*chattest.Live, *chattest.Live) {
	t.Helper()
	rs := chattest.StartRedis(t)
	opts := func() chattest.Options {
		cl := rs.Client(t)
		return chattest.Options{Config: func(c *module.Config) {
			c.Redis = cl
			if config != nil {
				config(c)
			}
		}}
	}
	a := chattest.NewLive(t, db, opts())
	b := a.LiveTwin(t, opts())
	chattest.AwaitRedis(t, a.Server, b.Server)
	return a, b
}

func TestTypingAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		a, b := livePair(t, db, nil)
		alice, bob := a.NewUser(t, "alice"), a.NewUser(t, "bob")
		a.Befriend(t, alice, bob)
		st := openSSE(t, streamPOST(t, a, bob, nil))
		sentinel(t, b.Server, st, alice, bob, true)
		typing(t, b.Server, alice, map[string]any{"uid_to": bob.UID}, 200, 0)
		expectEvent(t, st, "typing", fmt.Sprintf(`{"uid":%d}`, alice.UID))
		// The interval holds on the other instance too.
		typing(t, a.Server, alice, map[string]any{"uid_to": bob.UID}, 200, 0)
		sentinel(t, a.Server, st, alice, bob, true)
	})
}

type presenceEvent struct {
	UID      int64 `json:"uid"`
	Online   bool  `json:"online"`
	LastSeen int64 `json:"last_seen"`
}

// expectPresence reads st's next event, which must say uid is online or
// not.
func expectPresence(t *testing.T, st *sseStream, uid int64, online bool) presenceEvent {
	t.Helper()
	ev := st.next(t)
	var p presenceEvent
	if ev.event != "presence" || json.Unmarshal([]byte(ev.data), &p) != nil || p.UID != uid || p.Online != online {
		t.Fatalf("got %+v, want presence of %d online=%v", ev, uid, online)
	}
	return p
}

type contactPresence struct {
	Data []struct {
		UID      int64 `json:"uid"`
		Online   bool  `json:"online"`
		LastSeen int64 `json:"last_seen"`
	} `json:"data"`
}

// listed returns how u's /Contacts/list shows peer: online, last seen.
func listed(t *testing.T, s *chattest.Server, u, peer chattest.User) (bool, int64) {
	t.Helper()
	for _, e := range into[contactPresence](t, gcall(t, s, u, "/Contacts/list", nil, 200, 0)).Data {
		if e.UID == peer.UID {
			return e.Online, e.LastSeen
		}
	}
	t.Fatalf("%d not in %d's contacts", peer.UID, u.UID)
	return false, 0
}

func TestPresence(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{Config: presenceConfig})
		alice, bob, carol := l.NewUser(t, "alice"), l.NewUser(t, "bob"), l.NewUser(t, "carol")
		l.Befriend(t, alice, bob)
		l.Befriend(t, bob, carol)
		if on, seen := listed(t, l.Server, bob, alice); on || seen != 0 {
			t.Fatalf("alice listed online=%v last_seen=%d before she came", on, seen)
		}
		stB := openSSE(t, streamPOST(t, l, bob, nil))
		stC := openSSE(t, streamPOST(t, l, carol, nil))
		expectPresence(t, stB, carol.UID, true)
		// Whether carol heard of bob depends on whose stream came first.
		sentinel(t, l.Server, stC, bob, carol, true)
		stA := openSSE(t, streamPOST(t, l, alice, nil))
		p := expectPresence(t, stB, alice.UID, true)
		if want := l.Clock.Now().Unix(); p.LastSeen != want {
			t.Fatalf("last_seen %d, want %d", p.LastSeen, want)
		}
		if on, seen := listed(t, l.Server, bob, alice); !on || seen != p.LastSeen {
			t.Fatalf("alice listed online=%v last_seen=%d", on, seen)
		}
		// A reload within the grace is no flap; a long poll counts too.
		_ = stA.resp.Body.Close()
		gcall(t, l.Server, alice, "/Message/Recv", map[string]any{"last_id": 0}, 200, 0)
		stA = openSSE(t, streamPOST(t, l, alice, nil))
		time.Sleep(2 * testGrace)
		sentinel(t, l.Server, stB, carol, bob, false)
		// Carol, no contact of alice's, was never told.
		sentinel(t, l.Server, stC, bob, carol, false)
		_ = stA.resp.Body.Close()
		expectPresence(t, stB, alice.UID, false)
		if on, _ := listed(t, l.Server, bob, alice); on {
			t.Fatal("alice still listed online")
		}
		sentinel(t, l.Server, stC, bob, carol, false)
	})
}

// TestPresenceStreamClosedBetweenPings: with pings 25 s apart (the
// default), a client that closes its only stream is offline within a few
// seconds and the grace, not at the next ping's failed write (API.md
// §13's 10 s grace is the point of it).
func TestPresenceStreamClosedBetweenPings(t *testing.T) {
	l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) {
		c.PresenceGrace = testGrace
		c.StreamPingInterval = 25 * time.Second
	}})
	alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
	l.Befriend(t, alice, bob)
	stB := openSSE(t, streamPOST(t, l, bob, nil))
	stA := openSSE(t, streamPOST(t, l, alice, nil))
	expectPresence(t, stB, alice.UID, true)
	closed := time.Now()
	_ = stA.resp.Body.Close()
	expectPresence(t, stB, alice.UID, false) // within st.next's 10 s
	t.Logf("offline %v after the stream closed", time.Since(closed).Round(time.Millisecond))
}

func TestPresenceHidden(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{Config: presenceConfig})
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		gcall(t, l.Server, bob, "/user/info/update", map[string]any{"show_presence": 2}, 400, 1001)
		gcall(t, l.Server, bob, "/user/info/update", map[string]any{"show_presence": "0"}, 200, 0)
		stA := openSSE(t, streamPOST(t, l, alice, nil))
		stB := openSSE(t, streamPOST(t, l, bob, nil))
		// Bob hides his presence: alice is not told he came, and bob sees
		// no one's either ("both ways").
		sentinel(t, l.Server, stA, bob, alice, false)
		if on, seen := listed(t, l.Server, alice, bob); on || seen != 0 {
			t.Fatalf("hidden bob listed online=%v last_seen=%d", on, seen)
		}
		if on, seen := listed(t, l.Server, bob, alice); on || seen != 0 {
			t.Fatalf("bob, hiding, sees alice online=%v last_seen=%d", on, seen)
		}
		_ = stA.resp.Body.Close()
		time.Sleep(2 * testGrace)
		stA = openSSE(t, streamPOST(t, l, alice, nil))
		sentinel(t, l.Server, stB, alice, bob, false)
		// Shown again, it works both ways again.
		gcall(t, l.Server, bob, "/user/info/update", map[string]any{"show_presence": 1}, 200, 0)
		if on, _ := listed(t, l.Server, bob, alice); !on {
			t.Fatal("alice not listed online once bob shows his presence")
		}
		// Alice is told at once when bob, online, shows or hides it.
		if p := expectPresence(t, stA, bob.UID, true); p.LastSeen != l.Clock.Now().Unix() {
			t.Fatalf("shown: last_seen %d", p.LastSeen)
		}
		gcall(t, l.Server, bob, "/user/info/update", map[string]any{"show_presence": 0}, 200, 0)
		if p := expectPresence(t, stA, bob.UID, false); p.LastSeen != 0 {
			t.Fatalf("hidden: last_seen %d, want 0", p.LastSeen)
		}
		gcall(t, l.Server, bob, "/user/info/update", map[string]any{"show_presence": 1}, 200, 0)
		expectPresence(t, stA, bob.UID, true)
		_ = stA.resp.Body.Close()
		expectPresence(t, stB, alice.UID, false)
	})
}

func TestPresenceAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		a, b := livePair(t, db, presenceConfig)
		alice, bob := a.NewUser(t, "alice"), a.NewUser(t, "bob")
		a.Befriend(t, alice, bob)
		stA := openSSE(t, streamPOST(t, a, alice, nil))
		stB := openSSE(t, streamPOST(t, b, bob, nil))
		expectPresence(t, stA, bob.UID, true)
		if on, _ := listed(t, a.Server, alice, bob); !on {
			t.Fatal("bob, streaming on the other instance, not listed online")
		}
		// Bob moves from b to a: still online, no flap.
		stB2 := openSSE(t, streamPOST(t, a, bob, nil))
		_ = stB.resp.Body.Close()
		time.Sleep(3 * testGrace)
		sentinel(t, b.Server, stA, bob, alice, false)
		if on, _ := listed(t, b.Server, alice, bob); !on {
			t.Fatal("bob, streaming on a, not listed online on b")
		}
		_ = stB2.resp.Body.Close()
		expectPresence(t, stA, bob.UID, false)
		if on, _ := listed(t, b.Server, alice, bob); on {
			t.Fatal("bob still listed online")
		}
	})
}

// TestTypingPresenceSDK drives typing and presence through the Go SDK.
func TestTypingPresenceSDK(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{Config: presenceConfig})
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		gid := into[groupCreated](t, gcall(t, l.Server, alice, "/Group/create", map[string]any{"name": "g"}, 200, 0)).GID
		gcall(t, l.Server, alice, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(bob)}, 200, 0)
		ctx := context.Background()
		ca, cb := l.SDKFor(t, alice), l.SDKFor(t, bob)
		stB := openStream(t, l, bob, nil)
		gcall(t, l.Server, alice, "/Message/Send", map[string]any{"uid_to": bob.UID, "data": "sync"}, 200, 0)
		if _, ok := stB.next(t).(client.Message); !ok {
			t.Fatal("want the message first")
		}
		_ = openStream(t, l, alice, nil)
		if ev, ok := stB.next(t).(client.PresenceEvent); !ok || ev.UID != alice.UID || !ev.Online || ev.LastSeen != l.Clock.Now().Unix() {
			t.Fatalf("got %#v, want alice online", ev)
		}
		if err := ca.Typing(ctx, bob.UID); err != nil {
			t.Fatal(err)
		}
		if ev := stB.next(t); ev != (client.TypingEvent{UID: alice.UID}) {
			t.Fatalf("got %#v, want alice typing", ev)
		}
		if err := ca.TypingGroup(ctx, gid); err != nil {
			t.Fatal(err)
		}
		if ev := stB.next(t); ev != (client.TypingEvent{UID: alice.UID, GID: gid}) {
			t.Fatalf("got %#v, want alice typing in the group", ev)
		}
		chattest.ExpectErr(t, ca.Typing(ctx, 99999999), 404, client.CodeNotFound)
		contacts, err := cb.Contacts(ctx)
		if err != nil || len(contacts) != 1 || !contacts[0].Online || contacts[0].LastSeen != l.Clock.Now().Unix() {
			t.Fatalf("contacts %+v, %v; want alice online", contacts, err)
		}
		hide := false
		if err := ca.UpdateProfile(ctx, client.ProfileUpdate{ShowPresence: &hide}); err != nil {
			t.Fatal(err)
		}
		if contacts, err = cb.Contacts(ctx); err != nil || contacts[0].Online || contacts[0].LastSeen != 0 {
			t.Fatalf("contacts %+v, %v; want alice hidden", contacts, err)
		}
	})
}

// TestPresenceRedisPaused: with Redis hung (SIGSTOP), /Contacts/list and
// /Message/Typing still answer, within the second the module waits for
// Redis and the rest of a request (bounded here at 5 s in all).
func TestPresenceRedisPaused(t *testing.T) {
	db := chattest.OpenSQLite(t)
	rs := chattest.StartRedis(t)
	cl := rs.Client(t)
	s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) { c.Redis = cl }})
	chattest.AwaitRedis(t, s)
	alice, bob := s.NewUser(t, "alice"), s.NewUser(t, "bob")
	s.Befriend(t, alice, bob)
	rs.Pause(t)
	start := time.Now()
	listed(t, s, alice, bob)
	typing(t, s, alice, map[string]any{"uid_to": bob.UID}, 200, 0)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v with Redis hung", d)
	}
}

// TestTypingStrangers: with AllowStrangers, typing reaches a stranger as
// a Send would, and never one who blocks me or whom I block.
func TestTypingStrangers(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{Config: func(c *module.Config) { c.AllowStrangers = true }})
		alice, bob, carol := l.NewUser(t, "alice"), l.NewUser(t, "bob"), l.NewUser(t, "carol")
		st := openSSE(t, streamPOST(t, l, carol, nil))
		sentinel(t, l.Server, st, alice, carol, true)
		typing(t, l.Server, alice, map[string]any{"uid_to": carol.UID}, 200, 0)
		expectEvent(t, st, "typing", fmt.Sprintf(`{"uid":%d}`, alice.UID))
		gcall(t, l.Server, bob, "/Contacts/IO/block", map[string]any{"data": members(alice)}, 200, 0)
		typing(t, l.Server, alice, map[string]any{"uid_to": bob.UID}, 403, 1008)
		typing(t, l.Server, bob, map[string]any{"uid_to": alice.UID}, 403, 1008)
	})
}

// noteRecorder keeps the notes a client PUBLISHes.
type noteRecorder struct {
	mu    sync.Mutex
	notes []string
}

func (*noteRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *noteRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); cmd.Name() == "publish" && len(args) == 3 {
			if payload, ok := args[2].(string); ok {
				_, notes, _ := strings.Cut(payload, "\n") // after the sender's id
				r.mu.Lock()
				r.notes = append(r.notes, strings.Split(notes, "\n")...)
				r.mu.Unlock()
			}
		}
		return next(ctx, cmd)
	}
}
func (*noteRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// notices returns, and forgets, the "notice:" notes published so far.
func (r *noteRecorder) notices() []string { return r.take("notice:") }

// take returns the notes published so far that start with prefix, and
// forgets every note.
func (r *noteRecorder) take(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.notes {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	r.notes = nil
	return out
}

// awaitNote waits until the note want is published, and returns every
// "user:" note published until then.
func (r *noteRecorder) awaitNote(t *testing.T, want string) []string {
	t.Helper()
	var seen []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		seen = append(seen, r.take("user:")...)
		if slices.Contains(seen, want) {
			return seen
		}
	}
	t.Fatalf("note %q never published; saw %q", want, seen)
	return nil
}

// TestGroupTypingOneNote: typing in a group reaches the members' streams
// on the other instance through one note naming them all, the frame
// carried once, not a note per member.
func TestGroupTypingOneNote(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		rec := &noteRecorder{}
		// Both instances' clients record; only b publishes notices below.
		a, b := livePair(t, db, func(c *module.Config) { c.Redis.(*redis.Client).AddHook(rec) })
		alice := a.NewUser(t, "alice")
		var others []chattest.User
		for i := range 4 {
			u := a.NewUser(t, fmt.Sprint("m", i))
			a.Befriend(t, alice, u)
			others = append(others, u)
		}
		gid := into[groupCreated](t, gcall(t, a.Server, alice, "/Group/create", map[string]any{"name": "g", "data": members(others...)}, 200, 0)).GID
		st0 := openSSE(t, streamPOST(t, a, others[0], nil))
		st3 := openSSE(t, streamPOST(t, a, others[3], nil))
		sentinel(t, b.Server, st0, alice, others[0], true)
		sentinel(t, b.Server, st3, alice, others[3], true)
		_ = rec.notices()

		typing(t, b.Server, alice, map[string]any{"gid": gid}, 200, 0)
		want := fmt.Sprintf(`{"uid":%d,"gid":%d}`, alice.UID, gid)
		expectEvent(t, st0, "typing", want)
		expectEvent(t, st3, "typing", want)
		notes := rec.notices()
		if len(notes) != 1 {
			t.Fatalf("%d notice notes for one group typing, want 1: %q", len(notes), notes)
		}
		for _, u := range others {
			if !strings.Contains(notes[0], fmt.Sprint(u.UID)) {
				t.Fatalf("the note %q does not name member %d", notes[0], u.UID)
			}
		}
	})
}

// TestLoginTellsOthersOnlyOfEndedSessions: a login within the session cap
// publishes no note (one that came late, after a password change, gave
// the other instance's streams the reason "logout" instead of
// "password"); one whose cap ended the oldest session publishes the
// user's "logout", so that its streams elsewhere end.
func TestLoginTellsOthersOnlyOfEndedSessions(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		rec := &noteRecorder{}
		a, _ := livePair(t, db, func(c *module.Config) {
			c.Redis.(*redis.Client).AddHook(rec)
			c.MaxSessions = 2
		})
		u, sam := a.NewUser(t, "uma"), a.NewUser(t, "sam") // a session each
		ended := fmt.Sprintf("user:%d:logout", u.UID)

		login(t, a.Server, u) // the second: within the cap
		if err := a.SDKFor(t, sam).Logout(context.Background()); err != nil {
			t.Fatalf("logout: %v", err)
		}
		// Notes go out in order: sam's comes after any of the login's.
		if seen := rec.awaitNote(t, fmt.Sprintf("user:%d:logout", sam.UID)); slices.Contains(seen, ended) {
			t.Fatalf("a login within the cap published %q", ended)
		}

		login(t, a.Server, u) // the third: ends the first
		rec.awaitNote(t, ended)
	})
}
