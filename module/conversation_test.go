package module_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

const (
	pathHistory = "/Message/History"
	pathRead    = "/Message/Read"
	pathUnread  = "/Message/Unread"
	pathBlock   = "/Contacts/IO/block"
	pathUnblock = "/Contacts/IO/unblock"
	pathBlocked = "/Contacts/blocked"
)

type historyAnswer struct {
	Num   int    `json:"num"`
	Msg   string `json:"msg"`
	Error int    `json:"error"`
	Data  []struct {
		ID      int64  `json:"id"`
		UIDFrom int64  `json:"uid_from"`
		UIDTo   int64  `json:"uid_to"`
		Message string `json:"message"`
		Time    int64  `json:"time"`
		Read    bool   `json:"read"`
	} `json:"data"`
	More bool `json:"more"`
}

func history(t testing.TB, s *chattest.Server, u chattest.User, fields map[string]any) historyAnswer {
	t.Helper()
	r := s.Post(t, pathHistory, u.Creds(fields))
	chattest.Expect(t, r, 200, 0)
	var a historyAnswer
	if err := json.Unmarshal(r.Raw, &a); err != nil {
		t.Fatalf("history: %v: %s", err, r.Raw)
	}
	if a.Data == nil || a.Num != len(a.Data) || a.Msg != "success" {
		t.Fatalf("history: malformed answer %s", r.Raw)
	}
	return a
}

type unreadAnswer struct {
	Num  int `json:"num"`
	Data []struct {
		UIDFrom int64 `json:"uid_from"`
		Count   int64 `json:"count"`
		LastID  int64 `json:"last_id"`
	} `json:"data"`
}

func unread(t testing.TB, s *chattest.Server, u chattest.User) map[int64][2]int64 {
	t.Helper()
	r := s.Post(t, pathUnread, u.Creds(nil))
	chattest.Expect(t, r, 200, 0)
	var a unreadAnswer
	if err := json.Unmarshal(r.Raw, &a); err != nil || a.Data == nil || a.Num != len(a.Data) {
		t.Fatalf("unread: malformed answer %s (%v)", r.Raw, err)
	}
	out := map[int64][2]int64{}
	for _, e := range a.Data {
		out[e.UIDFrom] = [2]int64{e.Count, e.LastID}
	}
	return out
}

func markRead(t testing.TB, s *chattest.Server, u chattest.User, from int64, lastID int64) int64 {
	t.Helper()
	r := s.Post(t, pathRead, u.Creds(map[string]any{"uid_from": from, "last_id": lastID}))
	chattest.Expect(t, r, 200, 0)
	if r.Str("msg") != "success" {
		t.Fatalf("read: %s", r)
	}
	return r.Int("num")
}

