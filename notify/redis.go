package notify

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/fiberchat/fiberchat/internal/redisbus"
	"github.com/redis/go-redis/v9"
)

// Redis is the Notifier for several processes serving one database: a
// Publish wakes this process's subscribers at once, as Local does, and
// tells the other processes over one Redis pub/sub channel, on which each
// process holds a single subscription and wakes its own subscribers
// through a Local. Publishes are batched: the uids published while one
// PUBLISH is on its way go together in the next, so a burst of Sends is a
// few round trips, not one each.
//
// Redis is not trusted with anything: a Publish never fails because Redis
// does (the error is logged, at most once a minute), and while the
// subscription is down the process asks the database instead, through
// RedisConfig.Missed, once per FallbackInterval for all its subscribers
// together, until the subscription is back; go-redis reconnects by itself.
type Redis struct {
	cfg   RedisConfig
	local *Local
	// bus is the one channel, or nil when wake-ups are sharded over
	// shards (RedisConfig.Shards).
	bus    *redisbus.Bus
	shards []*shard

	mu     sync.Mutex
	closed bool
	// subscribed is the earliest time a shard was subscribed to since the
	// fallback last looked (zero: none): wake-ups published from then
	// until Redis confirmed the subscription may have been missed, however
	// quickly it did.
	subscribed time.Time
	// state is kicked when the subscription goes up or down, so the
	// fallback starts or ends without waiting for its next tick.
	state  chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// MissedFunc tells which users may have been sent something while the
// subscription was down. cursor is 0 on the first call of an outage,
// which must cover everything stored since since; later calls pass the
// next it returned, and cover what was stored after that. Package
// models' Store.WakeScan is one.
type MissedFunc func(ctx context.Context, since time.Time, cursor int64) (uids []int64, next int64, err error)

// RedisConfig configures a Redis notifier.
type RedisConfig struct {
	// Client reaches Redis: a single node, Sentinel or Cluster. Required.
	// The notifier does not close it.
	Client redis.UniversalClient
	// Channel is the pub/sub channel the processes share. Optional.
	// Default: "fiberchat:wake".
	Channel string
	// Missed is asked while the subscription is down; without it, polls
	// on this process wait for their timeout until Redis is back.
	// Optional.
	Missed MissedFunc
	// FallbackInterval is how often Missed is asked. Optional. Default:
	// 1 second.
	FallbackInterval time.Duration
	// Logger receives Redis errors. Optional. Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock messages are stamped with, for Missed's since.
	// Optional. Default: time.Now.
	Now func() time.Time
	// Shards, above 0, spreads wake-ups over that many sharded channels
	// (SPUBLISH and SSUBSCRIBE, Redis 7): uid n's go to Channel + ":" +
	// (n mod Shards), and a process subscribes only to the shards its
	// subscribers' uids fall in, while it has one there and ShardLinger
	// after. In a Redis Cluster each shard lives on the node owning its
	// slot, so a wake-up costs that node and the processes waiting on
	// it, where one channel costs every node and every process. Every
	// process of a site must use the same Channel and Shards. Optional.
	// Default: 0, one channel that every process hears.
	Shards int
	// ShardLinger is how long a shard stays subscribed after its last
	// subscriber left: long polls end and start again every few seconds,
	// and each new subscription costs a database check. Optional.
	// Default: 30 seconds.
	ShardLinger time.Duration
}

// shard is one sharded channel of a Redis notifier.
type shard struct {
	bus *redisbus.Bus
	// mu orders the shard's subscriptions with its release, so that a
	// shard is never unsubscribed under a subscriber.
	mu   sync.Mutex
	refs int
	idle time.Time // when refs last fell to 0
}

// fallbackMargin widens the first database check of an outage: a message
// stamped a little before the subscription last showed it worked, on
// another process's clock, may still have been missed.
const fallbackMargin = 2 * time.Second

// missedTimeout bounds one database check.
const missedTimeout = 5 * time.Second

// NewRedis subscribes to cfg.Channel and starts the notifier's
// goroutines, which run until Close.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Client == nil {
		return nil, errors.New("notify: RedisConfig.Client is required")
	}
	if cfg.Channel == "" {
		cfg.Channel = "fiberchat:wake"
	}
	if cfg.FallbackInterval <= 0 {
		cfg.FallbackInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ShardLinger <= 0 {
		cfg.ShardLinger = 30 * time.Second
	}
	r := &Redis{cfg: cfg, local: NewLocal(), state: make(chan struct{}, 1)}
	if err := r.newBuses(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(1)
	go r.fallback(ctx)
	return r, nil
}

// newBuses makes the one channel's Bus, or a lazy Bus per shard.
func (r *Redis) newBuses() error {
	bus := func(channel string, sharded bool) (*redisbus.Bus, error) {
		return redisbus.New(redisbus.Config{
			Client:  r.cfg.Client,
			Channel: channel,
			Handle:  r.received,
			State:   func(bool) { r.kick() },
			Logger:  r.cfg.Logger,
			Now:     r.cfg.Now,
			Sharded: sharded,
			Lazy:    sharded,
		})
	}
	if r.cfg.Shards <= 0 {
		b, err := bus(r.cfg.Channel, false)
		r.bus = b
		return err
	}
	for i := range r.cfg.Shards {
		b, err := bus(r.cfg.Channel+":"+strconv.Itoa(i), true)
		if err != nil {
			for _, sh := range r.shards {
				_ = sh.bus.Close()
			}
			return err
		}
		r.shards = append(r.shards, &shard{bus: b})
	}
	return nil
}

// kick wakes the fallback loop to look at the subscriptions' state.
func (r *Redis) kick() {
	select {
	case r.state <- struct{}{}:
	default:
	}
}

func (r *Redis) shardOf(uid int64) *shard {
	n := uid % int64(len(r.shards))
	if n < 0 {
		n = -n
	}
	return r.shards[n]
}

// Subscribe implements Notifier. With shards, the first subscriber of a
// shard subscribes this process to it; until Redis confirms that, the
// database check covers the shard (see fallback), so a Publish after
// Subscribe still wakes.
func (r *Redis) Subscribe(uid int64, wake func()) func() {
	cancel := r.local.Subscribe(uid, wake)
	if r.shards == nil {
		return cancel
	}
	sh := r.shardOf(uid)
	sh.mu.Lock()
	sh.refs++
	subscribing := !sh.bus.Wanted()
	if subscribing {
		sh.bus.Want(true)
	}
	sh.mu.Unlock()
	if subscribing {
		r.mu.Lock()
		if now := r.cfg.Now(); r.subscribed.IsZero() || now.Before(r.subscribed) {
			r.subscribed = now
		}
		r.mu.Unlock()
		r.kick()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			sh.mu.Lock()
			if sh.refs--; sh.refs == 0 {
				sh.idle = r.cfg.Now()
			}
			sh.mu.Unlock()
		})
	}
}

