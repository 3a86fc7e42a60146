package park

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// unhijacked parks on a request context that no server serves, so its
// hijack handler never runs, as when fasthttp cannot flush the connection
// or clear its deadline. It returns a Parker that waits only briefly for
// the handler, and the ctx to park on.
func unhijacked(t *testing.T) (*Parker, *fiber.Ctx) {
	t.Helper()
	p := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.hijackGrace = 20 * time.Millisecond
	app := fiber.New()
	c := app.AcquireCtx(&fasthttp.RequestCtx{})
	t.Cleanup(func() { app.ReleaseCtx(c) })
	return p, c
}

// cancelled fails unless done is closed within a generous bound.
func cancelled(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("subscription not cancelled: the waiter would leak")
	}
}

// lateHijack runs hijacked on one end of a pipe and fails unless it closes
// the connection having written nothing.
func lateHijack(t *testing.T, hijacked func(net.Conn)) {
	t.Helper()
	a, b := net.Pipe()
	defer b.Close()
	go hijacked(a)
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf [64]byte
	if n, err := b.Read(buf[:]); err != io.EOF {
		t.Fatalf("late hijack: read %q, %v; want the connection closed", buf[:n], err)
	}
}

func TestPollWithoutHijackEnds(t *testing.T) {
	p, c := unhijacked(t)
	done := make(chan struct{})
	q := p.NewPoll()
	_ = q.Park(c, 10*time.Millisecond, func() { close(done) }, func(bool) (fiber.Handler, func()) {
		t.Error("a poll given up was checked")
		return nil, nil
	})
	cancelled(t, done)
	lateHijack(t, q.hijacked)
	if n := p.Polls(); n != 0 {
		t.Fatalf("%d polls registered", n)
	}
}

func TestStreamWithoutHijackEnds(t *testing.T) {
	p, c := unhijacked(t)
	done := make(chan struct{})
	s := p.NewStream()
	s.Start(c, 10*time.Millisecond, func() { close(done) }, func(Tick) ([]byte, bool) {
		t.Error("a stream given up was stepped")
		return nil, true
	})
	cancelled(t, done)
	lateHijack(t, s.hijacked)
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.streams); n != 0 {
		t.Fatalf("%d streams registered", n)
	}
}
