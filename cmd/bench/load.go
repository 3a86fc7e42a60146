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

	"github.com/fiberchat/fiberchat/client"
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
	r, err := compareAll(ctx, rounds, p, []workload{a, ref}, []string{aProfile, refProfile})
	if err != nil {
		return ra, rref, err
	}
	return r[0], r[1], nil
}

// compareAll is compare for any number of workloads, each round running
// each once: round k starts with workload k (modulo their number) and
// goes on in turn, so that each takes each place in the order as often
// as the rounds allow. profiles[i], when not empty, is where workload
// i's first measured round is profiled.
func compareAll(ctx context.Context, rounds int, p phase, ws []workload, profiles []string) ([]rate, error) {
	out := make([]rate, len(ws))
	for k := range rounds {
		for j := range ws {
			i := (k + j) % len(ws)
			pi := phase{warmup: 100 * time.Millisecond, duration: p.duration / time.Duration(rounds)}
			if k == 0 {
				pi.warmup, pi.profile = p.warmup, profiles[i]
			}
			r, err := ws[i].round(ctx, pi)
			if err != nil {
				return nil, err
			}
			out[i].add(r)
		}
	}
	for i := range out {
		out[i].done()
	}
	return out, nil
}

// sdkLoad is a throughput workload through the Go SDK: clients workers,
// each an SDK client with its own user's session, calling one route after
// another over keep-alive connections (fasthttp's, through fastTransport:
// one per worker, reused), on one server or, split evenly, on several.
type sdkLoad struct {
	// transports are per server; worker i uses server i%len(transports).
	transports []*fastTransport
	clients    []*client.Client
	// newOp makes worker i's call, told its seq-th request number.
	newOp func(i int, c *client.Client) func(ctx context.Context, seq int) error
	// seq counts each worker's requests over all rounds, so that requests
	// stay distinct from one round to the next. Worker i alone touches
	// seq[i], and rounds run one after another.
	seq []int
}

// newSDKLoad prepares the workload with len(users) workers, worker i
// logged in as users[i], split evenly between the servers at addrs, as a
// load balancer without sticky routing would send them; secret signs
// the requests.
func newSDKLoad(addrs []string, secret string, users []user, newOp func(i int, c *client.Client) func(ctx context.Context, seq int) error) (*sdkLoad, error) {
	n := len(users)
	l := &sdkLoad{newOp: newOp, seq: make([]int, n)}
	for _, addr := range addrs {
		l.transports = append(l.transports, newFastTransport(addr, (n+len(addrs)-1)/len(addrs)))
	}
	for i, u := range users {
		c, err := sdkClient(l.transports[i%len(l.transports)], secret, u)
		if err != nil {
			return nil, err
		}
		l.clients = append(l.clients, c)
	}
	return l, nil
}

func (l *sdkLoad) round(ctx context.Context, p phase) (rate, error) {
	// The calls' context has a deadline, so that the SDK does not make a
	// timer of its own for each call; the transport's timeouts bound each.
	callCtx, cancel := context.WithTimeout(ctx, p.warmup+p.duration+time.Minute)
	defer cancel()
	return closedLoop(ctx, len(l.clients), p, func(i int) func(int) string {
		op := l.newOp(i, l.clients[i])
		return func(int) string {
			seq := l.seq[i]
			l.seq[i]++
			// The SDK checks every answer's status and envelope and decodes
			// it; its error (an *client.Error for what the server answered)
			// says why a call failed.
			if err := op(callCtx, seq); err != nil {
				return err.Error()
			}
			return ""
		}
	})
}

func (l *sdkLoad) close() {
	for _, t := range l.transports {
		t.closeIdle()
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
	seq     []int // as in sdkLoad
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
