package module_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/module"
	"gorm.io/gorm"
)

// recvAnswer is a decoded /Message/Recv answer.
type recvAnswer struct {
	Num   int    `json:"num"`
	Msg   string `json:"msg"`
	Error int    `json:"error"`
	Data  []struct {
		ID      int64  `json:"id"`
		UIDFrom int64  `json:"uid_from"`
		Message string `json:"message"`
		Time    int64  `json:"time"`
	} `json:"data"`
	LastID int64 `json:"last_id"`
	More   bool  `json:"more"`
}

func decodeRecv(r *chattest.Response) (recvAnswer, error) {
	var a recvAnswer
	if r.Status != 200 || r.Code() != 0 {
		return a, fmt.Errorf("recv: %s", r)
	}
	if err := json.Unmarshal(r.Raw, &a); err != nil {
		return a, fmt.Errorf("recv: %v: %s", err, r.Raw)
	}
	if a.Data == nil || a.Num != len(a.Data) || a.Msg != "success" {
		return a, fmt.Errorf("recv: malformed answer %s", r.Raw)
	}
	return a, nil
}

// recvRaw is a hand-built /Message/Recv, for what the SDK never sends
// (numbers as strings) or to see the answer's exact shape.
func recvRaw(t testing.TB, s *chattest.Server, u chattest.User, fields map[string]any) recvAnswer {
	t.Helper()
	a, err := decodeRecv(s.Post(t, "/Message/Recv", u.Creds(fields)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// recv reads u's messages through the SDK.
func recv(t testing.TB, s *chattest.Server, u chattest.User, r client.RecvRequest) client.RecvResult {
	t.Helper()
	got, err := s.SDKFor(t, u).Recv(context.Background(), r)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	// The SDK leaves Messages nil only for "data":null: the contract's
	// empty batch is [].
	if got.Messages == nil {
		t.Fatalf("recv: data is null: %+v", got)
	}
	return got
}

// last is a RecvRequest.LastID.
func last(id int64) *int64 { return &id }

// send is a hand-built /Message/Send, to look at the answer on the wire.
func send(t testing.TB, s *chattest.Server, from, to chattest.User, body string) *chattest.Response {
	t.Helper()
	return s.Post(t, "/Message/Send", from.Creds(map[string]any{"uid_to": to.UID, "data": body}))
}

// sendErr sends through the SDK and returns its error, for refusals.
func sendErr(t testing.TB, s *chattest.Server, from, to chattest.User, body string) error {
	t.Helper()
	_, err := s.SDKFor(t, from).Send(context.Background(), to.UID, body)
	return err
}

// mustSend sends through the SDK and returns the message's id.
func mustSend(t testing.TB, s *chattest.Server, from, to chattest.User, body string) int64 {
	t.Helper()
	sent, err := s.SDKFor(t, from).Send(context.Background(), to.UID, body)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if sent.ID <= 0 || sent.Time != s.Clock.Now().Unix() {
		t.Fatalf("send: %+v at %d", sent, s.Clock.Now().Unix())
	}
	return sent.ID
}

// login opens another session (device) for u through the SDK.
func login(t testing.TB, s *chattest.Server, u chattest.User) chattest.User {
	t.Helper()
	sess, err := s.SDK(t).Login(context.Background(), u.UID, u.Password)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if sess.UID != u.UID || sess.AccessToken == "" || sess.ExpireTime <= s.Clock.Now().Unix() {
		t.Fatalf("login: %+v", sess)
	}
	u.Token = sess.AccessToken
	return u
}

func TestSendRecvInOrder(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c := s.NewUser(t, "a"), s.NewUser(t, "b"), s.NewUser(t, "c")
		s.Befriend(t, a, b)
		s.Befriend(t, c, b)

		type sent struct {
			from chattest.User
			body string
			id   int64
		}
		msgs := []sent{{a, "hello", 0}, {c, "你好 🌍", 0}, {a, "line one\nline two", 0}, {c, strings.Repeat("界", 4000), 0}, {a, "bye", 0}}
		// The first send is hand-built, to check the answer's envelope;
		// the others go through the SDK.
		first := send(t, s, msgs[0].from, b, msgs[0].body)
		chattest.Expect(t, first, 200, 0)
		if first.Int("id") <= 0 || first.Int("num") != 1 || first.Str("msg") != "success" || first.Int("time") != s.Clock.Now().Unix() {
			t.Fatalf("send: %s", first)
		}
		msgs[0].id = first.Int("id")
		for i := range msgs {
			if i > 0 {
				msgs[i].id = mustSend(t, s, msgs[i].from, b, msgs[i].body)
			}
			if i > 0 && msgs[i].id <= msgs[i-1].id {
				t.Fatalf("ids do not increase: %d after %d", msgs[i].id, msgs[i-1].id)
			}
		}

		got := recv(t, s, b, client.RecvRequest{})
		if len(got.Messages) != len(msgs) || got.More {
			t.Fatalf("got %d messages (more=%v), want %d", len(got.Messages), got.More, len(msgs))
		}
		for i, m := range got.Messages {
			w := msgs[i]
			if m.ID != w.id || m.UIDFrom != w.from.UID || m.Message != w.body || m.Time != s.Clock.Now().Unix() {
				t.Fatalf("message %d: got {%d %d %.20q %d}, want {%d %d %.20q}", i, m.ID, m.UIDFrom, m.Message, m.Time, w.id, w.from.UID, w.body)
			}
		}
		if got.LastID != msgs[len(msgs)-1].id {
			t.Fatalf("last_id %d, want %d", got.LastID, msgs[len(msgs)-1].id)
		}

		// The session's cursor moved on: nothing again, with data [] (not
		// null) and the same last_id; hand-built, to see the answer.
		r := s.Post(t, "/Message/Recv", b.Creds(nil))
		if !strings.Contains(string(r.Raw), `"data":[]`) {
			t.Fatalf("empty answer: %s", r.Raw)
		}
		again, err := decodeRecv(r)
		if err != nil {
			t.Fatal(err)
		}
		if again.Num != 0 || again.LastID != got.LastID || again.More {
			t.Fatalf("second recv: %s", r.Raw)
		}
		// Recv returns messages to me only.
		if other := recv(t, s, a, client.RecvRequest{}); len(other.Messages) != 0 || other.LastID != 0 {
			t.Fatalf("a got b's messages: %+v", other)
		}
	})
}

func TestRecvSecondDevice(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, phone := s.NewUser(t, "a"), s.NewUser(t, "b")
		laptop := login(t, s, phone)
		s.Befriend(t, a, phone)

		first := mustSend(t, s, a, phone, "one")
		if got := recv(t, s, phone, client.RecvRequest{}); len(got.Messages) != 1 || got.Messages[0].ID != first {
			t.Fatalf("phone: %+v", got)
		}
		second := mustSend(t, s, a, phone, "two")
		// Each device gets every message once, at its own pace.
		if got := recv(t, s, laptop, client.RecvRequest{}); len(got.Messages) != 2 || got.Messages[0].ID != first || got.Messages[1].ID != second {
			t.Fatalf("laptop: %+v", got)
		}
		if got := recv(t, s, phone, client.RecvRequest{}); len(got.Messages) != 1 || got.Messages[0].ID != second {
			t.Fatalf("phone again: %+v", got)
		}
		for _, dev := range []chattest.User{phone, laptop} {
			if got := recv(t, s, dev, client.RecvRequest{}); len(got.Messages) != 0 || got.LastID != second {
				t.Fatalf("a device got a message twice: %+v", got)
			}
		}
	})
}

