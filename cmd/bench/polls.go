package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/fiberchat/fiberchat/client"
)

// pollWait is the long poll every held Recv asks for: the most API.md
// allows, so nothing runs out while the workload measures.
const pollWait = 30

// credentials appends the body's opening with u's uid and access_token.
func credentials(dst []byte, u user) []byte {
	dst = append(dst, `{"uid":`...)
	dst = strconv.AppendInt(dst, u.UID, 10)
	dst = append(dst, `,"access_token":"`...)
	dst = append(dst, u.Token...)
	return append(dst, '"')
}

// recvRequest is the raw HTTP request of a long poll for u. last_id 0
// (the client keeps its own cursor, as API.md recommends) makes the poll
// one read of the user's messages, with no cursor write, before it waits.
func recvRequest(host, path string, u user) []byte {
	body := credentials(nil, u)
	body = append(body, `,"wait":`+strconv.Itoa(pollWait)+`,"last_id":0}`...)
	return fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		path, host, len(body), body)
}

// openConns opens one connection per request and writes it; nothing is
// read. The held polls and streams are hand-built rather than the SDK's
// Recv or Stream: those would take a goroutine and a pooled connection
// each, and answer only once woken, where hold needs ten thousand idle
// sockets it can check for "held, not answered" and wake needs the
// moment each answer's first byte arrives. A raw connection is the
// cheapest client there is: no goroutine, no buffer, no HTTP state on
// this side. A few dialers at a time keep the
// server's accept queue from overflowing, which would add SYN retries of
// a second or more.
func openConns(ctx context.Context, addr string, reqs [][]byte) ([]net.Conn, error) {
	conns := make([]net.Conn, len(reqs))
	next := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	d := net.Dialer{Timeout: 10 * time.Second}
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err == nil {
					conns[i] = c
					_, err = c.Write(reqs[i])
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("open connection %d: %w", i, err):
					default:
					}
				}
			}
		}()
	}
feed:
	for i := range reqs {
		select {
		case next <- i:
		case err := <-errs:
			errs <- err
			break feed
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		closeAll(conns)
		return nil, err
	default:
	}
	if err := ctx.Err(); err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

// holdWave is how many polls the hold workload opens at a time.
const holdWave = 1000

// settle waits until the server holds at least conns sockets and has used
// (almost) no CPU for half a second: by then it has read every poll and
// taken each to its wait.
func settle(ctx context.Context, pid, conns int) error {
	deadline := time.Now().Add(60 * time.Second)
	last, quiet := int64(-1), 0
	for time.Now().Before(deadline) {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		fds, err := openFiles(pid)
		if err != nil {
			return err
		}
		ticks, err := cpuTicks(pid)
		if err != nil {
			return err
		}
		// One tick (10 ms at the usual 100 Hz) in 100 ms is the runtime's
		// own background work; a server reading polls uses far more.
		if fds >= conns && last >= 0 && ticks-last <= 1 {
			quiet++
		} else {
			quiet = 0
		}
		last = ticks
		if quiet >= 5 {
			return nil
		}
	}
	return errors.New("the server did not settle within 60s")
}

// checkHeld fails unless every connection is still open and unanswered.
func checkHeld(conns []net.Conn) error {
	n, first := 0, -1
	for i, c := range conns {
		got, err := answered(c)
		if err != nil && !got {
			return err
		}
		if got {
			n++
			if first < 0 {
				first = i
			}
		}
	}
	if n == 0 {
		return nil
	}
	_ = conns[first].SetReadDeadline(time.Now().Add(time.Second))
	head, _ := io.ReadAll(io.LimitReader(conns[first], 300))
	return fmt.Errorf("%d of %d long polls were answered instead of held; the first got %q", n, len(conns), head)
}

// heldKind is what the hold and wake workloads need to know of a kind of
// request the server holds open: a long poll or a stream. Each is its own
// connection, opened by writing request's bytes.
type heldKind interface {
	// request is the raw HTTP request that opens one for u.
	request(host string, u user) []byte
	// opened is told of each wave of connections, in order, once the
	// server has settled with it.
	opened(conns []net.Conn) error
	// idle fails unless every connection opened is still open and has
	// delivered nothing.
	idle(conns []net.Conn) error
	// await reads conns[i], c, until the message whose data holds want
	// arrives, and says when it did.
	await(i int, c net.Conn, want []byte) (time.Time, error)
	// lifetime is how long the server holds one before answering it
	// of its own accord; 0 for as long as the client likes.
	lifetime() time.Duration
}

// holdMargin is what hold keeps of a held request's lifetime for the
// work after its rest: the readings, the checks and the proof wake-ups.
const holdMargin = 8 * time.Second

// holdRest is how long hold may rest when the first requests have been
// held for elapsed already: rest, cut so that the first of them, held for
// at most lifetime (0: no end), is still held for the work after it.
func holdRest(rest, lifetime, elapsed time.Duration) time.Duration {
	if lifetime <= 0 {
		return rest
	}
	return max(0, min(rest, lifetime-holdMargin-elapsed))
}

// pollKind is a long poll: /Message/Recv, wait 30.
type pollKind struct{ path string }

func newPollKind(fx *fixture) heldKind { return pollKind{path: fx.signedPath("/Message/Recv")} }

func (k pollKind) request(host string, u user) []byte { return recvRequest(host, k.path, u) }

func (pollKind) opened([]net.Conn) error { return nil }

func (pollKind) idle(conns []net.Conn) error { return checkHeld(conns) }

func (pollKind) lifetime() time.Duration { return pollWait * time.Second }

// await notes when the poll's answer begins, then checks that it is the
// one message.
func (pollKind) await(_ int, c net.Conn, want []byte) (time.Time, error) {
	_ = c.SetReadDeadline(time.Now().Add((pollWait + 10) * time.Second))
	br := bufio.NewReader(c)
	if _, err := br.Peek(1); err != nil {
		return time.Time{}, err
	}
	arrived := time.Now()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return arrived, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return arrived, err
	}
	if fail := checkEnvelope(resp.StatusCode, body, true); fail != "" {
		return arrived, errors.New(fail)
	}
	if !bytes.Contains(body, []byte(`"num":1,`)) || !bytes.Contains(body, want) {
		return arrived, fmt.Errorf("woken poll did not carry the message: %.200s", body)
	}
	return arrived, nil
}

