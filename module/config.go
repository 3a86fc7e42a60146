package module

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/filestore"
	"github.com/fiberchat/fiberchat/handlers"
	"github.com/fiberchat/fiberchat/internal/presence"
	"github.com/fiberchat/fiberchat/migrations"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/notify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"
)

// Config configures the module. Zero fields take the defaults documented on
// each; New refuses values it cannot use.
type Config struct {
	// DB is the host's database (MySQL/MariaDB or SQLite). Required. The
	// module shares its connection pool but not its GORM settings: the
	// host's naming strategy, logger and callbacks are left untouched.
	DB *gorm.DB

	// TablePrefix is put before every table the module creates, so they
	// never collide with a host's own. Letters, digits and underscores, at
	// most 32. Default: "chat_".
	TablePrefix string

	// Location is the time zone whose calendar day api_tokens are computed
	// for. Default: UTC.
	Location *time.Location
	// SignatureSkew is how near midnight the neighbouring day's api_token
	// is accepted too. Default: 5 minutes.
	SignatureSkew time.Duration
	// ClientCacheTTL bounds how long an API client row is served from
	// memory: a client disabled by another process is refused within it.
	// Default: 30 seconds.
	ClientCacheTTL time.Duration
	// ClientCacheSize bounds how many API clients are remembered, and,
	// apart, how many unknown or disabled client ids, so that a flood of
	// made-up ids can neither grow memory nor evict a real client.
	// Default: 10000.
	ClientCacheSize int

	// TokenIdleLifetime is how long a session lives without use; each use
	// slides it forward. Default: 7 days.
	TokenIdleLifetime time.Duration
	// TokenTouchInterval bounds how often a session's expiry is written.
	// Default: 1 minute.
	TokenTouchInterval time.Duration
	// TokenCacheTTL is how long a verified session is served from memory.
	// Logout, password change and the session cap take effect in this
	// process at once; other processes on the same database refuse an
	// ended session within this time. -1 turns the cache off.
	// Default: 5 seconds.
	TokenCacheTTL time.Duration
	// TokenCacheSize bounds how many sessions are cached, how many
	// unknown tokens are remembered (apart, so they cannot evict
	// sessions), how many profiles, and, without Redis, how many keys
	// the login throttle keeps (two at most per uid; at least 10 000).
	// Default: 100000.
	TokenCacheSize int
	// ProfileCacheTTL is how long a user's public profile (name, head_img)
	// is served to /user/info from memory. Changes through the module show
	// in this process at once; changes from other processes, or written
	// by the host into the table, within this time. -1 turns the cache
	// off. Default: 5 seconds.
	ProfileCacheTTL time.Duration
	// MaxSessions caps the sessions (devices) one user may hold; the oldest
	// is dropped past it. Default: 10.
	MaxSessions int
	// HostAccounts says the host's own site signs its users up and in
	// (ProvisionUser, IssueToken): /user/reg/ajax_reg, /user/login and
	// /user/info/passwd are then not mounted, so no page or script can
	// register a chat user or try a password (they answer 404/1006, like
	// any unknown path, and BrowserTokens has no token for them).
	// Default: false.
	HostAccounts bool
	// BcryptCost is the password hashing cost. Default: 10 (bcrypt's
	// default); tests may lower it to 4.
	BcryptCost int

	// UploadDir is where avatars are stored when they are stored as files
	// (see Avatars). Default: "./uploads".
	UploadDir string
	// Avatars stores the avatars users upload. Default: the database when
	// Redis is set, so that every instance serves every avatar (API.md
	// §11); files in UploadDir otherwise.
	Avatars AvatarStore
	// AvatarMaxBytes is the largest avatar upload. Default: 2 MiB.
	AvatarMaxBytes int64
	// AvatarMaxWidth and AvatarMaxHeight bound an avatar's pixels.
	// Default: 4096 each.
	AvatarMaxWidth, AvatarMaxHeight int
	// AvatarMaxDecodedBytes bounds the memory one upload's decoded pixels
	// take, counted from its header before any is decoded (width × height
	// × the decoder's bytes a pixel, which a 16-bit PNG doubles); past it
	// the upload is 413/1009. Default: 64 MiB, an 8-bit RGBA image of
	// AvatarMaxWidth × AvatarMaxHeight.
	AvatarMaxDecodedBytes int64
	// AvatarDecodes bounds how many uploads decode at once, so that all
	// of them together take at most AvatarDecodes × AvatarMaxDecodedBytes;
	// one that finds none free waits up to QueryTimeout, then is
	// 503/1503. Default: 2.
	AvatarDecodes int
	// PublicURL, when set (e.g. "https://chat.example.com/chat"), is the
	// base of avatar and file URLs. Default: avatar URLs are derived from
	// each upload request's scheme and host, plus the mount prefix; file
	// URLs are paths from the mount prefix, on the server the client
	// called.
	PublicURL string

	// Files stores the contents of the files users send (API.md §13):
	// filestore.DB, the module's database, or filestore.S3, a bucket, or
	// the host's own. Default: the module's database, in chunks
	// (filestore.NewDB), so every instance serves every file.
	Files filestore.Store
	// MaxFileBytes is the largest file /Message/Upload takes; past it
	// 413/1009. To stream uploads rather than buffer them, the host's
	// fiber.Config needs StreamRequestBody and DisablePreParseMultipartForm
	// (AppConfig sets both). Default: 25 MiB.
	MaxFileBytes int64
	// FileQuota is what one user's files (and thumbnails) may take in
	// all; past it 413/1009. Default: 1 GiB.
	FileQuota int64
	// FileURLLifetime is how long a file URL handed out stays good, at
	// least (expiries are rounded up to 10 minutes, so a URL repeats and
	// browsers cache it). Default: 1 hour.
	FileURLLifetime time.Duration

	// LoginRateLimit and RegisterRateLimit are how many login and register
	// requests one client IP may make per RateLimitWindow; -1 disables.
	// Default: 100 each.
	LoginRateLimit, RegisterRateLimit int
	// RateLimitWindow is the rate limits' window. Default: 1 minute.
	RateLimitWindow time.Duration
	// AccountRateLimit is how many password changes, and how many avatar
	// uploads, one user may make per RateLimitWindow (each route its own
	// budget), whatever addresses and sessions they come from; -1
	// disables. Default: 10.
	AccountRateLimit int
	// SearchRateLimit is how many /Contacts/search requests one user may
	// make per RateLimitWindow, whatever addresses and sessions they come
	// from: what keeps search from listing the user base; -1 disables.
	// Default: 30.
	SearchRateLimit int
	// SearchNameScan is how many of the most recently registered users a
	// search's name match looks at, at most: a name containing q anywhere
	// is a scan no index serves, so it is bounded (docs/performance.md).
	// Handles are matched among all users, along their index. -1 matches
	// handles only. Default: 10000.
	SearchNameScan int
	// LoginFailures is how many failed logins in a row one uid may have
	// before its further attempts go one at a time and must wait, from
	// one second doubling on each further failure up to LoginBackoffMax
	// (429/1010 with Retry-After); a successful login clears it. It is
	// kept per uid, so that guesses spread over many addresses still
	// count: in Redis when Redis is set, so that the instances count
	// together, else (and while Redis does not answer) in this process,
	// for at most TokenCacheSize keys. -1 disables. Default: 5.
	LoginFailures int
	// LoginBackoffMax caps LoginFailures' wait: an attacker who keeps
	// guessing holds one account to a login attempt per LoginBackoffMax,
	// and cannot lock its owner out for longer. Default: 15 minutes.
	LoginBackoffMax time.Duration

	// BodyLimit is the largest request body of a JSON or form route; past
	// it the answer is 413/1009. The avatar route allows AvatarMaxBytes
	// plus room for the form, /Message/Upload MaxFileBytes. Default: 1 MiB.
	BodyLimit int

	// MessageMaxChars is the longest message, counted in characters
	// (Unicode code points), not bytes. At most 16000, what a MySQL TEXT
	// column holds when every character takes four bytes. Default: 4000.
	MessageMaxChars int
	// MaxGroupMembers is the most members a group may have (API.md §12);
	// past it addMembers answers "full". Default: 500.
	MaxGroupMembers int
	// MaxGroupsPerUser is the most groups a user may be in: creating one
	// more is 403/1008, and adding them to one more answers "full".
	// Default: 500.
	MaxGroupsPerUser int
	// AllowStrangers lets any user message any other. Default: false: only
	// contacts may message each other, and a Send to anyone else is
	// 403/1008.
	AllowStrangers bool
	// MessageRetention is how long messages are kept; the background sweep
	// purges older ones. A negative value keeps them forever (zero, as for
	// every field here, means the default). Default: 30 days.
	MessageRetention time.Duration
	// EditWindow is how long after sending a message its sender may edit
	// it (/Message/Edit, API.md §13); past it an edit is 403/1008.
	// Deleting has no window. A negative value allows edits at any time.
	// Default: 48 hours.
	EditWindow time.Duration
	// MaxWait caps how long a Recv long poll is held: clients may ask for
	// up to 30 seconds, and a longer wait is cut to MaxWait. Keep it below
	// the server's write timeout and any proxy's idle timeout. A negative
	// value disables holding (Recv answers at once). Default: 30 seconds,
	// which is also the most allowed.
	MaxWait time.Duration
	// MaxWaiters caps the Recv long polls and /Message/Stream streams
	// waiting in this process, together: each holds a connection, and
	// the process's open files are bounded. Past it a long poll is
	// answered at once, as if it had not asked to wait, and a stream is
	// refused 503/1503, to retry later or on another instance. Default:
	// 0, no cap beyond the per-session and per-user ones (API.md §10).
	MaxWaiters int
	// Notifier wakes held long polls when a message for their user is
	// stored. When several processes serve one database, give them a
	// shared implementation (over Redis, say), so that a Send on one wakes
	// polls on all; with the default, polls elsewhere see the message only
	// when their wait runs out. The module closes only a notifier it made
	// itself. Default: notify.NewLocal(), reaching this process only.
	Notifier notify.Notifier
	// ParkLongPolls parks Recv long polls instead of holding them: a poll
	// gives its connection up and waits as a small struct, without the
	// goroutine, fasthttp request context and read buffer a held poll
	// keeps (docs/performance.md gives the memory a waiting poll costs
	// either way). Its reads run on a few checker goroutines, the first
	// right after it parks and one after each wake-up; an answer is written on a goroutine started then, and the
	// connection goes back to the server for its next request. It needs
	// the host to set app.Server().KeepHijackedConns = true before it
	// starts listening, and parks only then, on real sockets (not
	// app.Test's) and without the server's MaxConnsPerIP; otherwise polls
	// are held as without it. A parked poll's answer carries the headers
	// the host's middleware set before the route ran, not ones set after
	// it returns; to that middleware (an access log, say) the request ends
	// when it parks. The server's Concurrency limit does not count parked
	// polls. Call Close before shutting the server down: parked polls are
	// not the server's to answer. Default: false.
	ParkLongPolls bool

	// StreamPingInterval is how often an open /Message/Stream sends a
	// comment line (": ping"), so that proxies do not close an idle
	// stream, and checks that its session has not ended or expired.
	// Default: 25 seconds.
	StreamPingInterval time.Duration
	// PresenceGrace is how long a user stays online after their last
	// stream or long poll ended, on every instance, before their contacts
	// are told they went offline (API.md §13): a reload, or the gap
	// between two long polls, is not a flap.
	//
	// Optional. Default: 10 seconds.
	PresenceGrace time.Duration

	// PushDelay is how long a new message waits for its recipient
	// before Web Push tells them of it (API.md §14): a user with a
	// stream or long poll open on any instance then, or within
	// PresenceGrace before, is not pushed to. Keep it at least
	// PresenceGrace, or a user who left just before the message may be
	// taken for present.
	//
	// Optional. Default: 10 seconds.
	PushDelay time.Duration
	// PushWorkers is how many pushes are posted at once.
	//
	// Optional. Default: 4.
	PushWorkers int
	// PushQueue bounds the messages waiting out PushDelay, and apart the
	// pushes waiting for a worker: past it a push is dropped and counted
	// (fiberchat_push_total{result="dropped"}), never waited for by a
	// Send.
	//
	// Optional. Default: 10000.
	PushQueue int
	// PushRetries is how often a push that failed for a reason that may
	// pass (no answer, 429, 5xx) is tried again, after 1 s, 2 s, 4 s…;
	// -1 for never.
	//
	// Optional. Default: 3.
	PushRetries int
	// PushMaxSubscriptions is how many browsers one user may subscribe
	// for pushes; the oldest subscription goes past it.
	//
	// Optional. Default: 10.
	PushMaxSubscriptions int
	// PushSubscriber is the contact the VAPID JWT gives push services
	// (its sub claim, RFC 8292): a mailto: or https: URL.
	//
	// Optional. Default: PublicURL when it is https, else
	// "mailto:webpush@localhost" (set it: some push services refuse
	// that).
	PushSubscriber string
	// PushClient posts the pushes. The default connects to public
	// addresses only, since endpoints come from users (docs/security.md);
	// tests give one that trusts their push service.
	//
	// Optional. Default: a client with a 10 s timeout that refuses
	// loopback, private and link-local addresses, redirects and proxies.
	PushClient *http.Client

	// Redis, when set, makes this process one of several serving the same
	// database as one site (API.md §11, docs/scaling.md): wake-ups (unless
	// Notifier is set), cache invalidations and rate-limit counters go
	// through it, and while it is unreachable the module falls back to the
	// database and to caches of at most 1 s. A single node, Sentinel or
	// Cluster client; the host's, which the module does not close.
	// The module waits at most a second for any call a request makes to
	// Redis, whatever the client's options, and a hung Redis is taken
	// for down; still, build the client with ContextTimeoutEnabled and
	// finite Dial/Read/WriteTimeouts (go-redis's defaults are finite), so
	// that a call the module stops waiting for also lets go of its
	// connection. Default: nil, one process.
	Redis redis.UniversalClient
	// RedisPrefix starts every Redis key and channel the module uses, so
	// that sites can share a Redis. Default: "fiberchat:".
	RedisPrefix string
	// RedisWakeShards spreads wake-ups over that many sharded pub/sub
	// channels (Redis 7), each instance hearing only the shards its
	// waiting users fall in (notify.RedisConfig.Shards). Every instance of
	// a site must use the same value: change it with all of them stopped.
	// A negative value means one channel every instance hears. Optional.
	// Default: 16 when Redis is a *redis.ClusterClient (a PUBLISH there is
	// copied to every node), else one channel.
	RedisWakeShards int

	// SweepInterval is how often expired sessions and messages past
	// MessageRetention are deleted. Default: 1 minute.
	SweepInterval time.Duration

	// SendBatchSize is how many concurrent Sends may share one commit
	// (group commit): each Send is answered only after its own commit, so
	// durability is unchanged, while one fsync serves many. 1 gives each
	// Send a transaction of its own. Default: 128.
	SendBatchSize int
	// SendWriters is how many batches may commit at once. Default: 1 on
	// SQLite (one connection writes anyway) and on a MySQL/MariaDB server
	// that DB's DSN puts on this host (a unix socket or a loopback
	// address), whose processors the module shares, so that larger
	// batches cost it less; 2 on one elsewhere, or when DB has no DSN,
	// where batches overlap their round trips and fsyncs.
	//
	// On MySQL/MariaDB each writer keeps a connection of its own. When DB
	// was opened on a DSN with go-sql-driver (gorm.io/driver/mysql's Open
	// or New with a DSN), the writers open these on that DSN, one each,
	// with multiStatements on, so that a batch costs two round trips;
	// when DB was handed an open *sql.DB they take them from its pool, if
	// it has no limit or four connections a writer, and a batch costs four
	// or more. Either way they hold them until Close, which must
	// therefore come before the host closes DB.
	SendWriters int
	// QueryTimeout is the deadline of every database call the module
	// makes (a transaction and its retries count as one call), and of a
	// Send in all, from its start: its client_msg_id lookup, BeforeSend,
	// its wait for a busy group commit, its batch, COMMIT included, and
	// its fallback share one. A database that stops answering without
	// refusing connections then fails requests with 503/1503 within it
	// instead of holding them: it is what a pause of the database costs
	// each request. Keep it above the slowest query under load. Default:
	// 5 seconds.
	QueryTimeout time.Duration
	// ShutdownTimeout bounds Close: past it, Close returns
	// ErrShutdownTimeout and leaves what still runs (a batch stuck on the
	// database, at most QueryTimeout more) to end by itself. Serve uses it
	// for the server's shutdown too when given no timeout. Default: 10
	// seconds.
	ShutdownTimeout time.Duration

	// OnEvent, when set, is called after each change commits (a user
	// registered, a session opened, a contact added or removed, a message
	// stored), with the request's context, before the response is sent;
	// see package events. Its errors and panics are logged, never shown
	// to the client, and never undo the change. Default: nil.
	OnEvent events.Handler
	// BeforeSend, when set, sees every new message once its fields are
	// valid and before it is stored (the recipient and contact checks come
	// after it, in the write's transaction), with the request's context
	// bounded by the Send's deadline (QueryTimeout from its start, which
	// the time BeforeSend takes counts toward), and may refuse it: an
	// *apierr.Error (apierr.Forbidden for 403/1008, apierr.Invalid for
	// 400/1001) is answered as it is; any other error is a 500. A retried client_msg_id is answered from the first message
	// without calling it. Default: nil.
	BeforeSend events.BeforeSend

	// Metrics, when set, receives the module's Prometheus collectors, all
	// named fiberchat_* (README lists them): requests and their latency by
	// route pattern and status, waiting long polls, open streams, Send
	// batch sizes and commit times, cache hits and misses, and, with
	// Redis, whether this instance hears the others. Give the host's own
	// registry (prometheus.DefaultRegisterer, say), or a
	// prometheus.NewRegistry() served by MetricsHandler. New fails if the
	// names are taken; Close unregisters them. Default: nil, no metrics.
	Metrics prometheus.Registerer
	// AccessLog, when set, receives one line per request to the module's
	// routes, at Info: "request" with method, route (the mounted pattern,
	// never the URL, so no query string, token or avatar name), status,
	// duration and request_id (the X-Request-Id every answer carries: the
	// client's when well-formed, else a random one; an error answer and
	// its error log line carry the same). Bodies and headers are never
	// logged.
	// A parked poll's or a stream's line is written when it leaves its
	// handler. Default: nil, no access log.
	AccessLog *slog.Logger

	// Logger receives the module's logs; it never receives secrets.
	// Default: slog.Default().
	Logger *slog.Logger
	// Now is the module's clock, settable by tests. It is called from
	// many goroutines (requests, the caches' sweepers), so it must be
	// safe to call concurrently. Default: time.Now.
	Now func() time.Time
}

