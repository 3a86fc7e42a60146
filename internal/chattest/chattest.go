// Package chattest is the test harness shared by fiberchat's tests (module,
// models, migrations, sample-app, examples/host): a fresh database per test
// on SQLite and, when FIBERCHAT_TEST_MYSQL_DSN is set, on MariaDB/MySQL
// too; a module mounted in a Fiber app; and a client that signs requests
// through module.APIToken, as any client would.
package chattest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/module"
	gomysql "github.com/go-sql-driver/mysql"
	"github.com/gofiber/fiber/v2"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// MySQLEnv names the variable holding the base MariaDB/MySQL DSN (a
// go-sql-driver DSN); each test gets a fresh database beside it.
const MySQLEnv = "FIBERCHAT_TEST_MYSQL_DSN"

// DB is one database a test runs on.
type DB struct {
	Name string // "sqlite" or "mysql"
	DSN  string // in the sample app's form
	Gorm *gorm.DB
}

// EachDB runs fn as a subtest on a fresh SQLite database and, when
// FIBERCHAT_TEST_MYSQL_DSN is set, on a fresh MariaDB/MySQL database.
func EachDB(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, OpenSQLite(t)) })
	t.Run("mysql", func(t *testing.T) {
		base := os.Getenv(MySQLEnv)
		if base == "" {
			t.Skip(MySQLEnv + " is not set: skipping the MariaDB half (.ci/run sets it)")
		}
		fn(t, OpenMySQL(t, base))
	})
}

// OpenSQLite opens a fresh SQLite file in the test's temp dir.
func OpenSQLite(t testing.TB) *DB {
	t.Helper()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "chat.db")
	return open(t, "sqlite", dsn)
}

// OpenMySQL creates a fresh database next to base's and drops it after
// the test.
func OpenMySQL(t testing.TB, base string) *DB {
	t.Helper()
	cfg, err := gomysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("parse %s: %v", MySQLEnv, err)
	}
	admin := open(t, "mysql", "mysql:"+base)
	name := "fiberchat_test_" + randomHex(6)
	if err := admin.Gorm.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4").Error; err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() { _ = admin.Gorm.Exec("DROP DATABASE IF EXISTS " + name).Error })
	cfg.DBName = name
	return open(t, "mysql", "mysql:"+cfg.FormatDSN())
}

