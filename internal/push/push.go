// Package push sends Web Push notifications (API.md §14; RFC 8030 with
// VAPID, RFC 8292, and payloads encrypted as RFC 8291 says) to the users
// who were not there for a message.
//
// A Send hands the message's recipients to Queue, which never blocks:
// past Config.Queue waiting messages it drops and counts. One goroutine
// waits out each message's Delay (every message waits the same Delay, so
// the queue is in due order), reads the message again (one deleted
// meanwhile is not pushed, one edited is pushed with its new text), asks
// Online which of its recipients had a stream or poll meanwhile (the
// presence tracker, across instances), and turns each subscription of
// the others into a job. Config.Workers
// goroutines post the jobs, retrying with exponential backoff; a push
// service that answers 404 or 410 has forgotten the subscription, which
// is then deleted. Encryption and the VAPID JWT are
// SherClockHolmes/webpush-go's.
package push

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fiberchat/fiberchat/models"
)

// Store is what the pusher needs from the database.
type Store interface {
	VAPIDKeyPair(ctx context.Context, now int64, generate func() (priv, pub string, err error)) (models.VapidKey, error)
	PushSubscriptions(ctx context.Context, uids []int64) ([]models.PushSubscription, error)
	DeletePushSubscription(ctx context.Context, uid int64, endpoint string) error
	Profiles(ctx context.Context, uids []int64) ([]models.Profile, error)
	PushPreviews(ctx context.Context, ids []int64) (map[int64]models.Message, error)
}

// Config is what a Pusher needs. module.Config documents the defaults
// of the fields it sets.
type Config struct {
	Store Store
	// Online reports which of uids have a stream or long poll open on
	// any instance, or had one within the presence grace.
	Online func(ctx context.Context, uids []int64) map[int64]bool
	// Delay is how long a message waits for its recipient to show up
	// before they are pushed to.
	Delay time.Duration
	// Workers is how many pushes are posted at once.
	Workers int
	// Queue bounds the messages waiting out their Delay, and apart the
	// pushes waiting for a worker.
	Queue int
	// Retries is how many times a push that failed for a reason that may
	// pass (no answer, 429, 5xx) is tried again, after 1 s, 2 s, 4 s….
	Retries int
	// Client posts the pushes (GuardedClient when nil).
	Client *http.Client
	// Subscriber is the VAPID JWT's sub: a mailto: or https: URL the
	// push service may contact.
	Subscriber string
	// Timeout bounds each database call and each post.
	Timeout time.Duration
	Now     func() time.Time
	Logger  *slog.Logger
}

// Stats counts what became of the pushes since New.
type Stats struct {
	// Sent were accepted by the push service.
	Sent uint64
	// Gone found their subscription gone (404, 410) and deleted it.
	Gone uint64
	// Failed were refused, or failed every retry.
	Failed uint64
	// Dropped never left: a queue was full, or the messages or the
	// subscriptions could not be read.
	Dropped uint64
}

// Pusher sends the pushes. Its methods are safe for concurrent use.
type Pusher struct {
	cfg     Config
	keys    keyCache
	pending chan pending
	jobs    chan job
	stop    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	sent, gone, failed, dropped atomic.Uint64
}

// pending is a message waiting out its Delay. Its text is read when it
// is due (see dispatch): it may be edited or deleted meanwhile.
type pending struct {
	due  time.Time
	id   int64
	from int64
	gid  int64
	to   []int64
}

// job is one push to one subscription.
type job struct {
	sub     models.PushSubscription
	payload []byte
}

// Payload is what a push carries (API.md §14), encrypted to the
// subscription's keys.
type Payload struct {
	UIDFrom int64  `json:"uid_from"`
	GID     int64  `json:"gid,omitempty"`
	Name    string `json:"name"`
	Preview string `json:"preview"`
}

// PreviewChars is the most characters of a message a push shows.
const PreviewChars = 100

// New starts a Pusher; Close stops it.
func New(cfg Config) *Pusher {
	if cfg.Client == nil {
		cfg.Client = GuardedClient(cfg.Timeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pusher{
		cfg:     cfg,
		keys:    keyCache{store: cfg.Store, now: cfg.Now},
		pending: make(chan pending, cfg.Queue),
		jobs:    make(chan job, cfg.Queue),
		stop:    make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
	}
	p.wg.Add(1 + cfg.Workers)
	go p.schedule()
	for range cfg.Workers {
		go p.work()
	}
	return p
}

// PublicKey returns the server's VAPID public key, base64url of the
// uncompressed point, making the key pair if there is none yet.
func (p *Pusher) PublicKey(ctx context.Context) (string, error) {
	k, err := p.keys.get(ctx)
	if err != nil {
		return "", err
	}
	return k.PublicKey, nil
}

// Queue schedules pushes of m to the recipients to who stay away for
// Delay. It never blocks: past Queue waiting messages, m is dropped.
// The push shows m as it is when due: with its latest text (none for an
// encrypted message), and not at all if it was deleted.
func (p *Pusher) Queue(m *models.Message, to []int64) {
	if len(to) == 0 {
		return
	}
	it := pending{due: time.Now().Add(p.cfg.Delay), id: m.ID, from: m.FromUID, gid: m.GID,
		to: append([]int64(nil), to...)}
	select {
	case p.pending <- it:
	default:
		p.dropped.Add(uint64(len(to)))
	}
}

// preview is body's first PreviewChars characters.
func preview(body string) string {
	if utf8.RuneCountInString(body) <= PreviewChars {
		return body
	}
	n := 0
	for i := range body {
		if n == PreviewChars {
			return body[:i] + "…"
		}
		n++
	}
	return body
}

// Stats returns the counts so far.
func (p *Pusher) Stats() Stats {
	return Stats{Sent: p.sent.Load(), Gone: p.gone.Load(), Failed: p.failed.Load(), Dropped: p.dropped.Load()}
}

// Close stops the Pusher: messages still waiting are dropped, and a
// push being retried is given up.
func (p *Pusher) Close() {
	close(p.stop)
	p.cancel()
	p.wg.Wait()
}

// keyCache holds the key pair once read.
type keyCache struct {
	store Store
	now   func() time.Time
	mu    sync.Mutex
	key   *models.VapidKey
}

// get returns the key pair, reading (or making) it on first use; a
// failure is not kept, so the next call tries again.
func (c *keyCache) get(ctx context.Context) (models.VapidKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key != nil {
		return *c.key, nil
	}
	k, err := c.store.VAPIDKeyPair(ctx, c.now().Unix(), generateKeys)
	if err != nil {
		return models.VapidKey{}, err
	}
	c.key = &k
	return k, nil
}

// payload encodes what one push of it, from name and showing m, carries.
func (it pending) payload(name string, m models.Message) []byte {
	pl := Payload{UIDFrom: it.from, GID: it.gid, Name: name}
	if !m.Enc {
		pl.Preview = preview(m.Body)
	}
	b, _ := json.Marshal(pl)
	return b
}