func TestHistory(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c := s.NewUser(t, "a"), s.NewUser(t, "b"), s.NewUser(t, "c")
		s.Befriend(t, a, b)
		s.Befriend(t, a, c)
		var ids []int64
		for i := range 5 {
			from, to := a, b
			if i%2 == 1 {
				from, to = b, a
			}
			ids = append(ids, mustSend(t, s, from, to, fmt.Sprint("m", i)))
			mustSend(t, s, c, a, "noise") // another conversation of a's
		}

		h := history(t, s, a, map[string]any{"uid_with": b.UID})
		if h.Num != 5 || h.More {
			t.Fatalf("history: %+v", h)
		}
		for i, m := range h.Data {
			want := ids[4-i]
			if m.ID != want || m.Message != fmt.Sprint("m", 4-i) || m.Read || m.Time != s.Clock.Now().Unix() {
				t.Fatalf("data[%d] = %+v, want id %d", i, m, want)
			}
			if (4-i)%2 == 0 && (m.UIDFrom != a.UID || m.UIDTo != b.UID) || (4-i)%2 == 1 && (m.UIDFrom != b.UID || m.UIDTo != a.UID) {
				t.Fatalf("data[%d] has the wrong direction: %+v", i, m)
			}
		}
		// b's view is the same conversation.
		if hb := history(t, s, b, map[string]any{"uid_with": a.UID}); hb.Num != 5 || hb.Data[0].ID != ids[4] {
			t.Fatalf("b's history: %+v", hb)
		}

		// Keyset pages: 2, 2, 1.
		p1 := history(t, s, a, map[string]any{"uid_with": b.UID, "limit": 2})
		p2 := history(t, s, a, map[string]any{"uid_with": b.UID, "limit": "2", "before_id": p1.Data[1].ID})
		p3 := history(t, s, a, map[string]any{"uid_with": b.UID, "limit": 2, "before_id": p2.Data[1].ID})
		if !p1.More || !p2.More || p3.More || p1.Num != 2 || p2.Num != 2 || p3.Num != 1 {
			t.Fatalf("pages: %+v %+v %+v", p1, p2, p3)
		}
		if p1.Data[0].ID != ids[4] || p2.Data[0].ID != ids[2] || p3.Data[0].ID != ids[0] {
			t.Fatalf("pages out of order: %+v %+v %+v", p1, p2, p3)
		}

		// b reads what a sent up to ids[2]; a sees read ticks on those.
		if n := markRead(t, s, b, a.UID, ids[2]); n != 2 {
			t.Fatalf("newly read %d, want 2", n)
		}
		h = history(t, s, a, map[string]any{"uid_with": b.UID})
		for _, m := range h.Data {
			want := m.UIDFrom == a.UID && m.ID <= ids[2]
			if m.Read != want {
				t.Fatalf("message %d read=%v, want %v", m.ID, m.Read, want)
			}
		}

		// A stranger, or a user with whom there were never messages: an
		// empty page, never anyone else's messages.
		stranger := s.NewUser(t, "stranger")
		if h := history(t, s, stranger, map[string]any{"uid_with": a.UID}); h.Num != 0 || h.More {
			t.Fatalf("stranger's history: %+v", h)
		}
		if h := history(t, s, b, map[string]any{"uid_with": c.UID}); h.Num != 0 {
			t.Fatalf("b's history with c: %+v", h)
		}
		if h := history(t, s, a, map[string]any{"uid_with": noSuchUID}); h.Num != 0 {
			t.Fatalf("history with nobody: %+v", h)
		}

		// History survives a contact delete, on both sides.
		chattest.Expect(t, call(t, s, a, pathDel, map[string]any{"data": uidList(b.UID)}), 200, 0)
		if h := history(t, s, b, map[string]any{"uid_with": a.UID}); h.Num != 5 {
			t.Fatalf("history after delete: %+v", h)
		}
	})
}

func TestConversationBadInput(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{})
	a := s.NewUser(t, "a")
	for _, tc := range []struct {
		path   string
		fields map[string]any
		names  string
	}{
		{pathHistory, map[string]any{}, "uid_with"},
		{pathHistory, map[string]any{"uid_with": "x"}, "uid_with"},
		{pathHistory, map[string]any{"uid_with": -1}, "uid_with"},
		{pathHistory, map[string]any{"uid_with": a.UID}, "uid_with"},
		{pathHistory, map[string]any{"uid_with": 10000002, "limit": 0}, "limit"},
		{pathHistory, map[string]any{"uid_with": 10000002, "limit": 101}, "limit"},
		{pathHistory, map[string]any{"uid_with": 10000002, "before_id": "abc"}, "before_id"},
		{pathHistory, map[string]any{"uid_with": 10000002, "before_id": -5}, "before_id"},
		{pathRead, map[string]any{"last_id": 1}, "uid_from"},
		{pathRead, map[string]any{"uid_from": 10000002}, "last_id"},
		{pathRead, map[string]any{"uid_from": 10000002, "last_id": 1.5}, "last_id"},
		{pathRead, map[string]any{"uid_from": a.UID, "last_id": 1}, "uid_from"},
		{pathBlock, map[string]any{}, "data"},
		{pathBlock, map[string]any{"data": []any{}}, "data"},
		{pathUnblock, map[string]any{"data": []any{map[string]any{}}}, "data[0].uid"},
	} {
		r := call(t, s, a, tc.path, tc.fields)
		chattest.Expect(t, r, 400, 1001)
		if !strings.Contains(r.Str("msg"), tc.names) {
			t.Errorf("%s %v: msg %q does not name %s", tc.path, tc.fields, r.Str("msg"), tc.names)
		}
	}
	// Without a session, each route is a 401.
	for _, p := range []string{pathHistory, pathRead, pathUnread, pathBlock, pathUnblock, pathBlocked} {
		chattest.Expect(t, s.Post(t, p, map[string]any{"uid": a.UID, "access_token": "nope"}), 401, 1004)
	}
}

