package module_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
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

// historyRaw is a hand-built /Message/History, for what the SDK never
// sends (numbers as strings) and to check the answer's envelope.
func historyRaw(t testing.TB, s *chattest.Server, u chattest.User, fields map[string]any) historyAnswer {
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

// history reads one page of u's conversation through the SDK.
func history(t testing.TB, s *chattest.Server, u chattest.User, r client.HistoryRequest) client.HistoryPage {
	t.Helper()
	p, err := s.SDKFor(t, u).History(context.Background(), r)
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	if p.Messages == nil {
		t.Fatalf("history: data is null: %+v", p)
	}
	return p
}

type unreadAnswer struct {
	Num  int `json:"num"`
	Data []struct {
		UIDFrom int64 `json:"uid_from"`
		Count   int64 `json:"count"`
		LastID  int64 `json:"last_id"`
	} `json:"data"`
}

// unreadRaw is a hand-built /Message/Unread, to check the answer's
// envelope.
func unreadRaw(t testing.TB, s *chattest.Server, u chattest.User) map[int64][2]int64 {
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

// unread returns u's unread counts and last ids per sender, through the
// SDK.
func unread(t testing.TB, s *chattest.Server, u chattest.User) map[int64][2]int64 {
	t.Helper()
	counts, err := s.SDKFor(t, u).Unread(context.Background())
	if err != nil {
		t.Fatalf("unread: %v", err)
	}
	if counts == nil {
		t.Fatal("unread: data is null")
	}
	out := map[int64][2]int64{}
	for _, e := range counts {
		out[e.UIDFrom] = [2]int64{e.Count, e.LastID}
	}
	return out
}

// markReadRaw is a hand-built /Message/Read, to check the answer's
// envelope.
func markReadRaw(t testing.TB, s *chattest.Server, u chattest.User, from int64, lastID int64) int64 {
	t.Helper()
	r := s.Post(t, pathRead, u.Creds(map[string]any{"uid_from": from, "last_id": lastID}))
	chattest.Expect(t, r, 200, 0)
	if r.Str("msg") != "success" {
		t.Fatalf("read: %s", r)
	}
	return r.Int("num")
}

// markRead marks u's messages from from up to lastID read through the SDK
// and returns how many were newly marked.
func markRead(t testing.TB, s *chattest.Server, u chattest.User, from int64, lastID int64) int64 {
	t.Helper()
	n, err := s.SDKFor(t, u).Read(context.Background(), from, lastID)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return int64(n)
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

		h := history(t, s, a, client.HistoryRequest{With: b.UID})
		if len(h.Messages) != 5 || h.More {
			t.Fatalf("history: %+v", h)
		}
		for i, m := range h.Messages {
			want := ids[4-i]
			if m.ID != want || m.Message.Message != fmt.Sprint("m", 4-i) || m.Read || m.Time != s.Clock.Now().Unix() {
				t.Fatalf("data[%d] = %+v, want id %d", i, m, want)
			}
			if (4-i)%2 == 0 && (m.UIDFrom != a.UID || m.UIDTo != b.UID) || (4-i)%2 == 1 && (m.UIDFrom != b.UID || m.UIDTo != a.UID) {
				t.Fatalf("data[%d] has the wrong direction: %+v", i, m)
			}
		}
		// b's view is the same conversation.
		if hb := history(t, s, b, client.HistoryRequest{With: a.UID}); len(hb.Messages) != 5 || hb.Messages[0].ID != ids[4] {
			t.Fatalf("b's history: %+v", hb)
		}

		// Keyset pages: 2, 2, 1.
		// The middle page is hand-built: limit as a string, as the SDK
		// never sends it.
		p1 := history(t, s, a, client.HistoryRequest{With: b.UID, Limit: 2})
		p2 := historyRaw(t, s, a, map[string]any{"uid_with": b.UID, "limit": "2", "before_id": p1.Messages[1].ID})
		p3 := history(t, s, a, client.HistoryRequest{With: b.UID, Limit: 2, BeforeID: p2.Data[1].ID})
		if !p1.More || !p2.More || p3.More || len(p1.Messages) != 2 || p2.Num != 2 || len(p3.Messages) != 1 {
			t.Fatalf("pages: %+v %+v %+v", p1, p2, p3)
		}
		if p1.Messages[0].ID != ids[4] || p2.Data[0].ID != ids[2] || p3.Messages[0].ID != ids[0] {
			t.Fatalf("pages out of order: %+v %+v %+v", p1, p2, p3)
		}

		// b reads what a sent up to ids[2]; a sees read ticks on those.
		if n := markRead(t, s, b, a.UID, ids[2]); n != 2 {
			t.Fatalf("newly read %d, want 2", n)
		}
		// Both sides see the same ticks: a on what it sent, b on what it
		// read.
		for _, viewer := range []struct {
			me   chattest.User
			with int64
		}{{a, b.UID}, {b, a.UID}} {
			h = history(t, s, viewer.me, client.HistoryRequest{With: viewer.with})
			for _, m := range h.Messages {
				want := m.UIDFrom == a.UID && m.ID <= ids[2]
				if m.Read != want {
					t.Fatalf("%s sees message %d read=%v, want %v", viewer.me.Name, m.ID, m.Read, want)
				}
			}
		}

		// A stranger, or a user with whom there were never messages: an
		// empty page, never anyone else's messages.
		stranger := s.NewUser(t, "stranger")
		if h := history(t, s, stranger, client.HistoryRequest{With: a.UID}); len(h.Messages) != 0 || h.More {
			t.Fatalf("stranger's history: %+v", h)
		}
		if h := history(t, s, b, client.HistoryRequest{With: c.UID}); len(h.Messages) != 0 {
			t.Fatalf("b's history with c: %+v", h)
		}
		// No user at all: 404/1006 (see TestConversationBadInput).

		// History survives a contact delete, on both sides.
		if n, err := s.SDKFor(t, a).DeleteContacts(context.Background(), b.UID); err != nil || n != 1 {
			t.Fatalf("delete: %d, %v", n, err)
		}
		if h := history(t, s, b, client.HistoryRequest{With: a.UID}); len(h.Messages) != 5 {
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
	// A uid that is no user's is 404/1006 naming it (API.md §2); one of
	// a user never talked to is an empty answer.
	b := s.NewUser(t, "b")
	for _, tc := range []struct {
		path   string
		fields map[string]any
		name   string
	}{
		{pathHistory, map[string]any{"uid_with": 99999999}, "uid_with"},
		{pathRead, map[string]any{"uid_from": 99999999, "last_id": 5}, "uid_from"},
	} {
		r := call(t, s, a, tc.path, tc.fields)
		chattest.Expect(t, r, 404, 1006)
		if !strings.Contains(r.Str("msg"), tc.name) {
			t.Errorf("%s %v: msg %q does not name %s", tc.path, tc.fields, r.Str("msg"), tc.name)
		}
	}
	chattest.Expect(t, call(t, s, a, pathHistory, map[string]any{"uid_with": b.UID}), 200, 0)
	chattest.Expect(t, call(t, s, a, pathRead, map[string]any{"uid_from": b.UID, "last_id": 5}), 200, 0)
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
		if u := unreadRaw(t, s, me); len(u) != 0 {
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
		if u := unreadRaw(t, s, x); len(u) != 1 || u[me.UID][0] != 1 {
			t.Fatalf("x's unread: %v", u)
		}

		if n := markReadRaw(t, s, me, x.UID, fromX[0]); n != 1 {
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
		// Reading from someone who never wrote is nothing (and from no
		// user at all, 404/1006: see TestConversationBadInput).
		if n := markRead(t, s, me, s.NewUser(t, "silent").UID, 5); n != 0 {
			t.Fatalf("read from someone who never wrote: %d", n)
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
		errs := sendAll(t, s, from, reader, each)
		rc := s.SDKFor(t, reader)
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
					n, err := rc.Read(context.Background(), u.UID, 1<<40)
					if err != nil {
						t.Errorf("read: %v", err)
						return
					}
					if n < 0 {
						t.Errorf("negative num: %d", n)
					}
					read[i] += int64(n)
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

		ctx := context.Background()
		ac, bc := s.SDKFor(t, a), s.SDKFor(t, b)
		if n, err := ac.Block(ctx, b.UID, c.UID, d.UID, a.UID, noSuchUID, b.UID); err != nil || n != 3 {
			t.Fatalf("block: %d, %v", n, err)
		}
		if n := s.Count(t, "contacts", "uid IN ? OR peer_uid IN ?", []int64{a.UID}, []int64{a.UID}); n != 0 {
			t.Fatalf("%d contact rows left", n)
		}
		if n := s.Count(t, "contact_requests", ""); n != 0 {
			t.Fatalf("%d requests left", n)
		}
		// Blocking again changes nothing.
		if n, err := ac.Block(ctx, b.UID); err != nil || n != 0 {
			t.Fatalf("block again: %d, %v", n, err)
		}
		// The list is hand-built once, for its envelope (num).
		bl := call(t, s, a, pathBlocked, nil)
		chattest.Expect(t, bl, 200, 0)
		if bl.Int("num") != 3 || len(data(t, bl)) != 3 {
			t.Fatalf("blocked: %s", bl)
		}
		got, err := ac.Blocked(ctx)
		if err != nil || len(got) != 3 || got[0].UID != b.UID || got[0].Name != "b" || got[2].UID != d.UID {
			t.Fatalf("blocked: %+v, %v", got, err)
		}
		if got, err := bc.Blocked(ctx); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("b blocks no one: %+v, %v", got, err)
		}

		// The blocked user cannot ask again, nor message, and neither can
		// a. (The add is hand-built for its num, which the SDK does not
		// return.)
		r := addContacts(t, s, b, a.UID)
		if st := data(t, r)[0]["status"]; st != "not_found" || r.Int("num") != 0 {
			t.Fatalf("blocked add: %s", r)
		}
		chattest.ExpectErr(t, sendErr(t, s, b, a, "let me in"), 403, client.CodeForbidden)
		chattest.ExpectErr(t, sendErr(t, s, a, b, "go away"), 403, client.CodeForbidden)
		if res, err := ac.AddContacts(ctx, b.UID); err != nil || len(res) != 1 || res[0] != (client.AddResult{UID: b.UID, Status: client.StatusNotFound}) {
			t.Fatalf("a adding whom it blocks: %+v, %v", res, err)
		}
		// History stays, for both.
		if h := history(t, s, b, client.HistoryRequest{With: a.UID}); len(h.Messages) != 1 {
			t.Fatalf("history after block: %+v", h)
		}

		// Unblock restores nothing, but makes asking possible again.
		if n, err := ac.Unblock(ctx, b.UID, b.UID, noSuchUID); err != nil || n != 1 {
			t.Fatalf("unblock: %d, %v", n, err)
		}
		if n := s.Count(t, "contacts", "uid = ?", a.UID); n != 0 {
			t.Fatal("unblock restored a contact")
		}
		chattest.ExpectErr(t, sendErr(t, s, b, a, "still not a contact"), 403, client.CodeForbidden)
		if res, err := bc.AddContacts(ctx, a.UID); err != nil || len(res) != 1 || res[0].Status != client.StatusRequested {
			t.Fatalf("add after unblock: %+v, %v", res, err)
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
		ac := s.SDKFor(t, a)
		if _, err := ac.Block(context.Background(), b.UID); err != nil {
			t.Fatal(err)
		}
		chattest.ExpectErr(t, sendErr(t, s, b, a, "again"), 403, client.CodeForbidden)
		chattest.ExpectErr(t, sendErr(t, s, a, b, "nor you"), 403, client.CodeForbidden)
		if _, err := ac.Unblock(context.Background(), b.UID); err != nil {
			t.Fatal(err)
		}
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
		bc := s.SDKFor(t, b)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for j := range 15 {
					_, err := bc.Send(context.Background(), a.UID, fmt.Sprint(i, "-", j))
					var e *client.Error
					mu.Lock()
					switch {
					case err == nil:
						ok++
					case errors.As(err, &e) && e.Status == 403 && e.Code == client.CodeForbidden:
						refused++
					default:
						t.Errorf("send: %v", err)
					}
					mu.Unlock()
				}
			}()
		}
		close(start)
		time.Sleep(5 * time.Millisecond)
		if _, err := s.SDKFor(t, a).Block(context.Background(), b.UID); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if stored := s.Count(t, "messages", "from_uid = ?", b.UID); stored != ok {
			t.Fatalf("%d answered 200, %d stored", ok, stored)
		}
		if u := unread(t, s, a); u[b.UID][0] != ok {
			t.Fatalf("unread %d, want %d", u[b.UID][0], ok)
		}
		after := s.Count(t, "messages", "from_uid = ?", b.UID)
		chattest.ExpectErr(t, sendErr(t, s, b, a, "after"), 403, client.CodeForbidden)
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
