// Package notify is the wake-up seam between storing a message and the long
// polls waiting for it. It is a package of its own, with nothing of the
// module's in it, so that the wake-up can cross processes later: the
// in-process Local serves one server; a host running several servers plugs
// in an implementation over Redis pub/sub (or the like) through
// module.Config.Notifier, and neither the handlers nor the store change.
//
// A wake-up carries no data. It only says "something may have arrived for
// this uid; look again", and the database stays the one source of truth, so
// a lost, doubled or spurious wake-up can delay a message but never lose or
// duplicate one.
package notify

import (
	"context"
	"errors"
	"sync"
)

// Notifier wakes the long polls of a user when a message for them has been
// stored. Implementations must be safe for concurrent use.
type Notifier interface {
	// Subscribe registers interest in uid's messages until cancel is called
	// (cancel is idempotent and must be called). wake receives a value
	// after Publish(uid); it is never closed. Wake-ups coalesce and may be
	// spurious, so a receiver re-reads the database after each one. A
	// subscriber that subscribes before it reads the database misses
	// nothing: a Publish after the subscription is remembered in wake.
	Subscribe(uid int64) (wake <-chan struct{}, cancel func())
	// Publish wakes every subscriber of uid, in this process or (for a
	// shared implementation) in others. It must not block on slow
	// subscribers.
	Publish(ctx context.Context, uid int64) error
	// Close releases the notifier's resources. Publish then fails with
	// ErrClosed; a later Subscribe gets a channel that never fires.
	Close() error
}

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("notify: closed")

// Local is the in-process Notifier: a set of channels per uid under one
// mutex. Each channel has room for one value and Publish never blocks, so a
// subscriber that has not yet read its last wake-up simply keeps it.
type Local struct {
	mu     sync.Mutex
	subs   map[int64]map[chan struct{}]struct{}
	closed bool
}

// NewLocal returns an in-process Notifier.
func NewLocal() *Local {
	return &Local{subs: make(map[int64]map[chan struct{}]struct{})}
}

// Subscribe implements Notifier.
func (l *Local) Subscribe(uid int64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ch, func() {}
	}
	set := l.subs[uid]
	if set == nil {
		set = make(map[chan struct{}]struct{})
		l.subs[uid] = set
	}
	set[ch] = struct{}{}
	var once sync.Once
	return ch, func() { once.Do(func() { l.unsubscribe(uid, ch) }) }
}

func (l *Local) unsubscribe(uid int64, ch chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.subs[uid]
	delete(set, ch)
	if len(set) == 0 {
		// An empty set per user ever seen would grow without bound.
		delete(l.subs, uid)
	}
}

// Publish implements Notifier.
func (l *Local) Publish(_ context.Context, uid int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	for ch := range l.subs[uid] {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is pending already; one is as good as two
		}
	}
	return nil
}

// Close implements Notifier. Subscribers are dropped without a wake-up:
// whoever closes the notifier also tells its waiters to stop (the module
// does so through its own closing signal).
func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	clear(l.subs)
	return nil
}

// subscribers reports how many subscriptions uid has, for tests.
func (l *Local) subscribers(uid int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subs[uid])
}