func TestRecvWithLastID(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		var ids []int64
		for i := range 5 {
			ids = append(ids, mustSend(t, s, a, b, "m"+strconv.Itoa(i)))
		}

		// Pages of two: more until the last page.
		cursor := int64(0)
		var pages [][]int64
		for {
			got := recv(t, s, b, client.RecvRequest{LastID: last(cursor), Limit: 2})
			var page []int64
			for _, m := range got.Messages {
				page = append(page, m.ID)
			}
			pages = append(pages, page)
			if len(page) > 0 && got.LastID != page[len(page)-1] {
				t.Fatalf("last_id %d is not the page's last id %v", got.LastID, page)
			}
			if !got.More {
				break
			}
			cursor = got.LastID
		}
		if want := fmt.Sprint([][]int64{ids[0:2], ids[2:4], ids[4:5]}); fmt.Sprint(pages) != want {
			t.Fatalf("pages %v, want %s", pages, want)
		}

		// A lost answer loses nothing: asking again with the same last_id
		// gives the same messages. (Hand-built: the retry sends last_id as
		// a string, which the SDK never does.)
		lost := recvRaw(t, s, b, map[string]any{"last_id": ids[1]})
		retry := recvRaw(t, s, b, map[string]any{"last_id": strconv.FormatInt(ids[1], 10)})
		if fmt.Sprint(lost.Data) != fmt.Sprint(retry.Data) || lost.Num != 3 || retry.LastID != ids[4] {
			t.Fatalf("replay differs: %+v then %+v", lost, retry)
		}
		// A cursor past the end answers nothing and keeps the cursor.
		if got := recv(t, s, b, client.RecvRequest{LastID: last(ids[4] + 100)}); len(got.Messages) != 0 || got.LastID != ids[4]+100 {
			t.Fatalf("past the end: %+v", got)
		}
		// Recv with last_id leaves the session's cursor alone.
		if got := recv(t, s, b, client.RecvRequest{}); len(got.Messages) != 5 {
			t.Fatalf("session cursor moved by last_id reads: got %d messages", len(got.Messages))
		}
		// limit applies to the session cursor too.
		mustSend(t, s, a, b, "five")
		mustSend(t, s, a, b, "six")
		got := recvRaw(t, s, b, map[string]any{"limit": "1"}) // a string, as the SDK never sends
		if got.Num != 1 || !got.More || got.Data[0].Message != "five" {
			t.Fatalf("limit 1: %+v", got)
		}
		if got := recv(t, s, b, client.RecvRequest{}); len(got.Messages) != 1 || got.More || got.Messages[0].Message != "six" {
			t.Fatalf("after limit 1: %+v", got)
		}
	})
}

