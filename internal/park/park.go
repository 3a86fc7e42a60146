// Package park keeps long polls without a goroutine each, for the Recv
// handler when module.Config.ParkLongPolls is set. It is hand-written
// because neither Fiber nor fasthttp can hold a request without its
// goroutine and buffers. A poll takes its
// connection from fasthttp (a hijack with no response) and waits as a
// Poll: a small struct with a timer, registered (with its wake-ups) in
// internal/deliver's hub, holding no goroutine, no fasthttp RequestCtx and no read buffer.
// Checks (is there an answer yet?) run on a few checker goroutines: the
// first one right after parking, then one after each wake-up; the deadline
// and Close ask for the final answer. An answer is written on a goroutine
// of its own, which then hands the connection back to the server for the
// client's next request.
//
// Parking needs the host's fasthttp server to leave hijacked connections
// open (Server.KeepHijackedConns); see Parker.Parkable for when a request
// may park.
package park

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// Check is what a parked poll runs to learn whether it can answer. With
// final false it looks for something to answer and returns a nil answer
// to stay parked; with final true (the wait ran out, or the Parker is
// closing) it returns the answer it has. The answer handler writes that
// answer (status, headers, body) on a Fiber ctx of its own, as the route
// would have on the request's; its error, if any, closes the connection.
//
// written, when not nil, runs once the answer has been written to the
// client's connection without error, and never when the client was gone
// before (ConnGone) or the write failed: what the answer hands out is
// consumed there and only there (Recv's session cursor). A write that
// succeeds proves only that the bytes reached the kernel; a client that
// leaves while they travel loses them.
//
// The first call comes right after the poll is parked, and may be final
// already. A Poll never runs its Check on two goroutines at once, so the
// Check may keep state (a cursor) between calls without a lock.
type Check func(final bool) (answer fiber.Handler, written func())

// maxCheckers bounds the goroutines running Checks. A Check usually waits
// for the database, whose pool bounds the work anyway; a burst of polls
// (every client reconnecting after a restart) or of wake-ups then queues
// as Polls, not as goroutines with the stacks of database calls.
const maxCheckers = 16

// Parker is the registry of parked polls. Its methods are safe for
// concurrent use; a nil *Parker parks nothing.
type Parker struct {
	logger *slog.Logger
	// hijackGrace is how long past its wait (a stream: its first ping
	// interval) a poll waits for the hijack handler before it gives up.
	hijackGrace time.Duration
	closed      atomic.Bool
	warn        sync.Once

	mu sync.Mutex
	// polls are the parked (and answering) polls, for Close. Wake-ups find
	// their poll through the notifier's subscription, not through here.
	polls map[*Poll]struct{}
	// streams are the open streams, for Close.
	streams map[*Stream]struct{}
	// idle are connections answered and waiting for the client's next
	// request before they go back to the server, for Close.
	idle map[net.Conn]struct{}
	// drained is signalled when the last poll or stream leaves polls and
	// streams after Close.
	drained *sync.Cond
	// liveness is how often sweepGone runs while there are streams, and
	// sweeper its timer, nil while there are none.
	liveness time.Duration
	sweeper  *time.Timer

	qmu sync.Mutex
	// queue holds the polls and streams due a check, oldest first;
	// checkers is how many goroutines work through it.
	queue    []task
	checkers int
}

// task is what the check queue holds: a Poll or a Stream, owned by the
// queue until its step has run.
type task interface{ step() }

// hijackGrace is Parker.hijackGrace. fasthttp runs the hijack handler
// right after the route's handler returns, unless flushing or clearing the
// connection's deadline fails (then never): a few seconds tell the two
// apart under any load.
const hijackGrace = 5 * time.Second

// livenessEvery is Parker.liveness: a client that closed its stream is
// noticed within it, and its presence ends a grace later.
const livenessEvery = 5 * time.Second

// New returns an empty Parker that logs to logger.
func New(logger *slog.Logger) *Parker {
	p := &Parker{logger: logger, hijackGrace: hijackGrace, liveness: livenessEvery,
		polls: make(map[*Poll]struct{}), streams: make(map[*Stream]struct{}), idle: make(map[net.Conn]struct{})}
	p.drained = sync.NewCond(&p.mu)
	return p
}

