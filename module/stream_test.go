package module_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/module"
	"github.com/fiberchat/fiberchat/notify"
	"github.com/gofiber/fiber/v2"
)

// The tests in this file read /Message/Stream through the Go SDK over the
// socket where they are about what the stream carries, and as a raw
// Server-Sent Events stream over net/http, as a browser's EventSource
// would, where they are about its framing, headers, pings or the POST
// and GET forms.

const pathStream = "/Message/Stream"

type sseEvent struct {
	id, event, data string
}

// sseStream is one open stream; its events arrive on events (a ping
// comment as event "ping"), which is closed when the body ends.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
}

// streamGET builds a GET with everything in the query, as EventSource
// sends it.
func streamGET(t *testing.T, l *chattest.Live, u chattest.User, extra url.Values) *http.Request {
	t.Helper()
	q := url.Values{"user_id": {strconv.FormatInt(u.UID, 10)}, "user_token": {u.Token}}
	for k, v := range extra {
		q[k] = v
	}
	req, err := http.NewRequest(http.MethodGet, l.URL(pathStream)+"&"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	return req
}

// streamPOST builds a POST with credentials and fields in a JSON body.
func streamPOST(t *testing.T, l *chattest.Live, u chattest.User, fields map[string]any) *http.Request {
	t.Helper()
	b, _ := json.Marshal(u.Creds(fields))
	req, err := http.NewRequest(http.MethodPost, l.URL(pathStream), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// openSSE sends req and checks the stream started.
func openSSE(t *testing.T, req *http.Request) *sseStream {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream answered %d %s", resp.StatusCode, body)
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "text/event-stream" || cc != "no-cache" {
		t.Fatalf("stream headers: Content-Type %q, Cache-Control %q", ct, cc)
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 10000)}
	go s.read(resp.Body)
	return s
}

func (s *sseStream) read(body io.Reader) {
	defer close(s.events)
	sc := bufio.NewScanner(body)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.event != "" || ev.data != "" {
				s.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			if strings.TrimSpace(line[1:]) == "ping" {
				s.events <- sseEvent{event: "ping"}
			}
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				ev.id = v
			case "event":
				ev.event = v
			case "data":
				ev.data = v
			}
		}
	}
}

// next returns the next event other than a ping.
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.event != "ping" {
				return ev
			}
		case <-timeout:
			t.Fatal("no event in 10s")
		}
	}
}

// expectBye reads the next event, which must be bye with reason, and then
// the end of the stream.
func (s *sseStream) expectBye(t *testing.T, reason string) {
	t.Helper()
	ev := s.next(t)
	for ev.event == "presence" {
		// A contact's stream opening or ending (API.md §13) may come
		// before.
		ev = s.next(t)
	}
	if ev.event != "bye" || ev.data != fmt.Sprintf(`{"reason":%q}`, reason) {
		t.Fatalf("got %+v, want bye %s", ev, reason)
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			t.Fatalf("event after bye: %+v", ev)
		case <-timeout:
			t.Fatal("stream still open 5s after bye")
		}
	}
}

type streamMsg struct {
	ID      int64  `json:"id"`
	UIDFrom int64  `json:"uid_from"`
	UIDTo   int64  `json:"uid_to"`
	Message string `json:"message"`
	Time    int64  `json:"time"`
}

// nextMessage reads the next event, which must be a message.
func (s *sseStream) nextMessage(t *testing.T) streamMsg {
	t.Helper()
	ev := s.next(t)
	var m streamMsg
	if ev.event != "message" || json.Unmarshal([]byte(ev.data), &m) != nil || ev.id != strconv.FormatInt(m.ID, 10) {
		t.Fatalf("want a message event, got %+v", ev)
	}
	return m
}

func expectMessage(t *testing.T, s *sseStream, id int64, from, to chattest.User, text string) {
	t.Helper()
	m := s.nextMessage(t)
	if m.ID != id || m.UIDFrom != from.UID || m.UIDTo != to.UID || m.Message != text || m.Time == 0 {
		t.Fatalf("got %+v, want message %d %q from %d to %d", m, id, text, from.UID, to.UID)
	}
}