func TestSendRefusals(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, stranger := s.NewUser(t, "a"), s.NewUser(t, "b"), s.NewUser(t, "stranger")
		s.Befriend(t, a, b)
		long := strings.Repeat("é", 4001)
		for _, tc := range []struct {
			name   string
			body   map[string]any
			status int
			code   int64
			field  string
		}{
			{"uid_to missing", map[string]any{"data": "x"}, 400, 1001, "uid_to"},
			{"uid_to word", map[string]any{"uid_to": "abc", "data": "x"}, 400, 1001, "uid_to"},
			{"uid_to negative", map[string]any{"uid_to": -5, "data": "x"}, 400, 1001, "uid_to"},
			{"uid_to zero", map[string]any{"uid_to": 0, "data": "x"}, 400, 1001, "uid_to"},
			{"uid_to fraction", map[string]any{"uid_to": 1.5, "data": "x"}, 400, 1001, "uid_to"},
			{"uid_to object", map[string]any{"uid_to": map[string]any{}, "data": "x"}, 400, 1001, "uid_to"},
			{"data missing", map[string]any{"uid_to": b.UID}, 400, 1001, "data"},
			{"data number", map[string]any{"uid_to": b.UID, "data": 42}, 400, 1001, "data"},
			{"data list", map[string]any{"uid_to": b.UID, "data": []string{"x"}}, 400, 1001, "data"},
			{"data empty", map[string]any{"uid_to": b.UID, "data": ""}, 400, 1001, "data"},
			{"data too long", map[string]any{"uid_to": b.UID, "data": long}, 400, 1001, "data"},
			{"client_msg_id too long", map[string]any{"uid_to": b.UID, "data": "x", "client_msg_id": strings.Repeat("k", 65)}, 400, 1001, "client_msg_id"},
			{"self", map[string]any{"uid_to": a.UID, "data": "x"}, 400, 1001, "uid_to"},
			{"not a contact", map[string]any{"uid_to": stranger.UID, "data": "x"}, 403, 1008, "uid_to"},
			{"no such user", map[string]any{"uid_to": 99999999, "data": "x"}, 404, 1006, "uid_to"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := s.Post(t, "/Message/Send", a.Creds(tc.body))
				chattest.Expect(t, r, tc.status, tc.code)
				if !strings.Contains(r.Str("msg"), tc.field) {
					t.Fatalf("msg %q does not name %s", r.Str("msg"), tc.field)
				}
			})
		}
		if n := s.Count(t, "messages", ""); n != 0 {
			t.Fatalf("%d messages stored by refused sends", n)
		}
		// 4000 characters of several bytes each are within the limit.
		mustSend(t, s, a, b, strings.Repeat("é", 4000))
		// Form bodies work as well as JSON.
		r := s.Do(t, chattest.Req{Path: "/Message/Send", ContentType: "application/x-www-form-urlencoded",
			Body: []byte(fmt.Sprintf("uid=%d&access_token=%s&uid_to=%d&data=hi+there", a.UID, a.Token, b.UID))})
		chattest.Expect(t, r, 200, 0)
		// A form's text is text, whatever it looks like: JSON only where
		// the field is a list or an object.
		for _, text := range []string{"[1, 2]", "{}", ` ["x"] `} {
			form := url.Values{"uid": {fmt.Sprint(a.UID)}, "access_token": {a.Token}, "uid_to": {fmt.Sprint(b.UID)}, "data": {text}}
			r := s.Do(t, chattest.Req{Path: "/Message/Send", ContentType: "application/x-www-form-urlencoded", Body: []byte(form.Encode())})
			chattest.Expect(t, r, 200, 0)
			if n := s.Count(t, "messages", "id = ? AND body = ?", r.Int("id"), text); n != 1 {
				t.Fatalf("form data %q: not stored as sent", text)
			}
		}
		// Without credentials: 401.
		chattest.Expect(t, s.Post(t, "/Message/Send", map[string]any{"uid_to": b.UID, "data": "x"}), 401, 1004)
	})
}

