package module_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/module"
)

// Web Push (API.md §14) through real HTTP, against chattest.PushService,
// which checks each push's VAPID JWT and decrypts its payload as a
// browser would.

// testPushDelay is these tests' PushDelay (and presence grace): short
// enough to wait out.
const testPushDelay = 300 * time.Millisecond

// pushLive serves a module that pushes to ps, and points ps at its key.
func pushLive(t *testing.T, db *chattest.DB, ps *chattest.PushService, more ...func(*module.Config)) *chattest.Live {
	t.Helper()
	l := chattest.NewLive(t, db, chattest.Options{Config: func(c *module.Config) {
		pushConfig(c, ps)
		for _, f := range more {
			f(c)
		}
	}})
	ps.Key, ps.Sub = pushKey(t, l.Server), "mailto:ops@example.com"
	return l
}

func pushConfig(c *module.Config, ps *chattest.PushService) {
	c.PushDelay = testPushDelay
	c.PresenceGrace = testPushDelay
	c.PushClient = ps.Client()
	c.PushSubscriber = "mailto:ops@example.com"
	c.StreamPingInterval = 100 * time.Millisecond
	// The tests subscribe more often than a person would.
	c.AccountRateLimit = 1000
}

// pushKey reads GET /push/key, unsigned, and checks its form.
func pushKey(t *testing.T, s *chattest.Server) string {
	t.Helper()
	r := s.Do(t, chattest.Req{Method: "GET", Path: "/push/key", Unsigned: true})
	chattest.Expect(t, r, 200, 0)
	key := r.Str("key")
	raw, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil || len(raw) != 65 || raw[0] != 4 || r.Str("msg") != "success" {
		t.Fatalf("GET /push/key answered %s: want base64url of an uncompressed P-256 point", r.Raw)
	}
	return key
}

func subscribe(t *testing.T, s *chattest.Server, u chattest.User, sub *chattest.PushSub) {
	t.Helper()
	gcall(t, s, u, "/user/push/subscribe", sub.JSON(), 200, 0)
}

// nextPush waits for ps's next push until deadline.
func nextPush(t *testing.T, ps *chattest.PushService, deadline time.Time) chattest.Push {
	t.Helper()
	select {
	case p := <-ps.Pushes:
		return p
	case err := <-ps.Errors:
		t.Fatalf("push service refused a push: %v", err)
	case <-time.After(time.Until(deadline)):
		t.Fatalf("no push by the deadline")
	}
	return chattest.Push{}
}

// noPush checks ps receives nothing until deadline.
func noPush(t *testing.T, ps *chattest.PushService, until time.Time) {
	t.Helper()
	select {
	case p := <-ps.Pushes:
		t.Fatalf("unexpected push to %s: %s", p.Endpoint, p.Payload)
	case err := <-ps.Errors:
		t.Fatalf("push service refused a push: %v", err)
	case <-time.After(time.Until(until)):
	}
}

// TestPushKey: the key is made once, kept in the database, and the same
// for every instance, however many make it at once.
func TestPushKey(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		key := pushKey(t, s)
		if n := s.Count(t, "vapid_keys", "public_key = ?", key); n != 1 {
			t.Fatalf("%d key rows with the served key, want 1", n)
		}
		if again := pushKey(t, s.Twin(t, chattest.Options{})); again != key {
			t.Fatalf("a second instance serves %s, want %s", again, key)
		}
		// Instances starting at once on an empty table agree on one key.
		if err := s.Module.DB().Exec("DELETE FROM chat_vapid_keys").Error; err != nil {
			t.Fatal(err)
		}
		store := models.NewStore(s.Module.DB(), 0)
		keys := make([]string, 8)
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() {
				k, err := store.VAPIDKeyPair(context.Background(), 1, func() (string, string, error) {
					return fmt.Sprintf("priv%d", i), fmt.Sprintf("pub%d", i), nil
				})
				if err != nil {
					t.Error(err)
				}
				keys[i] = k.PublicKey
			})
		}
		wg.Wait()
		for _, k := range keys {
			if k != keys[0] || k == "" {
				t.Fatalf("racing instances got keys %v, want one", keys)
			}
		}
	})
}

