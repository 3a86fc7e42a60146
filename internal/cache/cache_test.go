package cache_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/cache"
)

// clock is a settable clock, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Unix(1000, 0).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) config(ttl time.Duration, size int) cache.Config {
	return cache.Config{TTL: ttl, Size: size, Now: c.Now}
}

// source counts reads and can run something in the middle of one.
type source struct {
	mu     sync.Mutex
	rows   map[int]string
	reads  int
	during func()
}

func (s *source) load(key int) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		s.mu.Lock()
		s.reads++
		v, ok := s.rows[key]
		during := s.during
		s.mu.Unlock()
		if during != nil {
			during()
		}
		if !ok {
			return "", errors.New("not found")
		}
		return v, nil
	}
}

func TestLoadServesWithinTTL(t *testing.T) {
	clk := newClock()
	c := cache.New[int, string](clk.config(5*time.Second, 10))
	src := &source{rows: map[int]string{1: "a"}}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if v, err := c.Load(ctx, 1, src.load(1)); err != nil || v != "a" {
			t.Fatalf("Load = %q, %v; want a", v, err)
		}
	}
	if src.reads != 1 {
		t.Fatalf("%d reads for three loads, want 1", src.reads)
	}
	src.rows[1] = "b"
	clk.Advance(4 * time.Second)
	if v, _ := c.Load(ctx, 1, src.load(1)); v != "a" {
		t.Fatalf("within the TTL: %q, want the cached a", v)
	}
	clk.Advance(time.Second)
	if v, _ := c.Load(ctx, 1, src.load(1)); v != "b" {
		t.Fatalf("at the TTL: %q, want a fresh read", v)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	clk := newClock()
	c := cache.New[int, string](clk.config(time.Minute, 10))
	src := &source{rows: map[int]string{}}
	for i := 0; i < 2; i++ {
		if _, err := c.Load(context.Background(), 1, src.load(1)); err == nil {
			t.Fatal("Load of a missing row succeeded")
		}
	}
	if src.reads != 2 || c.Len() != 0 {
		t.Fatalf("%d reads, %d entries; want 2 reads, nothing cached", src.reads, c.Len())
	}
}

func TestClockGoingBack(t *testing.T) {
	clk := newClock()
	c := cache.New[int, string](clk.config(time.Minute, 10))
	c.Put(c.Stamp(), 1, "a")
	clk.Advance(-time.Second)
	if v, ok := c.Get(1); ok {
		t.Fatalf("Get after the clock went back = %q; an entry of unknown age must not be served", v)
	}
}

func TestForget(t *testing.T) {
	clk := newClock()
	c := cache.NewGrouped[string, int](clk.config(time.Minute, 10), func(v int) int { return v % 10 })
	s := c.Stamp()
	for _, k := range []string{"a", "b", "c"} {
		c.Put(s, k, map[string]int{"a": 11, "b": 21, "c": 12}[k])
	}
	c.Forget("c")
	if _, ok := c.Get("c"); ok {
		t.Fatal("c served after Forget")
	}
	c.ForgetGroup(1)
	for _, k := range []string{"a", "b"} {
		if _, ok := c.Get(k); ok {
			t.Fatalf("%s served after its group was forgotten", k)
		}
	}
	if n := c.Len(); n != 0 {
		t.Fatalf("%d entries left, want 0", n)
	}
	// A key that moves to another group leaves the old one.
	s = c.Stamp()
	c.Put(s, "a", 11)
	c.Put(s, "a", 12)
	c.ForgetGroup(1)
	if v, ok := c.Get("a"); !ok || v != 12 {
		t.Fatalf("Get(a) = %d, %v after its old group was forgotten; want 12", v, ok)
	}
}

// A read that an invalidation raced is returned but never stored: the
// change made during the read must not hide behind a cached copy.
func TestInvalidationDuringLoad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		forget func(c *cache.Cache[int, int, string])
	}{
		{"Forget", func(c *cache.Cache[int, int, string]) { c.Forget(1) }},
		{"ForgetGroup", func(c *cache.Cache[int, int, string]) { c.ForgetGroup(7) }},
		{"Forget of another key", func(c *cache.Cache[int, int, string]) { c.Forget(2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			c := cache.NewGrouped[int](clk.config(time.Minute, 10), func(string) int { return 7 })
			src := &source{rows: map[int]string{1: "old"}}
			src.during = func() {
				src.mu.Lock()
				src.rows[1] = "new"
				src.mu.Unlock()
				tc.forget(c)
			}
			if v, err := c.Load(context.Background(), 1, src.load(1)); err != nil || v != "old" {
				t.Fatalf("Load = %q, %v; want the value read, old", v, err)
			}
			src.during = nil
			if v, _ := c.Load(context.Background(), 1, src.load(1)); v != "new" {
				t.Fatalf("after the raced read: %q, want new", v)
			}
		})
	}
}