func TestSendConfig(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) {
			c.AllowStrangers = true
			c.MessageMaxChars = 5
		}})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		mustSend(t, s, a, b, "héllo")
		r := send(t, s, a, b, "héllo!")
		chattest.Expect(t, r, 400, 1001)
		if !strings.Contains(r.Str("msg"), "data") || !strings.Contains(r.Str("msg"), "5") {
			t.Fatalf("msg %q", r.Str("msg"))
		}
		chattest.ExpectErr(t, sendErr(t, s, a, chattest.User{UID: 99999999}, "x"), 404, client.CodeNotFound)
		chattest.ExpectErr(t, sendErr(t, s, a, a, "x"), 400, client.CodeInvalid)
	})
	if _, err := module.New(module.Config{DB: chattest.OpenSQLite(t).Gorm, MessageMaxChars: 20000}); err == nil {
		t.Fatal("MessageMaxChars past what the column holds was accepted")
	}
	if _, err := module.New(module.Config{DB: chattest.OpenSQLite(t).Gorm, MaxWait: time.Minute}); err == nil {
		t.Fatal("MaxWait past 30s was accepted")
	}
}

func TestRecvRefusals(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		b := s.NewUser(t, "b")
		for _, tc := range []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"wait negative", map[string]any{"wait": -1}, "wait"},
			{"wait too long", map[string]any{"wait": 31}, "wait"},
			{"wait word", map[string]any{"wait": "soon"}, "wait"},
			{"wait fraction", map[string]any{"wait": 0.5}, "wait"},
			{"limit zero", map[string]any{"limit": 0}, "limit"},
			{"limit too big", map[string]any{"limit": 501}, "limit"},
			{"limit word", map[string]any{"limit": "many"}, "limit"},
			{"last_id negative", map[string]any{"last_id": -1}, "last_id"},
			{"last_id word", map[string]any{"last_id": "x"}, "last_id"},
			{"last_id fraction", map[string]any{"last_id": 2.5}, "last_id"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := s.Post(t, "/Message/Recv", b.Creds(tc.body))
				chattest.Expect(t, r, 400, 1001)
				if !strings.Contains(r.Str("msg"), tc.field) {
					t.Fatalf("msg %q does not name %s", r.Str("msg"), tc.field)
				}
			})
		}
		for _, ok := range []map[string]any{{"limit": 1}, {"limit": 500}, {"last_id": 0}, {"wait": 0}, {"wait": "0", "limit": "500", "last_id": "0"}} {
			if got := recvRaw(t, s, b, ok); got.Num != 0 {
				t.Fatalf("%v: %+v", ok, got)
			}
		}
	})
}

func TestSendIdempotent(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c := s.NewUser(t, "a"), s.NewUser(t, "b"), s.NewUser(t, "c")
		s.Befriend(t, a, b)
		s.Befriend(t, c, b)
		ctx := context.Background()
		ac, cc := s.SDKFor(t, a), s.SDKFor(t, c)

		first, err := ac.Send(ctx, b.UID, "hi", client.ClientMsgID("k-1"))
		if err != nil {
			t.Fatal(err)
		}
		s.Clock.Advance(5 * time.Second)
		// A retry, even with another body, returns the first id and time.
		for _, data := range []string{"hi", "changed"} {
			again, err := ac.Send(ctx, b.UID, data, client.ClientMsgID("k-1"))
			if err != nil {
				t.Fatal(err)
			}
			if again != first {
				t.Fatalf("retry: %+v, first: %+v", again, first)
			}
		}
		// Keys are per sender, exact (no trimming, no case folding), and
		// messages without one are never merged.
		if _, err := cc.Send(ctx, b.UID, "hi", client.ClientMsgID("k-1")); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"k-1 ", "K-1"} {
			r, err := ac.Send(ctx, b.UID, "hi", client.ClientMsgID(key))
			if err != nil {
				t.Fatal(err)
			}
			if r.ID == first.ID {
				t.Fatalf("key %q was taken for k-1", key)
			}
		}
		// An empty key sent as such (the SDK leaves it out): hand-built.
		r := s.Post(t, "/Message/Send", a.Creds(map[string]any{"uid_to": b.UID, "data": "hi", "client_msg_id": ""}))
		chattest.Expect(t, r, 200, 0)
		if r.Int("id") == first.ID {
			t.Fatal(`key "" was taken for k-1`)
		}
		mustSend(t, s, a, b, "no key")
		if n := s.Count(t, "messages", ""); n != 6 {
			t.Fatalf("%d messages stored, want 6", n)
		}
		if got := recv(t, s, b, client.RecvRequest{}); len(got.Messages) != 6 || got.Messages[0].Message != "hi" {
			t.Fatalf("recv: %+v", got)
		}

		// Racing tries of one key store one message and all answer its id.
		const tries = 16
		for round := range 3 {
			key := "race-" + strconv.Itoa(round)
			ids := make([]int64, tries)
			errs := make([]error, tries)
			var wg sync.WaitGroup
			for i := range tries {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sent, err := ac.Send(ctx, b.UID, "racing "+strconv.Itoa(i), client.ClientMsgID(key))
					ids[i], errs[i] = sent.ID, err
				}()
			}
			wg.Wait()
			for i := range tries {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				if ids[i] != ids[0] || ids[i] == 0 {
					t.Fatalf("racing tries answered ids %v", ids)
				}
			}
			if n := s.Count(t, "messages", "client_msg_id = ?", key); n != 1 {
				t.Fatalf("%s: %d messages stored, want 1", key, n)
			}
		}
	})
}

