package module_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
)

// The tests in this file run two instances of the module on one database
// and one real redis-server, as two processes of one site would run
// (API.md §11). The clock is chattest's, which stands still, so a cached
// session or profile never expires by itself: only a note over Redis can
// end it, which is what they check.

// redisPair starts a redis-server and two instances on db sharing it.
func redisPair(t *testing.T, db *chattest.DB, config func(*module.Config)) (*chattest.RedisServer, *chattest.Server, *chattest.Server) {
	t.Helper()
	rs := chattest.StartRedis(t)
	opts := func() chattest.Options {
		client := rs.Client(t)
		return chattest.Options{Config: func(c *module.Config) {
			c.Redis = client
			if config != nil {
				config(c)
			}
		}}
	}
	a := chattest.NewServer(t, db, opts())
	b := a.Twin(t, opts())
	chattest.AwaitRedis(t, a, b)
	return rs, a, b
}

// startCross starts a long poll of u on s through the SDK, for messages
// past lastID, and returns where its answer will arrive.
func startCross(t *testing.T, s *chattest.Server, u chattest.User, lastID int64, wait time.Duration) <-chan pollResult {
	t.Helper()
	return poll(t, s, u, client.RecvRequest{LastID: last(lastID), Wait: wait})
}

// awaitCross waits for a poll's answer; within tells how long after now it
// must come.
func awaitCross(t *testing.T, polls <-chan pollResult, within time.Duration) client.RecvResult {
	t.Helper()
	start := time.Now()
	select {
	case res := <-polls:
		if res.err != nil {
			t.Fatalf("poll: %v", res.err)
		}
		if res.ans.Messages == nil {
			t.Fatalf("poll: data is null: %+v", res.ans)
		}
		return res.ans
	case <-time.After(within):
		t.Fatalf("no answer %v after the send (the poll waits far longer)", time.Since(start))
	}
	return client.RecvResult{}
}

// settleCross lets a poll started just before reach its wait: the test then
// checks that a wake-up, not the first read, answers it.
func settleCross() { time.Sleep(100 * time.Millisecond) }

func TestRedisWakeAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		alice, bob := a.NewUser(t, "alice"), a.NewUser(t, "bob")
		a.Befriend(t, alice, bob)
		lastID := int64(0)
		for i := range 3 {
			polls := startCross(t, a, bob, lastID, 20*time.Second)
			settleCross()
			id := mustSend(t, b, alice, bob, fmt.Sprintf("hello %d", i))
			got := awaitCross(t, polls, time.Second)
			if len(got.Messages) != 1 || got.Messages[0].ID != id || got.LastID != id {
				t.Fatalf("poll on A got %+v, want message %d sent through B", got, id)
			}
			lastID = id
		}
	})
}

// info fails the test unless c's /user/info is served.
func info(t *testing.T, c *client.Client) client.UserInfo {
	t.Helper()
	got, err := c.Info(context.Background())
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	return got
}

func TestRedisLogoutAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "carol")
		// B has the session cached, and its clock never lets it expire.
		onB := b.SDKFor(t, u)
		info(t, onB)
		if err := a.SDKFor(t, u).Logout(context.Background()); err != nil {
			t.Fatalf("logout on A: %v", err)
		}
		awaitRefusedOn(t, onB, 401, 1004)
	})
}

func TestRedisPasswordChangeAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "dave")
		otherOnB := b.SDKFor(t, login(t, a, u))
		info(t, otherOnB)
		if err := a.SDKFor(t, u).ChangePassword(context.Background(), u.Password, "another-secret1"); err != nil {
			t.Fatalf("change password on A: %v", err)
		}
		awaitRefusedOn(t, otherOnB, 401, 1004)
		// The session that made the change lives on, on both.
		info(t, b.SDKFor(t, u))
		info(t, a.SDKFor(t, u))
	})
}

