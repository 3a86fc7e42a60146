// Package redisbus is one Redis pub/sub channel that the instances of a
// fiberchat site tell each other short notes on: "something arrived for
// uid 7" (package notify), "user 7's sessions changed" (the module's
// caches). Each Bus holds one subscription, whatever the number of long
// polls or cache entries behind it, and batches what it publishes.
//
// It is hand-written over go-redis's PubSub rather than on its Channel()
// because the instances must know when the subscription is down, to fall
// back to the database and to shorten their caches, and Channel() hides
// that: it reconnects silently, and notes published meanwhile are lost.
// Receive does the same reconnecting but hands each error back, so a Bus
// can report its state.
//
// Notes are fire-and-forget, as Redis pub/sub is: nothing here may be the
// only copy of anything. The database stays the one source of truth, and
// a note only says "look again".
package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config configures a Bus.
type Config struct {
	// Client reaches Redis. Required. The Bus does not close it.
	Client redis.UniversalClient
	// Channel is the pub/sub channel. Required.
	Channel string
	// Handle is called with each note another instance published (never
	// this one's own), on the Bus's receiving goroutine, so it must be
	// quick. Optional.
	Handle func(note string)
	// State is called when the subscription comes up or goes down, on the
	// receiving goroutine. Optional.
	State func(up bool)
	// Logger receives publish and subscription errors, at most one line
	// a LogEvery. Required.
	Logger *slog.Logger
	// Now is the clock of Healthy. Default: time.Now.
	Now func() time.Time
	// Sharded makes Channel a sharded channel (SPUBLISH, SSUBSCRIBE;
	// Redis 7). In a Redis Cluster a sharded channel lives on the node
	// that owns its slot: a note travels to that node and its
	// subscribers only, where a PUBLISH is copied to every node.
	Sharded bool
	// Lazy starts the Bus without a subscription: it publishes at once
	// but subscribes only after Want(true), and unsubscribes after
	// Want(false), so a process hears a channel only while it needs to.
	Lazy bool
}

const (
	// maxBatch bounds the notes of one PUBLISH, so a payload stays small.
	maxBatch = 512
	// callTimeout bounds each call to Redis: a Redis that hangs must not
	// hold a Send or the receiving loop.
	callTimeout = 2 * time.Second
	// closeTimeout bounds Close: the flush's callTimeout, then a
	// receive's pingEvery, with room to spare.
	closeTimeout = callTimeout + 2*pingEvery
	// pingEvery is how long the subscription may be silent before it is
	// pinged; a ping unanswered for as long again means the connection
	// is dead even if the socket has not said so.
	pingEvery = time.Second
	// LogEvery rate-limits the Bus's error logs: a Redis that is down for
	// an hour is worth a line a minute, not one per Send.
	LogEvery = time.Minute
)

