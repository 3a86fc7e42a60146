package module

import (
	"context"
	"time"

	"github.com/fiberchat/fiberchat/handlers"
	"github.com/fiberchat/fiberchat/internal/presence"
)

// newPresence makes the presence tracker the waiters report to: online
// and offline, across instances with Redis, announced to the contacts who
// may see it (API.md §13).
func (m *Module) newPresence() *presence.Tracker {
	return presence.New(presence.Config{
		Has:      func(uid int64) bool { return m.waiters.Has(uid) },
		Announce: m.announcePresence,
		Grace:    m.cfg.PresenceGrace,
		Redis:    m.cfg.Redis,
		Prefix:   m.cfg.RedisPrefix,
		// As every call a request makes to Redis (Config.Redis).
		Timeout: time.Second,
		Logger:  m.cfg.Logger,
	})
}

// announcePresence tells uid's contacts, on every instance, that uid came
// online or went offline, if uid shows their presence: only contacts who
// show theirs are told. Going offline records when uid was last seen;
// coming online writes nothing (an online user's last_seen is now), so
// that a wave of users opening polls costs the database reads only.
func (m *Module) announcePresence(ctx context.Context, uid int64, online bool) {
	now := m.cfg.Now().Unix()
	if !online {
		if err := m.store.SetLastSeen(ctx, uid, now); err != nil {
			m.cfg.Logger.Warn("presence: last seen", "uid", uid, "error", err.Error())
		}
	}
	show, watchers, err := m.store.PresenceWatchers(ctx, uid)
	if err != nil {
		m.cfg.Logger.Warn("presence: watchers", "uid", uid, "error", err.Error())
		return
	}
	if show {
		handlers.TellPresence(notices{m}, watchers, uid, online, now)
	}
}

// presenceShown tells uid's contacts (those who show theirs) at once
// that uid, online now, started showing their presence (online) or
// stopped (offline, never seen: what their lists show from now on).
// Offline, there is nothing to correct: the contacts saw uid offline.
func (m *Module) presenceShown(uid int64, show bool) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.QueryTimeout)
	defer cancel()
	if !m.presence.Online(ctx, []int64{uid})[uid] {
		return
	}
	watchers, err := m.store.ContactsShowingPresence(ctx, uid)
	if err != nil {
		m.cfg.Logger.Warn("presence: watchers", "uid", uid, "error", err.Error())
		return
	}
	var seen int64
	if show {
		seen = m.cfg.Now().Unix()
	}
	handlers.TellPresence(notices{m}, watchers, uid, show, seen)
}

// typing makes /Message/Typing: notices through the module's Notices,
// throttled where the login throttle counts (in Redis with several
// instances, so that the interval holds on all of them).
func (m *Module) typing() handlers.TypingConfig {
	return handlers.TypingConfig{
		Store:          m.store,
		Decoder:        m.decoder,
		Notices:        notices{m},
		Throttle:       m.typingThrottle,
		AllowStrangers: m.cfg.AllowStrangers,
	}
}
