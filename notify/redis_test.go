package notify_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/notify"
	"github.com/redis/go-redis/v9"
)

// publishCounter counts the PUBLISH commands a client sends.
type publishCounter struct{ n atomic.Int64 }

func (*publishCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (p *publishCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "publish" {
			p.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (*publishCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func newRedis(t *testing.T, client redis.UniversalClient) *notify.Redis {
	t.Helper()
	n, err := notify.NewRedis(notify.RedisConfig{Client: client, Channel: "test:wake", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for !n.Up() {
		if time.Now().After(deadline) {
			t.Fatal("subscription not up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return n
}

// TestRedisBurstCoalesces publishes a burst of wake-ups on one process and
// checks that the other hears every uid, in far fewer PUBLISHes than
// wake-ups, and that the publisher's own subscribers are woken directly.
func TestRedisBurstCoalesces(t *testing.T) {
	rs := chattest.StartRedis(t)
	pubClient := rs.Client(t)
	counter := &publishCounter{}
	pubClient.AddHook(counter)
	pub, sub := newRedis(t, pubClient), newRedis(t, rs.Client(t))

	const users = 2000
	var mu sync.Mutex
	woken := make(map[int64]int)
	for uid := int64(1); uid <= users; uid++ {
		cancel := sub.Subscribe(uid, func() {
			mu.Lock()
			woken[uid]++
			mu.Unlock()
		})
		defer cancel()
	}
	var local atomic.Int64
	defer pub.Subscribe(7, func() { local.Add(1) })()

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for uid := int64(w + 1); uid <= users; uid += 8 {
				if err := pub.Publish(context.Background(), uid); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if local.Load() != 1 {
		t.Fatalf("the publisher's own subscriber woke %d times, want 1 (directly, not through Redis)", local.Load())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(woken)
		mu.Unlock()
		if n == users {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d users woken on the other process", n, users)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := counter.n.Load(); got >= users/4 {
		t.Fatalf("%d PUBLISHes for %d wake-ups: not batched", got, users)
	}
	t.Logf("%d wake-ups in %d PUBLISHes", users, counter.n.Load())
}
