// Package module is what a host imports to add fiberchat to a Fiber site:
// New builds the chat service on the host's database, Migrate applies its
// schema, Mount puts its routes on any fiber.Router, and Close stops its
// background work. Hosts, the sample app, examples/host and the benchmark
// import it; no package of the module itself does (see
// docs/architecture.md).
//
//	chat, err := module.New(module.Config{DB: gdb})
//	err = chat.Migrate(ctx)
//	chat.Mount(app.Group("/chat"))
//	defer chat.Close()
package module

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/filestore"
	"github.com/fiberchat/fiberchat/handlers"
	"github.com/fiberchat/fiberchat/internal/avatar"
	"github.com/fiberchat/fiberchat/internal/deliver"
	"github.com/fiberchat/fiberchat/internal/park"
	"github.com/fiberchat/fiberchat/internal/presence"
	"github.com/fiberchat/fiberchat/internal/push"
	"github.com/fiberchat/fiberchat/internal/redisstore"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/migrations"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/notify"
	"github.com/libtnb/sqlite"
	"golang.org/x/sync/semaphore"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"
)

// Module is one fiberchat service. Its methods are safe for concurrent use.
type Module struct {
	cfg       Config
	db        *gorm.DB
	dialect   migrations.Dialect
	store     *models.Store
	decoder   *wire.Decoder
	signature *middleware.Signature
	users     *handlers.Users
	contacts  *handlers.Contacts
	messages  *handlers.Messages
	keys      *handlers.Keys
	// files serves uploads and downloads of message files; decodes is
	// the one semaphore avatar and image uploads decode under.
	files   *handlers.Files
	decodes *semaphore.Weighted
	// conversations serves history, read receipts and unread counts.
	conversations *handlers.Conversations
	groups        *handlers.Groups
	notifier      notify.Notifier
	// writer group-commits Sends; nil when SendBatchSize is 1.
	writer *models.MessageWriter
	// groupWriter stores group messages by group commit.
	groupWriter *models.GroupWriter
	// ownNotifier is set when the module made its notifier and so closes it.
	ownNotifier bool
	// parker parks idle long polls; nil unless Config.ParkLongPolls.
	parker *park.Parker
	// tokens is where the auth gate looks sessions up: the store, behind
	// a cache unless Config.TokenCacheTTL turned it off.
	tokens middleware.TokenSource
	events *events.Emitter
	// waiters holds every waiting long poll and stream, by uid: their
	// wake-ups, caps and notices. The handlers that cause notices hand
	// them to it directly; the host's OnEvent is not on their way.
	waiters *deliver.Hub
	// presence follows who is online from the waiters' comings and
	// goings; typingThrottle keeps typing notices to one per interval.
	presence *presence.Tracker
	// pusher sends Web Push to the recipients who stay away; push serves
	// its routes.
	pusher         *push.Pusher
	push           *handlers.Push
	typingThrottle handlers.Throttle
	// sessions forgets cached sessions when they end; nil without a cache.
	sessions handlers.SessionCache
	// cluster keeps the caches coherent across processes; nil without
	// Config.Redis. limits is then the rate limits' shared Storage.
	cluster *cluster
	limits  *redisstore.Storage
	// metrics are Config.Metrics' collectors; nil without it.
	metrics *metrics
	// profileCache is the profile cache newCaches made, for its Stats; nil
	// without one.
	profileCache *models.ProfileCache
	// mountPrefix is the prefix of the router Mount was given, for the
	// avatar URLs the module hands out.
	mountPrefix atomic.Pointer[string]

	// closing is closed by Close; held long polls wait on it, so that they
	// answer at once rather than hold up the host's shutdown.
	closing   chan struct{}
	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New builds the module on cfg.DB. It does not touch the schema (see
// Migrate) but starts the background sweep of expired sessions and old
// messages, which runs until Close. On SQLite it warns through
// Config.Logger when the handle is not set up as database.Open sets one:
// WAL, synchronous=FULL, a busy timeout and foreign keys
// (docs/security.md).
func New(cfg Config) (*Module, error) {
	cfg, err := configDefault(cfg)
	if err != nil {
		return nil, err
	}
	db, dialect, err := ownDB(cfg.DB, cfg.TablePrefix)
	if err != nil {
		return nil, err
	}
	cfg.SendWriters = sendWriters(cfg.SendWriters, dialect, db)
	if dialect == migrations.SQLite {
		pool, _ := db.DB() // ownDB has checked it
		checkSQLite(context.Background(), pool, cfg.QueryTimeout, cfg.Logger)
	}
	store := models.NewStore(db, cfg.QueryTimeout)
	m := &Module{
		cfg:     cfg,
		db:      db,
		dialect: dialect,
		store:   store,
		decoder: wire.NewDecoder(),
		closing: make(chan struct{}),
		metrics: newMetrics(cfg.Metrics),
		signature: middleware.NewSignature(middleware.SignatureConfig{
			Clients:   store,
			Location:  cfg.Location,
			Skew:      cfg.SignatureSkew,
			CacheTTL:  cfg.ClientCacheTTL,
			CacheSize: cfg.ClientCacheSize,
			Now:       cfg.Now,
		}),
	}
	m.events = events.NewEmitter(cfg.OnEvent, cfg.Logger)
	empty := ""
	m.mountPrefix.Store(&empty)
	// The waiters come first: the other processes' notes reach them.
	m.newMessaging()
	profiles, err := m.joinCluster(m.newCaches())
	if err != nil {
		m.stopMessaging()
		return nil, err
	}
	if err := m.newHandlers(profiles); err != nil {
		m.stopMessaging()
		return nil, err
	}
	if err := m.registerMetrics(); err != nil {
		m.stopMessaging()
		return nil, err
	}
	m.startBackground()
	return m, nil
}

// newCaches puts the session cache in front of the store for the auth
// gate, and returns the profile cache /user/info reads through; each is
// left out when its TTL turned it off (a nil ProfileSource reads the
// store).
func (m *Module) newCaches() handlers.ProfileSource {
	cfg := m.cfg
	m.tokens = m.store
	if cfg.TokenCacheTTL > 0 {
		cache := middleware.NewTokenCache(m.store, cfg.TokenCacheTTL, cfg.TokenCacheSize, cfg.Now)
		m.tokens, m.sessions = cache, cache
	}
	if cfg.ProfileCacheTTL > 0 {
		m.profileCache = models.NewProfileCache(m.store, cfg.ProfileCacheTTL, cfg.TokenCacheSize, cfg.Now)
		return m.profileCache
	}
	return nil
}

// newMessaging sets up what Sends and Recvs share: the notifier that wakes
// polls (the module's own unless Config gave one), the waiters it wakes,
// the parker, and the group-commit writer, whose commit goroutines start
// here.
func (m *Module) newMessaging() {
	cfg := m.cfg
	m.notifier = cfg.Notifier
	if m.notifier == nil {
		m.notifier, m.ownNotifier = m.defaultNotifier(), true
	}
	m.waiters = deliver.New(deliver.Config{Notifier: m.notifier, MaxWaiters: cfg.MaxWaiters,
		Changed: func(uid int64) { m.presence.Changed(uid) }})
	m.presence = m.newPresence()
	m.pusher = m.newPusher()
	if cfg.ParkLongPolls {
		m.parker = park.New(cfg.Logger)
	}
	if cfg.SendBatchSize > 1 {
		m.writer = models.NewMessageWriter(m.store, cfg.SendBatchSize)
		m.writer.OnCommit = m.metrics.observeCommit()
		m.writer.OnOwnPoolError = func(err error) {
			m.cfg.Logger.Warn("message writers: no connections of their own; each batch makes four round trips or more on the pool", "error", err.Error())
		}
		m.writer.Start(cfg.SendWriters)
	}
	m.groupWriter = models.NewGroupWriter(m.store, cfg.SendBatchSize)
	m.groupWriter.Start()
}

// stopMessaging undoes newMessaging for a New that fails after it.
func (m *Module) stopMessaging() {
	if m.writer != nil {
		m.writer.Stop()
	}
	m.groupWriter.Stop()
	m.pusher.Close()
	m.presence.Close()
	if m.ownNotifier {
		_ = m.notifier.Close()
	}
	m.cluster.close()
}

// newHandlers makes the route groups' handlers from the filled Config and
// what New has built so far.
func (m *Module) newHandlers(profiles handlers.ProfileSource) error {
	var err error
	m.decodes = semaphore.NewWeighted(int64(m.cfg.AvatarDecodes))
	m.files = m.newFiles()
	if m.users, err = m.newUsers(profiles); err != nil {
		return err
	}
	m.contacts = handlers.NewContacts(handlers.ContactsConfig{
		Store:    m.store,
		Decoder:  m.decoder,
		Now:      m.cfg.Now,
		Events:   m.events,
		Notices:  notices{m},
		Presence: &handlers.PresenceConfig{Store: m.store, Online: m.presence, Now: m.cfg.Now},
	})
	m.typingThrottle = m.loginRuns()
	m.conversations = handlers.NewConversations(handlers.ConversationsConfig{
		Store:   m.store,
		Files:   m.files,
		Decoder: m.decoder,
		Now:     m.cfg.Now,
		Events:  m.events,
		Notices: notices{m},
	})
	m.groups = handlers.NewGroups(handlers.GroupsConfig{
		Store:   m.store,
		Decoder: m.decoder,
		Now:     m.cfg.Now,
		Logger:  m.cfg.Logger,
		Limits:  models.GroupLimits{MaxMembers: m.cfg.MaxGroupMembers, MaxGroupsPerUser: m.cfg.MaxGroupsPerUser},
		Events:  m.events,
		Notices: notices{m},
	})
	m.messages = m.newMessages()
	m.keys = handlers.NewKeys(handlers.KeysConfig{
		Store:   m.store,
		Decoder: m.decoder,
		Now:     m.cfg.Now,
		Notices: notices{m},
		Logger:  m.cfg.Logger,
	})
	m.push = m.pushRoutes()
	return nil
}

// newUsers makes the user group's handlers.
func (m *Module) newUsers(profiles handlers.ProfileSource) (*handlers.Users, error) {
	cfg := m.cfg
	return handlers.NewUsers(handlers.UsersConfig{
		Store:        m.store,
		Decoder:      m.decoder,
		Now:          cfg.Now,
		IdleLifetime: cfg.TokenIdleLifetime,
		MaxSessions:  cfg.MaxSessions,
		BcryptCost:   cfg.BcryptCost,
		UploadDir:    cfg.UploadDir,
		Avatars:      m.avatarStore(),
		Avatar: avatar.Limits{MaxBytes: cfg.AvatarMaxBytes, MaxWidth: cfg.AvatarMaxWidth, MaxHeight: cfg.AvatarMaxHeight,
			MaxDecodedBytes: cfg.AvatarMaxDecodedBytes},
		Decodes: m.decodes,
		// An upload waits for a decode no longer than for the database:
		// either way it is answered 503/1503, to retry later.
		DecodeWait: cfg.QueryTimeout,
		AvatarURL:  m.avatarURL,
		Sessions:   m.sessions,
		Profiles:   profiles,
		Events:     m.events,
		Streams:    sessionEnds{m},
		Logger:     cfg.Logger,
		// The tracker is made before the handlers (newMessaging).
		PresenceShown: m.presenceShown,
	})
}

// newMessages makes the message group's handlers, storing through the
// group commit's writers when there are any.
func (m *Module) newMessages() *handlers.Messages {
	cfg := m.cfg
	var writer handlers.MessageWriter = m.store
	if m.writer != nil {
		writer = m.writer
	}
	return handlers.NewMessages(handlers.MessagesConfig{
		Store:          m.store,
		Writer:         writer,
		GroupWriter:    m.groupWriter,
		Updates:        m.store,
		EditWindow:     cfg.EditWindow,
		Decoder:        m.decoder,
		Notifier:       m.notifier,
		Now:            cfg.Now,
		Logger:         cfg.Logger,
		MaxChars:       cfg.MessageMaxChars,
		AllowStrangers: cfg.AllowStrangers,
		MaxWait:        cfg.MaxWait,
		Closing:        m.closing,
		Parker:         m.parker,
		BeforeSend:     cfg.BeforeSend,
		Events:         m.events,
		Waiters:        m.waiters,
		Tokens:         m.tokens,
		PingInterval:   cfg.StreamPingInterval,
		Files:          m.files,
		Push:           m.pusher,
	})
}

// newFiles makes the files' handlers (API.md §13): contents in
// Config.Files or the database, images decoded within the avatars'
// dimension limits and under their semaphore, URLs signed with a key
// kept in the database, so that every instance signs alike.
func (m *Module) newFiles() *handlers.Files {
	cfg := m.cfg
	blobs := cfg.Files
	if blobs == nil {
		blobs = filestore.NewDB(m.db, cfg.TablePrefix+"file_chunks", cfg.QueryTimeout)
	}
	return handlers.NewFiles(handlers.FilesConfig{
		Rows:        m.store,
		Blobs:       blobs,
		Key:         m.fileURLKey,
		URLLifetime: cfg.FileURLLifetime,
		Base:        m.fileBase,
		MaxBytes:    cfg.MaxFileBytes,
		Quota:       cfg.FileQuota,
		Image: avatar.Limits{MaxBytes: cfg.MaxFileBytes, MaxWidth: cfg.AvatarMaxWidth, MaxHeight: cfg.AvatarMaxHeight,
			MaxDecodedBytes: cfg.AvatarMaxDecodedBytes},
		Decodes:    m.decodes,
		DecodeWait: cfg.QueryTimeout,
		Now:        cfg.Now,
		Logger:     cfg.Logger,
	})
}

// fileURLKey is the key file URLs are signed with: 32 random bytes the
// first instance stores, which every other reads.
func (m *Module) fileURLKey(ctx context.Context) ([]byte, error) {
	v, err := m.store.Secret(ctx, "file_url_key", func() (string, error) {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		return hex.EncodeToString(b[:]), nil
	})
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(v)
}

// fileBase is what file URLs start with: PublicURL, else the mount
// prefix (a path on whichever server the client called).
func (m *Module) fileBase() string {
	if m.cfg.PublicURL != "" {
		return strings.TrimSuffix(m.cfg.PublicURL, "/")
	}
	return *m.mountPrefix.Load()
}

// startBackground starts the sweep, which runs until Close.
func (m *Module) startBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	m.wg.Add(1)
	go m.sweep(ctx)
}

// ownDB gives the module a *gorm.DB of its own on the host's connection
// pool: the table prefix lives in its naming strategy, and GORM's schema
// cache is its own, so the host's models and settings are never affected.
func ownDB(host *gorm.DB, prefix string) (*gorm.DB, migrations.Dialect, error) {
	pool, err := host.DB()
	if err != nil {
		return nil, "", fmt.Errorf("fiberchat: Config.DB has no connection pool: %w", err)
	}
	var (
		dialector gorm.Dialector
		dialect   migrations.Dialect
	)
	switch host.Dialector.Name() {
	case "mysql":
		cfg := mysql.Config{Conn: pool}
		if d, ok := host.Dialector.(*mysql.Dialector); ok && d.Config != nil {
			// The host's DSN, if it gave one, lets the message writers
			// open connections of their own (models.MessageWriter).
			cfg.DSN, cfg.DSNConfig, cfg.DriverName = d.DSN, d.DSNConfig, d.DriverName
		}
		dialector, dialect = mysql.New(cfg), migrations.MySQL
	case "sqlite":
		dialector, dialect = &sqlite.Dialector{Conn: pool}, migrations.SQLite
	default:
		return nil, "", fmt.Errorf("fiberchat: unsupported database %q (MySQL/MariaDB or SQLite)", host.Dialector.Name())
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		NamingStrategy:         schema.NamingStrategy{TablePrefix: prefix},
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		// No PrepareStmt: GORM prepares a statement inside a transaction
		// on the pool, not on the transaction's connection, which with
		// SQLite's single connection waits forever.
	})
	if err != nil {
		return nil, "", fmt.Errorf("fiberchat: prepare database: %w", err)
	}
	return db, dialect, nil
}

