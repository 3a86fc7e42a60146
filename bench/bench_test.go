package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the command: the hold and
// wake workloads re-run their own executable with "serve", which here is
// this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serveMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// smokeEnv turns on TestQuickRun. It is off by default because the run
// takes some ten seconds and measures the machine, which a unit test
// must not assert on: the test checks that a run completes and reports,
// never how fast.
const smokeEnv = "FIBERCHAT_BENCH_SMOKE"

func TestQuickRun(t *testing.T) {
	if testing.Short() || os.Getenv(smokeEnv) != "1" {
		t.Skip("set " + smokeEnv + "=1 (and leave out -short) to run the benchmark command in --quick mode")
	}
	var stdout, stderr bytes.Buffer
	args := []string{"--quick", "--hold", "200", "--wake", "50", "--mysql-dsn", os.Getenv("FIBERCHAT_TEST_MYSQL_DSN")}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if code := run(ctx, args, &stdout, io.MultiWriter(&stderr, testWriter{t})); code != 0 {
		t.Fatalf("exit status %d\nstdout:\n%s", code, stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last line is not a JSON object: %v\n%s", err, stdout.String())
	}
	for _, key := range []string{"info_vs_ceiling", "send_vs_insert_sqlite", "send_vs_insert_mysql", "hold_kib_per_poll", "wake_p50_ms", "wake_p99_ms"} {
		v, ok := got[key]
		if !ok {
			t.Errorf("summary has no %s", key)
			continue
		}
		if key == "send_vs_insert_mysql" && os.Getenv("FIBERCHAT_TEST_MYSQL_DSN") == "" {
			if v != nil {
				t.Errorf("%s = %v without a MySQL DSN, want null", key, v)
			}
			continue
		}
		if f, ok := v.(float64); !ok || f <= 0 {
			t.Errorf("%s = %v, want a positive number", key, v)
		}
	}
}

// testWriter sends the command's progress to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestPercentile(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var sorted []time.Duration
	for i := 1; i <= 100; i++ {
		sorted = append(sorted, ms(i))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, ms(50)}, {0.99, ms(99)}, {1, ms(100)}, {0, ms(1)}} {
		if got := percentile(sorted, c.q); got != c.want {
			t.Errorf("percentile(1..100 ms, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}

func TestCheckEnvelope(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		ok     bool
	}{
		{200, `{"error":0,"msg":"success"}`, true},
		{200, `{"num":1,"msg":"success","error":0,"id":7,"time":1}`, true},
		{401, `{"error":1004,"msg":"invalid or expired access_token"}`, false},
		{200, `{"error":1002,"msg":"access deny"}`, false},
		{200, `not json "error":0`, false},
	} {
		if got := checkEnvelope(c.status, []byte(c.body), true) == ""; got != c.ok {
			t.Errorf("checkEnvelope(%d, %s) ok = %v, want %v", c.status, c.body, got, c.ok)
		}
	}
}

func TestQuickDefaultsYieldToFlags(t *testing.T) {
	o, err := parseOptions([]string{"--quick", "--hold", "42"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.hold != 42 || o.wake != 100 || o.duration != time.Second {
		t.Fatalf("--quick --hold 42 gave hold %d, wake %d, duration %s; want 42, 100, 1s", o.hold, o.wake, o.duration)
	}
}