// pollResult is what a long poll run in a goroutine answered.
type pollResult struct {
	ans  client.RecvResult
	err  error
	took time.Duration
}

// sdker hands out SDK clients: a *chattest.Server's reach the app through
// app.Test (where long polls are held), a *chattest.Live's go over its
// socket (where they park).
type sdker interface {
	SDKFor(t testing.TB, u chattest.User) *client.Client
}

// poll starts a Recv for u through s in a goroutine.
func poll(t testing.TB, s sdker, u chattest.User, r client.RecvRequest) <-chan pollResult {
	t.Helper()
	c := s.SDKFor(t, u)
	out := make(chan pollResult, 1)
	go func() {
		start := time.Now()
		a, err := c.Recv(context.Background(), r)
		out <- pollResult{ans: a, err: err, took: time.Since(start)}
	}()
	return out
}

func awaitPoll(t *testing.T, ch <-chan pollResult) pollResult {
	t.Helper()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatal(res.err)
		}
		// As recv: the contract's empty batch is [], never null.
		if res.ans.Messages == nil {
			t.Fatalf("long poll: data is null: %+v", res.ans)
		}
		return res
	case <-time.After(40 * time.Second):
		t.Fatal("long poll never answered")
		return pollResult{}
	}
}

// countQueries counts the statements the module sends to its database.
func countQueries(t *testing.T, db *gorm.DB) *atomic.Int64 {
	t.Helper()
	n := new(atomic.Int64)
	count := func(*gorm.DB) { n.Add(1) }
	cb := db.Callback()
	for _, err := range []error{
		cb.Query().Before("gorm:query").Register("test:count", count),
		cb.Row().Before("gorm:row").Register("test:count", count),
		cb.Raw().Before("gorm:raw").Register("test:count", count),
		cb.Create().Before("gorm:create").Register("test:count", count),
		cb.Update().Before("gorm:update").Register("test:count", count),
		cb.Delete().Before("gorm:delete").Register("test:count", count),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func TestLongPoll(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		testLongPoll(t, s, s)
	})
}