// A session ended on one instance ends its streams on the other at once,
// not at their next ping (25 s by default).
func TestRedisLogoutEndsStreamsAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "erin")
		done := appTestStream(b, u)
		time.Sleep(200 * time.Millisecond) // the stream is open on B
		if err := a.SDKFor(t, u).Logout(context.Background()); err != nil {
			t.Fatalf("logout on A: %v", err)
		}
		expectStreamEnd(t, done, "event: bye\ndata: {\"reason\":\"logout\"}\n\n")
	})
}

// A password change on one instance ends the user's other sessions'
// streams on the other with the contract's reason (API.md §10), not
// "logout".
func TestRedisPasswordChangeEndsStreamsAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "erin")
		done := appTestStream(b, u)
		time.Sleep(200 * time.Millisecond) // the stream is open on B
		changer := login(t, a, u)
		if err := a.SDKFor(t, changer).ChangePassword(context.Background(), u.Password, "another-secret1"); err != nil {
			t.Fatalf("change password on A: %v", err)
		}
		expectStreamEnd(t, done, "event: bye\ndata: {\"reason\":\"password\"}\n\n")
	})
}

// A profile change on one instance neither ends nor checks the user's
// streams on the other. The stream's session is deleted behind the
// instances' backs, so a check would end it: it must rather carry a later
// message, and end only at a logout.
func TestRedisProfileChangeKeepsStreamsAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u, friend := a.NewUser(t, "erin"), a.NewUser(t, "frank")
		a.Befriend(t, u, friend)
		// A login tells the user's streams to check their sessions (one
		// may have been evicted): its note is out of the way first.
		other := login(t, a, u)
		done := appTestStream(b, u)
		time.Sleep(200 * time.Millisecond) // the stream is open on B
		dropSessionBehind(t, db, u)
		if err := a.SDKFor(t, other).UpdateProfile(context.Background(), client.ProfileUpdate{Name: "Erin B"}); err != nil {
			t.Fatalf("update on A: %v", err)
		}
		settleCross()
		id := mustSend(t, a, friend, u, "after the edit")
		settleCross()
		if err := a.SDKFor(t, other).Logout(context.Background()); err != nil {
			t.Fatalf("logout on A: %v", err)
		}
		body := expectStreamEnd(t, done, "")
		if !strings.Contains(body, fmt.Sprintf("id: %d\nevent: message\n", id)) ||
			!strings.HasSuffix(body, "event: bye\ndata: {\"reason\":\"logout\"}\n\n") {
			t.Fatalf("stream on B: %q, want message %d then bye logout", body, id)
		}
	})
}

// A note from an instance of the previous version, "user:<uid>" without
// what happened, still ends the user's ended sessions' streams, with bye
// "logout" as that version did.
func TestRedisOldUserNoteEndsStreams(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		rs, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "erin")
		done := appTestStream(b, u)
		time.Sleep(200 * time.Millisecond) // the stream is open on B
		dropSessionBehind(t, db, u)
		note := fmt.Sprintf("old-instance\nuser:%d", u.UID)
		if err := rs.Client(t).Publish(context.Background(), "fiberchat:invalidate", note).Err(); err != nil {
			t.Fatal(err)
		}
		expectStreamEnd(t, done, "event: bye\ndata: {\"reason\":\"logout\"}\n\n")
	})
}

// dropSessionBehind deletes u's session in the database, behind the
// instances' backs: one that cached it still takes it until told.
func dropSessionBehind(t *testing.T, db *chattest.DB, u chattest.User) {
	t.Helper()
	res := db.Gorm.Exec("DELETE FROM chat_user_tokens WHERE token_hash = ?", models.HashToken(u.Token))
	if res.Error != nil || res.RowsAffected != 1 {
		t.Fatalf("delete session: %d rows, %v", res.RowsAffected, res.Error)
	}
}

// expectStreamEnd waits for a stream appTestStream opened to end and
// returns its body, which must be want unless want is "".
func expectStreamEnd(t *testing.T, done <-chan []byte, want string) string {
	t.Helper()
	select {
	case body := <-done:
		if want != "" && string(body) != want {
			t.Fatalf("stream on B: %q, want %q", body, want)
		}
		return string(body)
	case <-time.After(10 * time.Second):
		t.Fatal("stream on B still open after 10s")
	}
	return ""
}

func TestRedisProfileChangeAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "erin")
		onB := b.SDKFor(t, u)
		info(t, onB)
		if err := a.SDKFor(t, u).UpdateProfile(context.Background(), client.ProfileUpdate{Name: "Erin B"}); err != nil {
			t.Fatalf("update on A: %v", err)
		}
		deadline := time.Now().Add(time.Second)
		for {
			got := info(t, onB)
			if got.Name == "Erin B" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("B still shows %+v a second after the change on A", got)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func TestRedisClientDisableAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "frank")
		onB := b.SDKFor(t, u)
		info(t, onB)
		if err := a.Module.SetClientDisabled(context.Background(), a.ClientID, true); err != nil {
			t.Fatal(err)
		}
		awaitRefusedOn(t, onB, 403, 1002)
	})
}

func TestRedisRateLimitAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, func(c *module.Config) { c.LoginRateLimit = 4 })
		u := a.NewUser(t, "grace") // one login on A
		creds := map[string]any{"uid": u.UID, "passwd": u.Password}
		chattest.Expect(t, b.Post(t, "/user/login", creds), 200, 0)
		chattest.Expect(t, a.Post(t, "/user/login", creds), 200, 0)
		chattest.Expect(t, b.Post(t, "/user/login", creds), 200, 0)
		// Four logins in the window, two on each: the fifth is refused on
		// either instance.
		chattest.Expect(t, b.Post(t, "/user/login", creds), 429, 1010)
		chattest.Expect(t, a.Post(t, "/user/login", creds), 429, 1010)
	})
}

// TestRedisKilledMidRun kills redis-server while polls wait on A and
// messages are sent through B, then starts it again: every Send succeeds,
// every poll is answered (by the database check while Redis is down), and
// once Redis is back wake-ups are fast again.
func TestRedisKilledMidRun(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		rs, a, b := redisPair(t, db, nil)
		alice, bob := a.NewUser(t, "alice"), a.NewUser(t, "bob")
		a.Befriend(t, alice, bob)
		var sent []int64
		// roundTrip sends through B while a poll of bob's waits on A and
		// checks the poll gets the message within within.
		roundTrip := func(body string, within time.Duration) {
			t.Helper()
			lastID := int64(0)
			if len(sent) > 0 {
				lastID = sent[len(sent)-1]
			}
			polls := startCross(t, a, bob, lastID, 25*time.Second)
			settleCross()
			id := mustSend(t, b, alice, bob, body)
			sent = append(sent, id)
			got := awaitCross(t, polls, within)
			if len(got.Messages) != 1 || got.Messages[0].ID != id {
				t.Fatalf("%s: poll got %+v, want message %d", body, got, id)
			}
		}
		roundTrip("before", time.Second)

		rs.Kill(t)
		// A poll already waiting when Redis dies, and polls that start
		// after: the database check answers them within seconds.
		for i := range 3 {
			roundTrip(fmt.Sprintf("while down %d", i), 5*time.Second)
		}
		if a.Module.RedisUp() || b.Module.RedisUp() {
			t.Fatal("RedisUp with redis-server killed")
		}

		rs.Start(t)
		chattest.AwaitRedis(t, a, b)
		for i := range 3 {
			roundTrip(fmt.Sprintf("after %d", i), time.Second)
		}

		// Nothing lost: every message is there, in order, once.
		all := recv(t, a, bob, client.RecvRequest{LastID: last(0), Limit: 100})
		if len(all.Messages) != len(sent) {
			t.Fatalf("%d messages stored, want %d: %+v", len(all.Messages), len(sent), all)
		}
		for i, m := range all.Messages {
			if m.ID != sent[i] {
				t.Fatalf("message %d has id %d, want %d", i, m.ID, sent[i])
			}
		}
	})
}

