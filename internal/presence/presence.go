// Package presence decides when a user comes online and goes offline
// (API.md §13): online when their first stream or long poll opens on any
// instance, offline once their last one everywhere has been gone for a
// grace, so that a reload or the gap between two long polls is not a
// flap.
//
// The waiters themselves are deliver.Hub's; it calls Changed when a
// user's first waiter opens or last one leaves in this process. A
// Tracker keeps the users this process holds online (those with waiters,
// and those within their grace) and, with Redis, shares them with the
// other instances: one sorted set per user whose members are the
// instances holding the user, each scored with when its entry expires.
// An instance refreshes its entries while it holds them, so the entries
// of an instance that died expire by themselves (without anyone being
// told the user went offline: a contact's next /Contacts/list shows it).
// The first instance to hold a user announces "online", the last to let
// go "offline"; two instances racing may both announce, which says the
// same thing twice.
package presence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultGrace is how long a user stays online after their last waiter
// ended: API.md §13's 10 s.
const DefaultGrace = 10 * time.Second

// DefaultEntryTTL is how long an instance's entry for a user lives in
// Redis unless refreshed (every third of it): how long the users of an
// instance that died without closing still show online.
const DefaultEntryTTL = 30 * time.Second

// Config is what a Tracker needs.
type Config struct {
	// Has reports whether the user has waiters in this process
	// (deliver.Hub.Has).
	Has func(uid int64) bool
	// Announce tells the user's contacts that they came online or went
	// offline. It runs on the Tracker's one goroutine, in order.
	Announce func(ctx context.Context, uid int64, online bool)
	// Grace is how long a user stays online after their last waiter.
	//
	// Optional. Default: DefaultGrace.
	Grace time.Duration
	// Redis, when set, shares who is online with the other instances.
	//
	// Optional. Default: nil, this process alone.
	Redis redis.UniversalClient
	// Prefix starts the Redis keys ("<Prefix>presence:<uid>").
	Prefix string
	// EntryTTL is how long this instance's entries live in Redis unless
	// refreshed.
	//
	// Optional. Default: DefaultEntryTTL.
	EntryTTL time.Duration
	// Timeout bounds each Redis call.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Tracker follows the users with waiters in this process. Its methods are
// safe for concurrent use.
type Tracker struct {
	cfg      Config
	instance string

	mu sync.Mutex
	// held are the users this process holds online: with waiters, or
	// within their grace (timer set).
	held  map[int64]*entry
	queue []op
	kick  chan struct{}
	stop  chan struct{}
	done  sync.WaitGroup
}

type entry struct {
	timer *time.Timer
	gen   int
}

// op is one transition for the worker: uid joined (this process holds
// them now) or left.
type op struct {
	uid  int64
	join bool
}

// New starts a Tracker; Close stops it.
func New(cfg Config) *Tracker {
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.EntryTTL <= 0 {
		cfg.EntryTTL = DefaultEntryTTL
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	t := &Tracker{cfg: cfg, instance: hex.EncodeToString(b[:]), held: map[int64]*entry{},
		kick: make(chan struct{}, 1), stop: make(chan struct{})}
	t.done.Add(1)
	go t.work()
	if cfg.Redis != nil {
		t.done.Add(1)
		go t.refresh()
	}
	return t
}

// Changed is deliver.Config.Changed: uid's first waiter opened or last
// one left in this process.
func (t *Tracker) Changed(uid int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.held[uid]
	switch {
	case t.cfg.Has(uid) && e == nil:
		t.held[uid] = &entry{}
		t.push(op{uid: uid, join: true})
	case t.cfg.Has(uid):
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
			e.gen++
		}
	case e != nil && e.timer == nil:
		gen := e.gen
		e.timer = time.AfterFunc(t.cfg.Grace, func() { t.expire(uid, e, gen) })
	}
}

// expire ends uid's grace, unless a waiter came back meanwhile.
func (t *Tracker) expire(uid int64, e *entry, gen int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held[uid] != e || e.gen != gen {
		return
	}
	if t.cfg.Has(uid) {
		e.timer = nil
		e.gen++
		return
	}
	delete(t.held, uid)
	t.push(op{uid: uid})
}

// push queues o for the worker; under mu.
func (t *Tracker) push(o op) {
	t.queue = append(t.queue, o)
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// work runs the transitions in order: one user's join and leave must not
// pass each other in Redis.
func (t *Tracker) work() {
	defer t.done.Done()
	for {
		select {
		case <-t.stop:
			return
		case <-t.kick:
		}
		t.mu.Lock()
		ops := t.queue
		t.queue = nil
		t.mu.Unlock()
		for _, o := range ops {
			t.apply(o)
		}
	}
}

// apply records one transition and announces it when this process is the
// first to hold the user, or the last to let go.
func (t *Tracker) apply(o op) {
	tell := true
	if t.cfg.Redis != nil {
		var err error
		if tell, err = t.shareBounded(o); err != nil {
			// Announce anyway: a duplicate says nothing new, a miss
			// would leave contacts wrong.
			t.cfg.Logger.Warn("presence: redis", "error", err.Error())
			tell = true
		}
	}
	if tell {
		// Announce's calls have deadlines of their own (the store's).
		t.cfg.Announce(context.Background(), o.uid, o.join)
	}
}

// shareBounded is share, waiting Timeout at most.
func (t *Tracker) shareBounded(o op) (bool, error) {
	// a is read only once fn has returned: a share still running after
	// the wait writes it unread.
	var a bool
	err := t.bounded(context.Background(), func(ctx context.Context) error {
		var err error
		a, err = t.share(ctx, o)
		return err
	})
	if err != nil {
		return false, err
	}
	return a, nil
}

// share adds or removes this instance's entry for o.uid and reports
// whether no other instance holds the user.
func (t *Tracker) share(ctx context.Context, o op) (alone bool, err error) {
	key := t.key(o.uid)
	now := time.Now()
	var card *redis.IntCmd
	_, err = t.cfg.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, key, t.instance)
		p.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now.UnixMilli(), 10))
		card = p.ZCard(ctx, key)
		if o.join {
			p.ZAdd(ctx, key, redis.Z{Score: float64(now.Add(t.cfg.EntryTTL).UnixMilli()), Member: t.instance})
			p.PExpire(ctx, key, t.cfg.EntryTTL)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return card.Val() == 0, nil
}