// TestPushSubscribe: a subscription is stored for the caller, moves with
// its endpoint, is cut to PushMaxSubscriptions, and goes on unsubscribe;
// bad input is 400/1001 naming the field.
func TestPushSubscribe(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ps := chattest.NewPushService(t)
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) {
			pushConfig(c, ps)
			c.PushMaxSubscriptions = 2
		}})
		alice, bob := s.NewUser(t, "alice"), s.NewUser(t, "bob")
		sub := ps.Subscribe(t)
		subscribe(t, s, alice, sub)
		subscribe(t, s, alice, sub) // again: still one
		if n := s.Count(t, "push_subscriptions", "uid = ?", alice.UID); n != 1 {
			t.Fatalf("alice has %d subscriptions, want 1", n)
		}
		subscribe(t, s, bob, sub) // the browser logged in as bob
		if n := s.Count(t, "push_subscriptions", "uid = ?", bob.UID); n != 1 {
			t.Fatalf("bob has %d subscriptions, want the one alice had", n)
		}
		second, third := ps.Subscribe(t), ps.Subscribe(t)
		subscribe(t, s, bob, second)
		subscribe(t, s, bob, third)
		if n := s.Count(t, "push_subscriptions", "uid = ?", bob.UID); n != 2 {
			t.Fatalf("bob has %d subscriptions, want PushMaxSubscriptions", n)
		}
		if n := s.Count(t, "push_subscriptions", "endpoint = ?", sub.Endpoint); n != 0 {
			t.Fatal("the oldest subscription was kept past the cap")
		}
		gcall(t, s, alice, "/user/push/unsubscribe", map[string]any{"endpoint": third.Endpoint}, 200, 0)
		if n := s.Count(t, "push_subscriptions", "uid = ?", bob.UID); n != 2 {
			t.Fatal("alice unsubscribed bob's browser")
		}
		gcall(t, s, bob, "/user/push/unsubscribe", map[string]any{"endpoint": third.Endpoint}, 200, 0)
		if n := s.Count(t, "push_subscriptions", "uid = ?", bob.UID); n != 1 {
			t.Fatalf("bob has %d subscriptions after unsubscribing one of 2", n)
		}

		// An endpoint that moves to a user at the cap is their newest: it
		// stays and their oldest goes. So is one they subscribe again.
		moved, fourth, fifth, sixth := ps.Subscribe(t), ps.Subscribe(t), ps.Subscribe(t), ps.Subscribe(t)
		subscribe(t, s, alice, moved)
		subscribe(t, s, bob, fourth)
		subscribe(t, s, bob, fifth) // bob: fourth, fifth
		subscribe(t, s, bob, moved)
		holds := func(sub *chattest.PushSub) bool {
			return s.Count(t, "push_subscriptions", "uid = ? AND endpoint = ?", bob.UID, sub.Endpoint) == 1
		}
		if !holds(moved) || !holds(fifth) || holds(fourth) {
			t.Fatalf("bob holds moved %v, fifth %v, fourth %v; want the endpoint moved to him and his newest other", holds(moved), holds(fifth), holds(fourth))
		}
		subscribe(t, s, bob, fifth) // again: now his newest
		subscribe(t, s, bob, sixth)
		if !holds(fifth) || !holds(sixth) || holds(moved) {
			t.Fatalf("bob holds fifth %v, sixth %v, moved %v; want the one subscribed again and the new one", holds(fifth), holds(sixth), holds(moved))
		}
	})
}