// AvatarStore keeps uploaded avatars; handlers.FileAvatars and
// handlers.DBAvatars are the module's own.
type AvatarStore = handlers.AvatarStore

// ConfigDefault holds the defaults New fills a Config's zero fields from;
// it is the only place a default value is written. Three defaults are rules
// rather than values and so are applied by New: a nil Logger becomes
// slog.Default() as it is when New runs, a nil Notifier a notify.NewLocal()
// of the module's own, and a zero SendWriters depends on the database (see
// the field). Fields left out here default to their zero value.
var ConfigDefault = Config{
	TablePrefix:        "chat_",
	Location:           time.UTC,
	SignatureSkew:      5 * time.Minute,
	ClientCacheTTL:     30 * time.Second,
	ClientCacheSize:    10000,
	TokenIdleLifetime:  7 * 24 * time.Hour,
	TokenTouchInterval: time.Minute,
	TokenCacheTTL:      5 * time.Second,
	TokenCacheSize:     100000,
	ProfileCacheTTL:    5 * time.Second,
	MaxSessions:        10,
	BcryptCost:         10,
	UploadDir:          "./uploads",
	AvatarMaxBytes:     2 << 20,
	// 4096 on a side is a photo's size; the memory one upload costs is
	// bounded by AvatarMaxDecodedBytes, whatever its bit depth.
	AvatarMaxWidth:  4096,
	AvatarMaxHeight: 4096,
	// 4096 × 4096 at 4 bytes a pixel (8-bit RGBA).
	AvatarMaxDecodedBytes: 64 << 20,
	AvatarDecodes:         2,
	MaxFileBytes:          25 << 20,
	FileQuota:             1 << 30,
	FileURLLifetime:       time.Hour,
	LoginRateLimit:        100,
	RegisterRateLimit:     100,
	RateLimitWindow:       time.Minute,
	AccountRateLimit:      10,
	SearchRateLimit:       30,
	SearchNameScan:        10000,
	LoginFailures:         5,
	LoginBackoffMax:       15 * time.Minute,
	BodyLimit:             1 << 20,
	MessageMaxChars:       4000,
	MaxGroupMembers:       500,
	MaxGroupsPerUser:      500,
	MessageRetention:      30 * 24 * time.Hour,
	EditWindow:            48 * time.Hour,
	MaxWait:               maxWait,
	SweepInterval:         time.Minute,
	SendBatchSize:         128,
	QueryTimeout:          models.DefaultQueryTimeout,
	ShutdownTimeout:       10 * time.Second,
	RedisPrefix:           "fiberchat:",
	Now:                   time.Now,
	// Below the 30 s many proxies allow an idle connection.
	StreamPingInterval: 25 * time.Second,
	PresenceGrace:      presence.DefaultGrace,
	PushDelay:          10 * time.Second,
	PushWorkers:        4,
	PushQueue:          10000,
	PushRetries:        3,
	// As MaxSessions: a browser a device.
	PushMaxSubscriptions: 10,
}