func TestReadAndUnread(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		me, x, y := s.NewUser(t, "me"), s.NewUser(t, "x"), s.NewUser(t, "y")
		s.Befriend(t, me, x)
		s.Befriend(t, me, y)
		if u := unread(t, s, me); len(u) != 0 {
			t.Fatalf("unread before any message: %v", u)
		}
		var fromX []int64
		for range 3 {
			fromX = append(fromX, mustSend(t, s, x, me, "hi"))
		}
		lastY := mustSend(t, s, y, me, "hey")
		mustSend(t, s, me, x, "mine do not count for me")
		u := unread(t, s, me)
		if len(u) != 2 || u[x.UID] != [2]int64{3, fromX[2]} || u[y.UID] != [2]int64{1, lastY} {
			t.Fatalf("unread: %v", u)
		}
		if u := unread(t, s, x); len(u) != 1 || u[me.UID][0] != 1 {
			t.Fatalf("x's unread: %v", u)
		}

		if n := markRead(t, s, me, x.UID, fromX[0]); n != 1 {
			t.Fatalf("read %d, want 1", n)
		}
		if n := markRead(t, s, me, x.UID, fromX[0]); n != 0 {
			t.Fatalf("read again %d, want 0 (idempotent)", n)
		}
		if n := markRead(t, s, me, x.UID, 1); n != 0 {
			t.Fatalf("read backwards %d, want 0", n)
		}
		if u := unread(t, s, me); u[x.UID] != [2]int64{2, fromX[2]} {
			t.Fatalf("unread after a read: %v", u)
		}
		// A last_id past everything marks what is stored, not what comes.
		if n := markRead(t, s, me, x.UID, 1<<40); n != 2 {
			t.Fatalf("read all %d, want 2", n)
		}
		if _, ok := unread(t, s, me)[x.UID]; ok {
			t.Fatal("x still listed as unread")
		}
		next := mustSend(t, s, x, me, "later")
		if u := unread(t, s, me); u[x.UID] != [2]int64{1, next} {
			t.Fatalf("a later message is not unread: %v", u)
		}
		// Reading from someone who never wrote, or no one, is nothing.
		if n := markRead(t, s, me, noSuchUID, 5); n != 0 {
			t.Fatalf("read from nobody: %d", n)
		}
		if n := s.Count(t, "conversations", "uid = ? AND unread < 0", me.UID); n != 0 {
			t.Fatal("a negative unread count")
		}
	})
}

