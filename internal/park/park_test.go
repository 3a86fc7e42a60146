package park

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// fixture is a Fiber app on a loopback listener whose POST /poll parks
// (for wait_ms milliseconds) and answers {"msg": …} with what msg holds,
// and whose GET /hello answers plainly, for what comes after a poll on
// the same connection.
type fixture struct {
	p    *Parker
	app  *fiber.App
	addr string
	tls  bool

	mu    sync.Mutex
	polls []*Poll

	msg     atomic.Pointer[string]
	answers atomic.Int64 // answers made, across all polls
	cancels atomic.Int64
	// written counts the answers written to their client (Check's written).
	written atomic.Int64
	// hellos counts the GET /hello requests served.
	hellos atomic.Int64
	// gate, when set, holds every non-final check until it is closed.
	gate atomic.Pointer[chan struct{}]
}

type fixtureOptions struct {
	idleTimeout time.Duration
	tls         bool
	// idleWorkers is how long fasthttp keeps an idle worker goroutine.
	idleWorkers time.Duration
}

func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{p: New(slog.New(slog.NewTextHandler(io.Discard, nil))), tls: o.tls}
	f.app = fiber.New(fiber.Config{DisableStartupMessage: true, IdleTimeout: o.idleTimeout})
	f.app.Server().KeepHijackedConns = true
	f.app.Server().MaxIdleWorkerDuration = o.idleWorkers
	f.app.Use(func(c *fiber.Ctx) error {
		c.Set("X-Before", "yes")
		return c.Next()
	})
	f.app.Post("/poll", func(c *fiber.Ctx) error {
		if !f.p.Parkable(c) {
			return c.Status(fiber.StatusConflict).SendString("not parkable")
		}
		q := f.p.NewPoll()
		f.mu.Lock()
		f.polls = append(f.polls, q)
		f.mu.Unlock()
		if c.Query("wake") != "" {
			q.Wake() // as a wake-up between Subscribe and Park
		}
		panics := c.Query("panic") != ""
		q.Park(c, time.Duration(c.QueryInt("wait_ms"))*time.Millisecond, func() { f.cancels.Add(1) }, func(final bool) (fiber.Handler, func()) {
			if g := f.gate.Load(); g != nil && !final {
				<-*g
			}
			m := f.msg.Load()
			if m == nil && !final {
				return nil, nil
			}
			text := ""
			if m != nil {
				text = *m
			}
			return func(out *fiber.Ctx) error {
				f.answers.Add(1)
				if panics {
					panic("answer failed")
				}
				return out.JSON(fiber.Map{"msg": text})
			}, func() { f.written.Add(1) }
		})
		return nil
	})
	f.app.Get("/hello", func(c *fiber.Ctx) error {
		f.hellos.Add(1)
		return c.SendString("hello " + c.Protocol())
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	if o.tls {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}})
	}
	served := make(chan error, 1)
	go func() { served <- f.app.Listener(ln) }()
	t.Cleanup(func() {
		f.p.Close()
		if err := f.app.ShutdownWithTimeout(5 * time.Second); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-served
	})
	return f
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// client is one connection to the fixture.
type client struct {
	conn net.Conn
	br   *bufio.Reader
}

func (f *fixture) dial(t *testing.T) *client {
	t.Helper()
	var conn net.Conn
	var err error
	if f.tls {
		conn, err = tls.Dial("tcp", f.addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		conn, err = net.Dial("tcp", f.addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &client{conn: conn, br: bufio.NewReader(conn)}
}

func pollRequest(query string, header ...string) string {
	return "POST /poll?" + query + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n" + strings.Join(header, "") + "\r\n"
}

const helloRequest = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"

func (c *client) write(t *testing.T, raw ...string) {
	t.Helper()
	if _, err := io.WriteString(c.conn, strings.Join(raw, "")); err != nil {
		t.Fatal(err)
	}
}

// read reads one answer: its response and body.
func (c *client) read(t *testing.T) (*http.Response, string) {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return resp, string(body)
}

// closed fails unless the server closes the connection within d, with
// nothing more to read.
func (c *client) closed(t *testing.T, d time.Duration) {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	if b, err := c.br.ReadByte(); err == nil {
		t.Fatalf("read %q, want the connection closed", b)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %v", d)
	}
}

// parked waits until n polls are in the registry, each parked.
func (f *fixture) parked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.p.mu.Lock()
		got := 0
		for q := range f.p.polls {
			if q.state.Load() == parked {
				got++
			}
		}
		f.p.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d polls parked, want %d", got, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (f *fixture) send(msg string) {
	f.msg.Store(&msg)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.polls {
		q.Wake()
	}
}

// drained waits until no poll is registered: each has been answered,
// which ends with leaving the registry.
func (f *fixture) drained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.registered() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d polls left", f.registered())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (f *fixture) registered() int {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	return len(f.p.polls)
}

func TestWakeAnswersAndHandsBack(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[secure], func(t *testing.T) {
			f := newFixture(t, fixtureOptions{tls: secure})
			c := f.dial(t)
			c.write(t, pollRequest("wait_ms=10000"))
			f.parked(t, 1)
			f.send("hi")
			resp, body := c.read(t)
			if resp.StatusCode != 200 || body != `{"msg":"hi"}` {
				t.Fatalf("woken poll: %d %s", resp.StatusCode, body)
			}
			if resp.Header.Get("Content-Type") != fiber.MIMEApplicationJSON || resp.Header.Get("X-Before") != "yes" || resp.Close {
				t.Fatalf("woken poll's headers: %v (close %v)", resp.Header, resp.Close)
			}
			// The connection went back to the server, TLS and all.
			c.write(t, helloRequest)
			if _, body := c.read(t); body != "hello "+map[bool]string{false: "http", true: "https"}[secure] {
				t.Fatalf("after the poll: %q", body)
			}
			// And parks again.
			f.msg.Store(nil)
			c.write(t, pollRequest("wait_ms=10000"))
			f.parked(t, 1)
			f.send("again")
			if _, body := c.read(t); body != `{"msg":"again"}` {
				t.Fatalf("second poll: %s", body)
			}
			f.drained(t)
			if f.cancels.Load() != 2 || f.answers.Load() != 2 || f.written.Load() != 2 {
				t.Fatalf("after two answers: %d subscriptions cancelled, %d answers, %d written", f.cancels.Load(), f.answers.Load(), f.written.Load())
			}
		})
	}
}