// configDefault fills the zero fields of config (the first, if any) from
// ConfigDefault, then refuses values the module cannot use.
func configDefault(config ...Config) (Config, error) {
	if len(config) < 1 {
		return Config{}, errors.New("fiberchat: Config.DB is required")
	}
	cfg := config[0]
	if cfg.DB == nil {
		return cfg, errors.New("fiberchat: Config.DB is required")
	}
	def := ConfigDefault
	setZero(&cfg.TablePrefix, def.TablePrefix)
	if cfg.Location == nil {
		cfg.Location = def.Location
	}
	setZero(&cfg.SignatureSkew, def.SignatureSkew)
	setZero(&cfg.ClientCacheTTL, def.ClientCacheTTL)
	setZero(&cfg.ClientCacheSize, def.ClientCacheSize)
	setZero(&cfg.TokenIdleLifetime, def.TokenIdleLifetime)
	setZero(&cfg.TokenTouchInterval, def.TokenTouchInterval)
	setZero(&cfg.TokenCacheTTL, def.TokenCacheTTL)
	setZero(&cfg.TokenCacheSize, def.TokenCacheSize)
	setZero(&cfg.ProfileCacheTTL, def.ProfileCacheTTL)
	setZero(&cfg.MaxSessions, def.MaxSessions)
	setZero(&cfg.BcryptCost, def.BcryptCost)
	setZero(&cfg.UploadDir, def.UploadDir)
	setZero(&cfg.AvatarMaxBytes, def.AvatarMaxBytes)
	setZero(&cfg.AvatarMaxWidth, def.AvatarMaxWidth)
	setZero(&cfg.AvatarMaxHeight, def.AvatarMaxHeight)
	setZero(&cfg.AvatarMaxDecodedBytes, def.AvatarMaxDecodedBytes)
	setZero(&cfg.AvatarDecodes, def.AvatarDecodes)
	setZero(&cfg.MaxFileBytes, def.MaxFileBytes)
	setZero(&cfg.FileQuota, def.FileQuota)
	setZero(&cfg.FileURLLifetime, def.FileURLLifetime)
	setZero(&cfg.LoginRateLimit, def.LoginRateLimit)
	setZero(&cfg.RegisterRateLimit, def.RegisterRateLimit)
	setZero(&cfg.RateLimitWindow, def.RateLimitWindow)
	setZero(&cfg.AccountRateLimit, def.AccountRateLimit)
	setZero(&cfg.SearchRateLimit, def.SearchRateLimit)
	setZero(&cfg.SearchNameScan, def.SearchNameScan)
	setZero(&cfg.LoginFailures, def.LoginFailures)
	setZero(&cfg.LoginBackoffMax, def.LoginBackoffMax)
	setZero(&cfg.BodyLimit, def.BodyLimit)
	setZero(&cfg.MessageMaxChars, def.MessageMaxChars)
	setZero(&cfg.MaxGroupMembers, def.MaxGroupMembers)
	setZero(&cfg.MaxGroupsPerUser, def.MaxGroupsPerUser)
	setZero(&cfg.MessageRetention, def.MessageRetention)
	setZero(&cfg.EditWindow, def.EditWindow)
	setZero(&cfg.MaxWait, def.MaxWait)
	setZero(&cfg.SweepInterval, def.SweepInterval)
	setZero(&cfg.SendBatchSize, def.SendBatchSize)
	setZero(&cfg.StreamPingInterval, def.StreamPingInterval)
	setZero(&cfg.PresenceGrace, def.PresenceGrace)
	setZero(&cfg.PushDelay, def.PushDelay)
	setZero(&cfg.PushWorkers, def.PushWorkers)
	setZero(&cfg.PushQueue, def.PushQueue)
	setZero(&cfg.PushRetries, def.PushRetries)
	setZero(&cfg.PushMaxSubscriptions, def.PushMaxSubscriptions)
	if cfg.PushSubscriber == "" {
		cfg.PushSubscriber = pushSubscriber(cfg.PublicURL)
	}
	setZero(&cfg.QueryTimeout, def.QueryTimeout)
	setZero(&cfg.ShutdownTimeout, def.ShutdownTimeout)
	setZero(&cfg.RedisPrefix, def.RedisPrefix)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = def.Now
	}
	return cfg, cfg.validate()
}

