package module_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

func TestSignature(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		body := map[string]any{"name": "n", "passwd": "secret1"}
		path := "/user/reg/ajax_reg"
		tok := func(d time.Time) string { return module.APIToken(path, s.Secret, d.UTC()) }
		send := func(q url.Values, h map[string]string) *chattest.Response {
			return s.Do(t, chattest.Req{Path: path + "?" + q.Encode(), JSON: body, Unsigned: true, Header: h})
		}
		now := s.Clock.Now()
		cases := []struct {
			name   string
			q      url.Values
			header map[string]string
			status int
		}{
			{"query", url.Values{"client_id": {"test"}, "api_token": {tok(now)}}, nil, 200},
			{"headers", nil, map[string]string{"X-Client-Id": "test", "X-Api-Token": tok(now)}, 200},
			{"uppercase hex", url.Values{"client_id": {"test"}, "api_token": {upper(tok(now))}}, nil, 200},
			{"missing", nil, nil, 403},
			{"no token", url.Values{"client_id": {"test"}}, nil, 403},
			{"unknown client", url.Values{"client_id": {"nosuch"}, "api_token": {tok(now)}}, nil, 403},
			{"yesterday", url.Values{"client_id": {"test"}, "api_token": {tok(now.Add(-24 * time.Hour))}}, nil, 403},
			{"other route", url.Values{"client_id": {"test"}, "api_token": {module.APIToken("/user/login", s.Secret, now.UTC())}}, nil, 403},
			{"wrong secret", url.Values{"client_id": {"test"}, "api_token": {module.APIToken(path, "nope", now.UTC())}}, nil, 403},
			{"NUL in token", url.Values{"client_id": {"test"}, "api_token": {tok(now)[:31] + "\x00"}}, nil, 403},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := send(tc.q, tc.header)
				if tc.status == 200 {
					chattest.Expect(t, r, 200, 0)
					return
				}
				chattest.Expect(t, r, 403, 1002)
				if r.Str("msg") != "access deny" {
					t.Fatalf("msg %q", r.Str("msg"))
				}
			})
		}
		if n := s.Count(t, "users", ""); n != 3 {
			t.Fatalf("%d users written, want 3 (the accepted requests only)", n)
		}
	})
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func TestSignatureMidnightSkew(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{})
	path := "/user/reg/ajax_reg"
	body := map[string]any{"name": "n", "passwd": "secret1"}
	// tokFor signs for the calendar day of "2026-03-DD" (UTC).
	tokFor := func(day string) url.Values {
		d, err := time.Parse(time.DateOnly, day)
		if err != nil {
			t.Fatal(err)
		}
		return url.Values{"client_id": {"test"}, "api_token": {module.APIToken(path, s.Secret, d)}}
	}
	post := func(q url.Values) int {
		return s.Do(t, chattest.Req{Path: path + "?" + q.Encode(), JSON: body, Unsigned: true}).Status
	}
	// Two minutes after midnight: yesterday's token still works.
	s.Clock.Set(time.Date(2026, 3, 15, 0, 2, 0, 0, time.UTC))
	if got := post(tokFor("2026-03-14")); got != 200 {
		t.Fatalf("yesterday's token 2 min after midnight: %d", got)
	}
	// Ten minutes after: no longer.
	s.Clock.Set(time.Date(2026, 3, 15, 0, 10, 0, 0, time.UTC))
	if got := post(tokFor("2026-03-14")); got != 403 {
		t.Fatalf("yesterday's token 10 min after midnight: %d", got)
	}
	// Two minutes before midnight: tomorrow's token already works.
	s.Clock.Set(time.Date(2026, 3, 15, 23, 58, 0, 0, time.UTC))
	if got := post(tokFor("2026-03-16")); got != 200 {
		t.Fatalf("tomorrow's token 2 min before midnight: %d", got)
	}
	if got := post(tokFor("2026-03-17")); got != 403 {
		t.Fatalf("day after tomorrow: %d", got)
	}
}