// Migrate applies the module's pending schema migrations.
func (m *Module) Migrate(ctx context.Context) error {
	pool, err := m.db.DB()
	if err != nil {
		return err
	}
	if err := migrations.Up(ctx, pool, m.dialect, m.cfg.TablePrefix, m.cfg.Logger); err != nil {
		return err
	}
	return m.makePushKey(ctx)
}

// DB returns the module's *gorm.DB (the host's pool, the module's table
// prefix), for hosts that read or join the module's tables.
func (m *Module) DB() *gorm.DB { return m.db }

// Ping reports whether the database answers.
func (m *Module) Ping(ctx context.Context) error { return m.store.Ping(ctx) }

// ErrClientExists is returned by CreateClient for a client_id in use.
var ErrClientExists = errors.New("fiberchat: client id already exists")

// CreateClient adds an API client. An empty secret is replaced by a random
// one; the secret in use is returned.
func (m *Module) CreateClient(ctx context.Context, clientID, secret, name string) (string, error) {
	if clientID == "" || len(clientID) > 20 || !wire.NoControl(clientID) {
		return "", errors.New("fiberchat: client id must be 1 to 20 characters")
	}
	secret, err := clientSecret(secret)
	if err != nil {
		return "", err
	}
	now := m.cfg.Now().Unix()
	err = m.store.CreateClient(ctx, &models.APIClient{ClientID: clientID, Secret: secret, Name: name, CreatedAt: now, UpdatedAt: now})
	if errors.Is(err, models.ErrDuplicate) {
		return "", ErrClientExists
	}
	if err != nil {
		return "", err
	}
	m.forgetClient(clientID)
	return secret, nil
}

