// Package redisstore is a fiber.Storage on Redis, so that the rate limits
// of several processes serving one site count together (Fiber's limiter
// keeps its counters in a Storage).
//
// It is written here rather than taken from gofiber/storage/redis because
// that one dials Redis itself, while the module is handed the host's
// client, and because a Storage that fails fails the limiter open: Fiber's
// limiter treats a Get error as an empty counter. This one falls back to
// counting in this process while Redis does not answer, so a limit still
// holds per process rather than not at all.
package redisstore

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// callTimeout bounds each call to Redis: a hung Redis must not hold a
// login.
const callTimeout = time.Second

// localMax bounds the fallback's keys; past it expired ones are swept, and
// if none has expired the fallback starts over.
const localMax = 100000

// Storage implements fiber.Storage on a Redis client, every key under a
// prefix.
type Storage struct {
	client redis.UniversalClient
	prefix string
	logger *slog.Logger

	mu      sync.Mutex
	local   map[string]localEntry
	lastLog time.Time
}

type localEntry struct {
	val    []byte
	expire time.Time // zero: never
}

// New returns a Storage on client that puts prefix before every key. The
// client is the caller's and is not closed by Close.
func New(client redis.UniversalClient, prefix string, logger *slog.Logger) *Storage {
	return &Storage{client: client, prefix: prefix, logger: logger, local: make(map[string]localEntry)}
}

// Get returns key's value, nil when there is none.
func (s *Storage) Get(key string) ([]byte, error) {
	if key == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	val, err := s.client.Get(ctx, s.prefix+key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		s.failed(err)
		return s.localGet(key), nil
	}
	return val, nil
}

// Set stores val under key for exp (0: without expiry).
func (s *Storage) Set(key string, val []byte, exp time.Duration) error {
	if key == "" || len(val) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := s.client.Set(ctx, s.prefix+key, val, exp).Err(); err != nil {
		s.failed(err)
		s.localSet(key, val, exp)
	}
	return nil
}

// Delete removes key.
func (s *Storage) Delete(key string) error {
	s.mu.Lock()
	delete(s.local, key)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return s.client.Del(ctx, s.prefix+key).Err()
}

// Reset removes every key under the prefix.
func (s *Storage) Reset() error {
	s.mu.Lock()
	clear(s.local)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*callTimeout)
	defer cancel()
	iter := s.client.Scan(ctx, 0, s.prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := s.client.Del(ctx, keys[:n]...).Err(); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// Close releases nothing: the client is the caller's.
func (s *Storage) Close() error { return nil }

func (s *Storage) localGet(key string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.local[key]
	if !ok || (!e.expire.IsZero() && !time.Now().Before(e.expire)) {
		return nil
	}
	return e.val
}

func (s *Storage) localSet(key string, val []byte, exp time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if len(s.local) >= localMax {
		for k, e := range s.local {
			if !e.expire.IsZero() && !now.Before(e.expire) {
				delete(s.local, k)
			}
		}
		if len(s.local) >= localMax {
			clear(s.local)
		}
	}
	e := localEntry{val: append([]byte(nil), val...)}
	if exp > 0 {
		e.expire = now.Add(exp)
	}
	s.local[key] = e
}

// failed logs a Redis error, at most once a minute.
func (s *Storage) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); now.Sub(s.lastLog) >= time.Minute {
		s.lastLog = now
		s.logger.Warn("rate limit storage: redis failed; counting in this process", "error", err.Error())
	}
}
