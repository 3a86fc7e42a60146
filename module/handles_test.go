package module_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

// register signs up name with the optional handle and fails unless the
// answer is status/code.
func register(t *testing.T, s *chattest.Server, name, handle string, status int, code int64) *chattest.Response {
	t.Helper()
	body := map[string]any{"name": name, "passwd": "secret-" + name}
	if handle != "" {
		body["handle"] = handle
	}
	r := s.Post(t, "/user/reg/ajax_reg", body)
	chattest.Expect(t, r, status, code)
	return r
}

// loginAs logs in by handle and returns the user.
func loginAs(t *testing.T, s *chattest.Server, name, handle string) chattest.User {
	t.Helper()
	r := s.Post(t, "/user/login", map[string]any{"handle": handle, "passwd": "secret-" + name})
	chattest.Expect(t, r, 200, 0)
	return chattest.User{UID: r.Int("uid"), Token: r.Str("access_token"), Password: "secret-" + name, Name: name}
}

// Handles are unique whatever their case, stored and shown lower-cased,
// and malformed ones are 400s naming the field.
func TestHandleRules(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		register(t, s, "Alice", "Alice.B", 200, 0)
		if r := register(t, s, "Other", "aLICE.b", 409, 1007); r.Int("reg") != 0 {
			t.Fatalf("a taken handle: %s, want reg 0", r)
		}
		for _, bad := range []string{"ab", "has space", strings.Repeat("a", 33), "al\u212Ace", "ali-ce", "al%ce", "ａｌｉｃｅ"} {
			r := register(t, s, "Bad", bad, 400, 1001)
			if !strings.Contains(r.Str("msg"), "handle") {
				t.Fatalf("handle %q: %s does not name the field", bad, r)
			}
		}
		a := loginAs(t, s, "Alice", "ALICE.b")
		if got := s.Post(t, "/user/info", a.Creds(nil)).Str("handle"); got != "alice.b" {
			t.Fatalf("handle %q, want alice.b", got)
		}
		b := s.NewUser(t, "Bob") // no handle
		if r := s.Post(t, "/user/info", b.Creds(nil)); r.Body["handle"] != "" {
			t.Fatalf("no handle shows as %v, want \"\": %s", r.Body["handle"], r)
		}
		update := func(u chattest.User, fields map[string]any, status int, code int64) *chattest.Response {
			t.Helper()
			r := s.Post(t, "/user/info/update", u.Creds(fields))
			chattest.Expect(t, r, status, code)
			return r
		}
		update(b, map[string]any{"handle": "Alice.B"}, 409, 1007)
		if r := update(b, map[string]any{"handle": "b!"}, 400, 1001); !strings.Contains(r.Str("msg"), "handle") {
			t.Fatalf("bad handle: %s", r)
		}
		if r := update(b, map[string]any{"discoverable": 2}, 400, 1001); !strings.Contains(r.Str("msg"), "discoverable") {
			t.Fatalf("bad discoverable: %s", r)
		}
		update(b, map[string]any{"discoverable": "0"}, 200, 0)
		if r := s.Post(t, "/user/info", b.Creds(nil)); r.Int("discoverable") != 0 || r.Body["discoverable"] == nil {
			t.Fatalf("after discoverable 0: %s", r)
		}
		if r := s.Post(t, "/user/info", a.Creds(nil)); r.Int("discoverable") != 1 {
			t.Fatalf("discoverable by default: %s", r)
		}
		update(b, map[string]any{"handle": "Bob_99"}, 200, 0)
		update(b, map[string]any{"handle": "bob_99"}, 200, 0) // one's own again
		update(a, map[string]any{"handle": "alice"}, 200, 0)
		// The old handle is free once its owner took another.
		update(b, map[string]any{"handle": "alice.b", "name": "Bobby"}, 200, 0)
		info := s.Post(t, "/user/info", b.Creds(nil))
		if info.Str("handle") != "alice.b" || info.Str("name") != "Bobby" {
			t.Fatalf("after update: %s", info)
		}
		if n := s.Count(t, "users", "handle = ?", "alice"); n != 1 {
			t.Fatalf("%d users with handle alice", n)
		}
	})
}

