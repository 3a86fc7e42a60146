package redisstore_test

import (
	"io"
	"log/slog"
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