// PoolOnly returns db as a host that hands GORM an open pool gives it to
// the module: the same pool, and no DSN. The module's message writers then
// take their connections from that pool too, rather than opening their
// own on the DSN, so closing it closes every connection the module has.
// A SQLite db is returned as it is.
func PoolOnly(t testing.TB, db *DB) *DB {
	t.Helper()
	if db.Name != "mysql" {
		return db
	}
	pool, err := db.Gorm.DB()
	if err != nil {
		t.Fatal(err)
	}
	g, err := gorm.Open(mysql.New(mysql.Config{Conn: pool}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return &DB{Name: db.Name, DSN: db.DSN, Gorm: g}
}

// WithCharset opens the MariaDB/MySQL database of db again on a DSN whose
// charset is charset (go-sql-driver then sends SET NAMES charset), as a
// host whose site uses gbk, say, opens it.
func WithCharset(t testing.TB, db *DB, charset string) *DB {
	t.Helper()
	cfg, err := gomysql.ParseDSN(strings.TrimPrefix(db.DSN, "mysql:"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Apply(gomysql.Charset(charset, "")); err != nil {
		t.Fatal(err)
	}
	return open(t, "mysql", "mysql:"+cfg.FormatDSN())
}

func open(t testing.TB, name, dsn string) *DB {
	t.Helper()
	g, err := database.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { _ = database.Close(g) })
	return &DB{Name: name, DSN: dsn, Gorm: g}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Clock is a settable clock for module.Config.Now.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Server is a module mounted in a Fiber app, with one API client.
type Server struct {
	App      *fiber.App
	Module   *module.Module
	DB       *DB
	Clock    *Clock
	Prefix   string
	ClientID string
	Secret   string
	// Logs collects what the module logged.
	Logs *SyncBuffer
}

// Options adjust NewServer.
type Options struct {
	// Prefix mounts the module at a group ("/chat"); empty mounts at the root.
	Prefix string
	// Config is changed before New; DB, Now, Logger, UploadDir and a low
	// BcryptCost are set already.
	Config func(*module.Config)
	// App is changed before the module is mounted (host routes, say).
	App func(*fiber.App)
}

// NewServer migrates db, builds the module and mounts it.
func NewServer(t testing.TB, db *DB, opts Options) *Server {
	t.Helper()
	clock := NewClock(time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC))
	m, app, logs := mountModule(t, db, clock, opts.Prefix, opts)
	if err := m.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	secret, err := m.CreateClient(context.Background(), "test", "", "Test client")
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	return &Server{App: app, Module: m, DB: db, Clock: clock, Prefix: opts.Prefix, ClientID: "test", Secret: secret, Logs: logs}
}

// mountModule builds a module on db with the test settings, changed by
// opts.Config, and mounts it at prefix of a new Fiber app, changed first
// by opts.App: what NewServer and Twin share. It neither migrates nor
// makes an API client.
func mountModule(t testing.TB, db *DB, clock *Clock, prefix string, opts Options) (*module.Module, *fiber.App, *SyncBuffer) {
	t.Helper()
	logs := &SyncBuffer{}
	cfg := module.Config{
		DB:         db.Gorm,
		Now:        clock.Now,
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
		UploadDir:  filepath.Join(t.TempDir(), "uploads"),
		BcryptCost: 4,
	}
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	m, err := module.New(cfg)
	if err != nil {
		t.Fatalf("module.New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	app := fiber.New(fiber.Config{BodyLimit: 16 << 20, DisableStartupMessage: true})
	if opts.App != nil {
		opts.App(app)
	}
	if prefix == "" {
		m.Mount(app)
	} else {
		m.Mount(app.Group(prefix))
	}
	return m, app, logs
}

// Sign returns the api_token for path (relative to the mount prefix) on
// the server clock's day, as a client signs it: through the module's
// public API.
func (s *Server) Sign(path string) string {
	return s.Module.APIToken(path, s.Secret, s.Clock.Now())
}

// Response is a decoded answer.
type Response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// Int reads a numeric body field.
func (r *Response) Int(key string) int64 {
	f, _ := r.Body[key].(float64)
	return int64(f)
}

// Str reads a string body field.
func (r *Response) Str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// Code is the envelope's error code.
func (r *Response) Code() int64 { return r.Int("error") }

// Req is one request to send.
type Req struct {
	Path string
	// JSON is marshalled as the body unless Body is set.
	JSON any
	// Body and ContentType send a raw body.
	Body        []byte
	ContentType string
	Header      map[string]string
	// Unsigned leaves out client_id and api_token.
	Unsigned bool
	Method   string
}

// Do sends r and decodes the answer, failing the test if the answer is not
// a JSON object.
func (s *Server) Do(t testing.TB, r Req) *Response {
	t.Helper()
	body := r.Body
	ctype := r.ContentType
	if body == nil && r.JSON != nil {
		b, err := json.Marshal(r.JSON)
		if err != nil {
			t.Fatal(err)
		}
		body, ctype = b, "application/json"
	}
	target := s.Prefix + r.Path
	if !r.Unsigned {
		path, _, _ := strings.Cut(r.Path, "?")
		q := url.Values{"client_id": {s.ClientID}, "api_token": {s.Sign(path)}}
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + q.Encode()
	}
	method := r.Method
	if method == "" {
		method = http.MethodPost
	}
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := s.App.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, r.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %v: %q", method, r.Path, err, raw)
		}
	}
	return out
}

// Post sends a signed JSON request.
func (s *Server) Post(t testing.TB, path string, body any) *Response {
	t.Helper()
	return s.Do(t, Req{Path: path, JSON: body})
}

// User is a registered, logged-in user.
type User struct {
	UID      int64
	Token    string
	Password string
	Name     string
}

// Creds returns the user's credentials merged into fields, as a JSON body.
func (u User) Creds(fields map[string]any) map[string]any {
	out := map[string]any{"uid": u.UID, "access_token": u.Token}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

// NewUser registers and logs in a user through the SDK, as any client
// would.
func (s *Server) NewUser(t testing.TB, name string) User {
	t.Helper()
	pw := "secret-" + name
	c := s.SDK(t)
	ctx := context.Background()
	uid, err := c.Register(ctx, name, pw)
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	sess, err := c.Login(ctx, uid, pw)
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	if sess.AccessToken == "" {
		t.Fatalf("login %s: no access_token", name)
	}
	return User{UID: uid, Token: sess.AccessToken, Password: pw, Name: name}
}

// Expect fails the test unless r has the status and envelope code given.
func Expect(t testing.TB, r *Response, status int, code int64) {
	t.Helper()
	if r.Status != status || r.Code() != code {
		t.Fatalf("got %d error=%d (%s), want %d error=%d", r.Status, r.Code(), r.Raw, status, code)
	}
	if _, ok := r.Body["msg"]; !ok {
		t.Fatalf("answer has no msg: %s", r.Raw)
	}
}

// Count returns how many rows of table (without prefix) match where.
func (s *Server) Count(t testing.TB, table string, where string, args ...any) int64 {
	t.Helper()
	var n int64
	q := s.Module.DB().Table("chat_" + table)
	if where != "" {
		q = q.Where(where, args...)
	}
	if err := q.Count(&n).Error; err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// Fatalf-friendly formatting of a response for messages.
func (r *Response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Raw) }
