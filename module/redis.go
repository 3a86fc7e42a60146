package module

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/handlers"
	"github.com/fiberchat/fiberchat/internal/deliver"
	"github.com/fiberchat/fiberchat/internal/redisbus"
	"github.com/fiberchat/fiberchat/internal/redisstore"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/notify"
	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
)

// What several processes on one database tell each other over
// Config.Redis (API.md §11). Each process holds two subscriptions, one
// for wake-ups (notify.Redis) and one for cache invalidations (cluster),
// whatever the number of polls and cache entries behind them.

// degradedTTL is how long the caches serve an entry while invalidations
// from other processes cannot arrive: API.md §11's "within 1 s".
const degradedTTL = time.Second

// defaultClusterWakeShards is RedisWakeShards on a Redis Cluster: enough
// that each of a few masters holds several, few enough that an instance
// with waiters everywhere holds few subscriptions.
const defaultClusterWakeShards = 16

// wakeShards is the notifier's Shards for cfg (0: one channel).
func wakeShards(cfg Config) int {
	switch {
	case cfg.RedisWakeShards < 0:
		return 0
	case cfg.RedisWakeShards > 0:
		return cfg.RedisWakeShards
	}
	if _, ok := cfg.Redis.(*redis.ClusterClient); ok {
		return defaultClusterWakeShards
	}
	return 0
}

// wakeFallbackInterval is how often a process asks the database for new
// messages while wake-ups from the others cannot reach it: one query per
// process per interval, for all its polls together.
const wakeFallbackInterval = time.Second

// ttlCapper is a cache whose TTL can be capped while Redis is down.
type ttlCapper interface{ CapTTL(time.Duration) }

// cluster keeps this process's caches coherent with the other processes':
// every change that must end cached copies (see handlers.SessionCache and
// handlers.ProfileSource, and the API client changes) is published as a
// note, and each note from another process drops the local copies at once.
// The notes say what happened, for each process to do no more than it
// must (see applyUser):
//
//   - "user:<uid>:<reason>": some of uid's sessions ended, reason being
//     the bye reason (handlers.ByeLogout, handlers.ByePassword). Published
//     by sessionsEnded, which every path ending sessions calls.
//   - "user:<uid>:profile": uid's name or head_img changed.
//   - "client:<id>": an API client changed.
//
// A process of the previous version published "user:<uid>" for both
// kinds; it is still understood as it was then (sessions and profile
// dropped, streams checked, bye "logout"), as hosts roll processes one by
// one. That process ignores the new notes: until it is replaced it serves
// what it cached up to TokenCacheTTL and ProfileCacheTTL, and its streams
// find an ended session at their next ping.
type cluster struct {
	bus *redisbus.Bus
	// waiters are told of a session note: the user's streams here check
	// their sessions at once rather than at their next ping.
	waiters   *deliver.Hub
	sessions  *middleware.TokenCache // nil without a session cache
	profiles  *models.ProfileCache   // nil without a profile cache
	signature *middleware.Signature
	caches    []ttlCapper
}

// What a "user:<uid>:<what>" note says happened besides the bye reasons.
const noteProfile = "profile"