// awaitRefusedOn repeats c's /user/info until it is refused with status
// and code, for at most a second: the note over Redis takes a round trip.
func awaitRefusedOn(t *testing.T, c *client.Client, status, code int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		_, err := c.Info(context.Background())
		var e *client.Error
		if errors.As(err, &e) && e.Status == status && e.Code == code {
			chattest.ExpectErr(t, err, status, code) // and it has a msg
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/user/info still answers %v a second later, want %d/%d", err, status, code)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRedisHealth(t *testing.T) {
	db := chattest.OpenSQLite(t)
	rs, a, _ := redisPair(t, db, nil)
	app := fiber.New()
	app.Get("/healthz", a.Module.HealthHandler())
	health := func() string {
		t.Helper()
		resp, err := app.Test(httptest.NewRequest("GET", "/healthz", nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, body)
	}
	if got, want := health(), `200 {"error":0,"msg":"ok","redis":"up"}`; got != want {
		t.Fatalf("healthz = %s, want %s", got, want)
	}
	rs.Kill(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Still 200: without Redis the instance serves, from the database.
		got, want := health(), `200 {"error":0,"msg":"ok","redis":"down"}`
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz = %s 5 s after Redis died, want %s", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisDownCachesShort checks API.md §11's bound while Redis is
// unreachable: a session ended on A is refused on B within a second,
// though B cached it for 5 and no note can reach it.
func TestRedisDownCachesShort(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		rs, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "heidi")
		rs.Kill(t)
		deadline := time.Now().Add(5 * time.Second)
		// B's caches are capped once its invalidations channel knows.
		for a.Module.RedisUp() || module.InvalidationsUp(b.Module) {
			if time.Now().After(deadline) {
				t.Fatal("Redis still up 5 s after redis-server was killed")
			}
			time.Sleep(10 * time.Millisecond)
		}
		onB := b.SDKFor(t, u)
		info(t, onB)
		if err := a.SDKFor(t, u).Logout(context.Background()); err != nil {
			t.Fatalf("logout on A: %v", err)
		}
		a.Clock.Advance(500 * time.Millisecond)
		// Within the second B may still serve its copy; past it, not.
		a.Clock.Advance(600 * time.Millisecond)
		_, err := onB.Info(context.Background())
		chattest.ExpectErr(t, err, 401, 1004)

		// Back up: the caps lift and what was cached meanwhile is dropped.
		rs.Start(t)
		chattest.AwaitRedis(t, a, b)
		_, err = onB.Info(context.Background())
		chattest.ExpectErr(t, err, 401, 1004)
	})
}

// TestRedisAvatarAcrossInstances uploads an avatar through A and fetches
// it from B, which shares no disk with A: with Redis set, avatars live in
// the database.
func TestRedisAvatarAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "ivan")
		url, err := a.SDKFor(t, u).UploadAvatar(context.Background(), "me.png", bytes.NewReader(pngBytes(t, 40, 30)))
		if err != nil {
			t.Fatalf("upload on A: %v", err)
		}
		if got := info(t, b.SDKFor(t, u)); got.HeadImg != url {
			t.Fatalf("B shows head_img %q, want %q", got.HeadImg, url)
		}
		path := url[strings.Index(url, "/avatar/"):]
		got := b.Do(t, chattest.Req{Path: path, Method: http.MethodGet, Unsigned: true})
		if got.Status != 200 || got.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("GET avatar from B: %d %s", got.Status, got.Header.Get("Content-Type"))
		}
		if cfg, err := png.DecodeConfig(bytes.NewReader(got.Raw)); err != nil || cfg.Width != 40 || cfg.Height != 30 {
			t.Fatalf("avatar served by B: %v %v", cfg, err)
		}
		if n := a.Count(t, "avatars", ""); n != 1 {
			t.Fatalf("%d avatar rows, want 1", n)
		}
		chattest.Expect(t, b.Do(t, chattest.Req{Path: "/avatar/0123456789abcdef0123456789abcdef.png", Method: http.MethodGet, Unsigned: true}), 404, 1006)
	})
}

