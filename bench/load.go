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
}

// PerSec is successful operations per second of the measured window.
func (r rate) PerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// phase times a closed-loop workload: a warm-up that is not counted (so
// connections, pools, caches and the Go runtime settle), then the
// measured window.
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

	var lat []time.Duration
	for _, t := range tallies {
		r.OK += t.ok
		r.Failed += t.failed
		lat = append(lat, t.lat...)
		if r.FirstFailure == "" {
			r.FirstFailure = t.first
		}
	}
	slices.Sort(lat)
	r.P50, r.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
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

// httpLoad is a throughput workload over HTTP: clients keep-alive
// connections (fasthttp's client: one connection per worker, reused),
// each worker POSTing one JSON body after another to one signed URL.
type httpLoad struct {
	addr    string // host:port
	path    string // path and query, signed
	clients int
	// body appends worker i's seq-th request body to dst.
	body func(dst []byte, i, seq int) []byte
}

func (l httpLoad) run(ctx context.Context, p phase) (rate, error) {
	hc := &fasthttp.HostClient{
		Addr:                l.addr,
		Name:                "fiberchat-bench",
		MaxConns:            l.clients,
		MaxConnWaitTimeout:  10 * time.Second,
		ReadTimeout:         30 * time.Second,
		WriteTimeout:        30 * time.Second,
		MaxIdleConnDuration: time.Minute,
	}
	defer hc.CloseIdleConnections()
	uri := "http://" + l.addr + l.path
	return closedLoop(ctx, l.clients, p, func(i int) func(int) string {
		req, resp := new(fasthttp.Request), new(fasthttp.Response)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(uri)
		req.Header.SetContentType("application/json")
		var buf []byte
		return func(seq int) string {
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
// message-shaped row, as its own autocommitted statement.
const insertSQL = "INSERT INTO chat_messages (from_uid, to_uid, body, created_at) VALUES (?, ?, ?, ?)"

// insertLoad runs insertSQL from workers goroutines against db, a
// prepared statement on the pool database.Open configured (so the same
// connections and pragmas as the module's), pair i's sender to its
// recipient. The statement is prepared once: on MySQL that makes each
// insert one round trip, the best a naive client gets.
func insertLoad(ctx context.Context, db *sql.DB, workers int, pairs [][2]int64, p phase) (rate, error) {
	stmt, err := db.PrepareContext(ctx, insertSQL)
	if err != nil {
		return rate{}, fmt.Errorf("prepare insert: %w", err)
	}
	defer stmt.Close()
	return closedLoop(ctx, workers, p, func(i int) func(int) string {
		pair := pairs[i%len(pairs)]
		var buf []byte
		return func(seq int) string {
			buf = messageText(buf[:0], i, seq)
			if _, err := stmt.ExecContext(ctx, pair[0], pair[1], string(buf), time.Now().Unix()); err != nil {
				return err.Error()
			}
			return ""
		}
	})
}