// joinCluster connects the caches newCaches made to the other processes
// when Config.Redis is set, and gives the rate limits a shared Storage.
// It returns what /user/info should read through in place of profiles
// (nil: the store).
func (m *Module) joinCluster(profiles handlers.ProfileSource) (handlers.ProfileSource, error) {
	if m.cfg.Redis == nil {
		return profiles, nil
	}
	c := &cluster{waiters: m.waiters, signature: m.signature, caches: []ttlCapper{m.signature}}
	if tc, ok := m.sessions.(*middleware.TokenCache); ok {
		c.sessions = tc
		c.caches = append(c.caches, tc)
	}
	if pc, ok := profiles.(*models.ProfileCache); ok {
		c.profiles = pc
		c.caches = append(c.caches, pc)
	}
	// Until the subscription is confirmed nothing from the others arrives.
	c.state(false)
	bus, err := redisbus.New(redisbus.Config{
		Client:  m.cfg.Redis,
		Channel: m.cfg.RedisPrefix + "invalidate",
		Handle:  c.apply,
		State:   c.state,
		Logger:  m.cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	c.bus = bus
	m.cluster = c
	m.limits = redisstore.New(m.cfg.Redis, m.cfg.RedisPrefix+"limit:", m.cfg.Logger)
	if profiles == nil {
		profiles = storeProfiles{m.store}
	}
	return clusterProfiles{ProfileSource: profiles, c: c}, nil
}

// state caps the caches' TTL while the subscription is down and lifts the
// cap, dropping what they hold, once it is back.
func (c *cluster) state(up bool) {
	d := degradedTTL
	if up {
		d = 0
	}
	for _, cache := range c.caches {
		cache.CapTTL(d)
	}
}

// apply drops the local copies a note from another process names.
func (c *cluster) apply(note string) {
	kind, key, _ := strings.Cut(note, ":")
	switch kind {
	case "user":
		c.applyUser(key)
	case "client":
		c.signature.Forget(key)
	case noteNotice:
		c.applyNotice(key)
	}
}

// noteNotice starts the note that carries a stream notice to the other
// processes: "notice:<uid>[,<uid>…]:<frame, base64>", the frame once for
// all its users (a group's members). A frame holds newlines, which
// separate the notes of one PUBLISH; base64 holds none.
const noteNotice = "notice"

// maxNoticeUIDs bounds the users of one note, so that a note stays a few
// KiB however large the group.
const maxNoticeUIDs = 256

// publishNotice hands frame, a notice for the streams of uids, to the
// other processes.
func (c *cluster) publishNotice(frame []byte, uids []int64) {
	enc := base64.StdEncoding.EncodeToString(frame)
	for len(uids) > 0 {
		n := min(len(uids), maxNoticeUIDs)
		var b strings.Builder
		b.WriteString(noteNotice + ":")
		for i, uid := range uids[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(uid, 10))
		}
		b.WriteByte(':')
		b.WriteString(enc)
		c.bus.Publish(b.String())
		uids = uids[n:]
	}
}

// applyNotice queues a notice another process published on its users'
// streams here. A malformed note is dropped: notices are best-effort
// news.
func (c *cluster) applyNotice(key string) {
	ids, enc, ok := strings.Cut(key, ":")
	if !ok {
		return
	}
	frame, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return
	}
	for id := range strings.SplitSeq(ids, ",") {
		if uid, err := strconv.ParseInt(id, 10, 64); err == nil {
			c.waiters.Notice(uid, frame)
		}
	}
}

// applyUser applies a note "user:<key>", key being "<uid>:<what>" or,
// from a process of the previous version, "<uid>".
func (c *cluster) applyUser(key string) {
	id, what, hasWhat := strings.Cut(key, ":")
	uid, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return
	}
	switch {
	case !hasWhat:
		// The previous version's note does not say why: both caches go,
		// and a stream whose session is gone says bye "logout", as it
		// would at its next ping.
		c.forgetSessions(uid)
		c.forgetProfile(uid)
		c.waiters.SessionsEnded(uid, handlers.ByeLogout)
	case what == noteProfile:
		c.forgetProfile(uid)
	case what == handlers.ByeLogout || what == handlers.ByePassword:
		c.forgetSessions(uid)
		c.waiters.SessionsEnded(uid, what)
	default:
		// A later version's note: drop what may be stale, end nothing.
		c.forgetSessions(uid)
		c.forgetProfile(uid)
	}
}

func (c *cluster) forgetSessions(uid int64) {
	if c.sessions != nil {
		c.sessions.ForgetUser(uid)
	}
}

func (c *cluster) forgetProfile(uid int64) {
	if c.profiles != nil {
		c.profiles.Forget(uid)
	}
}

// publishUser tells the other processes what happened to uid.
func (c *cluster) publishUser(uid int64, what string) {
	c.bus.Publish("user:" + strconv.FormatInt(uid, 10) + ":" + what)
}

// close stops the subscription; nil-safe, for a module without Redis.
func (c *cluster) close() {
	if c != nil {
		_ = c.bus.Close()
	}
}

// up reports the subscription's state; true without Redis.
func (c *cluster) up() bool { return c == nil || c.bus.Up() }

