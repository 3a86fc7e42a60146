package client

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/fiberchat/fiberchat/middleware"
)

func TestSSEReader(t *testing.T) {
	t.Parallel()
	msg := func(id, data string) sseEvent { return sseEvent{ID: id, Type: "message", Data: data} }
	tests := []struct {
		name  string
		in    string
		want  []sseEvent
		retry time.Duration
	}{
		{"LF", "id: 1\nevent: message\ndata: {\"id\":1}\n\n", []sseEvent{msg("1", `{"id":1}`)}, 0},
		{"CRLF", "id: 2\r\nevent: read\r\ndata: x\r\n\r\n", []sseEvent{{ID: "2", Type: "read", Data: "x"}}, 0},
		{"lone CR", "data: a\rdata: b\r\r", []sseEvent{msg("", "a\nb")}, 0},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", []sseEvent{msg("", "a\nb\nc")}, 0},
		{"comments", ": ping\n\n: ping\ndata: x\n:another\n\n", []sseEvent{msg("", "x")}, 0},
		{"multi-line data", "data: a\ndata:b\ndata\n\n", []sseEvent{msg("", "a\nb\n")}, 0},
		{"one space only", "data:  two\n\n", []sseEvent{msg("", " two")}, 0},
		{"id without data", "id: 7\n\ndata: x\n\n", []sseEvent{msg("7", "x")}, 0},
		{"id persists", "id: 3\ndata: a\n\ndata: b\n\n", []sseEvent{msg("3", "a"), msg("3", "b")}, 0},
		{"empty id resets", "id: 3\ndata: a\n\nid\ndata: b\n\n", []sseEvent{msg("3", "a"), msg("", "b")}, 0},
		{"id with NUL ignored", "id: 4\ndata: a\n\nid: 5\x006\ndata: b\n\n", []sseEvent{msg("4", "a"), msg("4", "b")}, 0},
		{"type resets", "event: bye\ndata: a\n\ndata: b\n\n", []sseEvent{{Type: "bye", Data: "a"}, msg("", "b")}, 0},
		{"type without data dropped", "event: bye\n\ndata: b\n\n", []sseEvent{msg("", "b")}, 0},
		{"retry", "retry: 1500\n\n", nil, 1500 * time.Millisecond},
		{"retry not digits", "retry: 1500\n\nretry: 1.5\nretry: x\nretry: -1\nretry:\n\n", nil, 1500 * time.Millisecond},
		{"unknown fields", "foo: bar\nDATA: y\ndata: x\n\n", []sseEvent{msg("", "x")}, 0},
		{"BOM", "\uFEFFdata: x\n\n", []sseEvent{msg("", "x")}, 0},
		{"unfinished event dropped", "data: x\n\ndata: y\n", []sseEvent{msg("", "x")}, 0},
		{"unfinished CR event dropped", "data: x\r\rdata: y\r", []sseEvent{msg("", "x")}, 0},
		{"colon in value", "data: a: b\n\n", []sseEvent{msg("", "a: b")}, 0},
		{"empty", "", nil, 0},
	}
	readers := map[string]func(string) io.Reader{
		"whole":    func(s string) io.Reader { return strings.NewReader(s) },
		"bytewise": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
	}
	for _, tt := range tests {
		for rname, mk := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				r := newSSEReader(mk(tt.in))
				var got []sseEvent
				for {
					ev, err := r.next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatalf("next: %v", err)
					}
					got = append(got, ev)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("events:\n got %q\nwant %q", got, tt.want)
				}
				if r.retry != tt.retry {
					t.Errorf("retry = %v, want %v", r.retry, tt.retry)
				}
			})
		}
	}
}

func TestSSEReaderLongLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 200<<10)
	r := newSSEReader(strings.NewReader("data: " + long + "\n\n"))
	ev, err := r.next()
	if err != nil || ev.Data != long {
		t.Fatalf("got %d bytes, %v; want %d bytes", len(ev.Data), err, len(long))
	}
}

func TestSign(t *testing.T) {
	t.Parallel()
	// The same route name however the path is written (API.md §1a).
	for _, p := range []string{"/Message/Recv", "/message/recv/index", "message/recv", "/MESSAGE/RECV/"} {
		if got, want := Sign(p, "2026-03-14", "s"), Sign("/message/recv", "2026-03-14", "s"); got != want {
			t.Errorf("Sign(%q) = %s, want %s", p, got, want)
		}
	}
	// The server's own computation agrees.
	for _, p := range []string{"/user/login", "/user/reg/ajax_reg", "/Contacts/IO/addContacts", "/Message/Stream"} {
		if got, want := Sign(p, "2026-03-14", "secret"), middleware.Token(middleware.RouteName(p), "2026-03-14", "secret"); got != want {
			t.Errorf("Sign(%q) = %s, server computes %s", p, got, want)
		}
	}
}