func TestSignatureTimeZone(t *testing.T) {
	tz := time.FixedZone("UTC+8", 8*3600)
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) { c.Location = tz }})
	// 20:00 UTC on the 14th is the 15th in UTC+8.
	s.Clock.Set(time.Date(2026, 3, 14, 20, 0, 0, 0, time.UTC))
	q := url.Values{"client_id": {"test"}, "api_token": {module.APIToken("/user/reg/ajax_reg", s.Secret, time.Date(2026, 3, 15, 12, 0, 0, 0, tz))}}
	r := s.Do(t, chattest.Req{Path: "/user/reg/ajax_reg?" + q.Encode(), JSON: map[string]any{"name": "n", "passwd": "secret1"}, Unsigned: true})
	chattest.Expect(t, r, 200, 0)
}

func TestDisabledClient(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		ctx := context.Background()
		u := s.NewUser(t, "a")
		c := s.SDKFor(t, u)
		served := func() {
			t.Helper()
			if _, err := c.Info(ctx); err != nil {
				t.Fatalf("info: %v", err)
			}
		}
		refused := func() {
			t.Helper()
			_, err := c.Info(ctx)
			chattest.ExpectErr(t, err, 403, 1002)
		}
		served()

		// Disabled in this process: refused at once.
		if err := s.Module.SetClientDisabled(ctx, "test", true); err != nil {
			t.Fatal(err)
		}
		refused()
		if err := s.Module.SetClientDisabled(ctx, "test", false); err != nil {
			t.Fatal(err)
		}
		served()

		// Disabled by another process (a direct write): refused once the
		// cache entry is older than ClientCacheTTL.
		if err := s.Module.DB().Table("chat_api_clients").Where("client_id = ?", "test").Update("disabled", true).Error; err != nil {
			t.Fatal(err)
		}
		served() // still cached
		s.Clock.Advance(31 * time.Second)
		refused()

		if err := s.Module.SetClientDisabled(ctx, "nosuch", true); err != module.ErrNoSuchClient {
			t.Fatalf("disable unknown client: %v", err)
		}
	})
}

func TestUserTokenTransports(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		u := s.NewUser(t, "a")
		other := s.NewUser(t, "b")
		uid := itoa(u.UID)
		cases := []struct {
			name   string
			req    chattest.Req
			status int
			code   int64
		}{
			{"json body", chattest.Req{JSON: u.Creds(nil)}, 200, 0},
			{"uid as string", chattest.Req{JSON: map[string]any{"uid": uid, "access_token": u.Token}}, 200, 0},
			{"form body", chattest.Req{Body: []byte("uid=" + uid + "&access_token=" + u.Token), ContentType: "application/x-www-form-urlencoded"}, 200, 0},
			{"query", chattest.Req{Path: "/user/info?user_id=" + uid + "&user_token=" + u.Token}, 200, 0},
			{"headers", chattest.Req{Header: map[string]string{"X-Uid": uid, "X-Access-Token": u.Token}}, 200, 0},
			{"none", chattest.Req{}, 401, 1004},
			{"wrong token", chattest.Req{JSON: map[string]any{"uid": u.UID, "access_token": "abcdefghijklmnopqrstuvwxyz012345"}}, 401, 1004},
			{"another user's token", chattest.Req{JSON: map[string]any{"uid": u.UID, "access_token": other.Token}}, 401, 1004},
			{"short token", chattest.Req{JSON: map[string]any{"uid": u.UID, "access_token": "abc"}}, 401, 1004},
			{"NUL in token", chattest.Req{JSON: map[string]any{"uid": u.UID, "access_token": u.Token[:31] + "\x00"}}, 401, 1004},
			{"token not a string", chattest.Req{JSON: map[string]any{"uid": u.UID, "access_token": 12}}, 401, 1004},
			{"uid object", chattest.Req{JSON: map[string]any{"uid": map[string]any{"a": 1}, "access_token": u.Token}}, 400, 1001},
			{"uid negative", chattest.Req{JSON: map[string]any{"uid": -10000001, "access_token": u.Token}}, 400, 1001},
			{"uid fraction", chattest.Req{Body: []byte(`{"uid":10000001.5,"access_token":"` + u.Token + `"}`), ContentType: "application/json"}, 400, 1001},
			{"uid huge", chattest.Req{Body: []byte(`{"uid":123456789012345678901234567890,"access_token":"` + u.Token + `"}`), ContentType: "application/json"}, 400, 1001},
			{"uid missing", chattest.Req{JSON: map[string]any{"access_token": u.Token}}, 401, 1004},
			// An empty access_token holds no token: the next place that
			// holds one is read (API.md §1b).
			{"empty token", chattest.Req{JSON: map[string]any{"uid": u.UID, "access_token": ""}}, 401, 1004},
			{"empty body token, headers", chattest.Req{JSON: map[string]any{"uid": u.UID, "access_token": ""},
				Header: map[string]string{"X-Uid": uid, "X-Access-Token": u.Token}}, 200, 0},
			{"blank form fields, query", chattest.Req{Path: "/user/info?user_id=" + uid + "&user_token=" + u.Token,
				Body: []byte("uid=&access_token="), ContentType: "application/x-www-form-urlencoded"}, 200, 0},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if tc.req.Path == "" {
					tc.req.Path = "/user/info"
				}
				r := s.Do(t, tc.req)
				chattest.Expect(t, r, tc.status, tc.code)
				if tc.status == 200 && r.Int("uid") != u.UID {
					t.Fatalf("info of %d, want %d", r.Int("uid"), u.UID)
				}
			})
		}
	})
}