// Bus is one instance's end of a channel. Its methods are safe for
// concurrent use.
type Bus struct {
	cfg Config
	// id tells this instance's own notes apart when they come back.
	id string

	mu      sync.Mutex
	pending []string
	queued  map[string]struct{}
	closed  bool
	kick    chan struct{}

	up atomic.Bool
	// wanted says whether the Bus should hold its subscription (always,
	// unless Config.Lazy); wantKick wakes the receiving goroutine when
	// it changes.
	wanted   atomic.Bool
	wantKick chan struct{}
	// healthy is when the subscription last showed it works (UnixNano).
	healthy atomic.Int64

	logMu   sync.Mutex
	lastLog time.Time
	quiet   int

	// ps is the subscription, under psMu so that Close can close it under
	// a read in progress.
	psMu sync.Mutex
	ps   *redis.PubSub

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New subscribes to cfg.Channel and starts the Bus's two goroutines, one
// receiving and one publishing, which run until Close.
func New(cfg Config) (*Bus, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("redisbus: Config.Client is required")
	case cfg.Channel == "":
		return nil, errors.New("redisbus: Config.Channel is required")
	case cfg.Logger == nil:
		return nil, errors.New("redisbus: Config.Logger is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bus{cfg: cfg, id: hex.EncodeToString(id[:]), queued: make(map[string]struct{}), kick: make(chan struct{}, 1), wantKick: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
	b.healthy.Store(cfg.Now().UnixNano())
	b.wanted.Store(!cfg.Lazy)
	b.wg.Add(2)
	go b.receive()
	go b.publish()
	return b, nil
}

// Up reports whether the subscription is working: notes from other
// instances arrive.
func (b *Bus) Up() bool { return b.up.Load() }

// Want subscribes a Lazy Bus (true) or ends its subscription (false).
// Healthy restarts at the call that subscribes: notes published before
// it were not wanted, and only those published between it and the
// subscription's confirmation may be missed.
func (b *Bus) Want(want bool) {
	if b.wanted.Swap(want) == want {
		return
	}
	if want {
		b.healthy.Store(b.cfg.Now().UnixNano())
	} else {
		// Ends the read in progress; the receiving goroutine then waits.
		b.closeSubscription()
	}
	select {
	case b.wantKick <- struct{}{}:
	default:
	}
}

// Wanted reports the last Want (true for a Bus that is not Lazy).
func (b *Bus) Wanted() bool { return b.wanted.Load() }

func (b *Bus) closeSubscription() {
	b.psMu.Lock()
	defer b.psMu.Unlock()
	if b.ps != nil {
		_ = b.ps.Close()
		b.ps = nil
	}
}

// Healthy reports when the subscription last showed it worked (a note, a
// pong, a confirmation), or when the Bus started if it never has. Notes
// published since then may have been missed while it is down.
func (b *Bus) Healthy() time.Time { return time.Unix(0, b.healthy.Load()) }

// Publish queues note for the other instances and returns at once. Notes
// queued while a PUBLISH is on its way go together in the next one, so a
// burst of notes costs a few round trips, not one each; a note already
// queued is not queued twice. Errors are logged, not returned: a lost note
// delays, and the caller's fallback covers it.
func (b *Bus) Publish(note string) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	if _, ok := b.queued[note]; !ok {
		b.queued[note] = struct{}{}
		b.pending = append(b.pending, note)
	}
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Close sends the notes still queued (for at most callTimeout: a short-
// lived process, such as a command that disables a client, publishes and
// exits at once), then stops the Bus and closes its subscription. It
// returns within closeTimeout even if Redis hangs: go-redis honours a
// context's deadline only with ContextTimeoutEnabled, and the client is
// the host's, so a call may outlast its context; such a call is left to
// end by the client's own timeouts, or when the host closes the client.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.flush()
		b.cancel()
		b.psMu.Lock()
		if b.ps != nil {
			_ = b.ps.Close()
		}
		b.psMu.Unlock()
		b.wg.Wait()
	}()
	timer := time.NewTimer(closeTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		b.cancel()
		b.cfg.Logger.Warn("redis bus closed with a call to Redis unanswered; it ends with the client's timeouts", "channel", b.cfg.Channel)
	}
	return nil
}

// flush sends what is queued, for at most callTimeout.
func (b *Bus) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	for notes := b.take(); len(notes) > 0 && ctx.Err() == nil; notes = b.take() {
		if err := b.send(ctx, notes); err != nil {
			b.logf("redis publish failed; other instances fall back to the database", err)
		}
	}
}

// subscribe makes a new subscription, closing the one before; nil once
// the Bus is closing.
func (b *Bus) subscribe() *redis.PubSub {
	b.psMu.Lock()
	defer b.psMu.Unlock()
	if b.ps != nil {
		_ = b.ps.Close()
		b.ps = nil
	}
	if b.ctx.Err() != nil || !b.wanted.Load() {
		return nil
	}
	if b.cfg.Sharded {
		b.ps = b.cfg.Client.SSubscribe(b.ctx, b.cfg.Channel)
	} else {
		b.ps = b.cfg.Client.Subscribe(b.ctx, b.cfg.Channel)
	}
	return b.ps
}

func (b *Bus) send(ctx context.Context, notes []string) error {
	payload := b.id + "\n" + strings.Join(notes, "\n")
	if b.cfg.Sharded {
		return b.cfg.Client.SPublish(ctx, b.cfg.Channel, payload).Err()
	}
	return b.cfg.Client.Publish(ctx, b.cfg.Channel, payload).Err()
}

// publish sends the queued notes until Close, one PUBLISH at a time: the
// notes queued during one round trip make the next.
func (b *Bus) publish() {
	defer b.wg.Done()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.kick:
		}
		for {
			notes := b.take()
			if len(notes) == 0 {
				break
			}
			ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
			err := b.send(ctx, notes)
			cancel()
			if err != nil && b.ctx.Err() == nil {
				b.logf("redis publish failed; other instances fall back to the database", err)
			}
		}
	}
}

