package presence_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/internal/presence"
	"github.com/redis/go-redis/v9"
)

// host plays one process: its users with waiters, and what its Tracker
// announced, in order.
type host struct {
	mu     sync.Mutex
	has    map[int64]bool
	said   chan string
	t      *presence.Tracker
	closed bool
}

func newHost(t *testing.T, grace time.Duration, rc redis.UniversalClient, ttl time.Duration) *host {
	t.Helper()
	h := &host{has: map[int64]bool{}, said: make(chan string, 100)}
	h.t = presence.New(presence.Config{
		Has: func(uid int64) bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.has[uid]
		},
		Announce: func(_ context.Context, uid int64, online bool) {
			if online {
				h.said <- "online"
			} else {
				h.said <- "offline"
			}
		},
		Grace: grace, Redis: rc, Prefix: "test:", EntryTTL: ttl,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	t.Cleanup(h.close)
	return h
}

func (h *host) close() {
	if !h.closed {
		h.closed = true
		h.t.Close()
	}
}

// set gives uid waiters here, or takes them all, as deliver.Hub would
// before calling Changed.
func (h *host) set(uid int64, has bool) {
	h.mu.Lock()
	h.has[uid] = has
	h.mu.Unlock()
	h.t.Changed(uid)
}

func (h *host) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-h.said:
		if got != want {
			t.Fatalf("announced %s, want %s", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("nothing announced in 10 s, want %s", want)
	}
}

// quiet checks nothing was announced within d.
func (h *host) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-h.said:
		t.Fatalf("announced %s, want nothing", got)
	case <-time.After(d):
	}
}

func TestTrackerGrace(t *testing.T) {
	const grace = 200 * time.Millisecond
	h := newHost(t, grace, nil, 0)
	h.set(1, true)
	h.expect(t, "online")
	if !h.t.Online(context.Background(), []int64{1})[1] {
		t.Fatal("not online")
	}
	// Gone and back within the grace: no flap.
	h.set(1, false)
	h.set(1, true)
	h.quiet(t, 3*grace)
	h.set(1, false)
	if !h.t.Online(context.Background(), []int64{1})[1] {
		t.Fatal("offline within the grace")
	}
	h.expect(t, "offline")
	if h.t.Online(context.Background(), []int64{1})[1] {
		t.Fatal("still online")
	}
}

func TestTrackerAcrossInstances(t *testing.T) {
	rs := chattest.StartRedis(t)
	const grace, ttl = 100 * time.Millisecond, time.Second
	a, b := newHost(t, grace, rs.Client(t), ttl), newHost(t, grace, rs.Client(t), ttl)
	ctx := context.Background()
	a.set(1, true)
	a.expect(t, "online")
	// The second instance to hold the user says nothing, nor the first
	// to let go.
	b.set(1, true)
	b.quiet(t, 3*grace)
	a.set(1, false)
	a.quiet(t, 3*grace)
	if !a.t.Online(ctx, []int64{1})[1] {
		t.Fatal("a: online on b, not seen")
	}
	b.set(1, false)
	b.expect(t, "offline")
	if a.t.Online(ctx, []int64{1})[1] || b.t.Online(ctx, []int64{1})[1] {
		t.Fatal("online after both let go")
	}

	// An instance that dies: its entries expire, past several refreshes
	// of a living one's.
	b.set(2, true)
	b.expect(t, "online")
	a.set(3, true)
	a.expect(t, "online")
	b.close()
	deadline := time.Now().Add(10 * ttl)
	for a.t.Online(ctx, []int64{2})[2] {
		if time.Now().After(deadline) {
			t.Fatal("a dead instance's user still online")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if time.Since(deadline.Add(-10*ttl)) < ttl/2 {
		t.Fatal("expired too early")
	}
	time.Sleep(2 * ttl)
	if !b.t.Online(ctx, []int64{3})[3] {
		t.Fatal("a living instance's user expired")
	}
}