// TestPushSubscribeRefuses: a subscription that is not a browser's is
// 400/1001 naming the field, and nothing is stored.
func TestPushSubscribeRefuses(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ps := chattest.NewPushService(t)
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) { pushConfig(c, ps) }})
		alice := s.NewUser(t, "alice")
		sub := ps.Subscribe(t)
		notPoint := base64.RawURLEncoding.EncodeToString(append([]byte{4}, make([]byte, 64)...))
		for _, c := range []struct {
			name   string
			change func(m map[string]any)
			field  string
		}{
			{"p256dh not a point", func(m map[string]any) { m["keys"].(map[string]any)["p256dh"] = notPoint }, "p256dh"},
			{"p256dh not base64", func(m map[string]any) { m["keys"].(map[string]any)["p256dh"] = "!!" }, "p256dh"},
			{"p256dh compressed", func(m map[string]any) {
				m["keys"].(map[string]any)["p256dh"] = base64.RawURLEncoding.EncodeToString(make([]byte, 33))
			}, "p256dh"},
			{"no p256dh", func(m map[string]any) { delete(m["keys"].(map[string]any), "p256dh") }, "p256dh"},
			{"auth too short", func(m map[string]any) { m["keys"].(map[string]any)["auth"] = "AAAA" }, "auth"},
			{"auth with a line break", func(m map[string]any) { m["keys"].(map[string]any)["auth"] = sub.Auth[:4] + "\n" + sub.Auth[4:] }, "auth"},
			{"no keys", func(m map[string]any) { delete(m, "keys") }, "p256dh"},
			{"keys not an object", func(m map[string]any) { m["keys"] = "x" }, "keys"},
			{"http endpoint", func(m map[string]any) { m["endpoint"] = strings.Replace(sub.Endpoint, "https:", "http:", 1) }, "endpoint"},
			{"relative endpoint", func(m map[string]any) { m["endpoint"] = "/push/1" }, "endpoint"},
			{"endpoint with credentials", func(m map[string]any) { m["endpoint"] = "https://u:p@push.example.com/x" }, "endpoint"},
			{"long endpoint", func(m map[string]any) { m["endpoint"] = "https://push.example.com/" + strings.Repeat("a", 1024) }, "endpoint"},
			{"no endpoint", func(m map[string]any) { delete(m, "endpoint") }, "endpoint"},
		} {
			t.Run(c.name, func(t *testing.T) {
				body := ps.Subscribe(t).JSON()
				c.change(body)
				r := gcall(t, s, alice, "/user/push/subscribe", body, 400, 1001)
				if !strings.Contains(r.Str("msg"), c.field) {
					t.Fatalf("msg %q does not name %s", r.Str("msg"), c.field)
				}
			})
		}
		gcall(t, s, alice, "/user/push/unsubscribe", map[string]any{}, 400, 1001)
		if n := s.Count(t, "push_subscriptions", "uid = ?", alice.UID); n != 0 {
			t.Fatalf("refused subscriptions stored: %d", n)
		}
	})
}

// TestPushAbsentNotPresent: a message to a user with no stream or poll
// reaches each of their subscriptions within PushDelay + 1 s, with the
// sender's name and a preview (none for an encrypted message); a user
// whose stream is open gets no push.
func TestPushAbsentNotPresent(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ps := chattest.NewPushService(t)
		l := pushLive(t, db, ps)
		alice, bob, carol := l.NewUser(t, "alice"), l.NewUser(t, "bob"), l.NewUser(t, "carol")
		l.Befriend(t, alice, bob)
		l.Befriend(t, alice, carol)
		phone, laptop, carols := ps.Subscribe(t), ps.Subscribe(t), ps.Subscribe(t)
		subscribe(t, l.Server, bob, phone)
		subscribe(t, l.Server, bob, laptop)
		subscribe(t, l.Server, carol, carols)
		st := openSSE(t, streamPOST(t, l, carol, nil))
		sentinel(t, l.Server, st, alice, carol, true)

		sent := time.Now()
		gcall(t, l.Server, alice, "/Message/Send", map[string]any{"uid_to": bob.UID, "data": "lunch?"}, 200, 0)
		gcall(t, l.Server, alice, "/Message/Send", map[string]any{"uid_to": carol.UID, "data": "hi carol"}, 200, 0)
		want := fmt.Sprintf(`{"uid_from":%d,"name":"alice","preview":"lunch?"}`, alice.UID)
		got := map[string]bool{}
		for range 2 {
			p := nextPush(t, ps, sent.Add(testPushDelay+time.Second))
			if string(p.Payload) != want {
				t.Fatalf("push payload %s, want %s", p.Payload, want)
			}
			if p.At.Sub(sent) < testPushDelay {
				t.Fatalf("pushed %v after the send, before PushDelay", p.At.Sub(sent))
			}
			got[p.Endpoint] = true
		}
		if !got[phone.Endpoint] || !got[laptop.Endpoint] {
			t.Fatalf("pushed to %v, want both of bob's subscriptions", got)
		}
		noPush(t, ps, sent.Add(testPushDelay+time.Second))

		// Encrypted: a push, but no preview, and never the enc.
		sent = time.Now()
		body := fmt.Sprintf(`{"uid":%d,"access_token":%q,"uid_to":%d,"enc":%s}`, alice.UID, alice.Token, bob.UID, testEnc(bob.UID))
		chattest.Expect(t, l.Do(t, chattest.Req{Path: "/Message/Send", Body: []byte(body), ContentType: "application/json"}), 200, 0)
		want = fmt.Sprintf(`{"uid_from":%d,"name":"alice","preview":""}`, alice.UID)
		for range 2 {
			if p := nextPush(t, ps, sent.Add(testPushDelay+time.Second)); string(p.Payload) != want {
				t.Fatalf("encrypted message's push %s, want %s", p.Payload, want)
			}
		}
		waitFor(t, "4 pushes counted sent", func() bool { return l.Module.PushStats().Sent == 4 })
		if st := l.Module.PushStats(); st.Failed+st.Dropped+st.Gone != 0 {
			t.Fatalf("stats %+v, want 4 sent only", st)
		}
	})
}

