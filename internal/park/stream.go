package park

import (
	"fmt"
	"net"
	"os"
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
// runs its StreamCheck and queues what that returns as the stream's
// output. The body has no length and is not chunked: it ends when the
// connection closes ("Connection: close"), so the connection is never
// handed back, and nothing reads from it; a client that has gone is found
// by a write failing, or, every few seconds, by the Parker's look at the
// socket (see Parker.sweepGone): a stream nothing is written to learns
// its client closed it without waiting for its next ping.
//
// A checker never writes to the socket: a client that stops reading would
// hold it, and with it every other user's polls and streams, for as long
// as a write may take. The output is written by a goroutine of the
// stream's own that runs only while there is output (flush), and it is
// bounded: a step is told how much room is left (Tick.Room), and a stream
// whose output is full steps again only once it has been written. A chunk
// of output the client does not take within streamWriteTimeout means it
// fell behind (it stopped reading, or reads more slowly than its events
// come): the stream gets a last step with Tick.Slow, whose output (a
// goodbye) is written after what was queued, and ends.
type Stream struct {
	p     *Parker
	state atomic.Int32
	// woken says a wake-up came since the last step began; pinged that the
	// ping interval passed.
	woken, pinged atomic.Bool
	// slow says a write made no progress for streamWriteTimeout; dead that
	// the connection failed; starved that a step waits for the output to
	// be written before it runs.
	slow, dead, starved atomic.Bool

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

	// omu guards the output: out is what is queued and not yet written;
	// writing says flush runs; last that the stream's last output is
	// queued, after which flush closes the connection.
	omu           sync.Mutex
	out           []byte
	writing, last bool
}

// Tick tells a StreamCheck why it runs; a plain wake-up has only Room set.
type Tick struct {
	// Ping: the ping interval passed since the last ping.
	Ping bool
	// Closing: the Parker is closing, and this is the stream's last step;
	// what it returns is written and the stream ends.
	Closing bool
	// Slow: the client stopped reading (a write made no progress for
	// streamWriteTimeout), and this is the stream's last step; what it
	// returns is queued after the output not yet written, which the
	// client gets if it reads again soon, and the stream ends.
	Slow bool
	// Room is how many bytes the step may return, at least 1: a check that
	// has more to send (a cursor far behind) returns about this much,
	// ending with a whole event, and wakes its stream for the rest, which
	// then steps again once there is room.
	Room int
}

// StreamCheck runs on a checker when a Stream is due. It returns the bytes
// to write next (none: nothing) and whether the stream ends after them.
// A Stream never runs its StreamCheck on two goroutines at once, so it may
// keep state (a cursor) between calls without a lock. The first call
// comes right after the head is written.
type StreamCheck func(t Tick) (out []byte, end bool)

const (
	// streamWriteTimeout bounds one write of a stream's output: a client
	// whose socket buffer stays full that long has stopped reading, or
	// reads too slowly to keep up, and its stream ends.
	streamWriteTimeout = 5 * time.Second
	// StreamOutput bounds the bytes queued for a stream and not yet taken
	// by its socket; a stream's steps take at most this much (Tick.Room).
	StreamOutput = 64 << 10
	// flushChunk is the most one write takes, so that a client reading
	// slowly but steadily makes progress within each write's deadline.
	flushChunk = 16 << 10
)

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
// interval. While the hijack handler has not run, it is the end of the
// wait for it, and gives the stream up.
func (s *Stream) ping() {
	if s.state.CompareAndSwap(starting, owned) {
		s.p.logger.Warn("parked stream dropped: the server never handed over its connection", "path", s.path)
		s.cancel()
		return
	}
	s.pinged.Store(true)
	s.kick()
	s.tmu.Lock()
	if !s.ended {
		s.timer.Reset(s.interval)
	}
	s.tmu.Unlock()
}

func (s *Stream) due() bool {
	return s.woken.Load() || s.pinged.Load() || s.p.closed.Load() || s.slow.Load() || s.dead.Load()
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
	// Armed before the hijack, for the case fasthttp never runs the
	// hijack handler (see Poll.Park): ping then gives the stream up.
	s.tmu.Lock()
	s.timer = time.AfterFunc(ping+s.p.hijackGrace, s.ping)
	s.tmu.Unlock()
	c.Context().HijackSetNoResponse(true)
	c.Context().Hijack(s.hijacked)
}

// hijacked is the hijack handler: it writes the head and parks the stream.
func (s *Stream) hijacked(hc net.Conn) {
	if !s.state.CompareAndSwap(starting, owned) {
		_ = hc.Close() // too late: ping gave the stream up
		return
	}
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
	if _, err := s.write(s.head); err != nil {
		s.tmu.Lock()
		s.ended = true
		s.timer.Stop()
		s.tmu.Unlock()
		s.cancel()
		_ = conn.Close()
		return
	}
	s.head = nil
	if !s.p.addStream(s) {
		// Closed between the handler and here: a last step, at once.
		s.step()
		return
	}
	s.tmu.Lock()
	s.timer.Reset(s.interval)
	s.tmu.Unlock()
	s.state.Store(parked)
	if s.due() {
		s.kick()
	}
}

// step runs check on a checker and queues what it returns; then the
// stream waits again, or ends (check said so, the connection failed, the
// client fell behind, or the Parker is closing). While the output is full
// it does not run check: the stream waits, starved, for flush to write it.
func (s *Stream) step() {
	defer s.recoverFrom()
	closing, slow := s.p.closed.Load(), s.slow.Load()
	if s.dead.Load() {
		s.end(nil)
		return
	}
	room := s.room()
	if room <= 0 && !closing && !slow {
		s.starve()
		return
	}
	t := Tick{Ping: s.pinged.Swap(false), Closing: closing, Slow: slow && !closing, Room: max(room, 1)}
	s.woken.Store(false)
	out, end := s.check(t)
	if end || closing || slow {
		s.end(out)
		return
	}
	s.queue(out)
	s.state.Store(parked)
	if s.due() {
		s.kick()
	}
}

// starve parks the stream until flush has written its output. The flags
// are set before it parks and looked at after, so a flush that ends in
// between, or a close or failure, still queues it.
func (s *Stream) starve() {
	s.starved.Store(true)
	s.state.Store(parked)
	if s.room() > 0 || s.p.closed.Load() || s.slow.Load() || s.dead.Load() {
		s.kick()
	}
}

// room is how many bytes the stream's output can take.
func (s *Stream) room() int {
	s.omu.Lock()
	defer s.omu.Unlock()
	return StreamOutput - len(s.out)
}

// queue adds b to the output and starts flush if it is not running.
func (s *Stream) queue(b []byte) {
	if len(b) == 0 {
		return
	}
	s.omu.Lock()
	defer s.omu.Unlock()
	s.out = append(s.out, b...)
	// After a write timed out, the last step (Tick.Slow) is due and
	// starts the last flush.
	if !s.writing && !s.slow.Load() {
		s.writing = true
		go s.flush()
	}
}

// flush writes the output until it is empty, on a goroutine of its own,
// then ends; after the last output it closes the stream. A starved stream
// is queued for its next step once the output is written.
func (s *Stream) flush() {
	for {
		s.omu.Lock()
		b := s.out[:min(len(s.out), flushChunk)]
		if len(b) == 0 {
			s.out, s.writing = nil, false
			last := s.last
			s.omu.Unlock()
			if last {
				s.release()
			} else if s.starved.Swap(false) {
				s.kick()
			}
			return
		}
		s.omu.Unlock()
		n, err := s.write(b)
		s.omu.Lock()
		s.out = s.out[n:]
		s.omu.Unlock()
		if err != nil {
			s.failed(err)
			return
		}
	}
}

// failed handles a write error of flush: after the last output, or when
// the connection failed, the output is dropped and the stream ends; a
// write that timed out (the client fell behind) asks for a last step.
func (s *Stream) failed(err error) {
	s.omu.Lock()
	last := s.last
	timeout := os.IsTimeout(err) && !s.slow.Load()
	if last || !timeout {
		s.dead.Store(true)
		s.out = nil
	}
	s.writing = false
	s.omu.Unlock()
	switch {
	case last:
		s.release()
	case timeout:
		s.slow.Store(true)
		s.kick()
	default:
		s.kick()
	}
}

func (s *Stream) write(b []byte) (int, error) {
	if err := s.conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return 0, err
	}
	return s.conn.Write(b)
}

