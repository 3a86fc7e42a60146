package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/internal/redisurl"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"
)

// The ceiling server's timeouts, as module.AppConfig gives the chat's: a
// long poll holds a request for up to 30 s, so reads and writes get 40.
const (
	readTimeout  = 40 * time.Second
	writeTimeout = 40 * time.Second
	idleTimeout  = 75 * time.Second
)

// moduleConfig is the module's configuration under test: the defaults,
// durability included, but for a cheap bcrypt (only set-up would pay for
// it) and no login or register rate limits (set-up makes no such calls
// either, but a host tuning the benchmark should not trip over them).
// Long polls park, as the sample app has them (startChat sets the
// server's KeepHijackedConns to match).
func moduleConfig(gdb *gorm.DB, uploadDir string, log *slog.Logger) module.Config {
	return module.Config{
		DB:                gdb,
		BcryptCost:        4,
		LoginRateLimit:    -1,
		RegisterRateLimit: -1,
		UploadDir:         uploadDir,
		Logger:            log,
		ParkLongPolls:     true,
	}
}

// warnLogger keeps the module's request logs out of the benchmark's
// output but lets real trouble through.
func warnLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// chatServer is the module mounted at "/" of a Fiber app, as the sample
// app serves it, listening on loopback.
type chatServer struct {
	addr   string
	db     *gorm.DB
	chat   *module.Module
	app    *fiber.App
	served chan error
}

// startChat opens the database dsn names, migrates it and serves the
// module on addr ("127.0.0.1:0" for any free port). With rdb, the module
// is one of several instances on that database (module.Config.Redis); the
// caller closes rdb after the server.
func startChat(ctx context.Context, dsn, addr, uploadDir string, rdb redis.UniversalClient, log *slog.Logger) (*chatServer, error) {
	gdb, err := database.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	cfg := moduleConfig(gdb, uploadDir, log)
	cfg.Redis = rdb
	chat, err := module.New(cfg)
	if err != nil {
		_ = database.Close(gdb)
		return nil, err
	}
	if err := chat.Migrate(ctx); err != nil {
		_ = chat.Close()
		_ = database.Close(gdb)
		return nil, err
	}
	app := fiber.New(chat.AppConfig("fiberchat bench"))
	// As the sample app: parked long polls need their connections kept.
	app.Server().KeepHijackedConns = true
	app.Get("/healthz", chat.HealthHandler())
	chat.Mount(app)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = chat.Close()
		_ = database.Close(gdb)
		return nil, err
	}
	s := &chatServer{addr: ln.Addr().String(), db: gdb, chat: chat, app: app, served: make(chan error, 1)}
	go func() { s.served <- app.Listener(ln) }()
	return s, nil
}

// close answers held polls (module first, as the sample app does), then
// stops the server and closes the database.
func (s *chatServer) close() {
	_ = s.chat.Close()
	_ = s.app.ShutdownWithTimeout(5 * time.Second)
	<-s.served
	_ = database.Close(s.db)
}

// ceilingReply is the small object the ceiling answers.
type ceilingReply struct {
	Error int    `json:"error"`
	Msg   string `json:"msg"`
}