// sdkStream is a stream opened through the SDK; a goroutine hands its
// events, and the error that ended it, to next.
type sdkStream struct {
	st     *client.Stream
	events chan sdkEvent
}

type sdkEvent struct {
	ev  client.Event
	err error
}

// openStream opens u's stream through the SDK over l's socket, after
// lastID if it is given.
func openStream(t *testing.T, l *chattest.Live, u chattest.User, lastID *int64) *sdkStream {
	t.Helper()
	st, err := l.SDKFor(t, u).Stream(context.Background(), lastID)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s := &sdkStream{st: st, events: make(chan sdkEvent, 10000)}
	go func() {
		defer close(s.events)
		for {
			ev, err := st.Next()
			s.events <- sdkEvent{ev, err}
			if err != nil {
				return
			}
		}
	}()
	return s
}

// next returns the stream's next event (Next skips pings).
func (s *sdkStream) next(t *testing.T) client.Event {
	t.Helper()
	select {
	case e := <-s.events:
		if e.err != nil {
			t.Fatalf("stream ended: %v", e.err)
		}
		return e.ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event in 10s")
	}
	return nil
}

// expectBye reads the next event, which must be bye with reason, and then
// the end of the stream.
func (s *sdkStream) expectBye(t *testing.T, reason string) {
	t.Helper()
	if ev := s.next(t); ev != (client.Bye{Reason: reason}) {
		t.Fatalf("got %#v, want bye %s", ev, reason)
	}
	select {
	case e := <-s.events:
		if e.err != io.EOF {
			t.Fatalf("after bye: %#v %v, want the end of the stream", e.ev, e.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open 5s after bye")
	}
}

// expectMessage reads the next event, which must be message id from from
// to to.
func (s *sdkStream) expectMessage(t *testing.T, id int64, from, to chattest.User, text string) {
	t.Helper()
	m, ok := s.next(t).(client.Message)
	if !ok || m.ID != id || m.UIDFrom != from.UID || m.UIDTo != to.UID || m.Message != text || m.Time == 0 {
		t.Fatalf("got %#v, want message %d %q from %d to %d", m, id, text, from.UID, to.UID)
	}
	// The reading goroutine may be further on already.
	if s.st.LastID() < id {
		t.Fatalf("stream LastID %d after message %d", s.st.LastID(), id)
	}
}

func TestStream(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
		l.Befriend(t, a, b)
		old := mustSend(t, l.Server, a, b, "before the stream")

		t.Run("POST and GET start after the newest message", func(t *testing.T) {
			parked := l.Hijacked.Load()
			post := openSSE(t, streamPOST(t, l, b, nil))
			get := openSSE(t, streamGET(t, l, b, nil))
			awaitHijacked(t, l, parked+2)
			id := mustSend(t, l.Server, a, b, "hello\nworld \"quoted\"")
			if id <= old {
				t.Fatalf("id %d after %d", id, old)
			}
			for _, s := range []*sseStream{post, get} {
				expectMessage(t, s, id, a, b, "hello\nworld \"quoted\"")
			}
			// Messages I send are not mine to receive.
			mustSend(t, l.Server, b, a, "from b")
			id = mustSend(t, l.Server, a, b, "second")
			for _, s := range []*sseStream{post, get} {
				expectMessage(t, s, id, a, b, "second")
			}
		})

		t.Run("last_id in the body or query", func(t *testing.T) {
			post := openSSE(t, streamPOST(t, l, b, map[string]any{"last_id": old - 1}))
			get := openSSE(t, streamGET(t, l, b, url.Values{"last_id": {strconv.FormatInt(old-1, 10)}}))
			for _, s := range []*sseStream{post, get} {
				expectMessage(t, s, old, a, b, "before the stream")
			}
		})

		t.Run("Last-Event-ID resumes after a dropped connection", func(t *testing.T) {
			s := openStream(t, l, b, last(0))
			for range 3 { // b has three messages so far
				if _, ok := s.next(t).(client.Message); !ok {
					t.Fatal("want a message")
				}
			}
			resume := s.st.LastID()
			_ = s.st.Close()
			var sent []int64
			for i := range 3 {
				sent = append(sent, mustSend(t, l.Server, a, b, fmt.Sprintf("while away %d", i)))
			}
			s = openStream(t, l, b, last(resume))
			for i, id := range sent {
				s.expectMessage(t, id, a, b, fmt.Sprintf("while away %d", i))
			}
			id := mustSend(t, l.Server, a, b, "back")
			s.expectMessage(t, id, a, b, "back")

			// The header wins over last_id (the SDK sends both alike).
			req := streamGET(t, l, b, url.Values{"last_id": {"0"}})
			req.Header.Set("Last-Event-ID", strconv.FormatInt(resume, 10))
			raw := openSSE(t, req)
			for i, id := range sent {
				expectMessage(t, raw, id, a, b, fmt.Sprintf("while away %d", i))
			}
		})

		t.Run("failures before the stream are the envelope", func(t *testing.T) {
			bad := b
			bad.Token = strings.Repeat("x", len(b.Token))
			for _, req := range []*http.Request{streamPOST(t, l, bad, nil), streamGET(t, l, bad, nil)} {
				r, err := l.Send(req)
				if err != nil {
					t.Fatal(err)
				}
				chattest.Expect(t, r, 401, 1004)
			}
			req := streamGET(t, l, b, nil)
			req.URL.RawQuery = strings.Replace(req.URL.RawQuery, "api_token=", "api_token=0", 1)
			r, err := l.Send(req)
			if err != nil {
				t.Fatal(err)
			}
			chattest.Expect(t, r, 403, 1002)
			req = streamGET(t, l, b, nil)
			req.Header.Set("Last-Event-ID", "-1")
			if r, err = l.Send(req); err != nil {
				t.Fatal(err)
			}
			chattest.Expect(t, r, 400, 1001)
		})

		t.Run("read and contact notices", func(t *testing.T) {
			ctx := context.Background()
			c := l.NewUser(t, "c")
			l.Befriend(t, a, c)
			// Once the head has come, the stream is registered for notices.
			// Read through the SDK, and raw beside it for each event's
			// exact data.
			s := openStream(t, l, a, nil)
			raw := openSSE(t, streamPOST(t, l, a, nil))
			expect := func(want client.Event) {
				t.Helper()
				if ev := s.next(t); ev != want {
					t.Fatalf("got %#v, want %#v", ev, want)
				}
				var event, data string
				switch w := want.(type) {
				case client.ReadReceipt:
					event, data = "read", fmt.Sprintf(`{"uid":%d,"last_id":%d}`, w.UID, w.LastID)
				case client.ContactEvent:
					event, data = "contact", fmt.Sprintf(`{"uid":%d,"what":%q}`, w.UID, w.What)
				}
				if ev := raw.next(t); ev.event != event || ev.data != data {
					t.Fatalf("raw %+v, want %s %s", ev, event, data)
				}
			}
			id := mustSend(t, l.Server, a, b, "read me")
			markRead(t, l.Server, b, a.UID, id)
			expect(client.ReadReceipt{UID: b.UID, LastID: id})
			d := l.NewUser(t, "d")
			ask(t, l.Server, a, d.UID)
			mustAnswer(t, l.Server, d, a.UID, true)
			expect(client.ContactEvent{UID: d.UID, What: "accept"})
			if n, err := l.Server.SDKFor(t, d).DeleteContacts(ctx, a.UID); err != nil || n != 1 {
				t.Fatalf("delContacts: %d %v", n, err)
			}
			expect(client.ContactEvent{UID: d.UID, What: "delete"})
			if n, err := l.Server.SDKFor(t, c).Block(ctx, a.UID); err != nil || n != 1 {
				t.Fatalf("block: %d %v", n, err)
			}
			for _, what := range []string{"delete", "block"} {
				expect(client.ContactEvent{UID: c.UID, What: what})
			}
			e := l.NewUser(t, "e")
			ask(t, l.Server, e, a.UID)
			expect(client.ContactEvent{UID: e.UID, What: "request"})
			ask(t, l.Server, a, d.UID) // a asks d again; d refuses
			mustAnswer(t, l.Server, d, a.UID, false)
			expect(client.ContactEvent{UID: d.UID, What: "refuse"})
		})

		t.Run("the raw stream ends with bye too", func(t *testing.T) {
			tablet := login(t, l.Server, b)
			s := openSSE(t, streamPOST(t, l, tablet, nil))
			if err := l.SDKFor(t, tablet).Logout(context.Background()); err != nil {
				t.Fatalf("logout: %v", err)
			}
			s.expectBye(t, "logout")
		})
		t.Run("logout and password change end the session's streams", func(t *testing.T) {
			ctx := context.Background()
			phone, laptop := login(t, l.Server, b), login(t, l.Server, b)
			main := openStream(t, l, b, nil)
			onPhone := openStream(t, l, phone, nil)
			onLaptop := openStream(t, l, laptop, nil)
			rawLaptop := openSSE(t, streamGET(t, l, laptop, nil)) // for the bye's exact data
			if err := l.SDKFor(t, phone).Logout(ctx); err != nil {
				t.Fatalf("logout: %v", err)
			}
			onPhone.expectBye(t, "logout")
			id := mustSend(t, l.Server, a, b, "still here")
			main.expectMessage(t, id, a, b, "still here")
			onLaptop.expectMessage(t, id, a, b, "still here")
			if err := l.SDKFor(t, b).ChangePassword(ctx, b.Password, "another-secret"); err != nil {
				t.Fatalf("change password: %v", err)
			}
			onLaptop.expectBye(t, "password")
			expectMessage(t, rawLaptop, id, a, b, "still here")
			rawLaptop.expectBye(t, "password")
			id = mustSend(t, l.Server, a, b, "the session that changed it")
			main.expectMessage(t, id, a, b, "the session that changed it")
		})

	})
}