// Parkable reports whether the request on c may park. It needs:
//   - the server to keep hijacked connections open
//     (app.Server().KeepHijackedConns = true, set before Listen), since
//     otherwise fasthttp closes a connection once it has handed it over;
//   - no Server.MaxConnsPerIP: fasthttp then wraps connections in a type
//     of its own whose count a hand-back would get wrong;
//   - a real socket (TCP, Unix, or TLS over one), so that what is parked
//     can be written to and served again later: app.Test's in-memory
//     connection, or a host's own wrapper, is held as before instead;
//   - a Parker that is not closed.
func (p *Parker) Parkable(c *fiber.Ctx) bool {
	if p == nil || p.closed.Load() {
		return false
	}
	srv := c.App().Server()
	if srv == nil || srv.MaxConnsPerIP > 0 {
		return false
	}
	if !srv.KeepHijackedConns {
		p.warn.Do(func() {
			p.logger.Warn("long polls are held, not parked: set app.Server().KeepHijackedConns = true before listening to park them")
		})
		return false
	}
	switch c.Context().Conn().(type) {
	case syscall.Conn, *tls.Conn, *resumedConn, resumedTLSConn:
		return true
	}
	return false
}

// NewPoll starts a poll. Subscribe its Wake to the wake-ups it waits for,
// then Park it: its first check comes after the subscription, so nothing
// arriving in between is missed.
func (p *Parker) NewPoll() *Poll { return &Poll{p: p} }

// Close answers every parked poll at once (Check with final true), with
// "Connection: close", gives every open stream its last check (with
// Tick.Closing) and closes it, closes the connections waiting for their
// next request, and returns once the answers are written. Later polls and
// streams are not parked. Close is idempotent.
func (p *Parker) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed.Store(true)
	if p.sweeper != nil {
		// No stream is added after this; those left end below.
		p.sweeper.Stop()
		p.sweeper = nil
	}
	for q := range p.polls {
		q.kick()
	}
	for s := range p.streams {
		s.kick()
	}
	for c := range p.idle {
		_ = c.Close()
	}
	clear(p.idle)
	for len(p.polls)+len(p.streams) > 0 {
		p.drained.Wait()
	}
}

// Polls reports how many polls are parked or being answered; 0 for a nil
// Parker.
func (p *Parker) Polls() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.polls)
}

// add registers q; false once the Parker is closed.
func (p *Parker) add(q *Poll) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return false
	}
	p.polls[q] = struct{}{}
	return true
}

func (p *Parker) remove(q *Poll) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.polls, q)
	if len(p.polls)+len(p.streams) == 0 {
		p.drained.Broadcast()
	}
}

// A Poll's state. Whoever moves it from parked to owned (kick) queues it,
// and only the checker that takes it from the queue may run its Check or
// answer it, which is what makes an answer happen once however the
// wake-up, the deadline and Close race.
const (
	starting int32 = iota // from NewPoll until the hijack handler runs
	parked                // waiting, with no goroutine
	owned                 // being parked, queued for a check, being checked, or answered
)

// Poll is one long poll, parked or about to be.
type Poll struct {
	p     *Parker
	state atomic.Int32
	// woken says a wake-up came since the last check began; expired that
	// the deadline passed.
	woken, expired atomic.Bool

	check    Check
	cancel   func()
	deadline time.Time
	timer    *time.Timer

	app       *fiber.App
	conn      net.Conn
	pending   []byte // bytes of the client's next request, read before parking
	keepAlive bool
	// header holds the response headers the host's middleware set before
	// the route ran (CORS, say), for the answer to carry.
	header fasthttp.ResponseHeader
	// method, path and requestID describe the request for the answer's
	// error logging.
	method, path, requestID string
}

// Wake tells the poll that something may have arrived: a parked poll is
// queued for a check; one being checked checks again. It does not block,
// so deliver.Hub may call it as it wakes a user's waiters.
func (q *Poll) Wake() {
	q.woken.Store(true)
	q.kick()
}

// Finish asks for the poll's final answer now, as if its wait had run
// out: the module answers the oldest polls of a session past its cap so.
// It does not block, and may be called before Park (the first check is
// then final) or after the poll was answered (it does nothing).
func (q *Poll) Finish() { q.expire() }

func (q *Poll) expire() {
	q.expired.Store(true)
	q.kick()
}