// TestReadUnreadConcurrent has several senders write to one reader who
// marks read as fast as it can meanwhile: every pair ends with what was
// read plus what is unread equal to what was sent, and the counters agree
// with the messages.
func TestReadUnreadConcurrent(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		reader := s.NewUser(t, "reader")
		const senders, each = 4, 25
		var from []chattest.User
		for i := range senders {
			u := s.NewUser(t, fmt.Sprint("s", i))
			s.Befriend(t, u, reader)
			from = append(from, u)
		}
		done := make(chan struct{})
		errs := sendAll(s, from, reader, each)
		var read [senders]int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				for i, u := range from {
					r, err := s.TryPost(pathRead, reader.Creds(map[string]any{"uid_from": u.UID, "last_id": 1 << 40}))
					if err != nil || r.Status != 200 {
						t.Errorf("read: %v %v", r, err)
						return
					}
					if r.Int("num") < 0 {
						t.Errorf("negative num: %s", r)
					}
					read[i] += r.Int("num")
				}
			}
		}()
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		close(done)
		wg.Wait()
		u := unread(t, s, reader)
		for i, snd := range from {
			if got := read[i] + u[snd.UID][0]; got != each {
				t.Errorf("sender %d: read %d + unread %d = %d, want %d", i, read[i], u[snd.UID][0], got, each)
			}
		}
		// The counters agree with the rows.
		for _, snd := range from {
			var readID, cnt int64
			if err := s.Module.DB().Table("chat_conversations").Select("read_id").
				Where("uid = ? AND peer_uid = ?", reader.UID, snd.UID).Scan(&readID).Error; err != nil {
				t.Fatal(err)
			}
			cnt = s.Count(t, "messages", "to_uid = ? AND from_uid = ? AND id > ?", reader.UID, snd.UID, readID)
			if cnt != u[snd.UID][0] {
				t.Errorf("sender %d: counter %d, rows past read_id %d", snd.UID, u[snd.UID][0], cnt)
			}
		}
	})
}

func TestBlock(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c, d := s.NewUser(t, "a"), s.NewUser(t, "b"), s.NewUser(t, "c"), s.NewUser(t, "d")
		s.Befriend(t, a, b)
		mustSend(t, s, b, a, "before the block")
		addContacts(t, s, c, a.UID) // c asks a
		addContacts(t, s, a, d.UID) // a asks d

		r := call(t, s, a, pathBlock, map[string]any{"data": uidList(b.UID, c.UID, d.UID, a.UID, noSuchUID, b.UID)})
		chattest.Expect(t, r, 200, 0)
		if r.Int("num") != 3 {
			t.Fatalf("block: %s", r)
		}
		if n := s.Count(t, "contacts", "uid IN ? OR peer_uid IN ?", []int64{a.UID}, []int64{a.UID}); n != 0 {
			t.Fatalf("%d contact rows left", n)
		}
		if n := s.Count(t, "contact_requests", ""); n != 0 {
			t.Fatalf("%d requests left", n)
		}
		// Blocking again changes nothing.
		if r := call(t, s, a, pathBlock, map[string]any{"data": uidList(b.UID)}); r.Int("num") != 0 {
			t.Fatalf("block again: %s", r)
		}
		bl := call(t, s, a, pathBlocked, nil)
		chattest.Expect(t, bl, 200, 0)
		got := data(t, bl)
		if bl.Int("num") != 3 || len(got) != 3 || intOf(got[0]["uid"]) != b.UID || got[0]["name"] != "b" || intOf(got[2]["uid"]) != d.UID {
			t.Fatalf("blocked: %s", bl)
		}
		if r := call(t, s, b, pathBlocked, nil); r.Int("num") != 0 {
			t.Fatalf("b blocks no one: %s", r)
		}

		// The blocked user cannot ask again, nor message, and neither can a.
		r = addContacts(t, s, b, a.UID)
		if st := data(t, r)[0]["status"]; st != "not_found" || r.Int("num") != 0 {
			t.Fatalf("blocked add: %s", r)
		}
		chattest.Expect(t, send(t, s, b, a, "let me in"), 403, 1008)
		chattest.Expect(t, send(t, s, a, b, "go away"), 403, 1008)
		if st := data(t, addContacts(t, s, a, b.UID))[0]["status"]; st != "not_found" {
			t.Fatalf("a adding whom it blocks: %v", st)
		}
		// History stays, for both.
		if h := history(t, s, b, map[string]any{"uid_with": a.UID}); h.Num != 1 {
			t.Fatalf("history after block: %+v", h)
		}

		// Unblock restores nothing, but makes asking possible again.
		r = call(t, s, a, pathUnblock, map[string]any{"data": uidList(b.UID, b.UID, noSuchUID)})
		chattest.Expect(t, r, 200, 0)
		if r.Int("num") != 1 {
			t.Fatalf("unblock: %s", r)
		}
		if n := s.Count(t, "contacts", "uid = ?", a.UID); n != 0 {
			t.Fatal("unblock restored a contact")
		}
		chattest.Expect(t, send(t, s, b, a, "still not a contact"), 403, 1008)
		if st := data(t, addContacts(t, s, b, a.UID))[0]["status"]; st != "requested" {
			t.Fatalf("add after unblock: %v", st)
		}
	})
}