// Publish implements Notifier: it wakes this process's subscribers of uid
// before it returns, and queues the wake-up for the others. It fails only
// after Close.
func (r *Redis) Publish(ctx context.Context, uid int64) error {
	if err := r.local.Publish(ctx, uid); err != nil {
		return err
	}
	note := strconv.FormatInt(uid, 10)
	if r.shards != nil {
		r.shardOf(uid).bus.Publish(note)
	} else {
		r.bus.Publish(note)
	}
	return nil
}

// Up reports whether the subscriptions work, so that wake-ups from other
// processes arrive (rather than through the database check): the one
// channel's, or those of the shards this process needs.
func (r *Redis) Up() bool {
	if r.shards == nil {
		return r.bus.Up()
	}
	for _, sh := range r.shards {
		if sh.bus.Wanted() && !sh.bus.Up() {
			return false
		}
	}
	return true
}

// healthy is since when wake-ups may have been missed, while Up is false.
func (r *Redis) healthy() time.Time {
	if r.shards == nil {
		return r.bus.Healthy()
	}
	oldest := r.cfg.Now()
	for _, sh := range r.shards {
		if sh.bus.Wanted() && !sh.bus.Up() {
			if h := sh.bus.Healthy(); h.Before(oldest) {
				oldest = h
			}
		}
	}
	return oldest
}

// takeSubscribed returns and clears subscribed.
func (r *Redis) takeSubscribed() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := r.subscribed
	r.subscribed = time.Time{}
	return at
}

// releaseIdle unsubscribes from the shards without a subscriber for
// ShardLinger.
func (r *Redis) releaseIdle() {
	now := r.cfg.Now()
	for _, sh := range r.shards {
		sh.mu.Lock()
		if sh.refs == 0 && sh.bus.Wanted() && now.Sub(sh.idle) >= r.cfg.ShardLinger {
			sh.bus.Want(false)
		}
		sh.mu.Unlock()
	}
}

// Subscribed returns the shards this process is subscribed to (nil
// without shards), for tests and metrics.
func (r *Redis) Subscribed() []int {
	var out []int
	for i, sh := range r.shards {
		if sh.bus.Wanted() {
			out = append(out, i)
		}
	}
	return out
}

// Close implements Notifier.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	var errs []error
	if r.bus != nil {
		errs = append(errs, r.bus.Close())
	}
	for _, sh := range r.shards {
		errs = append(errs, sh.bus.Close())
	}
	return errors.Join(append(errs, r.local.Close())...)
}

// received wakes this process's subscribers of a uid another published.
func (r *Redis) received(note string) {
	uid, err := strconv.ParseInt(note, 10, 64)
	if err != nil {
		return
	}
	_ = r.local.Publish(context.Background(), uid)
}

// fallback asks the database once per FallbackInterval while the
// subscription is down, and once more when it is back, for what was
// stored between the last check and the resubscription.
func (r *Redis) fallback(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.FallbackInterval)
	defer t.Stop()
	var (
		down   bool
		since  time.Time
		cursor int64
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.state:
		}
		r.releaseIdle()
		if r.cfg.Missed == nil {
			continue
		}
		up := r.Up()
		if !up && !down {
			down, since, cursor = true, r.healthy().Add(-fallbackMargin), 0
		}
		if at := r.takeSubscribed(); !at.IsZero() && !down {
			down, since, cursor = true, at.Add(-fallbackMargin), 0
		}
		if !down {
			continue
		}
		cursor = r.check(ctx, since, cursor)
		if up {
			down = false
		}
	}
}

// check runs one database check and wakes whom it names; it returns the
// cursor for the next one.
func (r *Redis) check(ctx context.Context, since time.Time, cursor int64) int64 {
	ctx, cancel := context.WithTimeout(ctx, missedTimeout)
	defer cancel()
	uids, next, err := r.cfg.Missed(ctx, since, cursor)
	if err != nil {
		if ctx.Err() == nil {
			r.cfg.Logger.Warn("wake-up database check", "error", err.Error())
		}
		return cursor
	}
	for _, uid := range uids {
		_ = r.local.Publish(ctx, uid)
	}
	return next
}