// validate refuses a filled Config the module cannot use.
func (cfg Config) validate() error {
	switch {
	case !migrations.ValidPrefix(cfg.TablePrefix):
		return fmt.Errorf("fiberchat: invalid TablePrefix %q: letters, digits and _ only, at most 32", cfg.TablePrefix)
	case cfg.SignatureSkew < 0 || cfg.SignatureSkew > 12*time.Hour:
		return errors.New("fiberchat: SignatureSkew must be between 0 and 12h")
	case cfg.ClientCacheTTL < 0, cfg.TokenIdleLifetime < time.Minute, cfg.TokenTouchInterval < 0,
		cfg.RateLimitWindow < 0, cfg.SweepInterval < 0, cfg.LoginBackoffMax < 0:
		return errors.New("fiberchat: durations must be positive (TokenIdleLifetime at least a minute)")
	case cfg.SendWriters < 0 || cfg.SendWriters > 64:
		return errors.New("fiberchat: SendWriters must be between 1 and 64")
	case cfg.SendBatchSize < 1 || cfg.SendBatchSize > 1000:
		return errors.New("fiberchat: SendBatchSize must be between 1 and 1000")
	case cfg.MaxSessions < 0:
		return errors.New("fiberchat: MaxSessions must not be negative")
	case cfg.MaxGroupMembers < 2 || cfg.MaxGroupsPerUser < 1:
		return errors.New("fiberchat: MaxGroupMembers must be at least 2 and MaxGroupsPerUser at least 1")
	case cfg.MaxWaiters < 0:
		return errors.New("fiberchat: MaxWaiters must not be negative")
	case cfg.BcryptCost < 4 || cfg.BcryptCost > 31:
		return errors.New("fiberchat: BcryptCost must be between 4 and 31")
	case cfg.AvatarMaxBytes < 0 || cfg.AvatarMaxWidth < 0 || cfg.AvatarMaxHeight < 0 || cfg.AvatarMaxDecodedBytes < 0 || cfg.AvatarDecodes < 0 || cfg.MaxFileBytes < 0 || cfg.FileQuota < 0 || cfg.FileURLLifetime < 0 || cfg.BodyLimit < 0 || cfg.ClientCacheSize < 0 || cfg.TokenCacheSize < 0:
		return errors.New("fiberchat: size limits must not be negative")
	case cfg.MessageMaxChars < 0 || cfg.MessageMaxChars > maxMessageChars:
		return fmt.Errorf("fiberchat: MessageMaxChars must be between 1 and %d", maxMessageChars)
	case cfg.MaxWait > maxWait:
		return errors.New("fiberchat: MaxWait must be at most 30s (API.md's longest wait)")
	case cfg.PresenceGrace < 0:
		return errors.New("fiberchat: PresenceGrace must not be negative")
	case cfg.PushDelay < 0, cfg.PushWorkers < 0, cfg.PushQueue < 0, cfg.PushRetries < -1, cfg.PushMaxSubscriptions < 0:
		return errors.New("fiberchat: PushDelay, PushWorkers, PushQueue and PushMaxSubscriptions must be positive, PushRetries -1 or more")
	case !strings.HasPrefix(cfg.PushSubscriber, "mailto:") && !strings.HasPrefix(cfg.PushSubscriber, "https://"):
		return errors.New("fiberchat: PushSubscriber must be a mailto: or https: URL")
	case cfg.StreamPingInterval < 0:
		return errors.New("fiberchat: StreamPingInterval must be positive")
	case cfg.QueryTimeout < 0, cfg.ShutdownTimeout < 0:
		return errors.New("fiberchat: QueryTimeout and ShutdownTimeout must be positive")
	}
	return nil
}

const (
	// maxMessageChars is what a MySQL TEXT column (65535 bytes) holds at
	// four bytes a character.
	maxMessageChars = 16000
	// maxWait is the longest wait API.md lets a client ask for.
	maxWait = 30 * time.Second
)

// pushSubscriber is PushSubscriber's default: the site, when it is
// https, else a placeholder.
func pushSubscriber(publicURL string) string {
	if strings.HasPrefix(publicURL, "https://") {
		return publicURL
	}
	return "mailto:webpush@localhost"
}

// setZero sets *v to def when it is the zero value.
func setZero[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
