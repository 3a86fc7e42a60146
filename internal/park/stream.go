package park

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// A Stream is a long poll that is answered in pieces (a Server-Sent Events
// response, say): after the hijack it writes the response head itself and
// then waits as a Poll does, a small struct with no goroutine of its own,
// no fasthttp request context and no read buffer. Each wake-up, each ping
// interval and Close queue it for a step on the Parker's checkers, which
// runs its StreamCheck and writes what that returns straight to the
// connection, under a short write deadline. The body has no length and
// is not chunked: it ends when the connection closes ("Connection:
// close"), so the connection is never handed back, and nothing reads from
// it; a client that has gone is found by the next write failing.
type Stream struct {
	p     *Parker
	state atomic.Int32
	// woken says a wake-up came since the last step began; pinged that the
	// ping interval passed.
	woken, pinged atomic.Bool

	check    StreamCheck
	cancel   func()
	interval time.Duration
	conn     net.Conn
	head     []byte
	path     string

	// tmu guards timer against the ping callback re-arming it after the
	// stream has ended.
	tmu   sync.Mutex
	timer *time.Timer
	ended bool
}

// Tick tells a StreamCheck why it runs; a plain wake-up has both false.
type Tick struct {
	// Ping: the ping interval passed since the last ping.
	Ping bool
	// Closing: the Parker is closing, and this is the stream's last step;
	// what it returns is written and the stream ends.
	Closing bool
}

// StreamCheck runs on a checker when a Stream is due. It returns the bytes
// to write next (none: nothing) and whether the stream ends after them.
// A Stream never runs its StreamCheck on two goroutines at once, so it may
// keep state (a cursor) between calls without a lock. The first call
// comes right after the head is written.
type StreamCheck func(t Tick) (out []byte, end bool)

// streamWriteTimeout bounds one write of a stream, which holds a checker:
// a client whose socket buffer stays full that long has stopped reading,
// and its stream ends.
const streamWriteTimeout = 5 * time.Second

// NewStream starts a stream. Subscribe its Wake to the wake-ups it waits
// for, then Start it: its first step comes after the subscription, so
// nothing arriving in between is missed.
func (p *Parker) NewStream() *Stream { return &Stream{p: p} }

// Wake tells the stream something may have happened: it is queued for a
// step, or, while one runs, steps again after it. It does not block.
func (s *Stream) Wake() {
	s.woken.Store(true)
	s.kick()
}

func (s *Stream) kick() {
	if s.state.CompareAndSwap(parked, owned) {
		s.p.enqueue(s)
	}
}

// ping is the ping timer's callback; it re-arms the timer for the next
// interval.
func (s *Stream) ping() {
	s.pinged.Store(true)
	s.kick()
	s.tmu.Lock()
	if !s.ended {
		s.timer.Reset(s.interval)
	}
	s.tmu.Unlock()
}

func (s *Stream) due() bool {
	return s.woken.Load() || s.pinged.Load() || s.p.closed.Load()
}

// Start hijacks c's connection and runs the stream on it: the response
// head is the headers c's response holds (the host's middleware's and the
// route's, say Content-Type) with status 200 and "Connection: close", and
// check is stepped at once, after each Wake, every ping interval and on
// Close. Call it last in the handler, which must then return nil and
// write nothing. cancel ends the stream's wake-up subscriptions once the
// stream has ended.
func (s *Stream) Start(c *fiber.Ctx, ping time.Duration, cancel func(), check StreamCheck) {
	s.check, s.cancel, s.interval = check, cancel, ping
	s.woken.Store(true)
	var h fasthttp.ResponseHeader
	c.Response().Header.CopyTo(&h)
	h.SetStatusCode(fiber.StatusOK)
	// No Content-Length and no Transfer-Encoding: the body runs until the
	// connection closes.
	h.Del(fiber.HeaderContentLength)
	h.Del(fiber.HeaderTransferEncoding)
	h.SetConnectionClose()
	s.head = h.AppendBytes(nil)
	s.path = string(c.Request().URI().Path())
	c.Context().HijackSetNoResponse(true)
	c.Context().Hijack(s.hijacked)
}

// hijacked is the hijack handler: it writes the head and parks the stream.
func (s *Stream) hijacked(hc net.Conn) {
	// Nothing is read from the connection again, so fasthttp's buffered
	// wrapper (released when this returns) can go: the socket is enough.
	conn := hc
	if u, ok := hc.(interface{ UnsafeConn() net.Conn }); ok {
		conn = u.UnsafeConn()
	}
	switch rc := conn.(type) {
	case *resumedConn:
		conn = rc.Conn
	case resumedTLSConn:
		conn = rc.Conn
	}
	s.conn = conn
	if s.write(s.head) != nil {
		s.cancel()
		_ = conn.Close()
		return
	}
	s.head = nil
	if !s.p.addStream(s) {
		// Closed between the handler and here: a last step, at once.
		s.state.Store(owned)
		s.step()
		return
	}
	s.tmu.Lock()
	s.timer = time.AfterFunc(s.interval, s.ping)
	s.tmu.Unlock()
	s.state.Store(parked)
	if s.due() {
		s.kick()
	}
}

func (s *Stream) write(b []byte) error {
	if err := s.conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return err
	}
	_, err := s.conn.Write(b)
	return err
}

// step runs check on a checker and writes what it returns; then the
// stream waits again, or ends (check said so, the write failed, or the
// Parker is closing).
func (s *Stream) step() {
	defer s.recoverFrom()
	closing := s.p.closed.Load()
	t := Tick{Ping: s.pinged.Swap(false), Closing: closing}
	s.woken.Store(false)
	out, end := s.check(t)
	if len(out) > 0 && s.write(out) != nil {
		end = true // the client is gone, or stopped reading
	}
	if end || closing {
		s.end()
		return
	}
	s.state.Store(parked)
	if s.due() {
		s.kick()
	}
}

// end stops the stream's timer and subscriptions, closes its connection
// and forgets it. Its state stays owned, so no wake-up queues it again.
func (s *Stream) end() {
	s.tmu.Lock()
	s.ended = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.tmu.Unlock()
	s.cancel()
	_ = s.conn.Close()
	s.p.removeStream(s)
}

func (s *Stream) recoverFrom() {
	if r := recover(); r != nil {
		s.p.logger.Error("parked stream failed", "path", s.path, "panic", fmt.Sprint(r))
		s.end()
	}
}

// addStream registers s; false once the Parker is closed.
func (p *Parker) addStream(s *Stream) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return false
	}
	p.streams[s] = struct{}{}
	return true
}

func (p *Parker) removeStream(s *Stream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.streams, s)
	if len(p.polls)+len(p.streams) == 0 {
		p.drained.Broadcast()
	}
}
