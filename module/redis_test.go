package module_test

import (
	"bytes"
	"context"
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

// crossPoll is a long poll's answer and how long it took.
type crossPoll struct {
	answer recvAnswer
	took   time.Duration
	err    error
}

// startCross starts a long poll of u on s and returns where its answer
// will arrive.
func startCross(s *chattest.Server, u chattest.User, lastID int64, wait int) <-chan crossPoll {
	out := make(chan crossPoll, 1)
	go func() {
		start := time.Now()
		r, err := s.TryPost("/Message/Recv", u.Creds(map[string]any{"last_id": lastID, "wait": wait}))
		res := crossPoll{took: time.Since(start), err: err}
		if err == nil {
			res.answer, res.err = decodeRecv(r)
		}
		out <- res
	}()
	return out
}

// awaitCross waits for a poll's answer; within tells how long after now it
// must come.
func awaitCross(t *testing.T, polls <-chan crossPoll, within time.Duration) recvAnswer {
	t.Helper()
	start := time.Now()
	select {
	case res := <-polls:
		if res.err != nil {
			t.Fatal(res.err)
		}
		return res.answer
	case <-time.After(within):
		t.Fatalf("no answer %v after the send (the poll waits far longer)", time.Since(start))
	}
	return recvAnswer{}
}

// settleCross lets a poll started just before reach its wait: the test then
// checks that a wake-up, not the first read, answers it.
func settleCross() { time.Sleep(100 * time.Millisecond) }

func TestRedisWakeAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		alice, bob := a.NewUser(t, "alice"), a.NewUser(t, "bob")
		a.Befriend(t, alice, bob)
		last := int64(0)
		for i := range 3 {
			polls := startCross(a, bob, last, 20)
			settleCross()
			id := mustSend(t, b, alice, bob, fmt.Sprintf("hello %d", i))
			got := awaitCross(t, polls, time.Second)
			if got.Num != 1 || got.Data[0].ID != id {
				t.Fatalf("poll on A got %+v, want message %d sent through B", got, id)
			}
			last = id
		}
	})
}

func TestRedisLogoutAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "carol")
		// B has the session cached, and its clock never lets it expire.
		chattest.Expect(t, b.Post(t, "/user/info", u.Creds(nil)), 200, 0)
		chattest.Expect(t, a.Post(t, "/user/logout", u.Creds(nil)), 200, 0)
		awaitRefusedOn(t, b, "/user/info", u.Creds(nil), 401, 1004)
	})
}

func TestRedisPasswordChangeAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "dave")
		other := login(t, a, u)
		chattest.Expect(t, b.Post(t, "/user/info", other.Creds(nil)), 200, 0)
		r := a.Post(t, "/user/info/passwd", u.Creds(map[string]any{"old_passwd": u.Password, "new_passwd": "another-secret1"}))
		chattest.Expect(t, r, 200, 0)
		awaitRefusedOn(t, b, "/user/info", other.Creds(nil), 401, 1004)
		// The session that made the change lives on, on both.
		chattest.Expect(t, b.Post(t, "/user/info", u.Creds(nil)), 200, 0)
	})
}

func TestRedisProfileChangeAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "erin")
		r := b.Post(t, "/user/info", u.Creds(nil))
		chattest.Expect(t, r, 200, 0)
		chattest.Expect(t, a.Post(t, "/user/info/update", u.Creds(map[string]any{"name": "Erin B"})), 200, 0)
		deadline := time.Now().Add(time.Second)
		for {
			r := b.Post(t, "/user/info", u.Creds(nil))
			if r.Str("name") == "Erin B" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("B still shows %s a second after the change on A", r)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func TestRedisClientDisableAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "frank")
		chattest.Expect(t, b.Post(t, "/user/info", u.Creds(nil)), 200, 0)
		if err := a.Module.SetClientDisabled(context.Background(), a.ClientID, true); err != nil {
			t.Fatal(err)
		}
		awaitRefusedOn(t, b, "/user/info", u.Creds(nil), 403, 1002)
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
			last := int64(0)
			if len(sent) > 0 {
				last = sent[len(sent)-1]
			}
			polls := startCross(a, bob, last, 25)
			settleCross()
			id := mustSend(t, b, alice, bob, body)
			sent = append(sent, id)
			got := awaitCross(t, polls, within)
			if got.Num != 1 || got.Data[0].ID != id {
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

// awaitRefusedOn repeats a request on s until it is refused with status
// and code, for at most a second: the note over Redis takes a round trip.
func awaitRefusedOn(t *testing.T, s *chattest.Server, path string, body map[string]any, status int, code int64) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		r := s.Post(t, path, body)
		if r.Status == status && r.Code() == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still answers %s a second later, want %d/%d", path, r, status, code)
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
		chattest.Expect(t, b.Post(t, "/user/info", u.Creds(nil)), 200, 0)
		chattest.Expect(t, a.Post(t, "/user/logout", u.Creds(nil)), 200, 0)
		a.Clock.Advance(500 * time.Millisecond)
		// Within the second B may still serve its copy; past it, not.
		a.Clock.Advance(600 * time.Millisecond)
		chattest.Expect(t, b.Post(t, "/user/info", u.Creds(nil)), 401, 1004)

		// Back up: the caps lift and what was cached meanwhile is dropped.
		rs.Start(t)
		chattest.AwaitRedis(t, a, b)
		chattest.Expect(t, b.Post(t, "/user/info", u.Creds(nil)), 401, 1004)
	})
}

// TestRedisAvatarAcrossInstances uploads an avatar through A and fetches
// it from B, which shares no disk with A: with Redis set, avatars live in
// the database.
func TestRedisAvatarAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		u := a.NewUser(t, "ivan")
		r := upload(t, a, u, "me.png", pngBytes(t, 40, 30))
		chattest.Expect(t, r, 200, 0)
		url := r.Str("image")
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