// Every profile carries the handle: contacts, Info, requests, the
// blocked list and group members.
func TestProfilesCarryHandle(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		register(t, s, "Alice", "alice", 200, 0)
		a := loginAs(t, s, "Alice", "alice")
		b, c := s.NewUser(t, "Bob"), s.NewUser(t, "Carol")
		addContacts(t, s, a, b.UID, c.UID)
		want := func(r *chattest.Response, what string) {
			t.Helper()
			chattest.Expect(t, r, 200, 0)
			data, _ := r.Body["data"].([]any)
			for _, e := range data {
				p := e.(map[string]any)
				h, ok := p["handle"]
				if !ok || (int64(p["uid"].(float64)) == a.UID) != (h == "alice") || (int64(p["uid"].(float64)) != a.UID && h != "") {
					t.Fatalf("%s: %s", what, r)
				}
			}
			if len(data) == 0 {
				t.Fatalf("%s: empty: %s", what, r)
			}
		}
		want(call(t, s, b, pathPending, nil), "requests")
		want(call(t, s, b, pathInfo, map[string]any{"data": uidList(a.UID, c.UID)}), "Info")
		mustAnswer(t, s, b, a.UID, true)
		want(call(t, s, b, pathList, nil), "contacts")
		chattest.Expect(t, call(t, s, c, "/Contacts/IO/block", map[string]any{"data": uidList(a.UID)}), 200, 0)
		want(call(t, s, c, "/Contacts/blocked", nil), "blocked")
		g := call(t, s, a, "/Group/create", map[string]any{"name": "g", "data": uidList(b.UID)})
		chattest.Expect(t, g, 200, 0)
		want(call(t, s, b, "/Group/info", map[string]any{"gid": g.Int("gid")}), "group info")
	})
}

// A login names its account by uid or handle (any case); a handle no one
// has is answered exactly as a wrong password.
func TestLoginByHandle(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		register(t, s, "Alice", "alice_1", 200, 0)
		loginAs(t, s, "Alice", "ALICE_1")
		wrongPw := s.Post(t, "/user/login", map[string]any{"handle": "alice_1", "passwd": "not-her-password"})
		noOne := s.Post(t, "/user/login", map[string]any{"handle": "alice_2", "passwd": "not-her-password"})
		chattest.Expect(t, wrongPw, 401, 1005)
		chattest.Expect(t, noOne, 401, 1005)
		if string(wrongPw.Raw) != string(noOne.Raw) {
			t.Fatalf("a wrong handle is told from a wrong password: %s vs %s", noOne.Raw, wrongPw.Raw)
		}
		if r := s.Post(t, "/user/login", map[string]any{"passwd": "x"}); r.Status != 400 || !strings.Contains(r.Str("msg"), "uid") || r.Int("login") != 0 {
			t.Fatalf("neither uid nor handle: %s", r)
		}
		if r := s.Post(t, "/user/login", map[string]any{"handle": "a b", "passwd": "x"}); r.Status != 400 || !strings.Contains(r.Str("msg"), "handle") {
			t.Fatalf("malformed handle: %s", r)
		}
	})
}

// A handle's failures are throttled like a uid's: guesses at an account
// by its handle do not escape the per-account throttle.
func TestLoginThrottleByHandle(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) {
		c.LoginFailures = 2
	}})
	register(t, s, "Alice", "alice", 200, 0)
	for i := 0; i < 3; i++ {
		chattest.Expect(t, s.Post(t, "/user/login", map[string]any{"handle": "Alice", "passwd": "guess-" + fmt.Sprint(i)}), 401, 1005)
	}
	chattest.Expect(t, s.Post(t, "/user/login", map[string]any{"handle": "alice", "passwd": "secret-Alice"}), 429, 1010)
}