func TestTokenSlidingExpiry(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		ctx := context.Background()
		u := s.NewUser(t, "a")
		c := s.SDKFor(t, u)
		expiry := func() int64 {
			var e int64
			if err := s.Module.DB().Table("chat_user_tokens").Where("uid = ?", u.UID).Pluck("expire_time", &e).Error; err != nil {
				t.Fatal(err)
			}
			return e
		}
		first := expiry()
		// Within the touch interval nothing is written.
		s.Clock.Advance(30 * time.Second)
		if _, err := c.Info(ctx); err != nil {
			t.Fatalf("info: %v", err)
		}
		if expiry() != first {
			t.Fatal("expiry written within the touch interval")
		}
		// Six days later the session is still alive and slides forward.
		s.Clock.Advance(6 * 24 * time.Hour)
		if _, err := c.Info(ctx); err != nil {
			t.Fatalf("info six days on: %v", err)
		}
		if want := s.Clock.Now().Unix() + 7*24*3600; expiry() != want {
			t.Fatalf("expiry %d, want %d", expiry(), want)
		}
		// Idle past the lifetime: dead at once, then swept.
		s.Clock.Advance(7*24*time.Hour + time.Second)
		_, err := c.Info(ctx)
		chattest.ExpectErr(t, err, 401, 1004)
		if n := s.Count(t, "user_tokens", ""); n != 1 {
			t.Fatalf("%d tokens before the sweep", n)
		}
		s.Module.SweepNow(ctx)
		if n := s.Count(t, "user_tokens", ""); n != 0 {
			t.Fatalf("%d tokens after the sweep", n)
		}
	})
}

// TestLoginDuringPasswordChange: logins with the old password that race
// a password change leave no session behind it. Each login checks the
// password (a bcrypt's time) before it opens its session; one whose check
// came before the change's commit and whose session came after it kept a
// session the change had not ended.
func TestLoginDuringPasswordChange(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) {
			c.BcryptCost = 8
			c.LoginFailures = -1
			c.MaxSessions = 1000
		}})
		owner := s.NewUser(t, "owner")
		var (
			mu     sync.Mutex
			tokens []string
			wg     sync.WaitGroup
		)
		stop := make(chan struct{})
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					r := s.Post(t, "/user/login", map[string]any{"uid": owner.UID, "passwd": owner.Password})
					if r.Status == 200 {
						mu.Lock()
						tokens = append(tokens, r.Str("access_token"))
						mu.Unlock()
					} else {
						chattest.Expect(t, r, 401, 1005)
					}
				}
			}()
		}
		time.Sleep(200 * time.Millisecond)
		chattest.Expect(t, s.Post(t, "/user/info/passwd", owner.Creds(map[string]any{"old_passwd": owner.Password, "new_passwd": "brand-new-pw"})), 200, 0)
		close(stop)
		wg.Wait()
		if len(tokens) == 0 {
			t.Fatal("no login went through before the change")
		}
		for _, tok := range tokens {
			if r := s.Post(t, "/user/info", map[string]any{"uid": owner.UID, "access_token": tok}); r.Status != 401 {
				t.Fatalf("a session opened with the old password outlived the change: %d %s", r.Status, r.Raw)
			}
		}
	})
}

