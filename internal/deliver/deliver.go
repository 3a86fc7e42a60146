// Package deliver owns every waiter of a user: the Recv long polls and
// the /Message/Stream streams, held on their request's goroutine or parked
// (internal/park), in one registry by uid. It subscribes each user with
// waiters, once, to the user's wake-ups (notify.Notifier: the local one,
// or Redis's) and wakes the user's waiters; it keeps the caps on a user's
// waiters (per session and per user, each kind apart), queues the notices
// a stream carries besides messages, and tells a user's streams when some
// of the user's sessions ended.
//
// It is the one place that knows who waits for uid X: the handlers hand it
// their waiters and their notices; the drivers (held or parked) only run a
// waiter's checks when it is woken. Nothing here reads the database or
// writes to a connection.
package deliver

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/fiberchat/fiberchat/notify"
)

// Kind is what a waiter is: the caps and counts are kept per kind.
type Kind uint8

const (
	// Poll is a Recv long poll.
	Poll Kind = iota
	// Stream is a /Message/Stream response.
	Stream
	kinds
)

// Caps bound the waiters of one kind. Past a cap the oldest waiter is
// ended (its driver's stop runs): a client that opens waiters without
// closing them (a bug, or a page open in many tabs) costs at most this
// many.
type Caps struct {
	// PerSession caps the waiters of one session.
	PerSession int
	// PerUser caps them for all of a user's sessions together, so that
	// logging in again for fresh sessions does not lift the cap.
	PerUser int
}

// DefaultCaps are the caps of API.md §10, for polls and streams alike: 4
// per session, 16 per user.
var DefaultCaps = Caps{PerSession: 4, PerUser: 16}

// maxPendingNotices bounds the bytes of notices waiting for one waiter's
// next check; past it notices are dropped (they are best-effort anyway).
const maxPendingNotices = 64 << 10

// Config is what a Hub needs.
type Config struct {
	// Notifier wakes a user's waiters when a message for the user is
	// stored.
	Notifier notify.Notifier
	// Polls caps the long polls, Streams the streams.
	//
	// Optional. Default: DefaultCaps (a zero field takes its default).
	Polls, Streams Caps
	// MaxWaiters caps the waiters of the process, both kinds together:
	// each holds a connection, and the process's open files are bounded.
	// Past it Add refuses.
	//
	// Optional. Default: 0, no cap.
	MaxWaiters int
	// Changed, when set, is called after a user's first waiter was added
	// and after their last one left (presence, API.md §13). It runs
	// outside the Hub's locks, so two calls for a user may arrive in
	// either order: it asks Has which is true now.
	//
	// Optional. Default: nil.
	Changed func(uid int64)
}

// Hub is the registry of waiting polls and streams by uid. Its methods
// are safe for concurrent use.
//
// It holds one notifier subscription per user with waiters, not one per
// waiter: the notifier keeps who listens for uid X in the process, the
// Hub which of that user's waiters to wake.
type Hub struct {
	notifier notify.Notifier
	caps     [kinds]Caps
	max      int64
	changed  func(uid int64)

	// sub serializes subscribing and unsubscribing users. Those call the
	// notifier, which runs wake-ups under a lock of its own and they take
	// mu: so they run under sub, never under mu.
	sub sync.Mutex

	mu sync.Mutex
	// byUID holds each user with waiters.
	byUID map[int64]*user
	// open counts byUID's waiters per kind, for Len.
	open [kinds]atomic.Int64
}

// user is a user with waiters: them, of both kinds, oldest first, and
// the user's notifier subscription.
type user struct {
	waiters []*Waiter
	cancel  func()
}

// New returns an empty Hub.
func New(cfg Config) *Hub {
	h := &Hub{notifier: cfg.Notifier, byUID: make(map[int64]*user), max: int64(cfg.MaxWaiters), changed: cfg.Changed}
	h.caps[Poll], h.caps[Stream] = cfg.Polls, cfg.Streams
	for k := range h.caps {
		if h.caps[k].PerSession == 0 {
			h.caps[k].PerSession = DefaultCaps.PerSession
		}
		if h.caps[k].PerUser == 0 {
			h.caps[k].PerUser = DefaultCaps.PerUser
		}
	}
	return h
}

// Waiter is one waiting poll or stream of a session. Its driver wakes it
// (Wake: look again) and ends it early (Stop: past a cap).
type Waiter struct {
	hub          *Hub
	uid, tokenID int64
	kind         Kind
	wake, stop   func()
	// messages says a message may have arrived since the last read.
	messages atomic.Bool

	mu sync.Mutex
	// notices are framed events waiting for the next check; ended is the
	// reason some of the user's sessions ended, for the next check to
	// look at its own.
	notices []byte
	ended   string
}

// Add registers w as a waiter of the session (uid, tokenID), woken by
// uid's wake-ups: each calls wake, which must not block. w is a zero
// Waiter the caller owns (a field of its own state, say, to spare an
// allocation per waiter) and must not copy. Its first read must come
// after Add, so that nothing stored in between is missed. Past the caps
// the oldest waiters of the kind are ended: their stop runs, once,
// outside the Hub's locks. Call Remove once the waiter is answered or
// ended. When the process holds MaxWaiters already, Add registers
// nothing and returns false: the caller answers without waiting.
func (h *Hub) Add(w *Waiter, kind Kind, uid, tokenID int64, wake, stop func()) bool {
	*w = Waiter{hub: h, uid: uid, tokenID: tokenID, kind: kind, wake: wake, stop: stop}
	w.messages.Store(true) // the first check reads
	h.sub.Lock()
	h.mu.Lock()
	if h.max > 0 && h.open[Poll].Load()+h.open[Stream].Load() >= h.max {
		h.mu.Unlock()
		h.sub.Unlock()
		return false
	}
	u := h.byUID[uid]
	h.mu.Unlock()
	first := u == nil
	if first {
		// A wake-up before u is stored finds no waiter: there is none yet.
		u = &user{cancel: h.notifier.Subscribe(uid, func() { h.wakeUser(uid) })}
	}
	h.mu.Lock()
	h.byUID[uid] = u
	list, stopped := capped(append(u.waiters, w), w, h.caps[kind])
	h.set(u, list)
	h.mu.Unlock()
	h.sub.Unlock()
	for _, o := range stopped {
		o.stop()
	}
	if first && h.changed != nil {
		h.changed(uid)
	}
	return true
}

