// Package notify is the wake-up seam between storing a message and the long
// polls waiting for it: the Send handler wakes, the Recv handler waits. It
// is a package of its own, with nothing of the
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
	"slices"
	"sync"
)

// Notifier wakes the long polls of a user when a message for them has been
// stored. Implementations must be safe for concurrent use.
//
// A wake-up is a callback rather than a channel so that a poll can wait
// without a goroutine of its own: a parked poll (see package park) is only
// a small struct until its callback starts the goroutine that answers it.
type Notifier interface {
	// Subscribe registers wake to be called after each Publish(uid) until
	// cancel is called (cancel is idempotent and must be called). Wake-ups
	// may coalesce and may be spurious, so the subscriber re-reads the
	// database after each one. A subscriber that subscribes before it
	// reads the database misses nothing: a Publish after the subscription
	// calls wake.
	//
	// wake runs on the publisher's goroutine, possibly while the
	// notifier's lock is held: it must return quickly, must not block and
	// must not call the Notifier. Once cancel has returned, wake is not
	// called again.
	Subscribe(uid int64, wake func()) (cancel func())
	// Publish wakes every subscriber of uid, in this process or (for a
	// shared implementation) in others. It must not block on slow
	// subscribers.
	Publish(ctx context.Context, uid int64) error
	// Close releases the notifier's resources. Publish then fails with
	// ErrClosed; a later Subscribe registers nothing.
	Close() error
}

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("notify: closed")

// SubscribeChan subscribes to uid's wake-ups through a channel, for a
// subscriber that waits on a goroutine of its own: the channel has room
// for one value and a wake-up finding it full is dropped, so a subscriber
// that has not yet read its last wake-up simply keeps it (one is as good
// as two). The channel is never closed.
func SubscribeChan(n Notifier, uid int64) (wake <-chan struct{}, cancel func()) {
	ch := make(chan struct{}, 1)
	return ch, n.Subscribe(uid, func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
}

// Local is the in-process Notifier: the callbacks of each uid under one
// mutex. Publish calls them with the mutex held, which is what makes
// "not called after cancel returns" hold.
type Local struct {
	mu sync.Mutex
	// subs holds a slice, not a set, per uid: a user has a few devices
	// polling, and with a poll parked for each of 10 000 users a map per
	// user would cost several times the subscription itself.
	subs   map[int64][]*subscription
	closed bool
}

// subscription is one Subscribe; a pointer, so that two subscriptions
// with the same callback stay two.
type subscription struct{ wake func() }

// NewLocal returns an in-process Notifier.
func NewLocal() *Local {
	return &Local{subs: make(map[int64][]*subscription)}
}

// Subscribe implements Notifier.
func (l *Local) Subscribe(uid int64, wake func()) func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return func() {}
	}
	sub := &subscription{wake: wake}
	l.subs[uid] = append(l.subs[uid], sub)
	var once sync.Once
	return func() { once.Do(func() { l.unsubscribe(uid, sub) }) }
}

func (l *Local) unsubscribe(uid int64, sub *subscription) {
	l.mu.Lock()
	defer l.mu.Unlock()
	subs := l.subs[uid]
	if i := slices.Index(subs, sub); i >= 0 {
		subs = slices.Delete(subs, i, i+1)
	}
	if len(subs) == 0 {
		// An entry per user ever seen would grow without bound.
		delete(l.subs, uid)
		return
	}
	l.subs[uid] = subs
}

// Publish implements Notifier.
func (l *Local) Publish(_ context.Context, uid int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	for _, sub := range l.subs[uid] {
		sub.wake()
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