func TestBounded(t *testing.T) {
	clk := newClock()
	c := cache.NewGrouped[int](clk.config(time.Minute, 50), func(v int) int { return v % 7 })
	for i := 0; i < 1000; i++ {
		c.Put(c.Stamp(), i, i)
		if n := c.Len(); n > 50 {
			t.Fatalf("%d entries after %d puts, bound is 50", n, i+1)
		}
	}
	// Evicted keys leave their groups too: forgetting every group empties
	// the cache, and no group index is left holding evicted keys.
	for g := 0; g < 7; g++ {
		c.ForgetGroup(g)
	}
	if n := c.Len(); n != 0 {
		t.Fatalf("%d entries after forgetting every group", n)
	}
}

func TestDisabled(t *testing.T) {
	clk := newClock()
	for _, cfg := range []cache.Config{
		{Size: 10, Now: clk.Now},
		{TTL: time.Minute, Now: clk.Now},
		{TTL: time.Minute, Size: 10},
	} {
		c := cache.New[int, string](cfg)
		src := &source{rows: map[int]string{1: "a"}}
		for i := 0; i < 2; i++ {
			if v, err := c.Load(context.Background(), 1, src.load(1)); err != nil || v != "a" {
				t.Fatalf("%+v: Load = %q, %v", cfg, v, err)
			}
		}
		if src.reads != 2 || c.Len() != 0 {
			t.Fatalf("%+v: %d reads, %d entries; a disabled cache holds nothing", cfg, src.reads, c.Len())
		}
	}
}

// TestConcurrent is for -race: loads, puts and invalidations at once.
func TestConcurrent(t *testing.T) {
	clk := newClock()
	c := cache.NewGrouped[string](clk.config(time.Second, 64), func(v int) int { return v % 5 })
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := strconv.Itoa((w*31 + i) % 200)
				switch i % 10 {
				case 0:
					c.ForgetGroup(i % 5)
				case 1:
					c.Forget(k)
				case 2:
					clk.Advance(time.Millisecond)
				default:
					v, err := c.Load(context.Background(), k, func(context.Context) (int, error) { return i, nil })
					if err != nil {
						t.Error(err)
						return
					}
					_ = v
				}
			}
		}()
	}
	wg.Wait()
	if n := c.Len(); n > 64 {
		t.Fatalf("%d entries, bound is 64", n)
	}
}

func TestCapTTL(t *testing.T) {
	clk := newClock()
	c := cache.New[int, string](clk.config(time.Minute, 10))
	put := func(key int, v string) {
		t.Helper()
		if !c.Put(c.Stamp(), key, v) {
			t.Fatalf("Put(%d) refused", key)
		}
	}
	put(1, "before")
	c.CapTTL(time.Second)
	if _, ok := c.Get(1); !ok {
		t.Fatal("an entry younger than the cap is gone")
	}
	clk.Advance(1500 * time.Millisecond)
	if v, ok := c.Get(1); ok {
		t.Fatalf("Get(1) = %q past the cap, want a miss", v)
	}
	put(2, "during")
	s := c.Stamp()
	c.CapTTL(0)
	if _, ok := c.Get(2); ok {
		t.Fatal("an entry read under the cap outlived the cap's lifting")
	}
	if c.Len() != 0 {
		t.Fatalf("Len = %d after the cap was lifted, want 0", c.Len())
	}
	if c.Put(s, 3, "read during") {
		t.Fatal("a read under way when the cap was lifted was stored")
	}
	put(4, "after")
	clk.Advance(30 * time.Second)
	if _, ok := c.Get(4); !ok {
		t.Fatal("with the cap lifted an entry died before the full TTL")
	}
	// Lifting a cap that is not set drops nothing.
	c.CapTTL(0)
	if _, ok := c.Get(4); !ok {
		t.Fatal("CapTTL(0) without a cap dropped an entry")
	}
}