func TestDeadlineAnswersEmpty(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.dial(t)
	start := time.Now()
	c.write(t, pollRequest("wait_ms=300"))
	if _, body := c.read(t); body != `{"msg":""}` || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("answer %s after %v, want the empty one after 300ms", body, time.Since(start))
	}
	c.write(t, helloRequest)
	if _, body := c.read(t); body != "hello http" {
		t.Fatalf("after the poll: %q", body)
	}
}

func TestFirstCheckAnswersAtOnce(t *testing.T) {
	// Something to answer already: the first check, right after parking,
	// answers without waiting for a wake-up; so it does with one that came
	// before Park.
	f := newFixture(t, fixtureOptions{})
	msg := "early"
	f.msg.Store(&msg)
	for _, query := range []string{"wait_ms=10000", "wait_ms=10000&wake=1"} {
		c := f.dial(t)
		start := time.Now()
		c.write(t, pollRequest(query))
		if _, body := c.read(t); body != `{"msg":"early"}` || time.Since(start) > 5*time.Second {
			t.Fatalf("%s: answer %s after %v", query, body, time.Since(start))
		}
	}
}

func TestChecksAreBounded(t *testing.T) {
	// A burst of polls whose checks wait (for the database, say) queues as
	// Polls: at most maxCheckers goroutines check at once.
	f := newFixture(t, fixtureOptions{idleWorkers: 20 * time.Millisecond})
	gate := make(chan struct{})
	f.gate.Store(&gate)
	const n = 100
	before := runtime.NumGoroutine()
	for range n {
		f.dial(t).write(t, pollRequest("wait_ms=30000"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.registered() < n || runtime.NumGoroutine()-before > maxCheckers+10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d polls registered; %d goroutines more than before, want at most %d checkers (and a few others)",
				f.registered(), runtime.NumGoroutine()-before, maxCheckers)
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.p.qmu.Lock()
	checkers := f.p.checkers
	f.p.qmu.Unlock()
	if checkers != maxCheckers {
		t.Fatalf("%d checkers with %d polls queued, want %d", checkers, n, maxCheckers)
	}
	close(gate)
	f.parked(t, n)
	deadline = time.Now().Add(5 * time.Second)
	for {
		f.p.qmu.Lock()
		checkers = f.p.checkers
		f.p.qmu.Unlock()
		if checkers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d checkers left with nothing queued", checkers)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPipelinedRequestServedAfterAnswer(t *testing.T) {
	// A request sent behind the poll without waiting for its answer is
	// read with it; it must be served after the poll's answer, not lost.
	f := newFixture(t, fixtureOptions{})
	c := f.dial(t)
	c.write(t, pollRequest("wait_ms=10000"), helloRequest)
	f.parked(t, 1)
	f.send("first")
	if _, body := c.read(t); body != `{"msg":"first"}` {
		t.Fatalf("poll: %s", body)
	}
	if _, body := c.read(t); body != "hello http" {
		t.Fatalf("pipelined request: %q", body)
	}
}

func TestPanickingAnswerServesNoMore(t *testing.T) {
	// An answer that panics closes the connection, as a panic would end
	// the request's goroutine: a request pipelined behind the poll is not
	// served on it (a Send would be stored and its answer lost).
	f := newFixture(t, fixtureOptions{})
	c := f.dial(t)
	c.write(t, pollRequest("wait_ms=10000&panic=1"), helloRequest)
	f.parked(t, 1)
	f.send("boom")
	c.closed(t, 5*time.Second)
	f.drained(t)
	// A hand-back would serve the pipelined request right after the
	// close; give it ample time to show.
	time.Sleep(200 * time.Millisecond)
	if n := f.hellos.Load(); n != 0 {
		t.Fatalf("%d pipelined requests served on the closed connection", n)
	}
	if f.cancels.Load() != 1 || f.written.Load() != 0 {
		t.Fatalf("%d subscriptions cancelled, %d answers written; want 1 and 0", f.cancels.Load(), f.written.Load())
	}
}

func TestConnectionClose(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.dial(t)
	c.write(t, pollRequest("wait_ms=100", "Connection: close\r\n"))
	if resp, _ := c.read(t); !resp.Close {
		t.Fatal("answer lacks Connection: close")
	}
	c.closed(t, 5*time.Second)
}

func TestIdleTimeout(t *testing.T) {
	// An answered connection waiting for its next request is closed after
	// the server's IdleTimeout, as fasthttp closes its own.
	f := newFixture(t, fixtureOptions{idleTimeout: 300 * time.Millisecond})
	c := f.dial(t)
	c.write(t, pollRequest("wait_ms=50"))
	c.read(t)
	start := time.Now()
	c.closed(t, 5*time.Second)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
}

func TestCloseAnswersEveryPoll(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	const n = 20
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = f.dial(t)
		clients[i].write(t, pollRequest("wait_ms=30000"))
	}
	f.parked(t, n)
	// One more, answered and idle, waiting for its next request.
	idle := f.dial(t)
	idle.write(t, pollRequest("wait_ms=1"))
	idle.read(t)

	start := time.Now()
	f.p.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if f.answers.Load() != n+1 || f.registered() != 0 {
		t.Fatalf("Close returned with %d answers made and %d polls left", f.answers.Load(), f.registered())
	}
	for _, c := range clients {
		resp, body := c.read(t)
		if body != `{"msg":""}` || !resp.Close {
			t.Fatalf("answer on Close: %s (close %v)", body, resp.Close)
		}
		c.closed(t, time.Second)
	}
	idle.closed(t, time.Second)

	// Later polls are not parked.
	c := f.dial(t)
	c.write(t, pollRequest("wait_ms=1000"))
	if resp, body := c.read(t); resp.StatusCode != fiber.StatusConflict {
		t.Fatalf("poll after Close: %d %s", resp.StatusCode, body)
	}
}

func TestClientGone(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	woken, expired := f.dial(t), f.dial(t)
	woken.write(t, pollRequest("wait_ms=10000"))
	expired.write(t, pollRequest("wait_ms=300"))
	f.parked(t, 2)
	_ = woken.conn.Close()
	_ = expired.conn.Close()
	f.send("nobody")
	f.drained(t)
	// Neither answer reached anyone, and neither counts as written.
	if n := f.written.Load(); n != 0 {
		t.Fatalf("%d answers to gone clients counted as written", n)
	}
	c := f.dial(t)
	c.write(t, helloRequest)
	if _, body := c.read(t); body != "hello http" {
		t.Fatalf("after gone clients: %q", body)
	}
}

func TestParkedPollsHoldNoGoroutine(t *testing.T) {
	f := newFixture(t, fixtureOptions{idleWorkers: 20 * time.Millisecond})
	const n = 200
	before := runtime.NumGoroutine()
	for range n {
		f.dial(t).write(t, pollRequest("wait_ms=30000"))
	}
	f.parked(t, n)
	// A held poll would keep a goroutine each. Parked ones keep none once
	// fasthttp has stopped the workers that served them.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine()-before > n/10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d parked polls keep %d goroutines", n, runtime.NumGoroutine()-before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAnsweredOnce(t *testing.T) {
	// Wake-ups, deadlines and Close all race; every poll still answers
	// exactly once.
	f := newFixture(t, fixtureOptions{})
	const n = 40
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = f.dial(t)
		clients[i].write(t, pollRequest(fmt.Sprintf("wait_ms=%d", 5+i%20)))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				f.mu.Lock()
				polls := append([]*Poll(nil), f.polls...)
				f.mu.Unlock()
				for _, q := range polls {
					q.Wake()
				}
			}
		}()
	}
	// Every poll has passed Parkable (a later one would be refused), and
	// some may not be parked yet when Close comes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		started := len(f.polls)
		f.mu.Unlock()
		if started == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d polls started", started, n)
		}
		time.Sleep(time.Millisecond)
	}
	f.send("some")
	time.Sleep(5 * time.Millisecond)
	f.p.Close()
	close(stop)
	wg.Wait()
	for _, c := range clients {
		resp, body := c.read(t)
		if resp.StatusCode != 200 || (body != `{"msg":""}` && body != `{"msg":"some"}`) {
			t.Fatalf("answer: %d %s", resp.StatusCode, body)
		}
		c.closed(t, 2*time.Second) // one answer, then (Close) nothing more
	}
	if got := f.answers.Load(); got != n {
		t.Fatalf("%d answers for %d polls", got, n)
	}
}
