package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/database"
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
	// A smaller seed than --quick's: under -race on a shared host, seeding
	// and indexing 50 000 messages alone can take a minute.
	args := []string{"--quick", "--hold", "200", "--wake", "50", "--stream-hold", "200", "--stream-wake", "50", "--wake2", "50", "--messages", "10000", "--mysql-dsn", os.Getenv("FIBERCHAT_TEST_MYSQL_DSN")}
	// The deadline only stops a hung run; how long a run takes is not
	// asserted, and with -race on a busy host it is several times --quick's.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if code := run(ctx, args, &stdout, io.MultiWriter(&stderr, testWriter{t})); code != 0 {
		t.Fatalf("exit status %d\nstdout:\n%s", code, stdout.String())
	}
	_, err := exec.LookPath("redis-server")
	haveRedis, haveMySQL := err == nil, os.Getenv("FIBERCHAT_TEST_MYSQL_DSN") != ""
	if want := map[bool]string{true: "wake2  ", false: "skipped: redis-server not installed"}[haveRedis]; !strings.Contains(stdout.String(), want) {
		t.Errorf("the table has no %q:\n%s", want, stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last line is not a JSON object: %v\n%s", err, stdout.String())
	}
	for _, key := range []string{"info_vs_ceiling", "send_vs_insert_sqlite", "send_vs_insert_mysql", "send_sqlite_vs_ceiling", "send_mysql_vs_ceiling", "history_vs_select", "unread_vs_select",
		"history_rps", "select_history_rps", "unread_rps", "select_unread_rps", "seed_messages", "hold_kib_per_poll", "wake_p50_ms", "wake_p99_ms",
		"stream_kib_per_conn", "stream_live_kib_per_conn", "stream_wake_p50_ms", "stream_wake_p99_ms", "stream_conns", "stream_wake_conns",
		"wake2_p50_ms", "wake2_p99_ms", "send_two_instances_mysql", "send_two_instances_mysql_rps",
		"wake2_cluster_p50_ms", "wake2_cluster_p99_ms", "send_two_instances_cluster_mysql", "send_two_instances_cluster_mysql_rps",
		"group_send_vs_send", "group_send_vs_send_mysql", "recv_groups_vs_select", "group_send_rps", "group_send_ref_rps", "group_delivered",
		"recv_groups_rps", "select_recv_groups_rps", "group_seed_messages", "ceiling_send_sqlite_rps", "ceiling_send_mysql_rps"} {
		v, ok := got[key]
		if !ok {
			t.Errorf("summary has no %s", key)
			continue
		}
		// Each key is null exactly when the run could not measure it.
		skipped := ""
		switch {
		case (strings.HasPrefix(key, "wake2_") || strings.Contains(key, "_cluster_")) && !haveRedis:
			skipped = "without redis-server"
		case (key == "send_vs_insert_mysql" || key == "group_send_vs_send_mysql" || key == "send_mysql_vs_ceiling" || key == "ceiling_send_mysql_rps") && !haveMySQL:
			skipped = "without a MySQL DSN"
		case strings.HasPrefix(key, "send_two_instances_") && (!haveMySQL || !haveRedis):
			skipped = "without a MySQL DSN and redis-server"
		}
		if skipped != "" {
			if v != nil {
				t.Errorf("%s = %v %s, want null", key, v, skipped)
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

// TestHoldRest checks that the hold workload's rest never outlasts what
// the server holds a poll for: a run whose waves took 12 s used to rest
// the full 21 s, and its first polls were answered at their 30 s wait
// before the reading.
func TestHoldRest(t *testing.T) {
	s := time.Second
	for _, c := range []struct {
		rest, lifetime, elapsed, want time.Duration
	}{
		{21 * s, 30 * s, 1 * s, 21 * s},
		{21 * s, 30 * s, 12 * s, 10 * s},
		{21 * s, 30 * s, 25 * s, 0},
		{21 * s, 0, 60 * s, 21 * s},
		{0, 30 * s, 1 * s, 0},
	} {
		if got := holdRest(c.rest, c.lifetime, c.elapsed); got != c.want {
			t.Errorf("holdRest(%v, %v, %v) = %v, want %v", c.rest, c.lifetime, c.elapsed, got, c.want)
		}
		if c.lifetime > 0 && c.elapsed+holdRest(c.rest, c.lifetime, c.elapsed)+holdMargin > c.lifetime && c.elapsed+holdMargin <= c.lifetime {
			t.Errorf("holdRest(%v, %v, %v) leaves less than %v of the lifetime", c.rest, c.lifetime, c.elapsed, holdMargin)
		}
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
	if o.hold != 42 || o.wake != 100 || o.duration != time.Second || o.messages != 50_000 {
		t.Fatalf("--quick --hold 42 gave hold %d, wake %d, duration %s, messages %d; want 42, 100, 1s, 50000", o.hold, o.wake, o.duration, o.messages)
	}
	if o.streamHold != 500 || o.streamWake != 100 || o.wake2 != 100 {
		t.Fatalf("--quick gave stream-hold %d, stream-wake %d, wake2 %d; want 500, 100, 100", o.streamHold, o.streamWake, o.wake2)
	}
}

// TestSenderOf checks the seed's shape: every user hears from its partner
// seedPartner times and from seedOthers others, each equally often, none
// of them itself, and writes to the same others (so each conversation
// has both directions).
func TestSenderOf(t *testing.T) {
	for _, n := range []int{minMessages / seedPerUser, 500, 10_000} {
		for _, to := range []int{0, 1, n / 2, n - 1} {
			from := map[int]int{}
			for r := range seedPerUser {
				f := senderOf(to, r, n)
				if f == to || f < 0 || f >= n {
					t.Fatalf("n %d: user %d hears from %d in round %d", n, to, f, r)
				}
				from[f]++
			}
			if from[to^1] != seedPartner {
				t.Errorf("n %d: user %d hears %d times from its partner, want %d", n, to, from[to^1], seedPartner)
			}
			if len(from) != 1+seedOthers {
				t.Errorf("n %d: user %d has %d senders, want %d", n, to, len(from), 1+seedOthers)
			}
			for f, c := range from {
				if f != to^1 && c != (seedPerUser-seedPartner)/seedOthers {
					t.Errorf("n %d: user %d hears %d times from %d, want %d", n, to, c, f, (seedPerUser-seedPartner)/seedOthers)
				}
				wrote := false
				for r := range seedPerUser {
					wrote = wrote || senderOf(f, r, n) == to
				}
				if !wrote {
					t.Errorf("n %d: user %d hears from %d but never writes to it", n, to, f)
				}
			}
		}
	}
}

// TestSeedConversations seeds a small database and checks what the
// workloads rely on: the pages asked for are full, and the counters
// agree with the messages.
func TestSeedConversations(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "h.db")
	cf, err := seedConversations(ctx, dsn, minMessages, warnLogger(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	gdb, err := database.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(gdb)
	db, _ := gdb.DB()
	var total, unread, senders int64
	if err := db.QueryRow("SELECT COUNT(*) FROM chat_messages WHERE kind < 2").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT SUM(unread), COUNT(*) FROM chat_conversations").Scan(&unread, &senders); err != nil {
		t.Fatal(err)
	}
	if total != int64(cf.messages) || unread != total || senders != int64(len(cf.users)*(1+seedOthers)) {
		t.Fatalf("%d messages, %d unread over %d conversations; want %d, %d, %d", total, unread, senders, cf.messages, cf.messages, len(cf.users)*(1+seedOthers))
	}
	for seq := range 20 {
		me, with, before := cf.historyPick(3, seq)
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM ("+historySQL+")", min(me.UID, with.UID), max(me.UID, with.UID), before).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != historyPage {
			t.Errorf("history of %d with %d below %d: %d rows, want %d", me.UID, with.UID, before, n, historyPage)
		}
	}
	for _, index := range []string{"idx_chat_messages_pair", "idx_chat_messages_to", "uq_chat_messages_client", "idx_chat_messages_created"} {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?", index).Scan(&n); err != nil || n != 1 {
			t.Errorf("index %s: %d, %v; want it rebuilt", index, n, err)
		}
	}
}