// TestStreamConcurrentSenders reads the stream through the SDK, as a
// client does: every message once, in id order, each sender's in order.
func TestStreamConcurrentSenders(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		to := l.NewUser(t, "to")
		senders := makeSenders(t, l.Server, to, 4)
		st, err := l.SDKFor(t, to).Stream(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		// Room for every event, so that the reader never blocks once a
		// failed test stops taking them, and ends when the stream closes.
		events := make(chan client.Event, 4*50+16)
		go func() {
			defer close(events)
			for {
				ev, err := st.Next()
				if err != nil {
					return
				}
				events <- ev
			}
		}()
		awaitHijacked(t, l, 1)
		errs := sendAll(t, l.Server, senders, to, 50)
		next := map[int64]int{}
		var last int64
		for range 4 * 50 {
			var ev client.Event
			select {
			case ev = <-events:
			case <-time.After(10 * time.Second):
				t.Fatalf("stream stalled after id %d", last)
			}
			m, ok := ev.(client.Message)
			if !ok {
				t.Fatalf("want a message event, got %#v", ev)
			}
			var from int64
			var seq int
			if _, err := fmt.Sscanf(m.Message, "%d/%d", &from, &seq); err != nil || from != m.UIDFrom || m.UIDTo != to.UID {
				t.Fatalf("message %+v", m)
			}
			if m.ID <= last || seq != next[from] {
				t.Fatalf("message %+v after id %d, want seq %d of %d", m, last, next[from], from)
			}
			last, next[from] = m.ID, seq+1
		}
		for err := range errs {
			t.Fatal(err)
		}
		// Nothing but pings (which Next skips) after the last message.
		select {
		case ev, ok := <-events:
			if ok {
				t.Fatalf("extra event %#v", ev)
			}
			t.Fatal("the stream ended")
		case <-time.After(200 * time.Millisecond):
		}
		if st.LastID() != last {
			t.Fatalf("stream LastID %d, want %d", st.LastID(), last)
		}
		if l.Hijacked.Load() != 1 {
			t.Fatalf("%d connections hijacked, want the stream's one", l.Hijacked.Load())
		}
		_ = st.Close()
	})
}

