package notify_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/notify"
	"github.com/redis/go-redis/v9"
)

// missedLog is a MissedFunc that names no one and records when it was
// asked.
type missedLog struct {
	mu    sync.Mutex
	calls []time.Time
}

func (m *missedLog) missed(context.Context, time.Time, int64) ([]int64, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, time.Now())
	return nil, 0, nil
}

func (m *missedLog) since(t time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.calls {
		if !c.Before(t) {
			n++
		}
	}
	return n
}

func newSharded(t *testing.T, client redis.UniversalClient, missed notify.MissedFunc) *notify.Redis {
	t.Helper()
	n, err := notify.NewRedis(notify.RedisConfig{
		Client: client, Channel: "test:wake", Shards: 8, ShardLinger: 50 * time.Millisecond,
		FallbackInterval: 20 * time.Millisecond, Missed: missed,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// shardSubscribers asks Redis how many subscribe to each shard channel.
func shardSubscribers(t *testing.T, c redis.UniversalClient, shards ...int) []int64 {
	t.Helper()
	var names []string
	for _, s := range shards {
		names = append(names, "test:wake:"+string(rune('0'+s)))
	}
	got, err := c.PubSubShardNumSub(context.Background(), names...).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(names))
	for i, name := range names {
		out[i] = got[name]
	}
	return out
}

func await(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRedisShardedWakes: with Shards, a process subscribes only to the
// shards its subscribers' uids fall in, hears wake-ups published for them
// on another process, covers the moment before Redis confirms a new
// subscription with a database check, and lets a shard go once nobody
// has waited on it for ShardLinger.
func TestRedisShardedWakes(t *testing.T) {
	rs := chattest.StartRedis(t)
	admin := rs.Client(t)
	pub := newSharded(t, rs.Client(t), nil)
	log := &missedLog{}
	sub := newSharded(t, rs.Client(t), log.missed)

	subscribedAt := time.Now()
	woken := make(chan int64, 10)
	cancel := sub.Subscribe(11, func() { woken <- 11 }) // shard 3
	await(t, "the shard's subscription", sub.Up)
	if got := sub.Subscribed(); !slices.Equal(got, []int{3}) {
		t.Fatalf("subscribed to shards %v, want [3]", got)
	}
	if got := pub.Subscribed(); got != nil {
		t.Fatalf("the publisher subscribed to shards %v, want none", got)
	}
	if got := shardSubscribers(t, admin, 3, 4); !slices.Equal(got, []int64{1, 0}) {
		t.Fatalf("subscribers of shards 3 and 4: %v, want [1 0]", got)
	}
	// A wake-up may have been published between Subscribe and Redis's
	// confirmation: the database was asked, after Subscribe.
	await(t, "a database check for the new shard", func() bool { return log.since(subscribedAt) > 0 })

	if err := pub.Publish(context.Background(), 12); err != nil { // shard 4: nobody here
		t.Fatal(err)
	}
	if err := pub.Publish(context.Background(), 11); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(5 * time.Second):
		t.Fatal("the wake-up for uid 11 did not reach the other process")
	}

	cancel()
	await(t, "the idle shard's release", func() bool {
		return sub.Subscribed() == nil && shardSubscribers(t, admin, 3)[0] == 0
	})
	// Subscribing again works: the shard comes back.
	again := make(chan struct{}, 1)
	defer sub.Subscribe(19, func() { again <- struct{}{} })() // shard 3 again
	await(t, "the shard's subscription again", func() bool { return sub.Up() && shardSubscribers(t, admin, 3)[0] == 1 })
	if err := pub.Publish(context.Background(), 19); err != nil {
		t.Fatal(err)
	}
	select {
	case <-again:
	case <-time.After(5 * time.Second):
		t.Fatal("the wake-up for uid 19 did not arrive after resubscribing")
	}
}
