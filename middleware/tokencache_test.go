package middleware_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
)

type fakeTokens struct {
	mu     sync.Mutex
	rows   map[string]models.UserToken
	reads  int
	during func() // runs inside a read, to race an invalidation with it
}

func (f *fakeTokens) TokenByHash(_ context.Context, hash string) (*models.UserToken, error) {
	f.mu.Lock()
	f.reads++
	t, ok := f.rows[hash]
	during := f.during
	f.mu.Unlock()
	if during != nil {
		during()
	}
	if !ok {
		return nil, models.ErrNotFound
	}
	return &t, nil
}

func (f *fakeTokens) ExtendToken(_ context.Context, id, expire int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for h, t := range f.rows {
		if t.ID == id && t.ExpireTime < expire {
			t.ExpireTime = expire
			f.rows[h] = t
		}
	}
	return nil
}

func TestTokenCache(t *testing.T) {
	// Safe to read concurrently, as the caches' sweepers do.
	clk := chattest.NewClock(time.Unix(1000, 0))
	clock := clk.Now
	src := &fakeTokens{rows: map[string]models.UserToken{"h1": {ID: 1, UID: 7, TokenHash: "h1", ExpireTime: 5000}}}
	c := middleware.NewTokenCache(src, 5*time.Second, 100, clock)
	ctx := context.Background()

	for i := 0; i < 3; i++ {
		if _, err := c.TokenByHash(ctx, "h1"); err != nil {
			t.Fatal(err)
		}
	}
	if src.reads != 1 {
		t.Fatalf("%d reads for three lookups, want 1", src.reads)
	}
	// An unknown token is remembered for a second at most: repeating it
	// costs no read, and a second later it is read again.
	for i := 0; i < 2; i++ {
		if _, err := c.TokenByHash(ctx, "nope"); err != models.ErrNotFound {
			t.Fatal(err)
		}
	}
	if src.reads != 2 {
		t.Fatalf("%d reads, want one for the repeated miss", src.reads)
	}
	clk.Advance(time.Second)
	if _, err := c.TokenByHash(ctx, "nope"); err != models.ErrNotFound {
		t.Fatal(err)
	}
	if src.reads != 3 {
		t.Fatalf("%d reads, want a miss read again after a second", src.reads)
	}
	// Ended elsewhere: seen once the TTL has passed.
	delete(src.rows, "h1")
	if _, err := c.TokenByHash(ctx, "h1"); err != nil {
		t.Fatal("within the TTL the cached session still answers")
	}
	clk.Advance(6 * time.Second)
	if _, err := c.TokenByHash(ctx, "h1"); err != models.ErrNotFound {
		t.Fatalf("after the TTL: %v", err)
	}
	// Ended here: forgotten at once.
	src.rows["h2"] = models.UserToken{ID: 2, UID: 8, TokenHash: "h2", ExpireTime: 5000}
	_, _ = c.TokenByHash(ctx, "h2")
	delete(src.rows, "h2")
	c.ForgetUser(8)
	if _, err := c.TokenByHash(ctx, "h2"); err != models.ErrNotFound {
		t.Fatalf("after ForgetUser: %v", err)
	}
	// A session ended while its row was being read is not remembered.
	src.rows["h3"] = models.UserToken{ID: 3, UID: 9, TokenHash: "h3", ExpireTime: 5000}
	src.during = func() { c.ForgetUser(9) }
	_, _ = c.TokenByHash(ctx, "h3")
	src.during = nil
	delete(src.rows, "h3")
	if _, err := c.TokenByHash(ctx, "h3"); err != models.ErrNotFound {
		t.Fatalf("a read that raced ForgetUser was cached: %v", err)
	}
}

func TestTokenCacheBounded(t *testing.T) {
	src := &fakeTokens{rows: map[string]models.UserToken{}}
	c := middleware.NewTokenCache(src, time.Minute, 50, time.Now)
	for i := 0; i < 1000; i++ {
		h := string(rune('a'+i%26)) + string(rune(i))
		src.rows[h] = models.UserToken{ID: int64(i), UID: int64(i % 10), TokenHash: h, ExpireTime: 1 << 40}
		if _, err := c.TokenByHash(context.Background(), h); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n > 50 {
		t.Fatalf("%d entries cached, bound is 50", n)
	}
}

// Wrong tokens are remembered apart from sessions: a flood of them, more
// than the cache holds, evicts no session, and each costs one read.
func TestTokenCacheMissesEvictNoSession(t *testing.T) {
	now := time.Unix(1000, 0)
	src := &fakeTokens{rows: map[string]models.UserToken{"good": {ID: 1, UID: 7, TokenHash: "good", ExpireTime: 5000}}}
	c := middleware.NewTokenCache(src, 5*time.Second, 8, func() time.Time { return now })
	ctx := context.Background()
	if _, err := c.TokenByHash(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		for range 2 {
			if _, err := c.TokenByHash(ctx, fmt.Sprintf("wrong%d", i)); err != models.ErrNotFound {
				t.Fatal(err)
			}
		}
	}
	if src.reads != 201 {
		t.Fatalf("%d reads, want 1 for the session and 1 per wrong token", src.reads)
	}
	if _, err := c.TokenByHash(ctx, "good"); err != nil || src.reads != 201 || c.Len() != 1 {
		t.Fatalf("the session was evicted by misses: %v, %d reads, %d cached", err, src.reads, c.Len())
	}
}

// An extended session is served with its new expiry, without a read.
func TestTokenCacheExtend(t *testing.T) {
	now := time.Unix(1000, 0)
	src := &fakeTokens{rows: map[string]models.UserToken{"h1": {ID: 1, UID: 7, TokenHash: "h1", ExpireTime: 2000}}}
	c := middleware.NewTokenCache(src, 5*time.Second, 100, func() time.Time { return now })
	ctx := context.Background()
	if _, err := c.TokenByHash(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if err := c.ExtendToken(ctx, 1, 9000); err != nil {
		t.Fatal(err)
	}
	if err := c.ExtendToken(ctx, 1, 8000); err != nil { // a slower, older extension
		t.Fatal(err)
	}
	got, err := c.TokenByHash(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ExpireTime != 9000 || src.reads != 1 {
		t.Fatalf("expiry %d after %d reads, want 9000 from the cache after 1", got.ExpireTime, src.reads)
	}
}

// Without a clock, or with no room, nothing is cached and every lookup
// reads the source: a caller's mistake costs reads, never a stale session.
func TestTokenCacheDisabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int
		now  func() time.Time
	}{{"no clock", 10, nil}, {"no room", 0, time.Now}} {
		src := &fakeTokens{rows: map[string]models.UserToken{"h1": {ID: 1, UID: 7, TokenHash: "h1", ExpireTime: 1 << 40}}}
		c := middleware.NewTokenCache(src, time.Minute, tc.max, tc.now)
		for i := 0; i < 2; i++ {
			if _, err := c.TokenByHash(context.Background(), "h1"); err != nil {
				t.Fatal(err)
			}
		}
		if src.reads != 2 || c.Len() != 0 {
			t.Fatalf("%s: %d reads, %d cached; want 2 and 0", tc.name, src.reads, c.Len())
		}
	}
}