// TestPushShowsMessageAsDue: a push shows its message as it is when the
// push goes, PushDelay after the Send: a message deleted meanwhile is
// not pushed (its text is erased, API.md §13), and one edited meanwhile
// is pushed with its new text.
func TestPushShowsMessageAsDue(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ps := chattest.NewPushService(t)
		// Time for the Sends, the Delete and the Edit on a busy machine
		// before the pushes go.
		const delay = 3 * time.Second
		l := pushLive(t, db, ps, func(c *module.Config) { c.PushDelay = delay })
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		subscribe(t, l.Server, bob, ps.Subscribe(t))
		sent := time.Now()
		regret := gcall(t, l.Server, alice, "/Message/Send", map[string]any{"uid_to": bob.UID, "data": "my password is hunter2"}, 200, 0)
		draft := gcall(t, l.Server, alice, "/Message/Send", map[string]any{"uid_to": bob.UID, "data": "lunch at 1?"}, 200, 0)
		gcall(t, l.Server, alice, "/Message/Delete", map[string]any{"id": regret.Int("id")}, 200, 0)
		gcall(t, l.Server, alice, "/Message/Edit", map[string]any{"id": draft.Int("id"), "data": "lunch at 2?"}, 200, 0)
		if time.Since(sent) >= delay {
			t.Fatalf("the Sends, Delete and Edit took %v, past PushDelay", time.Since(sent))
		}
		p := nextPush(t, ps, sent.Add(delay+time.Second))
		want := fmt.Sprintf(`{"uid_from":%d,"name":"alice","preview":"lunch at 2?"}`, alice.UID)
		if string(p.Payload) != want {
			t.Fatalf("push %s, want %s", p.Payload, want)
		}
		noPush(t, ps, sent.Add(delay+time.Second))
	})
}

// TestPushGroup: a group message is pushed to the absent members, with
// its gid, never to the sender.
func TestPushGroup(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ps := chattest.NewPushService(t)
		l := pushLive(t, db, ps)
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		gid := into[groupCreated](t, gcall(t, l.Server, alice, "/Group/create", map[string]any{"name": "g"}, 200, 0)).GID
		gcall(t, l.Server, alice, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(bob)}, 200, 0)
		subscribe(t, l.Server, alice, ps.Subscribe(t))
		bobs := ps.Subscribe(t)
		subscribe(t, l.Server, bob, bobs)
		sent := time.Now()
		gcall(t, l.Server, alice, "/Message/Send", map[string]any{"gid": gid, "data": "all hands"}, 200, 0)
		p := nextPush(t, ps, sent.Add(testPushDelay+time.Second))
		want := fmt.Sprintf(`{"uid_from":%d,"gid":%d,"name":"alice","preview":"all hands"}`, alice.UID, gid)
		if p.Endpoint != bobs.Endpoint || string(p.Payload) != want {
			t.Fatalf("push to %s: %s, want bob's: %s", p.Endpoint, p.Payload, want)
		}
		noPush(t, ps, sent.Add(testPushDelay+time.Second))
	})
}

// TestPushGoneDropped: a subscription the push service answers 410 (or
// 404) for is deleted; a 503 is retried.
func TestPushGoneDropped(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ps := chattest.NewPushService(t)
		l := pushLive(t, db, ps)
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		gone, live := ps.Subscribe(t), ps.Subscribe(t)
		subscribe(t, l.Server, bob, gone)
		subscribe(t, l.Server, bob, live)
		ps.Answer(gone, 410)
		sent := time.Now()
		gcall(t, l.Server, alice, "/Message/Send", map[string]any{"uid_to": bob.UID, "data": "x"}, 200, 0)
		if p := nextPush(t, ps, sent.Add(testPushDelay+time.Second)); p.Endpoint != live.Endpoint {
			t.Fatalf("push to %s, want the live subscription's", p.Endpoint)
		}
		waitFor(t, "the gone subscription deleted", func() bool {
			return l.Count(t, "push_subscriptions", "endpoint = ?", gone.Endpoint) == 0
		})
		if n := l.Count(t, "push_subscriptions", "endpoint = ?", live.Endpoint); n != 1 {
			t.Fatal("the live subscription was deleted too")
		}
		waitFor(t, "1 push counted sent", func() bool { return l.Module.PushStats().Sent == 1 })
		if st := l.Module.PushStats(); st.Gone != 1 || st.Failed+st.Dropped != 0 {
			t.Fatalf("stats %+v, want 1 gone, 1 sent", st)
		}
	})
}