// take removes up to maxBatch queued notes.
func (b *Bus) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.pending), maxBatch)
	notes := b.pending[:n:n]
	b.pending = b.pending[n:]
	for _, note := range notes {
		delete(b.queued, note)
	}
	if len(b.pending) == 0 {
		b.pending = nil
	}
	return notes
}

// receive holds the subscription, while it is wanted, until Close.
func (b *Bus) receive() {
	defer b.wg.Done()
	for b.awaitWanted() {
		b.session()
	}
}

// awaitWanted waits until the subscription is wanted; false once the Bus
// is closing.
func (b *Bus) awaitWanted() bool {
	for !b.wanted.Load() {
		select {
		case <-b.ctx.Done():
			return false
		case <-b.wantKick:
		}
	}
	return b.ctx.Err() == nil
}

// session reads a subscription until Close or Want(false). go-redis
// reconnects and resubscribes on the next read after an error; between
// tries it waits, up to a second.
func (b *Bus) session() {
	ps := b.subscribe()
	if ps == nil {
		return
	}
	backoff := 50 * time.Millisecond
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(b.ctx, pingEvery)
		if b.ctx.Err() != nil {
			return
		}
		if !b.wanted.Load() {
			// Not a failure: nobody here needs the channel for now.
			b.up.Store(false)
			return
		}
		if err != nil {
			if !b.current(ps) {
				// Want(false) closed it, and Want(true) came before this
				// read returned: start a new one.
				if ps = b.subscribe(); ps == nil {
					return
				}
				continue
			}
			if isTimeout(err) {
				if !pinged {
					// Silence is normal; a ping tells it from a dead link.
					pinged = true
					if err = b.ping(ps); err == nil {
						continue
					}
				} else {
					// The ping went unanswered: start over on a new link,
					// down first, since making it may itself wait on the
					// hung Redis for as long as the client lets it.
					b.setUp(false, err)
					if ps = b.subscribe(); ps == nil {
						return
					}
				}
			}
			pinged = false
			b.setUp(false, err)
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		pinged, backoff = false, 50*time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			switch m.Kind {
			case "subscribe", "ssubscribe":
				b.setUp(true, nil)
			case "sunsubscribe":
				// The cluster moved the channel's slot to another node (a
				// failover, a resharding) and said so: follow it there.
				b.setUp(false, errSlotMoved)
				if ps = b.subscribe(); ps == nil {
					return
				}
			}
		case *redis.Pong:
			b.setUp(true, nil)
		case *redis.Message:
			b.setUp(true, nil)
			b.handle(m.Payload)
		}
	}
}

// errSlotMoved is why a sharded subscription the cluster ended is down
// until it is made again.
var errSlotMoved = errors.New("redis cluster ended the sharded subscription (slot moved)")

// current reports whether ps is still the Bus's subscription.
func (b *Bus) current(ps *redis.PubSub) bool {
	b.psMu.Lock()
	defer b.psMu.Unlock()
	return b.ps == ps
}

func (b *Bus) ping(ps *redis.PubSub) error {
	ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
	defer cancel()
	return ps.Ping(ctx)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (b *Bus) handle(payload string) {
	from, notes, _ := strings.Cut(payload, "\n")
	if from == b.id || b.cfg.Handle == nil {
		return
	}
	for note := range strings.SplitSeq(notes, "\n") {
		if note != "" {
			b.cfg.Handle(note)
		}
	}
}

func (b *Bus) setUp(up bool, err error) {
	if up {
		b.healthy.Store(b.cfg.Now().UnixNano())
	}
	if b.up.Swap(up) == up {
		return
	}
	if up {
		b.cfg.Logger.Info("redis subscription up", "channel", b.cfg.Channel)
	} else {
		b.cfg.Logger.Warn("redis subscription down", "channel", b.cfg.Channel, "error", err.Error())
	}
	if b.cfg.State != nil {
		b.cfg.State(up)
	}
}

// logf logs err at most once a LogEvery, with how many were left out.
func (b *Bus) logf(msg string, err error) {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	now := time.Now()
	if now.Sub(b.lastLog) < LogEvery {
		b.quiet++
		return
	}
	b.cfg.Logger.Warn(msg, "channel", b.cfg.Channel, "error", err.Error(), "unlogged", b.quiet)
	b.lastLog, b.quiet = now, 0
}
