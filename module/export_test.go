package module

import "github.com/fiberchat/fiberchat/notify"

// InvalidationsUp reports whether m's subscription to other instances'
// cache invalidations is up: while it is down, m's caches are capped at
// 1 s. (RedisUp is false as soon as either of m's Redis channels is down,
// which can come first.)
func InvalidationsUp(m *Module) bool { return m.cluster.up() }

// WakeShards returns the wake-up shards m is subscribed to: nil with one
// channel (or without Redis).
func WakeShards(m *Module) []int {
	if r, ok := m.notifier.(*notify.Redis); ok {
		return r.Subscribed()
	}
	return nil
}

// LongPolls reports how many Recv long polls m holds.
func LongPolls(m *Module) int { return m.messages.LongPolls() }