// Client is an API client as listed: never its secret.
type Client struct {
	ClientID  string `json:"client_id"`
	Name      string `json:"name"`
	Disabled  bool   `json:"disabled"`
	CreatedAt int64  `json:"created_at"`
}

// ListClients lists the API clients, without their secrets.
func (m *Module) ListClients(ctx context.Context) ([]Client, error) {
	rows, err := m.store.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Client, len(rows))
	for i, r := range rows {
		out[i] = Client{ClientID: r.ClientID, Name: r.Name, Disabled: r.Disabled, CreatedAt: r.CreatedAt}
	}
	return out, nil
}

// ErrNoSuchClient is returned for a client_id that does not exist.
var ErrNoSuchClient = errors.New("fiberchat: no such client")

// SetClientDisabled disables (or re-enables) an API client. This process
// honours it at once, and so do the others with Config.Redis; without it,
// others within Config.ClientCacheTTL.
func (m *Module) SetClientDisabled(ctx context.Context, clientID string, disabled bool) error {
	err := m.store.SetClientDisabled(ctx, clientID, disabled, m.cfg.Now().Unix())
	if errors.Is(err, models.ErrNotFound) {
		return ErrNoSuchClient
	}
	if err != nil {
		return err
	}
	m.forgetClient(clientID)
	return nil
}