func TestLogoutAndSessions(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) { c.MaxSessions = 3 }})
		ctx := context.Background()
		u := s.NewUser(t, "a")
		first := s.SDKFor(t, u)
		login := func() *client.Client {
			t.Helper()
			c := s.SDK(t)
			sess, err := c.Login(ctx, u.UID, u.Password)
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			if sess.UID != u.UID || len(sess.AccessToken) != 32 || c.Session() != sess {
				t.Fatalf("login session %+v, client holds %+v", sess, c.Session())
			}
			return c
		}
		info := func(c *client.Client) {
			t.Helper()
			got, err := c.Info(ctx)
			if err != nil {
				t.Fatalf("info: %v", err)
			}
			if got.UID != u.UID {
				t.Fatalf("info of %d, want %d", got.UID, u.UID)
			}
		}
		c2, c3 := login(), login()
		info(first)
		c4 := login() // the fourth session drops the oldest (u.Token)
		_, err := first.Info(ctx)
		chattest.ExpectErr(t, err, 401, 1004)
		if n := s.Count(t, "user_tokens", "uid = ?", u.UID); n != 3 {
			t.Fatalf("%d sessions, want 3", n)
		}
		for _, c := range []*client.Client{c2, c3, c4} {
			info(c)
		}
		// Logout kills that token only, and the client drops it.
		t2 := c2.Session()
		if err := c2.Logout(ctx); err != nil {
			t.Fatalf("logout: %v", err)
		}
		if c2.Session() != (client.Session{}) {
			t.Fatalf("the client still holds %+v after logout", c2.Session())
		}
		ended := s.SDK(t, client.WithSession(t2))
		_, err = ended.Info(ctx)
		chattest.ExpectErr(t, err, 401, 1004)
		chattest.ExpectErr(t, ended.Logout(ctx), 401, 1004)
		info(c3)
	})
}

// The limits run on Fiber's limiter, whose clock is its own (wall time,
// ticking once a second) and not Config.Now: so the window here is short
// and real, and the test waits it out.
func TestRateLimit(t *testing.T) {
	const window = 3 * time.Second
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) {
		c.LoginRateLimit = 3
		c.RegisterRateLimit = 2
		c.RateLimitWindow = window
	}})
	for i := 0; i < 2; i++ {
		chattest.Expect(t, s.Post(t, "/user/reg/ajax_reg", map[string]any{"name": "n", "passwd": "secret1"}), 200, 0)
	}
	r := s.Post(t, "/user/reg/ajax_reg", map[string]any{"name": "n", "passwd": "secret1"})
	chattest.Expect(t, r, 429, 1010)
	if r.Header.Get("Retry-After") == "" || r.Int("reg") != 0 || r.Body["reg"] == nil {
		t.Fatalf("429 without Retry-After or reg:0: %v %s", r.Header, r.Raw)
	}
	if n := s.Count(t, "users", ""); n != 2 {
		t.Fatalf("%d users", n)
	}
	// Login has its own budget; a wrong password counts too.
	for i := 0; i < 3; i++ {
		chattest.Expect(t, s.Post(t, "/user/login", map[string]any{"uid": 10000001, "passwd": "wrong-pw"}), 401, 1005)
	}
	r = s.Post(t, "/user/login", map[string]any{"uid": 10000001, "passwd": "secret1"})
	chattest.Expect(t, r, 429, 1010)
	wait, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || wait < 1 || wait > int(window/time.Second) {
		t.Fatalf("Retry-After %q, want whole seconds between 1 and %d", r.Header.Get("Retry-After"), int(window/time.Second))
	}
	// A new window resets it: once Retry-After has passed, and the
	// limiter's clock has ticked past it (it may lag a second, more on a
	// loaded machine), the right password gets in.
	time.Sleep(time.Duration(wait) * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = s.Post(t, "/user/login", map[string]any{"uid": 10000001, "passwd": "secret1"})
		if r.Status != 429 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	chattest.Expect(t, r, 200, 0)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestPollOfEndedSession: a long poll held when its session ends (a
// password change from another session, or its own logout) answers
// 401/1004 then, and never hands out a message sent after (API.md §3:
// the token is dead from then on). A poll with last_id read nothing of
// its session before.
func TestPollOfEndedSession(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "alice"), s.NewUser(t, "bob")
		s.Befriend(t, a, b)
		var last int64 // the newest message
		for _, end := range []string{"password change", "logout"} {
			held := login(t, s, b) // a second session of bob's
			for _, withLastID := range []bool{true, false} {
				fields := map[string]any{"wait": 10}
				if withLastID {
					fields["last_id"] = last
				} else {
					// The session's cursor past what is there.
					chattest.Expect(t, s.Post(t, "/Message/Recv", held.Creds(nil)), 200, 0)
				}
				got := make(chan *chattest.Response, 1)
				go func() { got <- s.Post(t, "/Message/Recv", held.Creds(fields)) }()
				waitFor(t, "the poll held", func() bool { return module.LongPolls(s.Module) == 1 })
				if end == "password change" {
					chattest.Expect(t, s.Post(t, "/user/info/passwd", b.Creds(map[string]any{"old_passwd": b.Password, "new_passwd": b.Password + "x"})), 200, 0)
					b.Password += "x"
				} else {
					chattest.Expect(t, s.Post(t, "/user/logout", held.Creds(nil)), 200, 0)
				}
				sent := s.Post(t, "/Message/Send", a.Creds(map[string]any{"uid_to": b.UID, "data": "after the " + end}))
				chattest.Expect(t, sent, 200, 0)
				last = sent.Int("id")
				r := <-got
				chattest.Expect(t, r, 401, 1004)
				if strings.Contains(string(r.Raw), "after the") {
					t.Fatalf("%s: the poll handed out %s", end, r.Raw)
				}
				held = login(t, s, b)
			}
		}
	})
}