// startCeiling serves the reference of the info workload: a bare Fiber
// app whose handler parses the body the info request carries (uid and
// access_token) with encoding/json, as the module's decoding does, and
// answers a small JSON object. It has no signature, no session, no
// database: what is left is Fiber, fasthttp and JSON on this machine.
func startCeiling() (addr string, stop func(), err error) {
	app := fiber.New(fiber.Config{
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           idleTimeout,
		DisableStartupMessage: true,
	})
	app.Post("/*", func(c *fiber.Ctx) error {
		var req struct {
			UID         int64  `json:"uid"`
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(c.Body(), &req); err != nil || req.UID == 0 || req.AccessToken == "" {
			return c.Status(fiber.StatusBadRequest).JSON(ceilingReply{Error: 1001, Msg: "malformed body"})
		}
		return c.JSON(ceilingReply{Msg: "success"})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	return ln.Addr().String(), func() {
		_ = app.ShutdownWithTimeout(5 * time.Second)
		<-served
	}, nil
}

// serveMain is the hidden "serve" subcommand: this program run again as
// the server of the hold and wake workloads, so that the memory measured
// is the server's alone and not the client's sockets and goroutines too.
// It prints "listening on ADDR" once it accepts connections, and stops on
// SIGTERM, SIGINT or when its stdin closes (the parent went away).
func serveMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", "", "database: sqlite:<path> or mysql:<go-sql-driver DSN> (required)")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	uploadDir := fs.String("upload-dir", os.TempDir(), "directory for avatars (none are uploaded)")
	heapProfile := fs.String("heap-profile", "", "on SIGUSR1, write a heap profile here and Go's memory figures to stderr (Linux)")
	redisURL := fs.String("redis", "", "redis://… URL: serve as one of several instances on the database (module.Config.Redis)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dsn == "" {
		fmt.Fprintln(stderr, "bench serve: --dsn is required")
		return 2
	}
	if _, err := raiseFileLimit(); err != nil {
		fmt.Fprintf(stderr, "bench serve: %v\n", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	var rdb redis.UniversalClient
	if *redisURL != "" {
		c, err := redisurl.Open(*redisURL)
		if err != nil {
			fmt.Fprintf(stderr, "bench serve: --redis: %v\n", err)
			return 2
		}
		defer c.Close()
		rdb = c
	}
	s, err := startChat(ctx, *dsn, *addr, *uploadDir, rdb, warnLogger(stderr))
	if err != nil {
		fmt.Fprintf(stderr, "bench serve: %v\n", err)
		return 1
	}
	// An instance says it listens only once it hears the others over
	// Redis: a wake-up published before its subscription is up would be
	// heard only by the database fallback, and timed as if Redis were slow.
	if rdb != nil {
		if err := awaitRedis(ctx, s.chat); err != nil {
			s.close()
			fmt.Fprintf(stderr, "bench serve: %v\n", err)
			return 1
		}
	}
	if *heapProfile != "" && heapProfileSignal != nil {
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, heapProfileSignal)
		go func() {
			for range usr1 {
				if err := writeHeapProfile(*heapProfile, stderr); err != nil {
					fmt.Fprintf(stderr, "bench serve: heap profile: %v\n", err)
				}
			}
		}()
	}
	// On freeMemorySignal (SIGUSR2) the server collects garbage and returns what is free to
	// the OS, then says "freed": the parent reads its RSS then to tell
	// live memory from the collector's headroom. Only this goroutine
	// writes to stdout after the first line.
	usr2 := make(chan os.Signal, 1)
	if freeMemorySignal != nil {
		signal.Notify(usr2, freeMemorySignal)
	}
	fmt.Fprintf(stdout, "listening on %s\n", s.addr)
	go func() {
		for range usr2 {
			debug.FreeOSMemory()
			fmt.Fprintln(stdout, "freed")
		}
	}()
	select {
	case <-ctx.Done():
	case err := <-s.served:
		s.served <- err // close waits for it
		fmt.Fprintf(stderr, "bench serve: %v\n", err)
	}
	s.close()
	return 0
}

// awaitRedis waits until chat hears the other instances over Redis.
func awaitRedis(ctx context.Context, chat *module.Module) error {
	deadline := time.Now().Add(15 * time.Second)
	for !chat.RedisUp() {
		if time.Now().After(deadline) {
			return errors.New("the Redis subscription was not up within 15s")
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// writeHeapProfile writes the heap profile as of a fresh GC to path (via
// a temporary file, so that the path appears complete), and prints where
// the process's memory is, for reading beside its RSS.
func writeHeapProfile(path string, stderr io.Writer) error {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	fmt.Fprintf(stderr, "bench serve: %d goroutines; heap in use %.1f MiB, stacks %.1f MiB, runtime metadata %.1f MiB, obtained from the OS %.1f MiB, released %.1f MiB\n",
		runtime.NumGoroutine(), mib(ms.HeapInuse), mib(ms.StackInuse), mib(ms.MSpanInuse+ms.MCacheInuse+ms.GCSys+ms.OtherSys+ms.BuckHashSys),
		mib(ms.Sys), mib(ms.HeapReleased))
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// child is a "bench serve" process.
type child struct {
	cmd         *exec.Cmd
	stdin       io.WriteCloser
	addr        string
	pid         int
	heapProfile string
	// lines are what the server prints on stdout.
	lines chan string
}

// freeMemory has the server collect garbage and return free memory to
// the OS, and waits until it has.
func (c *child) freeMemory(ctx context.Context) error {
	if err := c.cmd.Process.Signal(freeMemorySignal); err != nil {
		return err
	}
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return errors.New("the server process ended")
			}
			if strings.TrimSpace(l) == "freed" {
				return nil
			}
		case <-time.After(30 * time.Second):
			return errors.New("the server did not free memory within 30s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// profileHeap has the server write its heap profile, if it was given a
// path, and waits until it has.
func (c *child) profileHeap(ctx context.Context) error {
	if c.heapProfile == "" {
		return nil
	}
	_ = os.Remove(c.heapProfile)
	if err := c.cmd.Process.Signal(heapProfileSignal); err != nil {
		return err
	}
	for range 100 {
		if _, err := os.Stat(c.heapProfile); err == nil {
			return nil
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.New("the server wrote no heap profile within 10s")
}

// startChild runs this program's serve subcommand on dsn and waits until
// it listens; with redisURL, as one of several instances that Redis joins
// (and then until it hears them).
func startChild(ctx context.Context, dsn, uploadDir, heapProfile, redisURL string, stderr io.Writer) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(exe, "serve", "--dsn", dsn, "--addr", "127.0.0.1:0", "--upload-dir", uploadDir, "--heap-profile", heapProfile, "--redis", redisURL)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server process: %w", err)
	}
	c := &child{cmd: cmd, stdin: stdin, pid: cmd.Process.Pid, heapProfile: heapProfile, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody is waiting for it
			}
		}
	}()
	select {
	case s := <-c.lines:
		addr, ok := strings.CutPrefix(strings.TrimSpace(s), "listening on ")
		if !ok {
			c.stop()
			return nil, fmt.Errorf("server process did not start (said %q)", s)
		}
		c.addr = addr
		return c, nil
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, errors.New("server process did not listen within 30s")
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

// stop asks the server to shut down and kills it if it does not.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = c.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	_ = c.stdin.Close()
}