// A null uid is no uid, to the throttle as to the login: with it, guesses
// by handle were not counted at all.
func TestLoginThrottleNullUID(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) {
		c.LoginFailures = 2
	}})
	register(t, s, "Alice", "alice", 200, 0)
	for i := 0; i < 3; i++ {
		chattest.Expect(t, s.Post(t, "/user/login", map[string]any{"uid": nil, "handle": "alice", "passwd": "guess-" + fmt.Sprint(i)}), 401, 1005)
	}
	chattest.Expect(t, s.Post(t, "/user/login", map[string]any{"uid": nil, "handle": "alice", "passwd": "secret-Alice"}), 429, 1010)
	chattest.Expect(t, s.Post(t, "/user/login", map[string]any{"handle": "alice", "passwd": "secret-Alice"}), 429, 1010)
}

// search posts q as u and returns the uids answered, in order.
func search(t *testing.T, s *chattest.Server, u chattest.User, q string) []int64 {
	t.Helper()
	r := call(t, s, u, "/Contacts/search", map[string]any{"q": q})
	chattest.Expect(t, r, 200, 0)
	data, _ := r.Body["data"].([]any)
	if int(r.Int("num")) != len(data) {
		t.Fatalf("num %d for %d entries: %s", r.Int("num"), len(data), r)
	}
	out := make([]int64, len(data))
	for i, e := range data {
		p := e.(map[string]any)
		for _, k := range []string{"uid", "name", "head_img", "handle"} {
			if _, ok := p[k]; !ok {
				t.Fatalf("entry without %s: %s", k, r)
			}
		}
		out[i] = int64(p["uid"].(float64))
	}
	return out
}

func sameUIDs(a, b []int64) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// Search finds handles by prefix (first, in handle order) and names by
// any part (then, newest first); never me, anyone blocking me or blocked
// by me, nor anyone not discoverable; at most 20; wildcards are literal.
func TestSearch(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		me := s.NewUser(t, "Searcher pat")
		uid := func(name, handle string) int64 {
			return register(t, s, name, handle, 200, 0).Int("uid")
		}
		patB := uid("Zed", "pat.b")
		patA := uid("Yan", "pat_a")
		named := uid("Old Patty", "")
		newer := uid("Spatula", "x_pat")
		uid("Pa t", "pa.t") // neither handle nor name holds "pat"
		hidden := uid("Patrick", "patrick")
		uid("Pat blocks", "patblocks")
		blocked := uid("Pat blocked", "patblocked")
		chattest.Expect(t, s.Post(t, "/user/info/update", loginAs(t, s, "Patrick", "patrick").Creds(map[string]any{"discoverable": 0})), 200, 0)
		chattest.Expect(t, call(t, s, loginAs(t, s, "Pat blocks", "patblocks"), "/Contacts/IO/block", map[string]any{"data": uidList(me.UID)}), 200, 0)
		chattest.Expect(t, call(t, s, me, "/Contacts/IO/block", map[string]any{"data": uidList(blocked)}), 200, 0)

		if got, want := search(t, s, me, "PAT"), []int64{patB, patA, newer, named}; !sameUIDs(got, want) {
			t.Fatalf("search pat: %v, want %v (handles by prefix, then names newest first)", got, want)
		}
		// _ and % are themselves, not wildcards: pat_ is not pat.
		if got, want := search(t, s, me, "pat_"), []int64{patA}; !sameUIDs(got, want) {
			t.Fatalf("search pat_: %v, want %v", got, want)
		}
		if got := search(t, s, me, "p%t"); len(got) != 0 {
			t.Fatalf("search p%%t: %v, want none", got)
		}
		// Made discoverable again, found again.
		chattest.Expect(t, s.Post(t, "/user/info/update", loginAs(t, s, "Patrick", "patrick").Creds(map[string]any{"discoverable": "1"})), 200, 0)
		if got, want := search(t, s, me, "patr"), []int64{hidden}; !sameUIDs(got, want) {
			t.Fatalf("search patr: %v, want %v", got, want)
		}
		for i := 0; i < 25; i++ {
			uid(fmt.Sprintf("many %d", i), fmt.Sprintf("many%02d", i))
		}
		if got := search(t, s, me, "many"); len(got) != 20 {
			t.Fatalf("search many: %d answers, want 20", len(got))
		}
		for _, q := range []any{"p", strings.Repeat("p", 65), "", "a\x00b", 12} {
			r := call(t, s, me, "/Contacts/search", map[string]any{"q": q})
			chattest.Expect(t, r, 400, 1001)
			if !strings.Contains(r.Str("msg"), "q") {
				t.Fatalf("q %q: %s does not name the field", q, r)
			}
		}
	})
}