// kick queues a parked poll for a check; in any other state its owner
// looks at its flags before it parks it again.
func (q *Poll) kick() {
	if q.state.CompareAndSwap(parked, owned) {
		q.p.enqueue(q)
	}
}

// enqueue adds q to the check queue, starting a checker if fewer than
// maxCheckers run.
func (p *Parker) enqueue(q task) {
	p.qmu.Lock()
	p.queue = append(p.queue, q)
	start := p.checkers < maxCheckers
	if start {
		p.checkers++
	}
	p.qmu.Unlock()
	if start {
		go p.checker()
	}
}

// checker checks queued polls until the queue is empty, then ends: an idle
// Parker has no goroutine.
func (p *Parker) checker() {
	for {
		p.qmu.Lock()
		if len(p.queue) == 0 {
			p.queue = nil // let a burst's backing array go
			p.checkers--
			p.qmu.Unlock()
			return
		}
		q := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.qmu.Unlock()
		q.step()
	}
}

// due reports whether something happened that the poll must look at.
func (q *Poll) due() bool {
	return q.woken.Load() || q.expired.Load() || q.p.closed.Load()
}

// Park hijacks c's connection and parks the poll on it for up to wait,
// with its first check due at once. Call it last in the handler, which
// must then return what it returns (nil) and write nothing: the answer
// will come from check. cancel takes the poll out of the hub
// (deliver.Waiter.Remove) once it is answered.
func (q *Poll) Park(c *fiber.Ctx, wait time.Duration, cancel func(), check Check) error {
	q.check, q.cancel = check, cancel
	// The first check runs on a checker rather than here, so that a burst
	// of polls waits for the database as Polls, not as fasthttp workers
	// holding a request context, a read buffer and a grown stack each.
	q.woken.Store(true)
	q.deadline = time.Now().Add(wait)
	q.app = c.App()
	srv := q.app.Server()
	// What the answer needs of the request must be copied now: fasthttp
	// reuses the request's buffers once the handler returns.
	c.Response().Header.CopyTo(&q.header)
	q.method, q.path = string(c.Request().Header.Method()), string(c.Request().URI().Path())
	if id := c.Request().Header.Peek("X-Request-Id"); len(id) > 0 {
		q.requestID = string(id)
	}
	rh := &c.Request().Header
	// fasthttp would close these after the answer too; an HTTP/1.0 client
	// would need "Connection: keep-alive", which is not worth a case.
	q.keepAlive = !srv.DisableKeepalive && rh.IsHTTP11() && !rh.ConnectionClose()
	// Armed before the hijack: fasthttp skips the hijack handler when it
	// cannot flush the connection or clear its deadline, and then only
	// this timer ends the poll and its subscription (timeout).
	q.timer = time.AfterFunc(wait+q.p.hijackGrace, q.timeout)
	c.Context().HijackSetNoResponse(true)
	c.Context().Hijack(q.hijacked)
	return nil
}

// hijacked is the hijack handler, which fasthttp runs on a goroutine of
// its own once the request's handler has returned. It parks the poll and
// returns, ending that goroutine; fasthttp then releases its request
// context and read buffer.
func (q *Poll) hijacked(hc net.Conn) {
	if !q.state.CompareAndSwap(starting, owned) {
		_ = hc.Close() // too late: timeout gave the poll up
		return
	}
	// hc reads through fasthttp's pooled read buffer, released when this
	// returns: keep the connection under it, after taking whatever the
	// buffer holds past this request (a pipelined next request).
	conn := hc
	if u, ok := hc.(interface{ UnsafeConn() net.Conn }); ok {
		conn = u.UnsafeConn()
	} else {
		// Not fasthttp's wrapper as we know it: writing the answer
		// through hc is safe, reading from it later may not be.
		q.keepAlive = false
	}
	pending, ok := drain(hc, conn)
	if !ok {
		q.keepAlive = false // the client is gone or has stopped sending
	}
	// A connection served again after an earlier park comes back wrapped;
	// drain has read what its wrapper held, so the socket is enough.
	switch rc := conn.(type) {
	case *resumedConn:
		conn = rc.Conn
	case resumedTLSConn:
		conn = rc.Conn
	}
	q.conn, q.pending = conn, pending
	if !q.p.add(q) {
		// Closed between the handler and here: a final check, at once.
		q.step()
		return
	}
	q.timer.Reset(time.Until(q.deadline))
	q.state.Store(parked)
	if q.due() {
		q.kick() // its first check, which covers wake-ups that came meanwhile
	}
}

