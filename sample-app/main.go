// Command sample is fiberchat's sample host: a Fiber app that serves the
// module mounted at "/", the commands to prepare its database, and a
// terminal chat to try it with. It is what README's set-up runs, and a
// server to point a client at.
//
// Usage:
//
//	sample serve [--dsn DSN] [--addr HOST:PORT] [--upload-dir DIR] [--redis URL] [--metrics] [--access-log]
//	sample migrate [--dsn DSN]
//	sample client create [--dsn DSN] --id ID [--secret S] [--name N]
//	sample client list [--dsn DSN]
//	sample client show-secret [--dsn DSN] --id ID
//	sample client reset-secret [--dsn DSN] --id ID [--secret S] [--redis URL]
//	sample client disable [--dsn DSN] --id ID [--redis URL]
//	sample chat [--url URL] [--client-id ID] --secret S (--uid UID | --register NAME) --password P
//
// Build it with `go build -o sample ./sample-app` (API.md §6 names it
// sample), or run it from the repository with `go run ./sample-app …`.
//
// serve migrates the database and serves the chat API, plus GET /healthz
// and the web chat page at /app/ (see webapp.go), whose URL it prints,
// until SIGINT or SIGTERM; on a database with no API client it first
// creates one named "demo" and prints its secret. migrate applies
// pending migrations and exits. client create adds an API client (migrating
// first, and generating a secret when none is given) and prints
// {"client_id":"…","client_secret":"…"}; client list prints one JSON object
// per client, never its secret; client show-secret prints one client's id
// and secret as create does, and client reset-secret gives it a new one
// (random unless --secret is given) and prints that; client disable
// disables one.
//
// chat is a chat session at the terminal, through package client: it logs
// in as --uid (or registers --register NAME first and prints the new uid),
// prints messages as they arrive, and reads commands from stdin, one a
// line (/help lists them; any other line is sent to the open
// conversation). Its defaults are http://127.0.0.1:8080 and the "demo"
// client, whose secret serve prints on first start; a wrong password
// exits 1.
//
// A DSN is "sqlite:<path>" or "mysql:<go-sql-driver DSN>"; the defaults are
// sqlite:fiberchat.db, 127.0.0.1:8080 and ./uploads. Every flag may also be
// set in the environment as FIBERCHAT_<FLAG>, upper-cased with dashes as
// underscores (FIBERCHAT_DSN, FIBERCHAT_UPLOAD_DIR); a flag on the command
// line wins. Errors are one line on stderr and exit status 1; a misused
// command line exits 2.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal starts the graceful shutdown, a second one
	// kills the process the default way.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage:
  sample serve [--dsn DSN] [--addr HOST:PORT] [--upload-dir DIR] [--redis URL] [--metrics] [--access-log]
  sample migrate [--dsn DSN]
  sample client create [--dsn DSN] --id ID [--secret S] [--name N]
  sample client list [--dsn DSN]
  sample client show-secret [--dsn DSN] --id ID
  sample client reset-secret [--dsn DSN] --id ID [--secret S] [--redis URL]
  sample client disable [--dsn DSN] --id ID [--redis URL]
  sample chat [--url URL] [--client-id ID] --secret S (--uid UID | --register NAME) --password P