// clusterProfiles forgets a user's profile here and on every process.
type clusterProfiles struct {
	handlers.ProfileSource
	c *cluster
}

func (p clusterProfiles) Forget(uid int64) {
	p.ProfileSource.Forget(uid)
	p.c.publishUser(uid, noteProfile)
}

// storeProfiles reads every profile from the store: there is no copy to
// forget here, but the other processes may hold some.
type storeProfiles struct{ *models.Store }

func (storeProfiles) Forget(int64) {}

// forgetClient drops a client's cached row here and on every process,
// after a change to it.
func (m *Module) forgetClient(clientID string) {
	m.signature.Forget(clientID)
	if m.cluster != nil {
		m.cluster.bus.Publish("client:" + clientID)
	}
}

// defaultNotifier is the notifier the module makes when Config.Notifier
// is nil: over Redis when Config.Redis is set, else in this process.
func (m *Module) defaultNotifier() notify.Notifier {
	if m.cfg.Redis == nil {
		return notify.NewLocal()
	}
	n, err := notify.NewRedis(notify.RedisConfig{
		Client:           m.cfg.Redis,
		Channel:          m.cfg.RedisPrefix + "wake",
		Shards:           wakeShards(m.cfg),
		Missed:           m.missed,
		FallbackInterval: wakeFallbackInterval,
		Logger:           m.cfg.Logger,
		Now:              m.cfg.Now,
	})
	if err != nil {
		// Only a nil client fails, which was checked above.
		m.cfg.Logger.Error("redis notifier; wake-ups stay in this process", "error", err.Error())
		return notify.NewLocal()
	}
	return n
}

// missed is notify.Redis's database check: the recipients of messages
// stored since the subscription last worked.
func (m *Module) missed(ctx context.Context, since time.Time, cursor int64) ([]int64, int64, error) {
	return m.store.WakeScan(ctx, since.Unix(), cursor)
}

// RedisUp reports whether this process hears the others over
// Config.Redis: both its subscriptions work. Without Redis it is true.
func (m *Module) RedisUp() bool {
	if r, ok := m.notifier.(*notify.Redis); ok && !r.Up() {
		return false
	}
	return m.cluster.up()
}

// avatarStore is Config.Avatars, or its default: the database when Redis
// joins several instances, which must all serve every avatar; files in
// UploadDir (nil, the handlers' default) otherwise.
func (m *Module) avatarStore() handlers.AvatarStore {
	switch {
	case m.cfg.Avatars != nil:
		return m.cfg.Avatars
	case m.cfg.Redis != nil:
		return handlers.DBAvatars{
			Store: m.store,
			Now:   func() int64 { return m.cfg.Now().Unix() },
			// Re-encoding may grow an upload; twice its limit, within
			// the 16 MiB a MEDIUMBLOB holds.
			MaxBytes: int(min(2*m.cfg.AvatarMaxBytes, 16<<20-1)),
		}
	}
	return nil
}

// redisHealth adds Redis's state to a health answer, when Redis is set.
func (m *Module) redisHealth(body fiber.Map) fiber.Map {
	if m.cfg.Redis == nil {
		return body
	}
	body["redis"] = "down"
	if m.RedisUp() {
		body["redis"] = "up"
	}
	return body
}

// limitStorage is the rate limits' Storage: Redis's when set, so that
// processes count together; nil keeps counters in this process.
func (m *Module) limitStorage() fiber.Storage {
	if m.limits == nil {
		return nil
	}
	return m.limits
}

// loginRuns is where the login throttle counts: the rate limits' Storage
// when Redis is set, so that guesses at one account spread over the
// instances count together; else this process, for at most
// TokenCacheSize keys, and never fewer than minThrottleKeys: an account's
// run and its gate are two keys, and a store too small to keep both for
// the accounts under attack would forget the runs it throttles by.
func (m *Module) loginRuns() middleware.Counters {
	if m.limits != nil {
		return m.limits
	}
	return redisstore.NewLocal(max(m.cfg.TokenCacheSize, minThrottleKeys), m.cfg.Now)
}

// minThrottleKeys is the least the in-process login throttle keeps.
const minThrottleKeys = 10000