// TestBlockWithStrangersAllowed: where anyone may message anyone, a block
// still stops messages both ways.
func TestBlockWithStrangersAllowed(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) { c.AllowStrangers = true }})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		mustSend(t, s, b, a, "hello stranger")
		chattest.Expect(t, call(t, s, a, pathBlock, map[string]any{"data": uidList(b.UID)}), 200, 0)
		chattest.Expect(t, send(t, s, b, a, "again"), 403, 1008)
		chattest.Expect(t, send(t, s, a, b, "nor you"), 403, 1008)
		chattest.Expect(t, call(t, s, a, pathUnblock, map[string]any{"data": uidList(b.UID)}), 200, 0)
		mustSend(t, s, b, a, "after unblock")
	})
}

// TestSendsRacingBlock: Sends racing a block either committed before it
// (and stand) or are refused; none is stored after it.
func TestSendsRacingBlock(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		var ok, refused int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for j := range 15 {
					r, err := s.TryPost("/Message/Send", b.Creds(map[string]any{"uid_to": a.UID, "data": fmt.Sprint(i, "-", j)}))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					switch {
					case r.Status == 200:
						ok++
					case r.Status == 403 && r.Code() == 1008:
						refused++
					default:
						t.Errorf("send: %s", r)
					}
					mu.Unlock()
				}
			}()
		}
		close(start)
		time.Sleep(5 * time.Millisecond)
		chattest.Expect(t, call(t, s, a, pathBlock, map[string]any{"data": uidList(b.UID)}), 200, 0)
		wg.Wait()
		if stored := s.Count(t, "messages", "from_uid = ?", b.UID); stored != ok {
			t.Fatalf("%d answered 200, %d stored", ok, stored)
		}
		if u := unread(t, s, a); u[b.UID][0] != ok {
			t.Fatalf("unread %d, want %d", u[b.UID][0], ok)
		}
		after := s.Count(t, "messages", "from_uid = ?", b.UID)
		chattest.Expect(t, send(t, s, b, a, "after"), 403, 1008)
		if s.Count(t, "messages", "from_uid = ?", b.UID) != after {
			t.Fatal("a message was stored after the block")
		}
		_ = refused
	})
}

// TestRetentionKeepsCountersRight: purging unread messages takes them off
// the unread counts; purging read ones leaves the counts alone.
func TestRetentionKeepsCountersRight(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		me, x := s.NewUser(t, "me"), s.NewUser(t, "x")
		s.Befriend(t, me, x)
		first := mustSend(t, s, x, me, "old read")
		mustSend(t, s, x, me, "old unread")
		mustSend(t, s, x, me, "old unread 2")
		markRead(t, s, me, x.UID, first)
		s.Clock.Advance(20 * 24 * time.Hour)
		me, x = login(t, s, me), login(t, s, x)
		recent := mustSend(t, s, x, me, "recent")
		s.Clock.Advance(11 * 24 * time.Hour) // the first three are 31 days old
		s.Module.SweepNow(t.Context())
		if n := s.Count(t, "messages", ""); n != 1 {
			t.Fatalf("%d messages left, want 1", n)
		}
		me, x = login(t, s, me), login(t, s, x)
		if u := unread(t, s, me); u[x.UID] != [2]int64{1, recent} {
			t.Fatalf("unread after purge: %v", u)
		}
		if n := markRead(t, s, me, x.UID, recent); n != 1 {
			t.Fatalf("read after purge: %d", n)
		}
	})
}
