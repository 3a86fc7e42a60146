package park

import (
	"bufio"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// PollDriver runs a long poll's checks until it answers: a Poll, parked,
// or a HeldPoll, on its request's goroutine. The handler is the same for
// both: it subscribes Wake to the poll's wake-ups, then calls Park last.
type PollDriver interface {
	// Wake asks for a check. It does not block.
	Wake()
	// Finish asks for the final answer now, as if the wait had run out.
	// It does not block.
	Finish()
	// Park runs check at once, after each Wake, and finally (final true)
	// when the wait runs out, Finish is called or the module closes, and
	// writes the answer check returns. cancel runs once it has answered.
	// The handler returns what Park returns and writes nothing itself.
	Park(c *fiber.Ctx, wait time.Duration, cancel func(), check Check) error
}

// StreamDriver runs a stream's steps: a Stream, parked, or a HeldStream,
// on a goroutine of fasthttp's. The handler subscribes Wake to the
// stream's wake-ups, then calls Start last and returns nil.
type StreamDriver interface {
	// Wake asks for a step. It does not block.
	Wake()
	// Start runs check at once, after each Wake, every ping interval and
	// when the module closes, writing what it returns, until it ends the
	// stream; cancel runs then.
	Start(c *fiber.Ctx, ping time.Duration, cancel func(), check StreamCheck)
}

// PollFor returns the driver of a long poll on c: a parked Poll where c
// may park (Parkable), else a HeldPoll that closing ends.
func (p *Parker) PollFor(c *fiber.Ctx, closing <-chan struct{}) PollDriver {
	if p.Parkable(c) {
		return p.NewPoll()
	}
	return &HeldPoll{kick: make(chan struct{}, 1), finish: make(chan struct{}), closing: closing}
}

// StreamFor returns the driver of a stream on c: a parked Stream where c
// may park (Parkable), else a HeldStream that closing ends.
func (p *Parker) StreamFor(c *fiber.Ctx, closing <-chan struct{}) StreamDriver {
	if p.Parkable(c) {
		return p.NewStream()
	}
	return &HeldStream{kick: make(chan struct{}, 1), closing: closing}
}

// HeldPoll is a long poll held on its request's goroutine, where it cannot
// park (app.Test, a server without KeepHijackedConns): it waits in a
// select between checks.
type HeldPoll struct {
	kick, finish chan struct{}
	once         sync.Once
	closing      <-chan struct{}
}

// Wake implements PollDriver.
func (q *HeldPoll) Wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// Finish implements PollDriver.
func (q *HeldPoll) Finish() { q.once.Do(func() { close(q.finish) }) }

// Park implements PollDriver. The request's own context ending (a host's
// timeout middleware, say) also asks for the final answer.
func (q *HeldPoll) Park(c *fiber.Ctx, wait time.Duration, cancel func(), check Check) error {
	defer cancel()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	done := c.UserContext().Done()
	final := false
	for {
		if h, written := check(final); h != nil {
			return AnswerHeld(c, h, written)
		}
		select {
		case <-q.kick:
		case <-deadline.C:
			final = true
		case <-q.finish:
			final = true
		case <-q.closing:
			final = true
		case <-done:
			final = true
		}
	}
}

// AnswerHeld writes an answer made on the request's own goroutine (a
// HeldPoll's, or one given at once) into c's response, which fasthttp
// sends once the handler has returned, and then runs written (see Check)
// unless the client has left already. fasthttp tells a handler nothing
// of its write, so this is the last moment the request can look: a client
// that leaves from here on loses the answer (see Check).
func AnswerHeld(c *fiber.Ctx, h fiber.Handler, written func()) error {
	if err := h(c); err != nil {
		return err
	}
	if written != nil && !ConnGone(c.Context().Conn()) {
		written()
	}
	return nil
}

// HeldStream is a stream run where it cannot park: on fasthttp's body
// stream writer (a goroutine of its own, plus fasthttp's copying one),
// woken through a channel, pinged by a ticker and ended by closing. Each
// write is flushed to the client at once (chunked); it blocks only the
// stream's own goroutine, so a held stream never says bye "slow": a
// client that stops reading holds that goroutine until the write fails.
type HeldStream struct {
	kick    chan struct{}
	closing <-chan struct{}
}

// Wake implements StreamDriver.
func (s *HeldStream) Wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Start implements StreamDriver.
func (s *HeldStream) Start(c *fiber.Ctx, ping time.Duration, cancel func(), check StreamCheck) {
	conn := c.Context().Conn()
	// As a parked stream's, the body ends with the connection.
	c.Context().SetConnectionClose()
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		defer func() { _ = conn.SetWriteDeadline(time.Time{}) }()
		pings := time.NewTicker(ping)
		defer pings.Stop()
		t := Tick{Room: StreamOutput}
		for {
			out, end := check(t)
			// The server's own write deadline (its WriteTimeout) would cut
			// a stream that outlives it; each write gets a short one.
			_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			if _, err := w.Write(out); err != nil || w.Flush() != nil || end {
				return
			}
			select {
			case <-s.kick:
				t = Tick{Room: StreamOutput}
			case <-pings.C:
				t = Tick{Ping: true, Room: StreamOutput}
			case <-s.closing:
				t = Tick{Closing: true, Room: StreamOutput}
			}
		}
	})
}