// holdResult is what the hold workload measured.
type holdResult struct {
	Conns               int
	RSSBefore, RSSAfter int64 // KiB
	KiBPerConn          float64
	// RSSLive is the RSS with the connections held after the server
	// collected garbage and returned free memory to the OS, and
	// LiveKiBPerConn the growth per connection by it: what they
	// themselves keep, without the collector's headroom, which RSSAfter
	// includes.
	RSSLive        int64
	LiveKiBPerConn float64
	Open           time.Duration // opening and settling the connections
	// Rest is how long the server rested before the reading: --rest, or
	// less when the first polls would otherwise have timed out.
	Rest time.Duration
	// Woken of the held connections were then woken by a message, which
	// proves the server held them.
	Woken int
}

// hold measures the server's memory per held request of kind k: its RSS
// before and after users (each on a connection of its own) are all
// waiting. The first woken of them are contacts of sender; after
// measuring, a message to each of those checks that the server really
// held them, and not only that their requests sat unread.
// hold opens users' connections of kind k in waves and reports what the
// server holds per connection. Before the reading it lets the server rest
// for rest: the goroutines fasthttp started to read the last wave's
// requests linger as idle workers (about 4 KiB of stack each) until its
// idle-worker check ends them, and what is measured is what the held
// connections cost, not that transient.
func hold(ctx context.Context, srv *child, fx *fixture, k heldKind, users []user, sender user, woken int, rest time.Duration) (holdResult, error) {
	r := holdResult{Conns: len(users)}
	// Warm the server first: the first requests initialise pools, caches
	// and the database connection, which the held requests should not be
	// billed for.
	if err := warm(ctx, srv.addr, fx, sender); err != nil {
		return r, err
	}
	// The baseline is taken with the garbage of start-up and warm-up
	// collected and returned, so that neither figure bills the held
	// requests for it nor credits them with it.
	if err := srv.freeMemory(ctx); err != nil {
		return r, err
	}
	var err error
	if r.RSSBefore, err = rssKiB(srv.pid); err != nil {
		return r, err
	}

	start := time.Now()
	reqs := make([][]byte, len(users))
	for i, u := range users {
		reqs[i] = k.request(srv.addr, u)
	}
	// Requests arrive in waves, each let settle before the next: idle
	// connections build up over time in real use, and what is measured is
	// what they cost once held, not the transient peak of ten thousand
	// requests in flight at once (their goroutines' stacks stay in RSS
	// until the collector happens to return them, which makes a one-burst
	// figure swing by half from run to run).
	var conns []net.Conn
	defer func() { closeAll(conns) }()
	for lo := 0; lo < len(reqs); lo += holdWave {
		wave, err := openConns(ctx, srv.addr, reqs[lo:min(lo+holdWave, len(reqs))])
		if err != nil {
			return r, err
		}
		conns = append(conns, wave...)
		if err := settle(ctx, srv.pid, len(conns)); err != nil {
			return r, err
		}
		if err := k.opened(wave); err != nil {
			return r, err
		}
	}
	r.Open = time.Since(start)
	// On a slow or busy host the waves take long enough that a full rest
	// would outlast the first polls' wait, and they would be answered
	// before the reading.
	r.Rest = holdRest(rest, k.lifetime(), r.Open)
	select {
	case <-time.After(r.Rest):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	if err := k.idle(conns); err != nil {
		return r, err
	}
	if r.RSSAfter, err = rssKiB(srv.pid); err != nil {
		return r, err
	}
	r.KiBPerConn = float64(r.RSSAfter-r.RSSBefore) / float64(len(conns))
	if err := srv.freeMemory(ctx); err != nil {
		return r, err
	}
	if r.RSSLive, err = rssKiB(srv.pid); err != nil {
		return r, err
	}
	r.LiveKiBPerConn = float64(r.RSSLive-r.RSSBefore) / float64(len(conns))
	if err := srv.profileHeap(ctx); err != nil {
		return r, err
	}
	if err := k.idle(conns); err != nil {
		return r, err
	}

	// The proof that they were held: woken ones deliver the message.
	n := min(woken, len(conns))
	w, err := wakeEach(ctx, srv.addr, fx, k, sender, users[:n], conns[:n])
	if err != nil {
		return r, fmt.Errorf("waking held connections: %w", err)
	}
	r.Woken = len(w.latencies)
	return r, nil
}

// warm sends, as u, a few requests of each kind the workloads use.
func warm(ctx context.Context, addr string, fx *fixture, u user) error {
	t := newFastTransport(addr, 1)
	defer t.closeIdle()
	c, err := sdkClient(t, fx.secret, u)
	if err != nil {
		return err
	}
	for range 10 {
		if _, err := c.Info(ctx); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	for range 10 {
		if _, err := c.Recv(ctx, client.RecvRequest{}); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	return nil
}

// wakeResult is what the wake workload measured.
type wakeResult struct {
	Conns int
	// latencies run from each Send's answer to the message's arrival on
	// its connection; one arriving before the Send's own answer counts 0
	// (and in Early).
	latencies []time.Duration
	Early     int
	P50, P99  time.Duration
	Max       time.Duration
	// SendP50 is the Sends' own latency, for scale.
	SendP50 time.Duration
}

// wake measures how soon a held request of kind k delivers a message once
// it is stored: users' requests are opened and held on srv, then sender
// messages each of them in turn through the server at sendAddr (srv's
// own, or another instance's on the same database).
func wake(ctx context.Context, srv *child, sendAddr string, fx *fixture, k heldKind, users []user, sender user) (wakeResult, error) {
	for _, addr := range []string{srv.addr, sendAddr} {
		if err := warm(ctx, addr, fx, sender); err != nil {
			return wakeResult{}, err
		}
	}
	reqs := make([][]byte, len(users))
	for i, u := range users {
		reqs[i] = k.request(srv.addr, u)
	}
	conns, err := openConns(ctx, srv.addr, reqs)
	if err != nil {
		return wakeResult{}, err
	}
	defer closeAll(conns)
	if err := settle(ctx, srv.pid, len(conns)); err != nil {
		return wakeResult{}, err
	}
	if err := k.opened(conns); err != nil {
		return wakeResult{}, err
	}
	if err := k.idle(conns); err != nil {
		return wakeResult{}, err
	}
	return wakeEach(ctx, sendAddr, fx, k, sender, users, conns)
}

// wakeEach awaits each held connection on a goroutine of its own, which
// notes when the message arrives, and sends one message to each user in
// turn through the server at addr, noting when each Send is answered.
func wakeEach(ctx context.Context, addr string, fx *fixture, k heldKind, sender user, users []user, conns []net.Conn) (wakeResult, error) {
	r := wakeResult{Conns: len(users)}
	// An ended run must not wait out the connections' read deadlines.
	defer context.AfterFunc(ctx, func() { closeAll(conns) })()
	arrived := make([]time.Time, len(conns))
	failed := make([]error, len(conns))
	var wg sync.WaitGroup
	want := []byte(`"uid_from":` + strconv.FormatInt(sender.UID, 10) + `,`)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			arrived[i], failed[i] = k.await(i, c, want)
		}()
	}
	// Sends one at a time: each wake-up is then timed on a quiet server,
	// not behind 63 other writes.
	// A Send counts as answered when its answer arrives, not once the SDK
	// has decoded it: a wake-up is timed from the former.
	var answered time.Time
	t := newFastTransport(addr, 1)
	t.answered = func(at time.Time) { answered = at }
	defer t.closeIdle()
	c, err := sdkClient(t, fx.secret, sender)
	if err != nil {
		closeAll(conns)
		wg.Wait()
		return r, err
	}
	sent := make([]time.Time, len(users))
	sendLat := make([]time.Duration, len(users))
	var text []byte
	for i, u := range users {
		text = messageText(text[:0], 0, i)
		start := time.Now()
		_, err := c.Send(ctx, u.UID, string(text))
		sent[i] = answered
		sendLat[i] = sent[i].Sub(start)
		if err != nil {
			closeAll(conns)
			wg.Wait()
			return r, fmt.Errorf("send %d: %w", i, err)
		}
	}
	wg.Wait()
	for i := range conns {
		if failed[i] != nil {
			return r, fmt.Errorf("connection %d: %w", i, failed[i])
		}
		d := arrived[i].Sub(sent[i])
		if d < 0 {
			r.Early++
			d = 0
		}
		r.latencies = append(r.latencies, d)
	}
	lat := slices.Clone(r.latencies)
	slices.Sort(lat)
	slices.Sort(sendLat)
	r.P50, r.P99, r.Max = percentile(lat, 0.5), percentile(lat, 0.99), lat[len(lat)-1]
	r.SendP50 = percentile(sendLat, 0.5)
	return r, nil
}
