package redisstore

import (
	"strconv"
	"sync"
	"time"
)

// Local is the in-process store: what a Storage counts in while Redis
// does not answer, and what the login throttle counts in without Redis.
// Its methods are safe for concurrent use, and each is atomic.
type Local struct {
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[string]localEntry
}

type localEntry struct {
	val    []byte
	expire time.Time // zero: never
}

// NewLocal returns an empty Local that holds at most max keys and tells
// expiry by now. Past max, expired keys are swept, and if too few have
// expired a random eighth is forgotten: a flood of new keys costs the
// others some counts, never all of them at once.
func NewLocal(max int, now func() time.Time) *Local {
	return &Local{max: max, now: now, m: make(map[string]localEntry)}
}

// Get returns key's value, nil when there is none.
func (l *Local) Get(key string) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.get(key, l.now()), nil
}

// Set stores val under key for exp (0: without expiry).
func (l *Local) Set(key string, val []byte, exp time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.set(key, val, exp, l.now())
	return nil
}

// Delete removes key.
func (l *Local) Delete(key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
	return nil
}

// Reset removes every key.
func (l *Local) Reset() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.m)
	return nil
}

// Close releases nothing.
func (l *Local) Close() error { return nil }

// Incr adds delta to the integer under key (none, or not an integer,
// counts as 0), keeps the sum for exp from now and returns it.
func (l *Local) Incr(key string, delta int64, exp time.Duration) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	n, _ := strconv.ParseInt(string(l.get(key, now)), 10, 64)
	n += delta
	l.set(key, strconv.AppendInt(nil, n, 10), exp, now)
	return n, nil
}

// SetNX stores val under key for exp unless key holds a value, and
// reports whether it did.
func (l *Local) SetNX(key string, val []byte, exp time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.get(key, now) != nil {
		return false, nil
	}
	l.set(key, val, exp, now)
	return true, nil
}

func (l *Local) get(key string, now time.Time) []byte {
	e, ok := l.m[key]
	if !ok || (!e.expire.IsZero() && !now.Before(e.expire)) {
		return nil
	}
	return e.val
}

func (l *Local) set(key string, val []byte, exp time.Duration, now time.Time) {
	if _, ok := l.m[key]; !ok && len(l.m) >= l.max {
		for k, e := range l.m {
			if !e.expire.IsZero() && !now.Before(e.expire) {
				delete(l.m, k)
			}
		}
		if len(l.m) >= l.max {
			drop := max(l.max/8, 1)
			for k := range l.m { // in Go's random map order
				if drop == 0 {
					break
				}
				delete(l.m, k)
				drop--
			}
		}
	}
	e := localEntry{val: append([]byte(nil), val...)}
	if exp > 0 {
		e.expire = now.Add(exp)
	}
	l.m[key] = e
}