// refresh keeps this instance's entries alive while it holds their
// users.
func (t *Tracker) refresh() {
	defer t.done.Done()
	tick := time.NewTicker(t.cfg.EntryTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		uids := make([]int64, 0, len(t.held))
		for uid := range t.held {
			uids = append(uids, uid)
		}
		t.mu.Unlock()
		if len(uids) > 0 {
			t.refreshEntries(uids)
		}
	}
}

func (t *Tracker) refreshEntries(uids []int64) {
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout())
	defer cancel()
	score := float64(time.Now().Add(t.cfg.EntryTTL).UnixMilli())
	_, err := t.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, uid := range uids {
			p.ZAdd(ctx, t.key(uid), redis.Z{Score: score, Member: t.instance})
			p.PExpire(ctx, t.key(uid), t.cfg.EntryTTL)
		}
		return nil
	})
	if err != nil {
		t.cfg.Logger.Warn("presence: refresh", "error", err.Error())
	}
}

// Online reports which of uids are online: held by this process, or with
// Redis by any instance whose entry has not expired. Without an answer
// from Redis it says what this process knows.
func (t *Tracker) Online(ctx context.Context, uids []int64) map[int64]bool {
	out := make(map[int64]bool, len(uids))
	t.mu.Lock()
	for _, uid := range uids {
		if t.held[uid] != nil {
			out[uid] = true
		}
	}
	t.mu.Unlock()
	if t.cfg.Redis == nil || len(uids) == 0 {
		return out
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	cmds := make([]*redis.IntCmd, len(uids))
	err := t.bounded(ctx, func(ctx context.Context) error {
		_, err := t.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, uid := range uids {
				cmds[i] = p.ZCount(ctx, t.key(uid), "("+now, "+inf")
			}
			return nil
		})
		return err
	})
	if err != nil {
		t.cfg.Logger.Warn("presence: read", "error", err.Error())
		return out
	}
	for i, uid := range uids {
		if cmds[i].Val() > 0 {
			out[uid] = true
		}
	}
	return out
}

// bounded runs fn with a context of Timeout and stops waiting for it
// then, whether or not the client honours the context (a client without
// ContextTimeoutEnabled waits its own ReadTimeout): a request waits for
// Redis no longer than Timeout (module.Config.Redis).
func (t *Tracker) bounded(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout())
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- fn(ctx)
	}()
	timer := time.NewTimer(t.timeout())
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("presence: no answer from redis within %v: %w", t.timeout(), context.DeadlineExceeded)
	}
}

func (t *Tracker) key(uid int64) string {
	return t.cfg.Prefix + "presence:" + strconv.FormatInt(uid, 10)
}

func (t *Tracker) timeout() time.Duration {
	if t.cfg.Timeout > 0 {
		return t.cfg.Timeout
	}
	return 5 * time.Second
}

// Close stops the Tracker's goroutines and its graces; transitions not
// yet applied are dropped, and this instance's entries expire in Redis
// by themselves.
func (t *Tracker) Close() {
	t.mu.Lock()
	for _, e := range t.held {
		if e.timer != nil {
			e.timer.Stop()
		}
		e.gen++
	}
	t.mu.Unlock()
	close(t.stop)
	t.done.Wait()
}