// ResetClientSecret gives an API client a new secret (a random one when
// secret is empty) and returns it. Tokens signed with the old secret are
// refused from then on: by this process at once, by the others with
// Config.Redis at once too, else within Config.ClientCacheTTL.
// ErrNoSuchClient if there is no such client.
func (m *Module) ResetClientSecret(ctx context.Context, clientID, secret string) (string, error) {
	secret, err := clientSecret(secret)
	if err != nil {
		return "", err
	}
	err = m.store.SetClientSecret(ctx, clientID, secret, m.cfg.Now().Unix())
	if errors.Is(err, models.ErrNotFound) {
		return "", ErrNoSuchClient
	}
	if err != nil {
		return "", err
	}
	m.forgetClient(clientID)
	return secret, nil
}

// clientSecret is the secret a client is given: secret, checked, or a
// random one when it is empty.
func clientSecret(secret string) (string, error) {
	if secret == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		secret = hex.EncodeToString(b[:])
	}
	if len(secret) < 8 || len(secret) > 128 || !wire.NoControl(secret) {
		return "", errors.New("fiberchat: client secret must be 8 to 128 characters")
	}
	return secret, nil
}

// CountClients reports how many API clients exist.
func (m *Module) CountClients(ctx context.Context) (int64, error) {
	return m.store.CountClients(ctx)
}