func TestStreamPingAndExpiry(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{Config: func(c *module.Config) {
			c.StreamPingInterval = 100 * time.Millisecond
			c.TokenCacheTTL = -1
		}})
		u := l.NewUser(t, "u")
		s := openSSE(t, streamGET(t, l, u, nil))
		for range 2 {
			select {
			case ev := <-s.events:
				if ev.event != "ping" {
					t.Fatalf("got %+v, want a ping", ev)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no ping")
			}
		}
		l.Clock.Advance(8 * 24 * time.Hour)
		s.expectBye(t, "expired")
	})
}

func TestStreamClose(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		u, v := l.NewUser(t, "u"), l.NewUser(t, "v")
		streams := []*sdkStream{openStream(t, l, u, nil), openStream(t, l, v, nil)}
		// One read raw, as the POST form and for the bye's exact data.
		raw := openSSE(t, streamPOST(t, l, u, nil))
		awaitHijacked(t, l, 3)
		start := time.Now()
		if err := l.Module.Close(); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("Close took %v", took)
		}
		for _, s := range streams {
			s.expectBye(t, "shutdown")
		}
		raw.expectBye(t, "shutdown")
	})
}

func TestStreamCapPerSession(t *testing.T) {
	l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{})
	a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
	l.Befriend(t, a, b)
	var streams []*sdkStream
	for i := range 5 {
		streams = append(streams, openStream(t, l, b, nil))
		awaitHijacked(t, l, int64(i+1))
	}
	streams[0].expectBye(t, "replaced")
	id := mustSend(t, l.Server, a, b, "to the four")
	for _, s := range streams[1:] {
		s.expectMessage(t, id, a, b, "to the four")
	}
}