// testLongPoll runs the long-poll checks on s, sending the polls through
// polls (s itself, or a live listener where they park).
func testLongPoll(t *testing.T, s *chattest.Server, polls sdker) {
	a, b, c := s.NewUser(t, "a"), s.NewUser(t, "b"), s.NewUser(t, "c")
	s.Befriend(t, a, b)
	s.Befriend(t, a, c)
	queries := countQueries(t, s.Module.DB())

	t.Run("wakes on a message", func(t *testing.T) {
		for _, withCursor := range []bool{false, true} {
			cursor := recv(t, s, b, client.RecvRequest{LastID: last(0), Limit: 500}).LastID
			mode := client.RecvRequest{Wait: 10 * time.Second}
			if withCursor {
				mode.LastID = last(cursor)
			}
			held := poll(t, polls, b, mode)
			other := poll(t, polls, c, client.RecvRequest{Wait: 10 * time.Second})
			time.Sleep(200 * time.Millisecond)
			before := queries.Load()
			time.Sleep(300 * time.Millisecond)
			if after := queries.Load(); after != before {
				t.Fatalf("held polls ran %d queries while waiting", after-before)
			}
			id := mustSend(t, s, a, b, "wake up")
			res := awaitPoll(t, held)
			if len(res.ans.Messages) != 1 || res.ans.Messages[0].ID != id || res.ans.LastID != id {
				t.Fatalf("woken poll: %+v", res.ans)
			}
			if res.took > 5*time.Second {
				t.Fatalf("woken poll took %v, want well under its 10s wait", res.took)
			}
			// c's poll is not answered by b's message.
			select {
			case res := <-other:
				t.Fatalf("c's poll answered by a message to b: %+v", res)
			case <-time.After(200 * time.Millisecond):
			}
			forC := mustSend(t, s, a, c, "for c")
			if res := awaitPoll(t, other); len(res.ans.Messages) != 1 || res.ans.Messages[0].Message != "for c" {
				t.Fatalf("c's poll: %+v", res.ans)
			}
			// The answer consumes the message once it is written, after
			// the client may have read it (API.md §5): until then c's
			// next poll, without a cursor, would get it again.
			waitFor(t, "c's cursor past its message", func() bool {
				return s.Count(t, "user_tokens", "uid = ? AND recv_cursor >= ?", c.UID, forC) > 0
			})
		}
	})

	t.Run("answers pending messages at once", func(t *testing.T) {
		recv(t, s, b, client.RecvRequest{Limit: 500}) // catch the session up
		mustSend(t, s, a, b, "waiting already")
		res := awaitPoll(t, poll(t, polls, b, client.RecvRequest{Wait: 10 * time.Second}))
		if len(res.ans.Messages) != 1 || res.took > 5*time.Second {
			t.Fatalf("poll with a pending message: %+v after %v", res.ans, res.took)
		}
	})

	t.Run("times out empty", func(t *testing.T) {
		res := awaitPoll(t, poll(t, polls, b, client.RecvRequest{Wait: time.Second}))
		if len(res.ans.Messages) != 0 || res.ans.More {
			t.Fatalf("timed-out poll: %+v", res.ans)
		}
		if res.took < 900*time.Millisecond {
			t.Fatalf("wait=1 answered after %v", res.took)
		}
		// wait as a string, which the SDK never sends, holds as well, and
		// the empty answer's envelope is exact.
		start := time.Now()
		r := s.Post(t, "/Message/Recv", b.Creds(map[string]any{"wait": "1"}))
		chattest.Expect(t, r, 200, 0)
		if took := time.Since(start); took < 900*time.Millisecond {
			t.Fatalf(`wait "1" answered after %v`, took)
		}
		if r.Int("num") != 0 || r.Str("msg") != "success" || !strings.Contains(string(r.Raw), `"data":[]`) {
			t.Fatalf("timed-out poll: %s", r.Raw)
		}
	})

	t.Run("two devices both woken", func(t *testing.T) {
		laptop := login(t, s, b)
		recv(t, s, laptop, client.RecvRequest{Limit: 500}) // catch up
		p1, p2 := poll(t, polls, b, client.RecvRequest{Wait: 10 * time.Second}), poll(t, polls, laptop, client.RecvRequest{Wait: 10 * time.Second})
		time.Sleep(200 * time.Millisecond)
		id := mustSend(t, s, a, b, "both")
		for _, p := range []<-chan pollResult{p1, p2} {
			if res := awaitPoll(t, p); len(res.ans.Messages) != 1 || res.ans.Messages[0].ID != id {
				t.Fatalf("device poll: %+v", res.ans)
			}
		}
		// Each session's cursor moves once its answer is written (API.md
		// §5), maybe after the client has read it: the next poll of b's,
		// below, must not find the message again.
		waitFor(t, "both of b's cursors past its message", func() bool {
			return s.Count(t, "user_tokens", "uid = ? AND recv_cursor >= ?", b.UID, id) >= 2
		})
	})

	t.Run("Close answers held polls", func(t *testing.T) {
		held := poll(t, polls, b, client.RecvRequest{Wait: 20 * time.Second})
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		if err := s.Module.Close(); err != nil {
			t.Fatal(err)
		}
		res := awaitPoll(t, held)
		if len(res.ans.Messages) != 0 || time.Since(start) > 5*time.Second {
			t.Fatalf("poll after Close: %+v, %v after Close", res.ans, time.Since(start))
		}
		// Close also closed the idle keep-alive connections that parked
		// polls had handed back; a client that reused one would find it
		// closed, as after any server closing idle connections.
		if c, ok := polls.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
		// A poll arriving after Close is not held either; Send still works.
		if res := awaitPoll(t, poll(t, polls, b, client.RecvRequest{Wait: 20 * time.Second})); res.took > 5*time.Second {
			t.Fatalf("poll after Close held for %v", res.took)
		}
		mustSend(t, s, a, b, "after close")
	})
}

func TestLongPollDisabled(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) { c.MaxWait = -1 }})
	b := s.NewUser(t, "b")
	if res := awaitPoll(t, poll(t, s, b, client.RecvRequest{Wait: 5 * time.Second})); res.took > 3*time.Second {
		t.Fatalf("poll held for %v with long polls disabled", res.took)
	}
}

