// Package redisstore is a fiber.Storage on Redis, so that the rate limits
// and the login throttle of several processes serving one site count
// together (Fiber's limiter keeps its counters in a Storage; the throttle
// also needs Incr and SetNX, which Redis does atomically).
//
// It is written here rather than taken from gofiber/storage/redis because
// that one dials Redis itself, while the module is handed the host's
// client, and because a Storage that fails fails the limiter open: Fiber's
// limiter treats a Get error as an empty counter. This one falls back to
// counting in this process (Local) while Redis does not answer, so a
// limit still holds per process rather than not at all.
//
// A Redis that hangs (paused, or a network that drops packets) must not
// hold logins: Fiber's limiter makes its Storage calls under one lock,
// so one slow call delays every request behind it. Every call is
// therefore awaited for at most callTimeout, whatever the client's
// options: go-redis honours a context's deadline only when the client
// has ContextTimeoutEnabled, and the client is the host's. A call that
// fails or times out marks Redis down; while down, calls go to Local at
// once, and one probe a second, off the request path, finds when Redis
// answers again.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// callTimeout bounds each call to Redis, which is the most a request
	// waits on a Redis that hangs: the calls after it find Redis marked
	// down and do not wait.
	callTimeout = time.Second
	// probeEvery is how often Redis is tried while it is marked down.
	probeEvery = time.Second
	// localMax bounds the fallback's keys (see NewLocal).
	localMax = 100000
	// logEvery rate-limits the warnings: a Redis down for an hour is
	// worth a line a minute, not one per login.
	logEvery = time.Minute
)

// errDown is what a call returns, at once, while Redis is marked down.
var errDown = errors.New("redisstore: redis marked down")

// Storage implements fiber.Storage on a Redis client, every key under a
// prefix, with Incr and SetNX besides.
type Storage struct {
	client redis.UniversalClient
	prefix string
	logger *slog.Logger
	local  *Local

	down atomic.Bool
	// nextProbe is when Redis may next be tried while down (UnixNano).
	nextProbe atomic.Int64

	logMu   sync.Mutex
	lastLog time.Time
}

// New returns a Storage on client that puts prefix before every key. The
// client is the caller's and is not closed by Close.
func New(client redis.UniversalClient, prefix string, logger *slog.Logger) *Storage {
	return &Storage{client: client, prefix: prefix, logger: logger, local: NewLocal(localMax, time.Now)}
}

// Up reports whether Redis is in use: false while it is marked down and
// the counts are kept in this process.
func (s *Storage) Up() bool { return !s.down.Load() }

// Get returns key's value, nil when there is none.
func (s *Storage) Get(key string) ([]byte, error) {
	if key == "" {
		return nil, nil
	}
	var val []byte
	err := s.call(func(ctx context.Context) (err error) {
		val, err = s.client.Get(ctx, s.prefix+key).Bytes()
		return err
	})
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return s.local.Get(key)
	}
	return val, nil
}

// Set stores val under key for exp (0: without expiry).
func (s *Storage) Set(key string, val []byte, exp time.Duration) error {
	if key == "" || len(val) == 0 {
		return nil
	}
	// val may be the caller's buffer, reused once Set returns, while an
	// abandoned call may still be writing it.
	val = append([]byte(nil), val...)
	if s.call(func(ctx context.Context) error { return s.client.Set(ctx, s.prefix+key, val, exp).Err() }) != nil {
		return s.local.Set(key, val, exp)
	}
	return nil
}

// Delete removes key, from Redis and from the fallback.
func (s *Storage) Delete(key string) error {
	_ = s.local.Delete(key)
	if err := s.call(func(ctx context.Context) error { return s.client.Del(ctx, s.prefix+key).Err() }); err != nil && !errors.Is(err, errDown) {
		return err
	}
	return nil
}

// Incr adds delta to the integer under key (none counts as 0), keeps the
// sum for exp from now and returns it, as one step on Redis: parallel
// callers, on any process, each get a sum of their own.
func (s *Storage) Incr(key string, delta int64, exp time.Duration) (int64, error) {
	var incr *redis.IntCmd
	err := s.call(func(ctx context.Context) error {
		_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			incr = p.IncrBy(ctx, s.prefix+key, delta)
			p.PExpire(ctx, s.prefix+key, exp)
			return nil
		})
		return err
	})
	if err != nil {
		return s.local.Incr(key, delta, exp)
	}
	return incr.Val(), nil
}

// SetNX stores val under key for exp unless key holds a value, and
// reports whether it did; on Redis, one caller of any process wins.
func (s *Storage) SetNX(key string, val []byte, exp time.Duration) (bool, error) {
	val = append([]byte(nil), val...)
	var ok bool
	err := s.call(func(ctx context.Context) (err error) {
		ok, err = s.client.SetNX(ctx, s.prefix+key, val, exp).Result()
		return err
	})
	if err != nil {
		return s.local.SetNX(key, val, exp)
	}
	return ok, nil
}

// Reset removes every key under the prefix.
func (s *Storage) Reset() error {
	_ = s.local.Reset()
	return bounded(10*callTimeout, func(ctx context.Context) error {
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
	})
}

// Close releases nothing: the client is the caller's.
func (s *Storage) Close() error { return nil }

// call runs fn on Redis for at most callTimeout, unless Redis is marked
// down; a failure to reach Redis marks it down.
func (s *Storage) call(fn func(ctx context.Context) error) error {
	if s.down.Load() {
		s.probe()
		return errDown
	}
	err := bounded(callTimeout, fn)
	if unreachable(err) {
		s.markDown(err)
	}
	return err
}

// markDown sends calls to the fallback until a probe finds Redis again.
func (s *Storage) markDown(err error) {
	s.nextProbe.Store(time.Now().Add(probeEvery).UnixNano())
	if !s.down.Swap(true) {
		s.warn("rate limit storage: redis does not answer; counting in this process", err)
	}
}

// probe tries Redis, off the caller's path, if probeEvery has passed
// since the last try.
func (s *Storage) probe() {
	now := time.Now()
	next := s.nextProbe.Load()
	if now.UnixNano() < next || !s.nextProbe.CompareAndSwap(next, now.Add(probeEvery).UnixNano()) {
		return
	}
	go func() {
		if err := bounded(callTimeout, func(ctx context.Context) error { return s.client.Ping(ctx).Err() }); err != nil {
			return
		}
		if s.down.Swap(false) {
			s.logger.Info("rate limit storage: redis answers again; counting there")
		}
	}()
}

// bounded runs fn with a context of timeout and returns its error, or an
// error once timeout has passed if fn has not returned by then: a client
// without ContextTimeoutEnabled waits its own ReadTimeout (and retries)
// whatever the context says. An abandoned fn ends by itself, within the
// client's timeouts; until then it holds one goroutine and connection.
func bounded(timeout time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- fn(ctx)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("redis call: no answer within %v: %w", timeout, context.DeadlineExceeded)
	}
}

// unreachable tells a Redis that did not answer from one that answered
// with an error (or with nothing, redis.Nil).
func unreachable(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var rerr redis.Error
	return !errors.As(err, &rerr)
}

// warn logs a Redis error, at most once a logEvery.
func (s *Storage) warn(msg string, err error) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if now := time.Now(); now.Sub(s.lastLog) >= logEvery {
		s.lastLog = now
		s.logger.Warn(msg, "error", err.Error())
	}
}
