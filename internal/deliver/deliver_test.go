package deliver

import (
	"context"
	"testing"

	"github.com/fiberchat/fiberchat/notify"
)

// waiter is a test waiter: how often it was woken and stopped.
type waiter struct {
	*Waiter
	woken, stopped int
}

func add(h *Hub, kind Kind, uid, tokenID int64) *waiter {
	w := &waiter{Waiter: &Waiter{}}
	h.Add(w.Waiter, kind, uid, tokenID, func() { w.woken++ }, func() { w.stopped++ })
	return w
}

func TestCaps(t *testing.T) {
	tests := []struct {
		name     string
		sessions []int64 // the session of each waiter added, in order
		stopped  []int   // which were stopped, by index
	}{
		{"under the caps", []int64{1, 1, 1, 1, 2}, nil},
		{"fifth of a session", []int64{1, 1, 2, 1, 1, 1}, []int{0}},
		{"seventeenth of a user", []int64{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5}, []int{0}},
		{"session cap before user cap", []int64{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4}, []int{12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kind := range []Kind{Poll, Stream} {
				h := New(Config{Notifier: notify.NewLocal()})
				other := add(h, 1-kind, 7, 1) // the other kind has caps of its own
				var ws []*waiter
				for _, s := range tt.sessions {
					ws = append(ws, add(h, kind, 7, s))
				}
				want := map[int]bool{}
				for _, i := range tt.stopped {
					want[i] = true
				}
				for i, w := range ws {
					if got := w.stopped == 1; got != want[i] {
						t.Errorf("kind %d waiter %d stopped %d times, want stopped %v", kind, i, w.stopped, want[i])
					}
				}
				if other.stopped != 0 {
					t.Errorf("kind %d: a waiter of the other kind was stopped", kind)
				}
				if got, want := h.Len(kind), len(ws)-len(tt.stopped); got != want {
					t.Errorf("kind %d: Len %d, want %d", kind, got, want)
				}
				// Every waiter leaves, the stopped ones too (twice: Remove
				// is idempotent): the count is back to 0.
				for _, w := range append(ws, other) {
					w.Remove()
					w.Remove()
				}
				if h.Len(Poll)+h.Len(Stream) != 0 || len(h.byUID) != 0 {
					t.Errorf("kind %d: Len %d+%d and %d users after all left", kind, h.Len(Poll), h.Len(Stream), len(h.byUID))
				}
			}
		})
	}
}

func TestWakeNoticesAndSessionsEnded(t *testing.T) {
	n := notify.NewLocal()
	h := New(Config{Notifier: n})
	poll, stream, elsewhere := add(h, Poll, 7, 1), add(h, Stream, 7, 1), add(h, Stream, 8, 2)
	for _, w := range []*waiter{poll, stream} {
		if !w.Messages() || w.Messages() {
			t.Fatal("Messages: want true once, for the first read")
		}
	}
	_ = n.Publish(context.Background(), 7)
	if poll.woken != 1 || stream.woken != 1 || elsewhere.woken != 0 || !poll.Messages() || !stream.Messages() {
		t.Fatalf("after a publish: woken %d %d %d", poll.woken, stream.woken, elsewhere.woken)
	}
	h.Notice(7, []byte("a"))
	h.SessionsEnded(7, "logout")
	h.Notice(7, []byte("b"))
	// Notices are the streams'; the end of sessions is the polls' too.
	if poll.woken != 2 || stream.woken != 4 {
		t.Fatalf("notices and the end of sessions woke the poll %d times, the stream %d, want 2 and 4", poll.woken, stream.woken)
	}
	if notices, ended := poll.Take(); notices != nil || ended != "logout" {
		t.Fatalf("the poll's Take: %q %q", notices, ended)
	}
	if notices, ended := stream.Take(); string(notices) != "ab" || ended != "logout" {
		t.Fatalf("Take: %q %q", notices, ended)
	}
	if notices, ended := stream.Take(); notices != nil || ended != "" {
		t.Fatalf("second Take: %q %q", notices, ended)
	}
	if stream.Messages() {
		t.Fatal("a notice says a message arrived")
	}
	stream.Remove()
	_ = n.Publish(context.Background(), 7)
	if stream.woken != 4 {
		t.Fatal("woken after Remove")
	}
}

func TestMaxWaiters(t *testing.T) {
	h := New(Config{Notifier: notify.NewLocal(), MaxWaiters: 2})
	noop := func() {}
	var a, b, c, d Waiter
	if !h.Add(&a, Poll, 1, 1, noop, noop) || !h.Add(&b, Stream, 2, 2, noop, noop) {
		t.Fatal("refused under MaxWaiters")
	}
	if h.Add(&c, Poll, 3, 3, noop, noop) {
		t.Fatal("a third waiter added past MaxWaiters 2")
	}
	if got := h.Len(Poll) + h.Len(Stream); got != 2 {
		t.Fatalf("%d waiters after a refused Add, want 2", got)
	}
	a.Remove()
	if !h.Add(&d, Poll, 3, 3, noop, noop) {
		t.Fatal("refused after one was removed")
	}
}

// TestChanged: Changed runs when a user's first waiter comes and their
// last goes, whatever the kinds, and Has says which.
func TestChanged(t *testing.T) {
	var calls []bool
	var h *Hub
	h = New(Config{Notifier: notify.NewLocal(), Changed: func(uid int64) {
		if uid != 7 {
			t.Errorf("Changed(%d)", uid)
		}
		calls = append(calls, h.Has(uid))
	}})
	p := add(h, Poll, 7, 1)
	s := add(h, Stream, 7, 2)
	p.Remove()
	p.Remove() // idempotent: no second call
	if len(calls) != 1 || !calls[0] {
		t.Fatalf("calls %v, want one, with waiters", calls)
	}
	s.Remove()
	if len(calls) != 2 || calls[1] || h.Has(7) {
		t.Fatalf("calls %v, want a second, without waiters", calls)
	}
}