// timeout is the poll's timer: its deadline once parked, or, while the
// hijack handler has not run, the end of the wait for it, when the poll
// is given up (fasthttp closes the connection without running it).
func (q *Poll) timeout() {
	if q.state.CompareAndSwap(starting, owned) {
		q.p.logger.Warn("parked long poll dropped: the server never handed over its connection", "path", q.path)
		q.cancel()
		return
	}
	q.expire()
}

// aLongTimeAgo is a read deadline that makes a read return at once with
// what is buffered, without waiting for the network.
var aLongTimeAgo = time.Unix(1, 0)

// drain reads what hc's buffer holds past the request, without waiting for
// the network, and reports whether the connection can still be read from.
func drain(hc, conn net.Conn) (pending []byte, ok bool) {
	if err := conn.SetReadDeadline(aLongTimeAgo); err != nil {
		return nil, false
	}
	var buf [512]byte
	var err error
	for {
		var n int
		n, err = hc.Read(buf[:])
		pending = append(pending, buf[:n]...)
		if err != nil {
			break
		}
	}
	if conn.SetReadDeadline(time.Time{}) != nil {
		return pending, false
	}
	return pending, os.IsTimeout(err)
}

// step runs one check of q on a checker. With an answer, it writes it on
// a goroutine of its own: the write may wait on a slow client and the
// hand-back waits for the next request, and neither may hold a checker.
// Without one, it parks q again, or queues it again when a wake-up came
// during the check (that wake-up found q owned and left it to its owner).
func (q *Poll) step() {
	defer q.recoverFrom()
	final := q.expired.Load() || q.p.closed.Load()
	q.woken.Store(false)
	if h, written := q.check(final); h != nil {
		go q.answer(h, written)
		return
	}
	q.state.Store(parked)
	if q.due() {
		q.kick()
	}
}

// recoverFrom ends a poll whose Check or answer panicked: logged, and its
// connection closed, as the request's goroutine would have been ended.
func (q *Poll) recoverFrom() { q.failed(recover()) }

// failed ends the poll if r, what recover returned, is a panic, and
// reports whether it was.
func (q *Poll) failed(r any) bool {
	if r == nil {
		return false
	}
	q.p.logger.Error("parked long poll failed", "path", q.path, "panic", fmt.Sprint(r))
	q.stopWaiting()
	q.p.remove(q)
	_ = q.conn.Close()
	return true
}

// stopWaiting ends the poll's timer and takes it out of the hub (cancel).
func (q *Poll) stopWaiting() {
	q.timer.Stop()
	q.cancel()
}

// defaultWriteTimeout bounds writing an answer when the server sets no
// WriteTimeout, so that a client that stopped reading cannot keep the
// answering goroutine for ever.
const defaultWriteTimeout = 30 * time.Second

// answer writes the answer h makes, then hands the connection back to the
// server, or closes it.
func (q *Poll) answer(h fiber.Handler, written func()) {
	if q.respond(h, written) {
		q.p.handBack(q.conn, q.pending, q.app.Server())
	}
}

// respond writes the answer h makes, runs written if that succeeded, and
// reports whether the connection may serve another request. (The
// hand-back is outside its recover: a panic in a later request's handler
// is the server's business.)
func (q *Poll) respond(h fiber.Handler, written func()) (keepAlive bool) {
	// A panic closes the connection: the client's next request, read
	// already or not, must not be served on it.
	defer func() {
		if q.failed(recover()) {
			keepAlive = false
		}
	}()
	srv := q.app.Server()
	keepAlive = q.keepAlive && !q.p.closed.Load()

	// The answer is made the way the route makes it, on a Fiber ctx over a
	// request context of its own: the same JSON encoder, content type and
	// error envelope, plus the headers saved from the request.
	fctx := &fasthttp.RequestCtx{}
	fctx.Request.Header.SetMethod(q.method)
	fctx.Request.SetRequestURI(q.path)
	if q.requestID != "" {
		fctx.Request.Header.Set("X-Request-Id", q.requestID)
	}
	q.header.CopyTo(&fctx.Response.Header)
	fctx.Response.SkipBody = q.method == fiber.MethodHead
	c := q.app.AcquireCtx(fctx)
	err := h(c)
	q.app.ReleaseCtx(c)
	if !keepAlive {
		fctx.Response.SetConnectionClose()
	}
	if err == nil {
		err = q.write(&fctx.Response, srv.WriteTimeout)
	}
	if err == nil && written != nil {
		written()
	}
	// Only now, so that whoever counts the poll (its cancel, Close) sees
	// it go once its answer is out and accounted for. A wake-up or the
	// deadline meanwhile finds it owned, and does nothing.
	q.stopWaiting()
	q.p.remove(q)
	if err != nil || !keepAlive {
		// A failed write means the client is gone: nothing to keep.
		_ = q.conn.Close()
		return false
	}
	return true
}

