package redisbus_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/internal/redisbus"
	"github.com/redis/go-redis/v9"
)

// A Redis that hangs (SIGSTOP) under a client that never gives up a
// read (ReadTimeout -1, no ContextTimeoutEnabled): the Bus still reports
// the subscription down within seconds, so that the module falls back to
// the database, and Close returns within its bound instead of waiting
// on Redis.
func TestBusPaused(t *testing.T) {
	rs := chattest.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr, ReadTimeout: -1, WriteTimeout: -1})
	t.Cleanup(func() { _ = client.Close() })
	bus, err := redisbus.New(redisbus.Config{Client: client, Channel: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	awaitUp(t, bus, true, 10*time.Second)

	rs.Pause(t)
	bus.Publish("a")
	// Silence, a ping, its answer's wait, all a second each; the rest is
	// room for a loaded machine.
	awaitUp(t, bus, false, 10*time.Second)
	bus.Publish("b")
	closed := make(chan struct{})
	start := time.Now()
	go func() {
		_ = bus.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Close still waits on the paused Redis after 15 s")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Close took %v with Redis paused", took)
	}
}

func awaitUp(t *testing.T, bus *redisbus.Bus, up bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for bus.Up() != up {
		if time.Now().After(deadline) {
			t.Fatalf("Up() is not %v after %v", up, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