// end stops the stream's timer and subscriptions and queues its last
// output, after which flush closes the connection and forgets the stream.
// Its state stays owned, so no wake-up queues it again.
func (s *Stream) end(last []byte) {
	s.tmu.Lock()
	s.ended = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.tmu.Unlock()
	s.cancel()
	s.omu.Lock()
	defer s.omu.Unlock()
	if s.last {
		return // a panic in a step after end
	}
	s.last = true
	if !s.dead.Load() {
		s.out = append(s.out, last...)
	}
	if !s.writing {
		s.writing = true
		go s.flush()
	}
}

// release closes the connection and forgets the stream.
func (s *Stream) release() {
	_ = s.conn.Close()
	s.p.removeStream(s)
}

func (s *Stream) recoverFrom() {
	if r := recover(); r != nil {
		s.p.logger.Error("parked stream failed", "path", s.path, "panic", fmt.Sprint(r))
		s.dead.Store(true)
		s.end(nil)
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
	if p.sweeper == nil {
		p.sweeper = time.AfterFunc(p.liveness, p.sweepGone)
	}
	return true
}

// sweepGone ends the streams whose clients have closed their connections,
// as far as can be told without reading from them (ConnGone): each such
// stream is marked dead and steps, which ends it. Until then only a
// failed write would tell, and a quiet stream writes only its pings. A
// TLS client that says close_notify before its FIN leaves that alert to
// read, which counts as open: its stream still ends at its next ping's
// failed write. It runs every Parker.liveness while there are streams.
func (p *Parker) sweepGone() {
	p.mu.Lock()
	streams := make([]*Stream, 0, len(p.streams))
	for s := range p.streams {
		streams = append(streams, s)
	}
	p.mu.Unlock()
	for _, s := range streams {
		if !s.dead.Load() && ConnGone(s.conn) {
			s.dead.Store(true)
			s.kick()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.streams) == 0 || p.sweeper == nil { // none left, or Close stopped it
		p.sweeper = nil
		return
	}
	p.sweeper.Reset(p.liveness)
}

func (p *Parker) removeStream(s *Stream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.streams, s)
	if len(p.polls)+len(p.streams) == 0 {
		p.drained.Broadcast()
	}
}
