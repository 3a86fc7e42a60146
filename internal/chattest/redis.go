package chattest

import (
	"context"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server child process of the test, on a port of
// its own, without persistence: tests of several instances start one
// each, kill it and start it again.
type RedisServer struct {
	// Addr is host:port; it stays the same across Kill and Start.
	Addr string
	// args are more redis-server arguments (a cluster node's).
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartRedis starts a redis-server for the test and stops it when the
// test ends; it skips the test when redis-server is not installed (.ci/run
// installs it).
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed: skipping (apt-get install redis-server; .ci/run does)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	r := &RedisServer{Addr: addr}
	r.Start(t)
	t.Cleanup(func() { r.Kill(t) })
	return r
}

// Start starts the server (again) and waits until it answers.
func (r *RedisServer) Start(t testing.TB) {
	t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	cmd := exec.Command("redis-server", append([]string{"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no"}, r.args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer: %v", r.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it
// to exit; it does nothing if the server is not running.
func (r *RedisServer) Kill(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Pause stops the server with SIGSTOP, as a hung Redis would be: its
// sockets stay open and connections are still accepted, but nothing is
// answered. It resumes the server when the test ends, before StartRedis's
// kill, so that a test that fails while it is paused leaves nothing
// stopped behind.
func (r *RedisServer) Pause(t testing.TB) {
	t.Helper()
	r.signal(t, syscall.SIGSTOP)
	t.Cleanup(func() { r.signal(t, syscall.SIGCONT) })
}

// Resume lets a paused server go on (SIGCONT).
func (r *RedisServer) Resume(t testing.TB) {
	t.Helper()
	r.signal(t, syscall.SIGCONT)
}

func (r *RedisServer) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Errorf("redis-server: %v: %v", sig, err)
	}
}

// Client returns a new client of the server, closed when the test ends:
// give each instance its own, as separate processes would have.
func (r *RedisServer) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Twin builds another instance of s's module on s's database, as a
// second process of the same site would be: its own module and app, the
// same API client and clock. opts as for NewServer (Prefix is s's).
func (s *Server) Twin(t testing.TB, opts Options) *Server {
	t.Helper()
	m, app, logs := mountModule(t, s.DB, s.Clock, s.Prefix, opts)
	return &Server{App: app, Module: m, DB: s.DB, Clock: s.Clock, Prefix: s.Prefix, ClientID: s.ClientID, Secret: s.Secret, Logs: logs}
}

// AwaitRedis waits until every server's module hears the others over
// Redis (module.Module.RedisUp).
func AwaitRedis(t testing.TB, servers ...*Server) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, s := range servers {
		for !s.Module.RedisUp() {
			if time.Now().After(deadline) {
				t.Fatal("redis subscriptions not up after 15 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TwinOn is Twin on another database handle: the same database reached
// another way, as an instance of the site pointed at another node of a
// database cluster reaches it.
func (s *Server) TwinOn(t testing.TB, db *DB, opts Options) *Server {
	t.Helper()
	m, app, logs := mountModule(t, db, s.Clock, s.Prefix, opts)
	return &Server{App: app, Module: m, DB: db, Clock: s.Clock, Prefix: s.Prefix, ClientID: s.ClientID, Secret: s.Secret, Logs: logs}
}
