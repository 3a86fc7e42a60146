package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// rate is the outcome of a closed-loop workload.
type rate struct {
	OK, Failed int64
	Elapsed    time.Duration
	P50, P99   time.Duration
	// FirstFailure describes the first failed operation, if any.
	FirstFailure string
	// lat holds each success's latency until done sums them up.
	lat []time.Duration
}

// PerSec is successful operations per second of the measured window.
func (r rate) PerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// add counts another round's outcome in.
func (r *rate) add(o rate) {
	r.OK += o.OK
	r.Failed += o.Failed
	r.Elapsed += o.Elapsed
	r.lat = append(r.lat, o.lat...)
	if r.FirstFailure == "" {
		r.FirstFailure = o.FirstFailure
	}
}

// done computes the percentiles and lets the latencies go.
func (r *rate) done() {
	slices.Sort(r.lat)
	r.P50, r.P99 = percentile(r.lat, 0.50), percentile(r.lat, 0.99)
	r.lat = nil
}

// phase times one round of a closed-loop workload: a warm-up that is not
// counted (so connections, pools, caches and the Go runtime settle), then
// the measured window.
type phase struct {
	warmup, duration time.Duration
	// profile, when set, is where a CPU profile of the measured window is
	// written: the client's and the server's work together, as they share
	// this process.
	profile string
}

// tally is one worker's count; each worker has its own, padded, so the
// counting costs no shared cache line.
type tally struct {
	ok, failed int64
	lat        []time.Duration
	first      string
	_          [64]byte
}

// closedLoop runs workers goroutines, each calling its op back to back
// (the next call as soon as the last returned) until the time is up, and
// counts the calls that returned within the measured window. newOp(i)
// makes worker i's op, which is told its call number and returns why the
// call failed, or "".
func closedLoop(ctx context.Context, workers int, p phase, newOp func(i int) func(seq int) string) (rate, error) {
	var measuring, stopping atomic.Bool
	tallies := make([]tally, workers)
	var wg sync.WaitGroup
	for i := range workers {
		op := newOp(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[i]
			for seq := 0; !stopping.Load(); seq++ {
				start := time.Now()
				fail := op(seq)
				d := time.Since(start)
				if !measuring.Load() {
					continue
				}
				if fail != "" {
					t.failed++
					if t.first == "" {
						t.first = fail
					}
					continue
				}
				t.ok++
				t.lat = append(t.lat, d)
			}
		}()
	}
	finish := func() {
		stopping.Store(true)
		wg.Wait()
	}
	wait := func(d time.Duration) error {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
			return nil
		case <-ctx.Done():
			finish()
			return ctx.Err()
		}
	}
	if err := wait(p.warmup); err != nil {
		return rate{}, err
	}
	stopProfile, err := startCPUProfile(p.profile)
	if err != nil {
		finish()
		return rate{}, err
	}
	measuring.Store(true)
	start := time.Now()
	err = wait(p.duration)
	measuring.Store(false)
	r := rate{Elapsed: time.Since(start)}
	stopProfile()
	if err != nil {
		return rate{}, err
	}
	finish()

	for _, t := range tallies {
		r.OK += t.ok
		r.Failed += t.failed
		r.lat = append(r.lat, t.lat...)
		if r.FirstFailure == "" {
			r.FirstFailure = t.first
		}
	}
	return r, nil
}

// startCPUProfile starts a CPU profile into path, if set, and returns
// what stops it.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// percentile of sorted durations, nearest-rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// workload is a throughput workload that runs in rounds and keeps its
// connections open between them.
type workload interface {
	round(ctx context.Context, p phase) (rate, error)
}

// compare measures a workload and its reference in alternating rounds,
// p.duration in all for each, so that both see the same machine: on a
// shared host the rate a machine gives drifts from one second to the
// next, and a ratio of rates measured far apart would carry that drift.
// The first round of each has p's warm-up; later ones only a short one,
// their connections being open already. Which runs first alternates.
// The CPU profiles, when asked for, cover the first measured round.
func compare(ctx context.Context, rounds int, p phase, a, ref workload, aProfile, refProfile string) (ra, rref rate, err error) {
	for k := range rounds {
		pa := phase{warmup: 100 * time.Millisecond, duration: p.duration / time.Duration(rounds)}
		pref := pa
		if k == 0 {
			pa.warmup, pref.warmup = p.warmup, p.warmup
			pa.profile, pref.profile = aProfile, refProfile
		}
		order := []struct {
			w   workload
			p   phase
			out *rate
		}{{a, pa, &ra}, {ref, pref, &rref}}
		if k%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, o := range order {
			r, err := o.w.round(ctx, o.p)
			if err != nil {
				return ra, rref, err
			}
			o.out.add(r)
		}
	}
	ra.done()
	rref.done()
	return ra, rref, nil
}

// httpLoad is a throughput workload over HTTP: clients keep-alive
// connections (fasthttp's client: one connection per worker, reused),
// each worker POSTing one JSON body after another to one signed URL, on
// one server or, split evenly, on several.
type httpLoad struct {
	// hcs and uris are per server; worker i uses server i%len(hcs).
	hcs     []*fasthttp.HostClient
	uris    []string
	clients int
	// body appends worker i's seq-th request body to dst.
	body func(dst []byte, i, seq int) []byte
	// seq counts each worker's requests over all rounds, so that bodies
	// stay distinct from one round to the next. Worker i alone touches
	// seq[i], and rounds run one after another.
	seq []int
}