// The user's cap counts every session: sixteen streams on four sessions,
// then one on a fifth, end the user's oldest.
func TestStreamCapPerUser(t *testing.T) {
	l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{})
	streams := openPastUserCap(t, l, l.NewUser(t, "b"))
	streams[0].expectBye(t, "replaced")
}

// A login past MaxSessions evicts the user's oldest session, whose stream
// ends at once (not at its next ping, 25 s by default).
func TestStreamSessionEvicted(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{Config: func(c *module.Config) { c.MaxSessions = 2 }})
		u := l.NewUser(t, "u")
		oldest := openStream(t, l, u, nil)
		newer := openStream(t, l, login(t, l.Server, u), nil)
		awaitHijacked(t, l, 2)
		login(t, l.Server, u)
		oldest.expectBye(t, "logout")
		select {
		case e := <-newer.events:
			t.Fatalf("the newer session's stream got %#v %v", e.ev, e.err)
		case <-time.After(200 * time.Millisecond):
		}
	})
}

// openPastUserCap opens seventeen streams of u, four on each of five new
// sessions, one past the user's cap.
func openPastUserCap(t *testing.T, l *chattest.Live, u chattest.User) []*sdkStream {
	t.Helper()
	var streams []*sdkStream
	base := l.Hijacked.Load()
	for i := range 17 {
		if i%4 == 0 {
			u = login(t, l.Server, u)
		}
		streams = append(streams, openStream(t, l, u, nil))
		awaitHijacked(t, l, base+int64(i+1))
	}
	return streams
}