DSN is sqlite:<path> or mysql:<go-sql-driver DSN> (default sqlite:fiberchat.db).
--redis redis://HOST:PORT/DB joins the instances serving one database.
--metrics serves Prometheus metrics at GET /metrics; --access-log logs each request.
Every flag may also be set as FIBERCHAT_<FLAG> in the environment
(FIBERCHAT_DSN, FIBERCHAT_ADDR, FIBERCHAT_UPLOAD_DIR, ...); the command line wins.
chat's defaults are --url http://127.0.0.1:8080 and --client-id demo; type /help in it.
`

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line is wrong
)

// run is the whole program, with its environment passed in so tests can
// drive it: args without the program name, getenv for FIBERCHAT_*
// variables, stdin for chat's commands, and ctx ending serve and chat.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], getenv, stderr)
	case "chat":
		return chatCmd(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "client":
		if len(args) < 2 {
			break
		}
		switch args[1] {
		case "create":
			return clientCreate(ctx, args[2:], getenv, stdout, stderr)
		case "list":
			return clientList(ctx, args[2:], getenv, stdout, stderr)
		case "disable":
			return clientDisable(ctx, args[2:], getenv, stdout, stderr)
		case "show-secret":
			return clientShowSecret(ctx, args[2:], getenv, stdout, stderr)
		case "reset-secret":
			return clientResetSecret(ctx, args[2:], getenv, stdout, stderr)
		}
	}
	fmt.Fprint(stderr, usage)
	return exitUsage
}

// newFlags starts the flag set of one command; every command takes --dsn.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(command+" "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", "sqlite:fiberchat.db", "database: sqlite:<path> or mysql:<go-sql-driver DSN>")
	return fs, dsn
}

// parseFlags parses args into fs, then fills every flag not given on the
// command line from FIBERCHAT_<FLAG>. It returns an exit status when the
// command should stop: 0 after -h, 2 for a bad command line.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false // fs has printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, false
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var bad error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || bad != nil {
			return
		}
		key := envName(f.Name)
		if v := getenv(key); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				bad = fmt.Errorf("%s: %w", key, err)
			}
		}
	})
	if bad != nil {
		fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), bad)
		return exitUsage, false
	}
	return exitOK, true
}

// envName is the environment variable for a flag: upload-dir →
// FIBERCHAT_UPLOAD_DIR.
func envName(flagName string) string {
	return "FIBERCHAT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// command is the program's name in everything it prints, one name
// throughout: API.md §6 builds it as sample.
const command = "sample"

// fail prints err as the one line `sample: <message>` and returns exit
// status 1.
func fail(stderr io.Writer, err error) int {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	fmt.Fprintf(stderr, "%s: %s\n", command, msg)
	return exitError
}

// withModule opens the database dsn names, builds the module on it and
// hands both to fn, closing them afterwards.
func withModule(ctx context.Context, dsn string, cfg module.Config, fn func(*module.Module, *gorm.DB) error) error {
	gdb, err := database.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer database.Close(gdb)
	cfg.DB = gdb
	chat, err := module.New(cfg)
	if err != nil {
		return err
	}
	defer chat.Close()
	return fn(chat, gdb)
}

// oneClient is what every client subcommand that names one client does
// around its own step fn: it wants --id (without one it prints the usage
// and returns exitUsage), opens the Redis redisURL names, if any (with
// one, running instances hear of the change at once), and runs fn on
// the module built on the database dsn names. It returns the exit
// status: exitOK once fn succeeded, else exitError with fn's error said
// in one line.
func oneClient(ctx context.Context, fs *flag.FlagSet, stderr io.Writer, dsn, id, redisURL string, fn func(*module.Module) error) int {
	if id == "" {
		fmt.Fprintln(stderr, fs.Name()+": --id is required")
		fs.Usage()
		return exitUsage
	}
	rdb, closeRedis, err := openRedis(redisURL)
	if err != nil {
		return fail(stderr, err)
	}
	defer closeRedis()
	err = withModule(ctx, dsn, module.Config{Logger: cliLogger(stderr), Redis: rdb}, func(chat *module.Module, _ *gorm.DB) error {
		return fn(chat)
	})
	if err != nil {
		return fail(stderr, err)
	}
	return exitOK
}

// cliLogger keeps the one-shot commands quiet but for warnings.
func cliLogger(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	fs, dsn := newFlags("migrate", stderr)
	if code, ok := parseFlags(fs, args, getenv); !ok {
		return code
	}
	err := withModule(ctx, *dsn, module.Config{Logger: cliLogger(stderr)}, func(chat *module.Module, _ *gorm.DB) error {
		return chat.Migrate(ctx)
	})
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stderr, "migrations applied")
	return exitOK
}

func clientCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs, dsn := newFlags("client create", stderr)
	id := fs.String("id", "", "client_id, 1 to 20 characters (required)")
	secret := fs.String("secret", "", "client_secret, 8 to 128 characters (default: a random one)")
	name := fs.String("name", "", "a description of the client")
	if code, ok := parseFlags(fs, args, getenv); !ok {
		return code
	}
	var used string
	code := oneClient(ctx, fs, stderr, *dsn, *id, "", func(chat *module.Module) error {
		if err := chat.Migrate(ctx); err != nil {
			return err
		}
		var err error
		used, err = chat.CreateClient(ctx, *id, *secret, *name)
		if errors.Is(err, module.ErrClientExists) {
			return fmt.Errorf("client %q already exists", *id)
		}
		return err
	})
	if code != exitOK {
		return code
	}
	return printClient(stdout, stderr, *id, used)
}

func clientList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs, dsn := newFlags("client list", stderr)
	if code, ok := parseFlags(fs, args, getenv); !ok {
		return code
	}
	var clients []module.Client
	err := withModule(ctx, *dsn, module.Config{Logger: cliLogger(stderr)}, func(chat *module.Module, _ *gorm.DB) error {
		var err error
		clients, err = chat.ListClients(ctx)
		return err
	})
	if err != nil {
		return fail(stderr, err)
	}
	// One JSON object a line: greppable, and jq reads it as a stream.
	enc := json.NewEncoder(stdout)
	for _, c := range clients {
		if err := enc.Encode(c); err != nil {
			return fail(stderr, err)
		}
	}
	return exitOK
}

func clientDisable(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs, dsn := newFlags("client disable", stderr)
	id := fs.String("id", "", "client_id to disable (required)")
	redisURL := redisFlag(fs)
	if code, ok := parseFlags(fs, args, getenv); !ok {
		return code
	}
	code := oneClient(ctx, fs, stderr, *dsn, *id, *redisURL, func(chat *module.Module) error {
		err := chat.SetClientDisabled(ctx, *id, true)
		if errors.Is(err, module.ErrNoSuchClient) {
			return fmt.Errorf("no client %q", *id)
		}
		return err
	})
	if code != exitOK {
		return code
	}
	fmt.Fprintf(stdout, "client %s disabled\n", *id)
	return exitOK
}

// shutdownTimeout bounds how long a graceful shutdown waits for open
// requests (held long polls are answered before it starts).
const shutdownTimeout = 10 * time.Second

// serve runs the sample site: the module mounted on a Fiber app, on the
// database and Redis the flags name, until ctx ends or SIGINT/SIGTERM.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs, dsn := newFlags("serve", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	uploadDir := fs.String("upload-dir", "./uploads", "directory for uploaded avatars")
	redisURL := redisFlag(fs)
	proxyHeader := fs.String("proxy-header", "", "header holding the client IP set by a proxy in front (e.g. X-Forwarded-For); honoured only from --trusted-proxies")
	trustedProxies := fs.String("trusted-proxies", "", "comma-separated IPs or CIDRs of the proxies in front, whose --proxy-header is believed")
	ops := newOpsFlags(fs)
	if code, ok := parseFlags(fs, args, getenv); !ok {
		return code
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	gdb, err := database.Open(ctx, *dsn)
	if err != nil {
		return fail(stderr, err)
	}
	defer database.Close(gdb)
	// Idle long polls park (see module.Config.ParkLongPolls): the server
	// below keeps hijacked connections open for them.
	rdb, closeRedis, err := openRedis(*redisURL)
	if err != nil {
		return fail(stderr, err)
	}
	defer closeRedis()
	chat, err := module.New(ops.configure(module.Config{DB: gdb, UploadDir: *uploadDir, Logger: log, ParkLongPolls: true, Redis: rdb}, log))
	if err != nil {
		return fail(stderr, err)
	}
	defer chat.Close()
	if err := chat.Migrate(ctx); err != nil {
		return fail(stderr, err)
	}
	if err := createDemoClient(ctx, chat, stdout); err != nil {
		return fail(stderr, err)
	}

	app := newApp(chat, ops, *proxyHeader, *trustedProxies)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	fmt.Fprintf(stdout, "chat page: %s (open it in a browser)\n", pageURL(ln.Addr()))
	// Until SIGINT/SIGTERM; then the module first, so held and parked long
	// polls are answered before the server waits for open requests.
	if err := chat.Serve(ctx, app, ln, shutdownTimeout); err != nil {
		return fail(stderr, err)
	}
	return exitOK
}

// newApp builds the site's Fiber app around chat: its health check, the
// ops endpoints the flags ask for, the chat page and the module's routes.
func newApp(chat *module.Module, ops opsFlags, proxyHeader, trustedProxies string) *fiber.App {
	// The envelope's error handler, the module's body limit, timeouts
	// that outlast a 30-second long poll, and the proxies to believe.
	app := fiber.New(appConfig(chat, proxyHeader, trustedProxies))
	// A parked long poll takes its connection from fasthttp and gives it
	// back once answered, so fasthttp must not close it meanwhile.
	app.Server().KeepHijackedConns = true
	// The site's own routes read no body: one sent with them closes the
	// connection (the app streams bodies; see module.CloseUnreadBody).
	app.Use([]string{"/healthz", "/metrics", "/app"}, module.CloseUnreadBody)
	// Before Mount: Mount ends with a catch-all 404 under its prefix.
	app.Get("/healthz", chat.HealthHandler())
	ops.mount(app, chat)                // GET /metrics with --metrics
	mountWebApp(app, chat, webClientID) // the chat page at /app/
	chat.Mount(app)
	return app
}

// appConfig is the module's AppConfig, taking the client IP (which rate
// limits key on) from proxyHeader only on connections from one of
// trustedProxies (comma-separated): with a header but no proxy to trust,
// any client could pick its own IP, so the header is then ignored.
func appConfig(chat *module.Module, proxyHeader, trustedProxies string) fiber.Config {
	cfg := chat.AppConfig("fiberchat sample")
	if proxyHeader == "" {
		return cfg
	}
	cfg.ProxyHeader = proxyHeader
	cfg.EnableTrustedProxyCheck = true
	for _, p := range strings.Split(trustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.TrustedProxies = append(cfg.TrustedProxies, p)
		}
	}
	return cfg
}

// createDemoClient creates the "demo" API client on a database that has
// none, and prints its credentials once: later runs find a client and
// print nothing.
func createDemoClient(ctx context.Context, chat *module.Module, stdout io.Writer) error {
	n, err := chat.CountClients(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return remindDemoSecret(ctx, chat, stdout)
	}
	secret, err := chat.CreateClient(ctx, "demo", "", "Demo client")
	if errors.Is(err, module.ErrClientExists) {
		return nil // another process created it first and printed it
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "demo API client created: client_id=demo client_secret=%s\n", secret)
	fmt.Fprintln(stdout, `sign requests with ?client_id=demo&api_token=md5hex(module+controller+action+YYYY-MM-DD(UTC)+client_secret), e.g. md5("user"+"reg"+"ajax_reg"+date+secret) for /user/reg/ajax_reg`)
	fmt.Fprintf(stdout, "print this secret again with: %s client show-secret --id demo (a new one: %s client reset-secret --id demo)\n", command, command)
	return nil
}

// remindDemoSecret says, on a later start, where the demo client's
// secret is to be found, without printing it: the log of a long-running
// server is read by more people than its first start's.
func remindDemoSecret(ctx context.Context, chat *module.Module, stdout io.Writer) error {
	_, err := chat.ClientSecret(ctx, "demo")
	if errors.Is(err, module.ErrNoSuchClient) {
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "the demo API client's secret: %s client show-secret --id demo\n", command)
	return nil
}