func TestRetention(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) {
			c.SweepInterval = 10 * time.Millisecond
		}})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		// More old messages than one batch holds, to see the sweep go on
		// batch after batch.
		start := s.Clock.Now().Unix()
		old := make([]models.Message, 1234)
		for i := range old {
			old[i] = models.Message{FromUID: a.UID, ToUID: b.UID, Body: "old", CreatedAt: start - int64(i)}
		}
		if err := s.Module.DB().CreateInBatches(old, 200).Error; err != nil {
			t.Fatal(err)
		}
		s.Clock.Advance(29 * 24 * time.Hour)
		a = login(t, s, a) // the first session expired meanwhile
		keep := mustSend(t, s, a, b, "recent")
		s.Clock.Advance(2 * 24 * time.Hour) // now the old ones are 31 days old
		deadline := time.Now().Add(10 * time.Second)
		for s.Count(t, "messages", "") != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("%d messages left, want 1", s.Count(t, "messages", ""))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if n := s.Count(t, "messages", "id = ?", keep); n != 1 {
			t.Fatal("the recent message was purged")
		}
	})
	t.Run("forever", func(t *testing.T) {
		s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) {
			c.SweepInterval = 10 * time.Millisecond
			c.MessageRetention = -1
		}})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		mustSend(t, s, a, b, "keep me")
		s.Clock.Advance(10 * 365 * 24 * time.Hour)
		time.Sleep(200 * time.Millisecond)
		if n := s.Count(t, "messages", ""); n != 1 {
			t.Fatalf("%d messages left, want 1", n)
		}
	})
}

// sendAll has each sender send perSender numbered messages to to through
// the SDK, one after another (so each sender's order is defined), all
// senders at once.
func sendAll(t testing.TB, s *chattest.Server, senders []chattest.User, to chattest.User, perSender int) <-chan error {
	t.Helper()
	errs := make(chan error, len(senders))
	var wg sync.WaitGroup
	for _, from := range senders {
		c := s.SDKFor(t, from)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSender {
				if _, err := c.Send(context.Background(), to.UID, fmt.Sprintf("%d/%d", from.UID, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(errs) }()
	return errs
}

// delivery checks what one reader got: every message exactly once, ids
// increasing, and each sender's messages in the order they were sent.
type delivery struct {
	lastID  int64
	seen    map[string]bool
	nextSeq map[int64]int
	// partial is set for a reader that shares its session with another
	// and so sees only part of each sender's messages, still in order.
	// Such a reader may also be handed again what it had (at least once:
	// API.md §5), when the other read the same cursor at the same time
	// and so moved it no further: those it skips.
	partial bool
}

func newDelivery() *delivery {
	return &delivery{seen: map[string]bool{}, nextSeq: map[int64]int{}}
}

func (d *delivery) add(a client.RecvResult) error {
	for _, m := range a.Messages {
		if d.partial && d.seen[m.Message] && m.ID <= d.lastID {
			continue
		}
		if m.ID <= d.lastID {
			return fmt.Errorf("id %d after %d", m.ID, d.lastID)
		}
		d.lastID = m.ID
		if d.seen[m.Message] {
			return fmt.Errorf("%q delivered twice", m.Message)
		}
		d.seen[m.Message] = true
		var from int64
		var seq int
		if _, err := fmt.Sscanf(m.Message, "%d/%d", &from, &seq); err != nil || from != m.UIDFrom {
			return fmt.Errorf("message %q from %d", m.Message, m.UIDFrom)
		}
		if seq != d.nextSeq[from] && !(d.partial && seq > d.nextSeq[from]) {
			return fmt.Errorf("sender %d: message %d came when %d was due", from, seq, d.nextSeq[from])
		}
		d.nextSeq[from] = seq + 1
	}
	return nil
}

func makeSenders(t *testing.T, s *chattest.Server, to chattest.User, n int) []chattest.User {
	senders := make([]chattest.User, n)
	for i := range senders {
		senders[i] = s.NewUser(t, "sender"+strconv.Itoa(i))
		s.Befriend(t, senders[i], to)
	}
	return senders
}

func TestConcurrentSendsDeliveredOnce(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		b := s.NewUser(t, "b")
		const senders, each = 20, 10 // 200 sends, 20 in flight at a time
		for err := range sendAll(t, s, makeSenders(t, s, b, senders), b, each) {
			t.Fatal(err)
		}
		// Read back through the session cursor and through last_id pages.
		for _, withCursor := range []bool{false, true} {
			d := newDelivery()
			for {
				r := client.RecvRequest{Limit: 37}
				if withCursor {
					r.LastID = last(d.lastID)
				}
				got := recv(t, s, b, r)
				if err := d.add(got); err != nil {
					t.Fatal(err)
				}
				if !got.More {
					break
				}
			}
			if len(d.seen) != senders*each {
				t.Fatalf("%d messages delivered, want %d", len(d.seen), senders*each)
			}
		}
	})
}

// TestConcurrentReadersMissNothing is the no-skip proof: readers poll with
// their own last_id (and two with the session cursor, racing each other)
// while many senders write, and each must see every message exactly once
// (the two of one session: each at least once between them).
// A reader that sees a later id before an earlier one has committed moves
// past the earlier one for good, and ends short.
func TestConcurrentReadersMissNothing(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		testConcurrentReaders(t, s, nil)
	})
}