func TestStreamHeld(t *testing.T) {
	// Without KeepHijackedConns a stream cannot park: it runs on a
	// goroutine, with the same events.
	l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{
		Config: func(c *module.Config) { c.StreamPingInterval = 200 * time.Millisecond },
		App:    func(app *fiber.App) { app.Server().KeepHijackedConns = false },
	})
	a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
	l.Befriend(t, a, b)
	s := openSSE(t, streamPOST(t, l, b, nil))
	time.Sleep(100 * time.Millisecond)
	id := mustSend(t, l.Server, a, b, "held")
	expectMessage(t, s, id, a, b, "held")
	s2 := openSSE(t, streamGET(t, l, a, nil))
	markRead(t, l.Server, b, a.UID, id)
	if ev := s2.next(t); ev.event != "read" || ev.data != fmt.Sprintf(`{"uid":%d,"last_id":%d}`, b.UID, id) {
		t.Fatalf("read notice: %+v", ev)
	}
	select {
	case ev := <-s2.events:
		if ev.event != "ping" {
			t.Fatalf("got %+v, want a ping", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ping")
	}
	if err := l.Module.Close(); err != nil {
		t.Fatal(err)
	}
	s.expectBye(t, "shutdown")
	if n := l.Hijacked.Load(); n != 0 {
		t.Fatalf("%d streams parked without KeepHijackedConns", n)
	}
}

func TestStreamOnAppTest(t *testing.T) {
	// app.Test's in-memory connection: the stream runs until the module
	// closes, and its whole body is then read.
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{})
	a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
	s.Befriend(t, a, b)
	done := appTestStream(s, b)
	time.Sleep(200 * time.Millisecond)
	id := mustSend(t, s, a, b, "in memory")
	time.Sleep(200 * time.Millisecond)
	if err := s.Module.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-done:
		want := fmt.Sprintf("id: %d\nevent: message\ndata: {\"id\":%d,\"uid_from\":%d,\"uid_to\":%d,\"message\":\"in memory\",\"time\":%d,\"kind\":\"text\"}\n\nevent: bye\ndata: {\"reason\":\"shutdown\"}\n\n",
			id, id, a.UID, b.UID, s.Clock.Now().Unix())
		if string(body) != want {
			t.Fatalf("body %q, want %q", body, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open after Close")
	}
}

// appTestStream opens u's stream through s's app.Test, where it is held,
// and returns where its whole body arrives once it ends.
func appTestStream(s *chattest.Server, u chattest.User) <-chan []byte {
	q := url.Values{"client_id": {s.ClientID}, "api_token": {s.Sign(pathStream)},
		"user_id": {strconv.FormatInt(u.UID, 10)}, "user_token": {u.Token}}
	done := make(chan []byte, 1)
	go func() {
		resp, err := s.App.Test(httptest.NewRequest(http.MethodGet, pathStream+"?"+q.Encode(), nil), -1)
		if err != nil {
			done <- []byte(err.Error())
			return
		}
		body, _ := io.ReadAll(resp.Body)
		done <- body
	}()
	return done
}

// TestStreamStartsAfterGroupRecords: a stream opened without last_id
// starts after the newest record that exists then (API.md §10), group
// records too: a group's entries (a reaction, an edit) newer than its
// last message, and the messages of a group the user has left, which Recv
// still hands them up to their leaving. Only what comes after is sent.
func TestStreamStartsAfterGroupRecords(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		a, b, c := l.NewUser(t, "a"), l.NewUser(t, "b"), l.NewUser(t, "c")
		l.Befriend(t, a, b)
		l.Befriend(t, a, c)
		left := into[groupCreated](t, gcall(t, l.Server, a, "/Group/create", map[string]any{"name": "left", "data": members(b)}, 200, 0)).GID
		groupSend(t, l.Server, a, left, "before b was removed")
		gcall(t, l.Server, a, "/Group/IO/removeMembers", map[string]any{"gid": left, "data": members(b)}, 200, 0)
		st := openSSE(t, streamPOST(t, l, b, nil))
		sentinel(t, l.Server, st, a, b, true)

		gid := into[groupCreated](t, gcall(t, l.Server, a, "/Group/create", map[string]any{"name": "g", "data": members(b, c)}, 200, 0)).GID
		id := groupSend(t, l.Server, a, gid, "hello")
		gcall(t, l.Server, c, "/Message/React", map[string]any{"id": id, "emoji": "🎉", "on": 1}, 200, 0)
		gcall(t, l.Server, a, "/Message/Edit", map[string]any{"id": id, "data": "hello all"}, 200, 0)
		st = openSSE(t, streamPOST(t, l, b, nil))
		sentinel(t, l.Server, st, a, b, true)
	})
}