// ErrShutdownTimeout is returned by Close when the module's background
// work had not stopped within Config.ShutdownTimeout.
var ErrShutdownTimeout = errors.New("fiberchat: background work still running after ShutdownTimeout")

// Close answers every held or parked Recv long poll at once (with what it
// has: nothing; a parked one with "Connection: close"), ends every open
// /Message/Stream with "event: bye" (reason shutdown), closes the idle
// keep-alive connections that parked polls handed back (the server closes
// its own idle ones when it shuts down), stops the module's background
// work and waits for it, at most Config.ShutdownTimeout: a stuck database
// cannot hold a shutdown up (ErrShutdownTimeout; what still runs ends
// within QueryTimeout). Call it before shutting the server down, or a
// graceful shutdown waits for held polls to run out. A Recv after Close is
// answered without waiting; the other routes keep working. The database
// belongs to the host and stays open.
func (m *Module) Close() error {
	m.closeOnce.Do(func() {
		stopped := make(chan error, 1)
		go func() { stopped <- m.shutdown() }()
		timer := time.NewTimer(m.cfg.ShutdownTimeout)
		defer timer.Stop()
		select {
		case m.closeErr = <-stopped:
		case <-timer.C:
			m.closeErr = ErrShutdownTimeout
			m.cfg.Logger.Warn("close", "error", m.closeErr.Error())
		}
		m.cluster.close()
		m.unregisterMetrics()
	})
	return m.closeErr
}

