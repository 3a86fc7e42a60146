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
	bus   *redisbus.Bus

	mu     sync.Mutex
	closed bool
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
	r := &Redis{cfg: cfg, local: NewLocal(), state: make(chan struct{}, 1)}
	bus, err := redisbus.New(redisbus.Config{
		Client:  cfg.Client,
		Channel: cfg.Channel,
		Handle:  r.received,
		State: func(bool) {
			select {
			case r.state <- struct{}{}:
			default:
			}
		},
		Logger: cfg.Logger,
		Now:    cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	r.bus = bus
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(1)
	go r.fallback(ctx)
	return r, nil
}

// Subscribe implements Notifier.
func (r *Redis) Subscribe(uid int64, wake func()) func() { return r.local.Subscribe(uid, wake) }

// Publish implements Notifier: it wakes this process's subscribers of uid
// before it returns, and queues the wake-up for the others. It fails only
// after Close.
func (r *Redis) Publish(ctx context.Context, uid int64) error {
	if err := r.local.Publish(ctx, uid); err != nil {
		return err
	}
	r.bus.Publish(strconv.FormatInt(uid, 10))
	return nil
}

// Up reports whether the subscription works, so that wake-ups from other
// processes arrive (rather than through the database check).
func (r *Redis) Up() bool { return r.bus.Up() }

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
	err := r.bus.Close()
	return errors.Join(err, r.local.Close())
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
	if r.cfg.Missed == nil {
		return
	}
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
		up := r.bus.Up()
		if !up && !down {
			down, since, cursor = true, r.bus.Healthy().Add(-fallbackMargin), 0
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
