package redisstore_test

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/internal/redisstore"
	"github.com/gofiber/fiber/v2"
)

var _ fiber.Storage = (*redisstore.Storage)(nil)

func TestStorage(t *testing.T) {
	rs := chattest.StartRedis(t)
	client := rs.Client(t)
	s := redisstore.New(client, "test:limit:", slog.New(slog.NewTextHandler(io.Discard, nil)))
	other := redisstore.New(client, "other:", slog.New(slog.NewTextHandler(io.Discard, nil)))
	get := func(s *redisstore.Storage, key string) string {
		t.Helper()
		v, err := s.Get(key)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		return string(v)
	}
	if v := get(s, "a"); v != "" {
		t.Fatalf("Get of a missing key = %q", v)
	}
	for _, kv := range [][2]string{{"a", "1"}, {"b", "2"}} {
		if err := s.Set(kv[0], []byte(kv[1]), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Set("a", []byte("mine"), 0); err != nil {
		t.Fatal(err)
	}
	if v := get(s, "a"); v != "1" {
		t.Fatalf("Get(a) = %q, want 1", v)
	}
	if ttl := client.TTL(t.Context(), "test:limit:a").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("TTL of a = %v, want the minute it was set for", ttl)
	}
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if v := get(s, "a"); v != "" {
		t.Fatalf("Get(a) after Delete = %q", v)
	}
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if v := get(s, "b"); v != "" {
		t.Fatalf("Get(b) after Reset = %q", v)
	}
	if v := get(other, "a"); v != "mine" {
		t.Fatalf("Reset reached another prefix: Get = %q", v)
	}

	// Redis down: the counters live on in this process, not nowhere.
	rs.Kill(t)
	if err := s.Set("c", []byte("3"), time.Minute); err != nil {
		t.Fatalf("Set with Redis down: %v", err)
	}
	if v := get(s, "c"); v != "3" {
		t.Fatalf("Get(c) with Redis down = %q, want the value kept in process", v)
	}
}

// A Redis that hangs (SIGSTOP) costs one call callTimeout; the calls
// after it go to the fallback at once, and once Redis answers again the
// Storage goes back to it by itself.
func TestStoragePaused(t *testing.T) {
	rs := chattest.StartRedis(t)
	client := rs.Client(t)
	s := redisstore.New(client, "test:limit:", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Set("a", []byte("1"), time.Minute); err != nil {
		t.Fatal(err)
	}

	rs.Pause(t)
	// The bounds are generous, for a loaded machine: the first call
	// waits a second, the others nothing.
	start := time.Now()
	for i := range 20 {
		if n, err := s.Incr("n", 1, time.Minute); err != nil || n != int64(i+1) {
			t.Fatalf("Incr with Redis paused = %d, %v; want %d counted in process", n, err, i+1)
		}
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("20 calls with Redis paused took %v: each waited on Redis", took)
	}
	if s.Up() {
		t.Fatal("Up with Redis paused")
	}

	rs.Resume(t)
	deadline := time.Now().Add(10 * time.Second)
	for !s.Up() {
		if time.Now().After(deadline) {
			t.Fatal("the Storage does not go back to Redis 10 s after it answers again")
		}
		_, _ = s.Get("a") // while down, calls are what starts a probe
		time.Sleep(50 * time.Millisecond)
	}
	if v, err := s.Get("a"); err != nil || string(v) != "1" {
		t.Fatalf("Get(a) with Redis back = %q, %v; want Redis's 1", v, err)
	}
}

// Incr and SetNX are one step each on Redis: of parallel callers, each
// gets a sum of its own, and one wins SetNX.
func TestStorageAtomic(t *testing.T) {
	rs := chattest.StartRedis(t)
	s := redisstore.New(rs.Client(t), "test:limit:", slog.New(slog.NewTextHandler(io.Discard, nil)))
	other := redisstore.New(rs.Client(t), "test:limit:", slog.New(slog.NewTextHandler(io.Discard, nil)))
	const n = 40
	sums := make(chan int64, n)
	wins := make(chan bool, n)
	var wg sync.WaitGroup
	for i := range n {
		st := []*redisstore.Storage{s, other}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			sum, _ := st.Incr("n", 1, time.Minute)
			sums <- sum
			ok, _ := st.SetNX("lock", []byte("x"), time.Minute)
			wins <- ok
		}()
	}
	wg.Wait()
	close(sums)
	close(wins)
	seen := map[int64]bool{}
	for sum := range sums {
		if seen[sum] || sum < 1 || sum > n {
			t.Fatalf("Incr gave %d twice or out of 1..%d", sum, n)
		}
		seen[sum] = true
	}
	won := 0
	for ok := range wins {
		if ok {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d SetNX won, want 1", won)
	}
	if ttl := rs.Client(t).PTTL(t.Context(), "test:limit:n").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("TTL of n = %v, want the minute it was set for", ttl)
	}
}

// Local holds at most its max keys: past it, expired keys go first, then
// a random eighth, never everything at once.
func TestLocalBound(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	l := redisstore.NewLocal(16, func() time.Time { return now })
	for i := range 16 {
		_ = l.Set(strconv.Itoa(i), []byte("x"), 0)
	}
	_ = l.Set("new", []byte("x"), 0)
	kept := 0
	for i := range 16 {
		if v, _ := l.Get(strconv.Itoa(i)); v != nil {
			kept++
		}
	}
	if v, _ := l.Get("new"); v == nil || kept != 14 {
		t.Fatalf("past the bound: new kept %v, %d of 16 old kept; want it and 14", v != nil, kept)
	}
	// Expired keys are swept before any live one is dropped.
	l = redisstore.NewLocal(4, func() time.Time { return now })
	_ = l.Set("old", []byte("x"), time.Second)
	for i := range 3 {
		_, _ = l.Incr(strconv.Itoa(i), 1, time.Hour)
	}
	now = now.Add(2 * time.Second)
	_ = l.Set("new", []byte("x"), 0)
	for i := range 3 {
		if n, _ := l.Incr(strconv.Itoa(i), 1, time.Hour); n != 2 {
			t.Fatalf("count %d = %d after the sweep, want 2: a live key was dropped", i, n)
		}
	}
}