// lossyNotifier loses the next wake-up once armed, as a note between
// instances can be lost (a PUBLISH that fails, a sender that dies
// between its commit and its PUBLISH).
type lossyNotifier struct {
	*notify.Local
	armed atomic.Bool
}

func (n *lossyNotifier) Publish(ctx context.Context, uid int64) error {
	if n.armed.CompareAndSwap(true, false) {
		return nil
	}
	return n.Local.Publish(ctx, uid)
}

// TestStreamLostWakeUp: a message whose wake-up was lost reaches an open
// stream at its next ping, which reads past its cursor as a wake-up
// would, not only with the next message that wakes it.
func TestStreamLostWakeUp(t *testing.T) {
	n := &lossyNotifier{Local: notify.NewLocal()}
	l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) {
		c.Notifier = n
		c.StreamPingInterval = 200 * time.Millisecond
	}})
	a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
	l.Befriend(t, a, b)
	st := openSSE(t, streamPOST(t, l, b, nil))
	sentinel(t, l.Server, st, a, b, true)
	n.armed.Store(true)
	chattest.Expect(t, l.Post(t, "/Message/Send", a.Creds(map[string]any{"uid_to": b.UID, "data": "woke no one"})), 200, 0)
	if m := st.nextMessage(t); m.Message != "woke no one" {
		t.Fatalf("got %+v, want the message whose wake-up was lost", m)
	}
}

// TestStreamStartSkipsNothingInFlight: a stream opened without last_id
// starts past records the user receives only. A reaction in a group of
// theirs to a message from before they joined is not theirs, and is
// written under no lock of theirs: it can commit while a message to them
// with a lower id is still in flight. A start past the reaction would
// skip that message for good. MariaDB only: SQLite runs one writer at a
// time, so nothing is ever in flight.
func TestStreamStartSkipsNothingInFlight(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		if db.Name != "mysql" {
			t.Skip("a transaction in flight beside others is MariaDB's")
		}
		l := chattest.NewLive(t, db, chattest.Options{})
		a, b, c := l.NewUser(t, "a"), l.NewUser(t, "b"), l.NewUser(t, "c")
		l.Befriend(t, a, b)
		l.Befriend(t, a, c)
		gid := into[groupCreated](t, gcall(t, l.Server, a, "/Group/create", map[string]any{"name": "g", "data": members(c)}, 200, 0)).GID
		before := groupSend(t, l.Server, a, gid, "before b joined")
		gcall(t, l.Server, a, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(b)}, 200, 0)

		// A message to b, its id taken, not committed: as a Send holds it
		// between its INSERT and its COMMIT, under b's row lock.
		inFlight := l.Module.DB().Begin()
		defer inFlight.Rollback()
		var locked []int64
		if err := inFlight.Raw("SELECT uid FROM chat_users WHERE uid = ? FOR UPDATE", b.UID).Scan(&locked).Error; err != nil {
			t.Fatal(err)
		}
		m := models.Message{FromUID: a.UID, ToUID: b.UID, Body: "in flight", CreatedAt: l.Clock.Now().Unix(),
			PairLo: min(a.UID, b.UID), PairHi: max(a.UID, b.UID)}
		if err := inFlight.Create(&m).Error; err != nil {
			t.Fatal(err)
		}
		// c's reaction to a message b never had: a higher id, committed.
		gcall(t, l.Server, c, "/Message/React", map[string]any{"id": before, "emoji": "🎉", "on": 1}, 200, 0)

		st := openSSE(t, streamPOST(t, l, b, nil))
		if err := inFlight.Commit().Error; err != nil {
			t.Fatal(err)
		}
		gcall(t, l.Server, a, "/Message/Send", map[string]any{"uid_to": b.UID, "data": "after"}, 200, 0)
		for _, want := range []string{"in flight", "after"} {
			if got := st.nextMessage(t); got.Message != want {
				t.Fatalf("stream: %+v, want %q", got, want)
			}
		}
	})
}