// newHTTPLoad prepares the workload on addr; path is signed already.
func newHTTPLoad(addr, path string, clients int, body func(dst []byte, i, seq int) []byte) *httpLoad {
	return newSplitHTTPLoad([]string{addr}, path, clients, body)
}

// newSplitHTTPLoad prepares the workload with its clients split evenly
// between the servers at addrs, as a load balancer without sticky
// routing would send them.
func newSplitHTTPLoad(addrs []string, path string, clients int, body func(dst []byte, i, seq int) []byte) *httpLoad {
	l := &httpLoad{clients: clients, body: body, seq: make([]int, clients)}
	for _, addr := range addrs {
		l.hcs = append(l.hcs, &fasthttp.HostClient{
			Addr:                addr,
			Name:                "fiberchat-bench",
			MaxConns:            (clients + len(addrs) - 1) / len(addrs),
			MaxConnWaitTimeout:  10 * time.Second,
			ReadTimeout:         30 * time.Second,
			WriteTimeout:        30 * time.Second,
			MaxIdleConnDuration: time.Minute,
		})
		l.uris = append(l.uris, "http://"+addr+path)
	}
	return l
}

func (l *httpLoad) round(ctx context.Context, p phase) (rate, error) {
	return closedLoop(ctx, l.clients, p, func(i int) func(int) string {
		hc := l.hcs[i%len(l.hcs)]
		req, resp := new(fasthttp.Request), new(fasthttp.Response)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(l.uris[i%len(l.uris)])
		req.Header.SetContentType("application/json")
		var buf []byte
		return func(int) string {
			seq := l.seq[i]
			l.seq[i]++
			buf = l.body(buf[:0], i, seq)
			req.SetBodyRaw(buf)
			if err := hc.Do(req, resp); err != nil {
				return err.Error()
			}
			// Every answer's status and envelope code are checked; one in
			// 64 is decoded in full, so a body that merely contains the
			// bytes `"error":0` somewhere cannot pass for long.
			return checkEnvelope(resp.StatusCode(), resp.Body(), seq%64 == 0)
		}
	})
}

func (l *httpLoad) close() {
	for _, hc := range l.hcs {
		hc.CloseIdleConnections()
	}
}

var okCode = []byte(`"error":0`)

// checkEnvelope returns why an answer is not a success, or "".
func checkEnvelope(status int, body []byte, decode bool) string {
	if status != fasthttp.StatusOK {
		return fmt.Sprintf("HTTP %d: %.200s", status, body)
	}
	if !bytes.Contains(body, okCode) {
		return fmt.Sprintf("not a success: %.200s", body)
	}
	if decode {
		var env struct {
			Error *int   `json:"error"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal(body, &env); err != nil || env.Error == nil || *env.Error != 0 {
			return fmt.Sprintf("not a success envelope: %.200s", body)
		}
	}
	return ""
}

// messageText appends the text of worker i's seq-th message: the same
// shape, about 40 bytes, in the send and insert workloads.
func messageText(dst []byte, i, seq int) []byte {
	dst = append(dst, "benchmark message from worker "...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, ", number "...)
	return strconv.AppendInt(dst, int64(seq), 10)
}

// credentials appends the body's opening with u's uid and access_token.
func credentials(dst []byte, u user) []byte {
	dst = append(dst, `{"uid":`...)
	dst = strconv.AppendInt(dst, u.UID, 10)
	dst = append(dst, `,"access_token":"`...)
	dst = append(dst, u.Token...)
	return append(dst, '"')
}

// insertSQL is the naive write the send workload is compared with: one
// message-shaped row, as its own autocommitted statement. A message
// carries its pair columns (the smaller uid first), which History's index
// needs, so the row does too.
const insertSQL = "INSERT INTO chat_messages (from_uid, to_uid, body, created_at, pair_lo, pair_hi) VALUES (?, ?, ?, ?, ?, ?)"

// insertLoad runs insertSQL from workers goroutines, pair i's sender to
// its recipient, on the pool database.Open configured (so the same
// connections and pragmas as the module's). The statement is prepared
// once: on MySQL that makes each insert one round trip, the best a naive
// client gets.
type insertLoad struct {
	stmt    *sql.Stmt
	workers int
	pairs   [][2]int64
	seq     []int // as in httpLoad
}

func newInsertLoad(ctx context.Context, db *sql.DB, workers int, pairs [][2]int64) (*insertLoad, error) {
	stmt, err := db.PrepareContext(ctx, insertSQL)
	if err != nil {
		return nil, fmt.Errorf("prepare insert: %w", err)
	}
	return &insertLoad{stmt: stmt, workers: workers, pairs: pairs, seq: make([]int, workers)}, nil
}

func (l *insertLoad) round(ctx context.Context, p phase) (rate, error) {
	return closedLoop(ctx, l.workers, p, func(i int) func(int) string {
		pair := l.pairs[i%len(l.pairs)]
		var buf []byte
		return func(int) string {
			buf = messageText(buf[:0], i, l.seq[i])
			l.seq[i]++
			if _, err := l.stmt.ExecContext(ctx, pair[0], pair[1], string(buf), time.Now().Unix(), min(pair[0], pair[1]), max(pair[0], pair[1])); err != nil {
				return err.Error()
			}
			return ""
		}
	})
}

func (l *insertLoad) close() { _ = l.stmt.Close() }