// testConcurrentReaders runs the no-skip proof on s. With live set, the
// long-polling reader polls through it (where its polls park), and so do
// the two readers of one session, long-polling too, so that parked polls
// race each other on the session's cursor.
func testConcurrentReaders(t *testing.T, s *chattest.Server, live sdker) {
	b := s.NewUser(t, "b")
	const senders, each = 10, 30
	const total = senders * each
	senderUsers := makeSenders(t, s, b, senders)
	shared := login(t, s, b) // one session, two readers racing on its cursor

	type reader struct {
		name   string
		fields func(d *delivery) client.RecvRequest
		user   chattest.User
		via    *client.Client
	}
	polls, sharedFields := sdker(s), client.RecvRequest{Limit: 3}
	if live != nil {
		polls, sharedFields = live, client.RecvRequest{Limit: 3, Wait: 2 * time.Second}
	}
	readers := []reader{
		{"last_id", func(d *delivery) client.RecvRequest { return client.RecvRequest{LastID: last(d.lastID), Limit: 5} }, b, s.SDKFor(t, b)},
		{"last_id 2", func(d *delivery) client.RecvRequest { return client.RecvRequest{LastID: last(d.lastID), Limit: 50} }, b, s.SDKFor(t, b)},
		{"last_id long poll", func(d *delivery) client.RecvRequest {
			return client.RecvRequest{LastID: last(d.lastID), Limit: 7, Wait: 2 * time.Second}
		}, b, polls.SDKFor(t, b)},
		{"session", func(*delivery) client.RecvRequest { return client.RecvRequest{Limit: 5} }, b, s.SDKFor(t, b)},
	}

	var (
		done    = make(chan struct{})
		wg      sync.WaitGroup
		results = make([]error, len(readers))
		mu      sync.Mutex
		sharedD = map[string]bool{} // the two readers of one session, together
	)
	read := func(i int, r reader, d *delivery, until func() bool) {
		defer wg.Done()
		deadline := time.Now().Add(90 * time.Second)
		drained := false
		for !until() {
			if time.Now().After(deadline) {
				results[i] = fmt.Errorf("%s: timed out with %d of %d", r.name, len(d.seen), total)
				return
			}
			finished := false
			select {
			case <-done:
				finished = true
			default:
			}
			got, err := r.via.Recv(context.Background(), r.fields(d))
			if err == nil {
				err = d.add(got)
			}
			if err != nil {
				results[i] = fmt.Errorf("%s: %v", r.name, err)
				return
			}
			if r.user.Token == shared.Token {
				// Both may get a message they read at once: the session's
				// cursor moves only after an answer is written.
				mu.Lock()
				for _, m := range got.Messages {
					sharedD[m.Message] = true
				}
				mu.Unlock()
			}
			// Once every send has been answered, one more empty read
			// means the reader has passed a message it never got. (For
			// the two readers of one session, the other may have got
			// it: their union is checked at the end.)
			if finished && len(got.Messages) == 0 {
				if drained && d.partial {
					return
				}
				if drained {
					results[i] = fmt.Errorf("%s: ended with %d of %d messages: some were skipped", r.name, len(d.seen), total)
					return
				}
				drained = true
			}
		}
	}
	for i, r := range readers {
		wg.Add(1)
		d := newDelivery()
		go read(i, r, d, func() bool { return len(d.seen) == total })
	}
	sharedReaders := 2
	for j := range sharedReaders {
		i := len(results)
		results = append(results, nil)
		r := reader{"shared session " + strconv.Itoa(j), func(*delivery) client.RecvRequest { return sharedFields }, shared, polls.SDKFor(t, shared)}
		wg.Add(1)
		// Each of the two sees only part of the stream, in order; the
		// union is checked through sharedD.
		d := &delivery{seen: map[string]bool{}, nextSeq: map[int64]int{}, partial: true}
		go read(i, r, d, func() bool { mu.Lock(); defer mu.Unlock(); return len(sharedD) == total })
	}

	var sendErr error
	for err := range sendAll(t, s, senderUsers, b, each) {
		sendErr = err
	}
	close(done)
	wg.Wait()
	if sendErr != nil {
		t.Fatal(sendErr)
	}
	for _, err := range results {
		if err != nil {
			t.Error(err)
		}
	}
	if len(sharedD) != total {
		t.Errorf("the two readers of one session got %d of %d messages between them", len(sharedD), total)
	}
}
