package module

import (
	"context"
	"time"

	"github.com/fiberchat/fiberchat/handlers"
	"github.com/fiberchat/fiberchat/internal/push"
)

// pushTimeout bounds each post to a push service, and each of the
// pusher's database calls.
const pushTimeout = 10 * time.Second

// newPusher starts Web Push (API.md §14): messages wait out PushDelay,
// then the recipients the presence tracker does not hold online on any
// instance are pushed to.
func (m *Module) newPusher() *push.Pusher {
	cfg := m.cfg
	client := cfg.PushClient
	if client == nil {
		client = push.GuardedClient(pushTimeout)
	}
	return push.New(push.Config{
		Store:      m.store,
		Online:     m.presence.Online,
		Delay:      cfg.PushDelay,
		Workers:    cfg.PushWorkers,
		Queue:      cfg.PushQueue,
		Retries:    max(cfg.PushRetries, 0),
		Client:     client,
		Subscriber: cfg.PushSubscriber,
		Timeout:    pushTimeout,
		Now:        cfg.Now,
		Logger:     cfg.Logger,
	})
}

// pushRoutes makes the handlers of GET /push/key and /user/push/*.
func (m *Module) pushRoutes() *handlers.Push {
	return handlers.NewPush(handlers.PushConfig{
		Store:            m.store,
		Decoder:          m.decoder,
		Now:              m.cfg.Now,
		PublicKey:        m.pusher.PublicKey,
		MaxSubscriptions: m.cfg.PushMaxSubscriptions,
	})
}

// PushStats counts what became of Web Push's pushes in this process.
func (m *Module) PushStats() push.Stats { return m.pusher.Stats() }

// makePushKey makes the VAPID key pair if the database has none yet, so
// that it exists from the first start (Migrate calls it).
func (m *Module) makePushKey(ctx context.Context) error {
	_, err := m.pusher.PublicKey(ctx)
	return err
}
