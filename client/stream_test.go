package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
)

// The server side of the stream is not in this tree yet: these tests play
// it with httptest, from API.md §10.

var day = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// fake serves base+path with h after checking the request's signature.
func fake(t *testing.T, h func(t *testing.T, w http.ResponseWriter, r *http.Request)) *client.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path[len("/chat"):]
		if got, want := r.URL.Query().Get("api_token"), client.Sign(path, "2026-03-14", "secret"); got != want || r.URL.Query().Get("client_id") != "test" {
			t.Errorf("%s: client_id %q api_token %q, want test %q", path, r.URL.Query().Get("client_id"), got, want)
		}
		h(t, w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL+"/chat/", "test", "secret",
		client.WithClock(func() time.Time { return day }),
		client.WithSession(client.Session{UID: 10000002, AccessToken: "tok"}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sse(w http.ResponseWriter, s string) {
	_, _ = io.WriteString(w, s)
	w.(http.Flusher).Flush()
}

func startSSE(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
}

func TestStream(t *testing.T) {
	t.Parallel()
	c := fake(t, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		// The user's credentials go in headers, never the URL, which
		// proxies and servers log.
		if r.Method != http.MethodGet || r.URL.Path != "/chat/Message/Stream" || r.Header.Get("X-Uid") != "10000002" || r.Header.Get("X-Access-Token") != "tok" ||
			q.Has("user_id") || q.Has("user_token") ||
			q.Get("last_id") != "5" || r.Header.Get("Last-Event-ID") != "5" || r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("request: %s %s %v", r.Method, r.URL, r.Header)
		}
		startSSE(w)
		sse(w, ": ping\nretry: 2000\n\n")
		sse(w, "id: 6\r\nevent: message\r\ndata: {\"id\":6,\"uid_from\":10000001,\"uid_to\":10000002,\r\ndata: \"message\":\"hi\",\"time\":1}\r\n\r\n")
		sse(w, "event: read\ndata: {\"uid\":10000001,\"last_id\":4}\n\n")
		sse(w, "event: later\ndata: {}\n\n") // unknown: skipped
		sse(w, "event: typing\ndata: {\"uid\":10000001,\"gid\":20000001}\n\n")
		sse(w, "event: presence\ndata: {\"uid\":10000003,\"online\":false,\"last_seen\":9}\n\n")
		sse(w, "event: contact\ndata: {\"uid\":10000003,\"what\":\"request\"}\n\n")
		sse(w, "event: group\ndata: {\"gid\":20000001,\"what\":\"added\",\"uid\":10000002}\n\n")
		sse(w, "id: 7\nevent: message\ndata: {\"id\":7,\"uid_from\":10000003,\"gid\":20000001,\"message\":\"all\",\"time\":2}\n\n")
		sse(w, "event: bye\ndata: {\"reason\":\"shutdown\"}\n\n")
	})
	last := int64(5)
	st, err := c.Stream(context.Background(), &last)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := []client.Event{
		client.Message{ID: 6, UIDFrom: 10000001, UIDTo: 10000002, Message: "hi", Time: 1},
		client.ReadReceipt{UID: 10000001, LastID: 4},
		client.TypingEvent{UID: 10000001, GID: 20000001},
		client.PresenceEvent{UID: 10000003, Online: false, LastSeen: 9},
		client.ContactEvent{UID: 10000003, What: "request"},
		client.GroupEvent{GID: 20000001, What: client.GroupAdded, UID: 10000002},
		// A group message has no uid_to, and gets none.
		client.Message{ID: 7, UIDFrom: 10000003, GID: 20000001, Message: "all", Time: 2},
		client.Bye{Reason: "shutdown"},
	}
	for i, w := range want {
		ev, err := st.Next()
		if err != nil || !reflect.DeepEqual(ev, w) {
			t.Fatalf("event %d = %#v, %v; want %#v", i, ev, err, w)
		}
	}
	if _, err := st.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last event: %v, want io.EOF", err)
	}
	if st.LastID() != 7 || st.Retry() != 2*time.Second {
		t.Errorf("LastID %d, Retry %v; want 7, 2s", st.LastID(), st.Retry())
	}
}

func TestStreamRefused(t *testing.T) {
	t.Parallel()
	c := fake(t, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":1004,"msg":"invalid or expired access_token"}`)
	})
	_, err := c.Stream(context.Background(), nil)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 401 || e.Code != client.CodeBadToken {
		t.Fatalf("got %v, want 401/1004", err)
	}
}

// Listen over the stream: a reconnect resumes from the last id handed
// out, repeats are dropped, and a bye for a logout ends it.
func TestListenOverStream(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		conns int
	)
	msg := func(id int64) string {
		return fmt.Sprintf("id: %d\nevent: message\ndata: {\"id\":%d,\"uid_from\":10000001,\"uid_to\":10000002,\"message\":\"m%d\",\"time\":1}\n\n", id, id, id)
	}
	c := fake(t, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns++
		n := conns
		mu.Unlock()
		startSSE(w)
		switch n {
		case 1:
			if r.Header.Get("Last-Event-ID") != "0" {
				t.Errorf("first Last-Event-ID = %q, want 0", r.Header.Get("Last-Event-ID"))
			}
			sse(w, msg(1)+msg(2)+msg(3)) // then the connection drops
		default:
			if r.Header.Get("Last-Event-ID") != "3" {
				t.Errorf("second Last-Event-ID = %q, want 3", r.Header.Get("Last-Event-ID"))
			}
			sse(w, msg(2)+msg(3)+msg(4)+"event: bye\ndata: {\"reason\":\"logout\"}\n\n")
		}
	})
	var got []int64
	err := c.Listen(context.Background(), 0, func(m client.Message) error {
		got = append(got, m.ID)
		return nil
	})
	if !errors.Is(err, client.ErrSessionEnded) {
		t.Errorf("Listen = %v, want ErrSessionEnded", err)
	}
	if !reflect.DeepEqual(got, []int64{1, 2, 3, 4}) {
		t.Errorf("handed %v, want [1 2 3 4]", got)
	}
}

// A stream that keeps failing gives way to long polls.
func TestListenStreamKeepsFailing(t *testing.T) {
	t.Parallel()
	var (
		mu             sync.Mutex
		streams, polls int
	)
	c := fake(t, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/chat/Message/Stream":
			streams++
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":1503,"msg":"database unavailable"}`)
		case "/chat/Message/Recv":
			if polls++; polls == 1 {
				_, _ = io.WriteString(w, `{"error":0,"msg":"success","num":1,"data":[{"id":10,"uid_from":10000001,"message":"hi","time":1}],"last_id":10,"more":false}`)
				return
			}
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":1004,"msg":"invalid or expired access_token"}`)
		}
	})
	var got []client.Message
	err := c.Listen(context.Background(), 0, func(m client.Message) error { got = append(got, m); return nil })
	if !errors.Is(err, client.ErrSessionEnded) || !client.IsCode(err, client.CodeBadToken) {
		t.Errorf("Listen = %v, want ErrSessionEnded with 1004", err)
	}
	want := []client.Message{{ID: 10, UIDFrom: 10000001, UIDTo: 10000002, Message: "hi", Time: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("handed %+v, want %+v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if streams != 3 || polls != 2 {
		t.Errorf("%d streams and %d polls, want 3 and 2", streams, polls)
	}
}