// TestStats counts a hit per lookup served from memory and a miss per read
// from the source, once each, whether the caller tries Get first or not.
func TestStats(t *testing.T) {
	clk := newClock()
	c := cache.New[int, string](clk.config(time.Minute, 10))
	src := &source{rows: map[int]string{1: "one", 2: "two"}}
	ctx := context.Background()
	for range 3 {
		if _, err := c.Load(ctx, 1, src.load(1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := c.Get(2); !ok {
		// The caller's own miss path, as the signature gate's: Get, then Load.
		if _, err := c.Load(ctx, 2, src.load(2)); err != nil {
			t.Fatal(err)
		}
	}
	if hits, misses := c.Stats(); hits != 2 || misses != 2 {
		t.Fatalf("Stats() = %d hits, %d misses; want 2, 2", hits, misses)
	}
	off := cache.New[int, string](cache.Config{})
	_, _ = off.Load(ctx, 1, src.load(1))
	if hits, misses := off.Stats(); hits != 0 || misses != 0 {
		t.Fatalf("disabled cache: Stats() = %d, %d; want 0, 0", hits, misses)
	}
}

// TestSweep drops what is no longer fresh, generation by generation, and
// keeps a key stored again since its first generation.
func TestSweep(t *testing.T) {
	clk := newClock()
	c := cache.NewGrouped[int](clk.config(4*time.Second, 100), func(v string) string { return v })
	src := &source{rows: map[int]string{}}
	for i := 1; i <= 11; i++ {
		src.rows[i] = "g" + strconv.Itoa(i%2)
	}
	ctx := context.Background()
	load := func(keys ...int) {
		t.Helper()
		for _, k := range keys {
			if _, err := c.Load(ctx, k, src.load(k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	load(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	clk.Advance(2 * time.Second)
	load(11)
	clk.Advance(2 * time.Second)
	load(1) // stale: read and stored again
	if n := c.Len(); n != 11 {
		t.Fatalf("%d entries before the sweep, want 11", n)
	}
	c.Sweep()
	if n := c.Len(); n != 2 {
		t.Fatalf("%d entries after the first generation's sweep, want 2 (1 stored again, and 11)", n)
	}
	clk.Advance(2 * time.Second)
	c.Sweep()
	if n := c.Len(); n != 1 {
		t.Fatalf("%d entries after the second generation's sweep, want 1", n)
	}
	reads := src.reads
	load(1)
	if src.reads != reads {
		t.Fatal("the sweep dropped a fresh entry")
	}
	clk.Advance(2 * time.Second)
	c.Sweep()
	if n := c.Len(); n != 0 {
		t.Fatalf("%d entries once all are stale, want 0", n)
	}
	// The cache works on after a full sweep: a group forgotten drops
	// nothing stored after it.
	c.ForgetGroup("g1")
	load(3)
	if n := c.Len(); n != 1 {
		t.Fatalf("%d entries after storing one, want 1", n)
	}
}

// TestSweepClockBack keeps entries stored in what became the future
// until the clock passes them again, and never serves them meanwhile.
func TestSweepClockBack(t *testing.T) {
	clk := newClock()
	c := cache.New[int, string](clk.config(4*time.Second, 10))
	if _, err := c.Load(context.Background(), 1, func(context.Context) (string, error) { return "a", nil }); err != nil {
		t.Fatal(err)
	}
	clk.Advance(-10 * time.Second)
	c.Sweep()
	if _, ok := c.Get(1); ok || c.Len() != 1 {
		t.Fatalf("after the clock went back: served %v, %d entries, want a miss and the entry kept", ok, c.Len())
	}
	clk.Advance(14 * time.Second)
	c.Sweep()
	if n := c.Len(); n != 0 {
		t.Fatalf("%d entries once the clock passed them by a TTL, want 0", n)
	}
}

// TestSweeperRuns leaves a cache alone after storing in it: its entries
// go by themselves, a little after their TTL.
func TestSweeperRuns(t *testing.T) {
	c := cache.New[int, string](cache.Config{TTL: 40 * time.Millisecond, Size: 10, Now: time.Now})
	for k := range 3 {
		if _, err := c.Load(context.Background(), k, func(context.Context) (string, error) { return "v", nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d entries still held 5 s after a TTL of 40 ms", c.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