// Has reports whether uid has waiters in this process.
func (h *Hub) Has(uid int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byUID[uid] != nil
}

// wakeUser is a user's notifier callback: every waiter of the user may
// have a message.
func (h *Hub) wakeUser(uid int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u := h.byUID[uid]; u != nil {
		for _, w := range u.waiters {
			w.messageWake()
		}
	}
}

// capped returns list without the oldest waiters of w's kind past caps
// (first those of w's session past PerSession, then the user's past
// PerUser), and those. It does not change list.
func capped(list []*Waiter, w *Waiter, caps Caps) (kept, stopped []*Waiter) {
	kept = list
	for _, inSession := range []bool{true, false} {
		n, limit := 0, caps.PerUser
		if inSession {
			limit = caps.PerSession
		}
		mine := func(o *Waiter) bool { return o.kind == w.kind && (!inSession || o.tokenID == w.tokenID) }
		for _, o := range kept {
			if mine(o) {
				n++
			}
		}
		next := make([]*Waiter, 0, len(kept))
		for _, o := range kept {
			if n > limit && mine(o) {
				n--
				stopped = append(stopped, o)
				continue
			}
			next = append(next, o)
		}
		kept = next
	}
	return kept, stopped
}

// set makes list u's waiters. Every change to them goes through it, so
// that open counts what byUID holds whichever way a waiter left it. list
// must not share the array of u's current list.
func (h *Hub) set(u *user, list []*Waiter) {
	var delta [kinds]int64
	for _, w := range u.waiters {
		delta[w.kind]--
	}
	for _, w := range list {
		delta[w.kind]++
	}
	for k := range delta {
		h.open[k].Add(delta[k])
	}
	u.waiters = list
}

// Len reports how many waiters of kind are registered: added, and neither
// removed nor ended past a cap.
func (h *Hub) Len(kind Kind) int { return int(h.open[kind].Load()) }

// Remove forgets w, and ends its user's subscription when it was the
// user's last waiter. It is idempotent, and w may have been forgotten
// already (ended past a cap). Once it has returned, w is not woken by
// wake-ups or notices.
func (w *Waiter) Remove() {
	h := w.hub
	h.sub.Lock()
	h.mu.Lock()
	u := h.byUID[w.uid]
	var cancel func()
	if u != nil {
		if i := slices.Index(u.waiters, w); i >= 0 {
			h.set(u, append(u.waiters[:i:i], u.waiters[i+1:]...))
		}
		if len(u.waiters) == 0 {
			delete(h.byUID, w.uid)
			cancel = u.cancel
		}
	}
	h.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	h.sub.Unlock()
	if cancel != nil && h.changed != nil {
		h.changed(w.uid)
	}
}

// Wake calls the waiter's wake, as a wake-up would, without saying that a
// message arrived.
func (w *Waiter) Wake() { w.wake() }

// messageWake is the waiter's notifier callback.
func (w *Waiter) messageWake() {
	w.messages.Store(true)
	w.wake()
}

// Messages reports whether a message may have arrived since it was last
// called (true the first time), so that a check reads only then.
func (w *Waiter) Messages() bool { return w.messages.Swap(false) }

// More tells the waiter it has more to read than one check took: it is
// woken, and its next Messages is true.
func (w *Waiter) More() { w.messageWake() }

// Take returns the notices queued for w since the last Take, and the
// reason given when some of its user's sessions ended, "" if none did.
func (w *Waiter) Take() (notices []byte, ended string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	notices, ended = w.notices, w.ended
	w.notices, w.ended = nil, ""
	return notices, ended
}

// Notice queues frame, one framed event, for uid's streams, and wakes
// them. It does not block; a stream with maxPendingNotices queued drops
// it. Notices are best-effort live news, not a log: one reaches the
// streams open when it happens, in this process, and is not replayed to
// a stream that opens (or reconnects) later.
func (h *Hub) Notice(uid int64, frame []byte) {
	h.each(uid, false, func(w *Waiter) {
		if len(w.notices)+len(frame) <= maxPendingNotices {
			w.notices = append(w.notices, frame...)
		}
	})
}

// SessionsEnded tells uid's streams and long polls that some of uid's
// sessions ended, with reason: each checks its own session at once.
func (h *Hub) SessionsEnded(uid int64, reason string) {
	h.each(uid, true, func(w *Waiter) { w.ended = reason })
}

// each runs f on each of uid's streams (and long polls too, with polls)
// under its lock, then wakes it.
func (h *Hub) each(uid int64, polls bool, f func(w *Waiter)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.byUID[uid]
	if u == nil {
		return
	}
	for _, w := range u.waiters {
		if w.kind != Stream && !polls {
			continue
		}
		w.mu.Lock()
		f(w)
		w.mu.Unlock()
		w.wake()
	}
}