// errClientGone is respond's reason not to write to a client that has
// closed its connection (and so not to run written).
var errClientGone = errors.New("client gone")

// write writes resp to the poll's connection within wt (or
// defaultWriteTimeout), unless the client has left already: a write to a
// peer that has closed usually succeeds all the same, and would pass for
// a delivery.
func (q *Poll) write(resp *fasthttp.Response, wt time.Duration) error {
	if ConnGone(q.conn) {
		return errClientGone
	}
	if wt <= 0 {
		wt = defaultWriteTimeout
	}
	_ = q.conn.SetWriteDeadline(time.Now().Add(wt))
	_, err := resp.WriteTo(q.conn)
	// A deadline left behind would cut a later answer of the server's,
	// which clears only deadlines it set itself.
	if e := q.conn.SetWriteDeadline(time.Time{}); err == nil {
		err = e
	}
	return err
}

// handBack gives an answered connection back to srv for the client's next
// request. It first waits for that request's first byte itself: fasthttp's
// ServeConn would count the connection as busy from the start (a graceful
// Shutdown would wait for it until the read timeout) and would hold a
// request context and read buffer while the client is idle; here the wait
// costs a goroutine, honours the server's IdleTimeout, and Close ends it.
func (p *Parker) handBack(conn net.Conn, pending []byte, srv *fasthttp.Server) {
	if len(pending) == 0 {
		if !p.addIdle(conn) {
			_ = conn.Close()
			return
		}
		idle := srv.IdleTimeout
		if idle <= 0 {
			idle = srv.ReadTimeout
		}
		if idle > 0 {
			_ = conn.SetReadDeadline(time.Now().Add(idle))
		}
		var first [1]byte
		n, _ := conn.Read(first[:])
		if !p.removeIdle(conn) {
			return // Close closed it
		}
		if n == 0 || conn.SetReadDeadline(time.Time{}) != nil {
			_ = conn.Close() // idle too long, or the client left
			return
		}
		pending = first[:]
	}
	// ServeConn closes the connection when done, and returns at once when
	// the next poll parks it again. Its errors are the client's (a
	// malformed request, a reset): fasthttp has answered or closed them.
	_ = srv.ServeConn(resume(conn, pending))
}

func (p *Parker) addIdle(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return false
	}
	p.idle[c] = struct{}{}
	return true
}

// removeIdle reports whether c was still waiting, that is not closed by Close.
func (p *Parker) removeIdle(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.idle[c]
	delete(p.idle, c)
	return ok
}

// resumedConn is a connection handed back to the server with bytes
// already read from it: they are read first.
type resumedConn struct {
	net.Conn
	pending []byte
}

func (c *resumedConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// resumedTLSConn is a resumedConn over TLS. It keeps the methods fasthttp
// looks for to tell a TLS connection (RequestCtx.IsTLS, and so Fiber's
// Protocol and BaseURL).
type resumedTLSConn struct {
	*resumedConn
	tls *tls.Conn
}

func (c resumedTLSConn) Handshake() error                     { return c.tls.Handshake() }
func (c resumedTLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

func resume(conn net.Conn, pending []byte) net.Conn {
	rc := &resumedConn{Conn: conn, pending: pending}
	if t, ok := conn.(*tls.Conn); ok {
		return resumedTLSConn{resumedConn: rc, tls: t}
	}
	return rc
}