// shutdown is Close's work, run on a goroutine of its own so that Close
// can stop waiting for it.
func (m *Module) shutdown() error {
	close(m.closing)
	// Parked polls are not the server's to wait for in a graceful
	// shutdown: this writes their answers before returning.
	m.parker.Close()
	m.stop()
	if m.writer != nil {
		m.writer.Stop()
	}
	m.groupWriter.Stop()
	m.wg.Wait()
	m.pusher.Close()
	m.presence.Close()
	if m.ownNotifier {
		return m.notifier.Close()
	}
	return nil
}

// sweep deletes expired sessions and messages past retention every
// SweepInterval until ctx ends.
func (m *Module) sweep(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.sweepOnce(ctx)
		}
	}
}

const sweepBatch = 500

func (m *Module) sweepOnce(ctx context.Context) {
	now := m.cfg.Now()
	m.sweepBatches(ctx, "sweep expired sessions", func() (int64, error) {
		return m.store.DeleteExpiredTokens(ctx, now.Unix(), sweepBatch)
	})
	if m.cfg.MessageRetention > 0 {
		cutoff := now.Add(-m.cfg.MessageRetention).Unix()
		m.sweepBatches(ctx, "purge old messages", func() (int64, error) {
			return m.store.DeleteMessagesBefore(ctx, cutoff, sweepBatch)
		})
		m.sweepBatches(ctx, "forget ended memberships", func() (int64, error) {
			return m.store.DeleteEndedMemberships(ctx, sweepBatch)
		})
	}
	// After the purge, so that the files of messages it purged go in
	// the same sweep; with uploads never sent for a day.
	m.sweepBatches(ctx, "delete files", func() (int64, error) {
		return m.files.Sweep(ctx, sweepBatch)
	})
}

// sweepBatches runs one batched delete until a batch comes back short.
// Each batch is its own statement, so no lock is held for long and Sends
// and logins go on between batches.
func (m *Module) sweepBatches(ctx context.Context, what string, batch func() (int64, error)) {
	for ctx.Err() == nil {
		n, err := batch()
		if err != nil {
			if ctx.Err() == nil {
				m.cfg.Logger.Warn(what, "error", err.Error())
			}
			return
		}
		if n < sweepBatch {
			return
		}
	}
}

// errNoRoute answers any path under the mount prefix that is no route.
var errNoRoute = apierr.NotFound("no such route")

// SweepNow runs one sweep of expired sessions at once, as the background
// sweep does every SweepInterval.
func (m *Module) SweepNow(ctx context.Context) { m.sweepOnce(ctx) }