// TestPushRetried: a push the push service answers 503 twice is
// tried again (after 1 s, then 2 s) and arrives.
func TestPushRetried(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ps := chattest.NewPushService(t)
		l := pushLive(t, db, ps)
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		sub := ps.Subscribe(t)
		subscribe(t, l.Server, bob, sub)
		ps.FailNext(sub, 2, 503)
		sent := time.Now()
		gcall(t, l.Server, alice, "/Message/Send", map[string]any{"uid_to": bob.UID, "data": "retry me"}, 200, 0)
		p := nextPush(t, ps, sent.Add(testPushDelay+10*time.Second))
		if !strings.Contains(string(p.Payload), `"preview":"retry me"`) || p.At.Sub(sent) < testPushDelay+3*time.Second {
			t.Fatalf("push %s after %v, want it after two retries (1 s + 2 s)", p.Payload, p.At.Sub(sent))
		}
		waitFor(t, "1 push counted sent", func() bool { return l.Module.PushStats().Sent == 1 })
		if st := l.Module.PushStats(); st.Failed+st.Gone+st.Dropped != 0 {
			t.Fatalf("stats %+v, want 1 sent only", st)
		}
	})
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPushPresentElsewhere: with Redis, a user whose stream is open on
// another instance is not pushed to by the instance that stored the
// message; once they leave, they are.
func TestPushPresentElsewhere(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		rs := chattest.StartRedis(t)
		ps := chattest.NewPushService(t)
		withRedis := func(c *module.Config) { c.Redis = rs.Client(t) }
		a := pushLive(t, db, ps, withRedis)
		b := a.LiveTwin(t, chattest.Options{Config: func(c *module.Config) { pushConfig(c, ps); withRedis(c) }})
		chattest.AwaitRedis(t, a.Server, b.Server)
		alice, bob := a.NewUser(t, "alice"), a.NewUser(t, "bob")
		a.Befriend(t, alice, bob)
		subscribe(t, a.Server, bob, ps.Subscribe(t))
		st := openSSE(t, streamPOST(t, b, bob, nil))
		sentinel(t, a.Server, st, alice, bob, true)

		sent := time.Now()
		gcall(t, a.Server, alice, "/Message/Send", map[string]any{"uid_to": bob.UID, "data": "here?"}, 200, 0)
		noPush(t, ps, sent.Add(testPushDelay+time.Second))
	})
}

// TestPushSDK: the Go SDK's PushKey, PushSubscribe and PushUnsubscribe.
func TestPushSDK(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ps := chattest.NewPushService(t)
		l := pushLive(t, db, ps)
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		ctx := context.Background()
		c := l.SDKFor(t, bob)
		key, err := c.PushKey(ctx)
		if err != nil || key != ps.Key {
			t.Fatalf("PushKey = %q, %v; want %q", key, err, ps.Key)
		}
		sub := ps.Subscribe(t)
		in := client.PushSubscription{Endpoint: sub.Endpoint, Keys: client.PushKeys{P256dh: sub.P256dh, Auth: sub.Auth}}
		if err := c.PushSubscribe(ctx, in); err != nil {
			t.Fatal(err)
		}
		bad := in
		bad.Keys.P256dh = sub.Auth
		chattest.ExpectErr(t, c.PushSubscribe(ctx, bad), 400, 1001)

		sent := time.Now()
		if _, err := l.SDKFor(t, alice).Send(ctx, bob.UID, "ping"); err != nil {
			t.Fatal(err)
		}
		var got client.PushPayload
		if err := json.Unmarshal(nextPush(t, ps, sent.Add(testPushDelay+time.Second)).Payload, &got); err != nil {
			t.Fatal(err)
		}
		if want := (client.PushPayload{UIDFrom: alice.UID, Name: "alice", Preview: "ping"}); got != want {
			t.Fatalf("payload %+v, want %+v", got, want)
		}

		if err := c.PushUnsubscribe(ctx, sub.Endpoint); err != nil {
			t.Fatal(err)
		}
		sent = time.Now()
		if _, err := l.SDKFor(t, alice).Send(ctx, bob.UID, "pong"); err != nil {
			t.Fatal(err)
		}
		noPush(t, ps, sent.Add(testPushDelay+time.Second))
	})
}