// A session ended by another process (a direct delete) is refused once
// the cached copy is older than TokenCacheTTL; with the cache off, at once.
func TestSessionEndedElsewhere(t *testing.T) {
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, -1} {
		s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) { c.TokenCacheTTL = ttl }})
		c := s.SDKFor(t, s.NewUser(t, "a"))
		if _, err := c.Info(ctx); err != nil {
			t.Fatalf("info: %v", err)
		}
		if err := s.Module.DB().Exec("DELETE FROM chat_user_tokens").Error; err != nil {
			t.Fatal(err)
		}
		if ttl == 0 { // the default, 5 s
			if _, err := c.Info(ctx); err != nil {
				t.Fatalf("info within the TTL: %v", err)
			}
			s.Clock.Advance(6 * time.Second)
		}
		_, err := c.Info(ctx)
		chattest.ExpectErr(t, err, 401, 1004)
	}
}

// A profile changed by another process (a direct write) shows in
// /user/info once the cached copy is older than ProfileCacheTTL; with the
// cache off, at once. Changes through the module show at once either way.
func TestProfileChangedElsewhere(t *testing.T) {
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, -1} {
		s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) { c.ProfileCacheTTL = ttl }})
		c := s.SDKFor(t, s.NewUser(t, "a"))
		name := func() string {
			t.Helper()
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatalf("info: %v", err)
			}
			return info.Name
		}
		if got := name(); got != "a" {
			t.Fatalf("name %q", got)
		}
		if err := c.UpdateProfile(ctx, client.ProfileUpdate{Name: "b"}); err != nil {
			t.Fatalf("update: %v", err)
		}
		if got := name(); got != "b" {
			t.Fatalf("after an update through the module: %q", got)
		}
		if err := s.Module.DB().Exec("UPDATE chat_users SET name = 'c'").Error; err != nil {
			t.Fatal(err)
		}
		if ttl == 0 { // the default, 5 s
			if got := name(); got != "b" {
				t.Fatalf("within the TTL: %q", got)
			}
			s.Clock.Advance(6 * time.Second)
		}
		if got := name(); got != "c" {
			t.Fatalf("ttl %v: a change made elsewhere not shown: %q", ttl, got)
		}
	}
}