// TestRedisPausedUnderLoad pauses redis-server (SIGSTOP: a Redis that
// hangs with its sockets open, not one that is gone) while logins, Sends
// and polls run on both instances. None fails or waits on Redis (API.md
// §11): the rate limits count in each process meanwhile. Once Redis
// answers again they count there again, by themselves.
func TestRedisPausedUnderLoad(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		rs, a, b := redisPair(t, db, nil)
		alice, bob := a.NewUser(t, "alice"), a.NewUser(t, "bob")
		a.Befriend(t, alice, bob)

		rs.Pause(t)
		// bound is what a request may take while Redis hangs: the one
		// call that finds it hung waits callTimeout (1 s), the rest do
		// not wait at all; the rest is room for a loaded machine.
		const bound = 5 * time.Second
		var calls []func() error
		for i := range 6 {
			s := []*chattest.Server{a, b}[i%2]
			anon, sender, poller := s.SDK(t), s.SDKFor(t, alice), s.SDKFor(t, alice)
			calls = append(calls,
				func() error { _, err := anon.Login(context.Background(), alice.UID, alice.Password); return err },
				func() error {
					_, err := sender.Send(context.Background(), bob.UID, fmt.Sprint("paused ", i))
					return err
				},
				func() error {
					_, err := poller.Recv(context.Background(), client.RecvRequest{Wait: time.Second})
					return err
				})
		}
		for _, err := range runBounded(t, calls, bound) {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
		// A poll waiting on A for a Send through B is answered by the
		// database check, as with Redis gone.
		sent := recv(t, a, bob, client.RecvRequest{LastID: last(0), Limit: 100}).Messages
		if len(sent) != 6 {
			t.Fatalf("%d messages stored while Redis hung, want 6", len(sent))
		}
		polls := startCross(t, a, bob, sent[5].ID, 25*time.Second)
		settleCross()
		id := mustSend(t, b, alice, bob, "paused")
		if got := awaitCross(t, polls, bound); len(got.Messages) != 1 || got.Messages[0].ID != id {
			t.Fatalf("poll got %+v, want message %d", got, id)
		}

		rs.Resume(t)
		chattest.AwaitRedis(t, a, b)
		// The login limit's counter is back in Redis within a few
		// seconds, without a restart.
		rc := rs.Client(t)
		// app.Test's address, and the window's number.
		keys := "fiberchat:limit:login:0.0.0.0:*"
		anon := a.SDK(t)
		deadline := time.Now().Add(10 * time.Second)
		for len(rc.Keys(context.Background(), keys).Val()) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the login limit does not count in Redis again 10 s after it is back")
			}
			if _, err := anon.Login(context.Background(), alice.UID, alice.Password); err != nil {
				t.Fatalf("login with Redis back: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// runBounded runs calls in parallel and returns their errors, and an
// error for each that took longer than bound. It waits at most twice
// bound plus a minute for them all, so that a hang fails the test
// instead of holding it.
func runBounded(t *testing.T, calls []func() error, bound time.Duration) []error {
	t.Helper()
	errs := make(chan error, len(calls))
	for i, call := range calls {
		go func() {
			start := time.Now()
			err := call()
			if took := time.Since(start); err == nil && took > bound {
				err = fmt.Errorf("took %v, want at most %v", took, bound)
			}
			if err != nil {
				err = fmt.Errorf("call %d: %w", i, err)
			}
			errs <- err
		}()
	}
	var out []error
	timeout := time.After(2*bound + time.Minute)
	for range calls {
		select {
		case err := <-errs:
			if err != nil {
				out = append(out, err)
			}
		case <-timeout:
			return append(out, errors.New("calls still running past the bound"))
		}
	}
	return out
}

// The login throttle counts in Redis: parallel guesses at one account
// spread over two instances are checked LoginFailures times and then once
// more, not that many times on each.
func TestRedisLoginThrottleAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, func(c *module.Config) {
			c.LoginRateLimit = -1
			c.LoginFailures = 5
		})
		u := a.NewUser(t, "a")
		if checked := parallelWrongLogins(t, 40, u, a, b); checked > 6 {
			t.Fatalf("%d of 40 parallel wrong passwords were checked, want at most 5 + 1", checked)
		}
	})
}