// Search is limited per user: 429/1010 past SearchRateLimit a window.
func TestSearchRateLimit(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) {
		c.SearchRateLimit = 3
		c.RateLimitWindow = time.Hour
	}})
	u, other := s.NewUser(t, "a"), s.NewUser(t, "b")
	for i := 0; i < 3; i++ {
		search(t, s, u, "zz")
	}
	r := call(t, s, u, "/Contacts/search", map[string]any{"q": "zz"})
	chattest.Expect(t, r, 429, 1010)
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	search(t, s, other, "zz")
}

// The handle prefix match is served by the handle's unique index on both
// databases (a LIKE 'q%' with ESCAPE), not by a scan of the users.
func TestSearchUsesHandleIndex(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		for i := 0; i < 50; i++ {
			register(t, s, fmt.Sprintf("u%d", i), fmt.Sprintf("h%03d", i), 200, 0)
		}
		const q = "SELECT u.uid FROM chat_users AS u WHERE u.handle LIKE ? ESCAPE '!' ORDER BY u.handle LIMIT 20"
		var plan string
		if db.Name == "mysql" {
			var rows []map[string]any
			if err := s.Module.DB().Raw("EXPLAIN "+q, "h01%").Scan(&rows).Error; err != nil {
				t.Fatal(err)
			}
			plan = fmt.Sprint(rows[0]["key"], " ", rows[0]["type"])
		} else {
			var rows []struct{ Detail string }
			if err := s.Module.DB().Raw("EXPLAIN QUERY PLAN "+q, "h01%").Scan(&rows).Error; err != nil {
				t.Fatal(err)
			}
			plan = fmt.Sprint(rows)
		}
		if !strings.Contains(plan, "uq_chat_users_handle") {
			t.Fatalf("plan %q does not use the handle index", plan)
		}
		t.Log(plan)
	})
}

// The SDK registers with a handle, logs in by it, changes it and
// discoverability, and searches.
func TestSDKHandlesAndSearch(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		ctx := context.Background()
		c := s.SDK(t)
		uid, err := c.Register(ctx, "Alice", "alice-pw", client.WithHandle("Alice"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Register(ctx, "Other", "other-pw", client.WithHandle("ALICE"))
		chattest.ExpectErr(t, err, 409, client.CodeConflict)
		_, err = c.LoginHandle(ctx, "nobody", "alice-pw")
		chattest.ExpectErr(t, err, 401, client.CodeBadLogin)
		sess, err := c.LoginHandle(ctx, "aLiCe", "alice-pw")
		if err != nil || sess.UID != uid {
			t.Fatalf("LoginHandle: %+v, %v", sess, err)
		}
		info, err := c.Info(ctx)
		if err != nil || info.Handle != "alice" || info.UID != uid {
			t.Fatalf("Info: %+v, %v", info, err)
		}
		bob := s.NewUser(t, "Bob")
		bc := s.SDKFor(t, bob)
		found, err := bc.Search(ctx, "ali")
		if err != nil || len(found) != 1 || found[0] != (client.Profile{UID: uid, Name: "Alice", Handle: "alice"}) {
			t.Fatalf("Search: %+v, %v", found, err)
		}
		no := false
		if err := c.UpdateProfile(ctx, client.ProfileUpdate{Handle: "alice2", Discoverable: &no}); err != nil {
			t.Fatal(err)
		}
		if found, err := bc.Search(ctx, "ali"); err != nil || len(found) != 0 {
			t.Fatalf("Search of one not discoverable: %+v, %v", found, err)
		}
		err = bc.UpdateProfile(ctx, client.ProfileUpdate{Handle: "Alice2"})
		chattest.ExpectErr(t, err, 409, client.CodeConflict)
		_, err = bc.Search(ctx, "a")
		chattest.ExpectErr(t, err, 400, client.CodeInvalid)
	})
}
