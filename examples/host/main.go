// Command host is an example of adding fiberchat to a Fiber site that
// already has its own users, login, tables and error handler: for a host's
// developers to read and copy, its tests the proof that it works.
//
// The site keeps its users table, its session cookie, its HTML error pages
// and its routes; fiberchat is mounted at /chat, keeps its tables under the
// chat_ prefix, and gives the site's signed-in users a chat session from
// GET /chat-token without a second registration, and serves them
// fiberchat's web chat page at /app/ on that session. The site adds its own
// columns (email, level) to the chat users table, audits chat events into
// its own table, and refuses spam before it is stored.
//
// Usage:
//
//	go run ./examples/host [-dsn DSN] [-addr HOST:PORT] [-upload-dir DIR]
//
// The defaults are sqlite:host.db, 127.0.0.1:8090 and ./uploads; the
// environment may set them as HOST_DSN, HOST_ADDR and HOST_UPLOAD_DIR. Also
// read from the environment: HOST_SESSION_KEY (hex, at least 32 bytes;
// default random, so sessions end with the process), HOST_CHAT_SECRET (the
// web page's API client secret; default generated once and kept), and
// HOST_DEMO_PASSWORD (the demo accounts' password; default random, logged
// at start).
//
// On start it seeds two demo accounts, alice@example.com and
// bob@example.com, and logs their password.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/fiberchat/fiberchat/internal/database"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal starts the graceful shutdown, a second one
	// kills the process the default way.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		os.Exit(1)
	}
}

// run is the whole program with its environment passed in: it serves until
// ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("host", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", envOr(getenv, "HOST_DSN", "sqlite:host.db"), `database: "sqlite:<path>" or "mysql:<go-sql-driver DSN>"`)
	addr := fs.String("addr", envOr(getenv, "HOST_ADDR", "127.0.0.1:8090"), "address to listen on")
	uploadDir := fs.String("upload-dir", envOr(getenv, "HOST_UPLOAD_DIR", "./uploads"), "directory for chat avatars")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	key, err := sessionKey(getenv("HOST_SESSION_KEY"), log)
	if err != nil {
		return err
	}
	gdb, err := database.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer database.Close(gdb)

	app, chat, err := newApp(ctx, gdb, hostConfig{
		SessionKey:       key,
		ChatClientSecret: getenv("HOST_CHAT_SECRET"),
		UploadDir:        *uploadDir,
		Logger:           log,
	})
	if err != nil {
		return err
	}
	defer chat.Close()
	if err := seedDemo(ctx, gdb, getenv("HOST_DEMO_PASSWORD"), log); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Info("listening", "url", "http://"+ln.Addr().String())
	// Until SIGINT/SIGTERM; then the chat first: it answers held long polls
	// at once, so the server's graceful shutdown does not wait for them.
	return chat.Serve(ctx, app, ln, shutdownTimeout)
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// sessionKey decodes HOST_SESSION_KEY, or makes a random key when it is
// unset (sessions then end when the process does).
func sessionKey(hexKey string, log *slog.Logger) ([]byte, error) {
	if hexKey != "" {
		key, err := hex.DecodeString(hexKey)
		if err != nil || len(key) < 32 {
			return nil, errors.New("HOST_SESSION_KEY must be at least 32 bytes, hex-encoded")
		}
		return key, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	log.Info("HOST_SESSION_KEY is not set: using a random key; sessions end when the process does")
	return key, nil
}

// demoAccounts are seeded on every start.
var demoAccounts = []struct {
	email, name string
	level       int
}{
	{"alice@example.com", "Alice", 2},
	{"bob@example.com", "Bob", 1},
}

// seedDemo creates (or resets) the demo accounts with password, or with a
// random one when it is empty, and logs it: a demo convenience, not
// something a real site does.
func seedDemo(ctx context.Context, gdb *gorm.DB, password string, log *slog.Logger) error {
	if password == "" {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		password = hex.EncodeToString(b)
	}
	for _, a := range demoAccounts {
		if _, err := upsertUser(ctx, gdb, a.email, a.name, password, a.level, bcrypt.DefaultCost); err != nil {
			return err
		}
	}
	log.Info("demo accounts ready", "emails", "alice@example.com, bob@example.com", "password", password)
	return nil
}
