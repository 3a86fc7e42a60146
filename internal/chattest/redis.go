package chattest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
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

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	out    *SyncBuffer   // cmd's output, for a start that fails
}

// StartRedis starts a redis-server for the test and stops it when the
// test ends; it skips the test when redis-server is not installed (.ci/run
// installs it).
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed: skipping (apt-get install redis-server; .ci/run does)")
	}
	r := &RedisServer{}
	r.startOnFreePort(t, 0)
	return r
}

// startOnFreePort starts r on a port that is free now, and, when bus is
// not 0, whose port + bus is free too (a cluster node listens there as
// well). Between the check and the server's bind another process may
// take the port: a server that exits at once is started again on another.
// The server is killed when the test ends.
func (r *RedisServer) startOnFreePort(t testing.TB, bus int) {
	t.Helper()
	t.Cleanup(func() { r.Kill(t) })
	var err error
	for range 5 {
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(QuietPort(t, bus)))
		if err = r.start(); !errors.Is(err, errExitedAtStart) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// QuietPort returns a loopback TCP port nobody listens on now, nor, when
// offset is not 0, on port + offset (QuietPorts).
func QuietPort(t testing.TB, offset int) int {
	t.Helper()
	return QuietPorts(t, 1, offset)[0]
}

// QuietPorts returns n distinct loopback TCP ports nobody listens on now,
// nor, when offset is not 0, on each port + offset. It picks below the
// kernel's range of ephemeral ports (net.ipv4.ip_local_port_range) so
// that no outgoing connection of a test — to the database, to an
// instance — can hold a port by the time a child process binds it, as it
// can one picked by listening on port 0; ports picked that way are in the
// ephemeral range, so they never collide with these either. It holds
// every port it has picked until it has them all: two servers of one test
// given the same port fail at start (a Galera joiner whose SST port is
// another node's group port aborts).
func QuietPorts(t testing.TB, n, offset int) []int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const first = 10000
	span := low - offset - first
	pick := func() int { return first + rand.IntN(span) }
	if span < 1000 {
		// An ephemeral range that leaves no room below it: the kernel's
		// pick, as before, whose port an outgoing connection may take.
		pick = func() int {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return 0
			}
			defer ln.Close()
			return ln.Addr().(*net.TCPAddr).Port
		}
	}
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000*n {
			t.Fatal("no free ports for the test's servers")
		}
		p := pick()
		if p == 0 || p+offset > 65535 {
			continue
		}
		ln, ok := hold(p)
		if !ok {
			continue
		}
		defer ln.Close()
		if offset != 0 {
			lo, ok := hold(p + offset)
			if !ok {
				continue
			}
			defer lo.Close()
		}
		ports = append(ports, p)
	}
	return ports
}

// hold listens on loopback port p, if nobody else does.
func hold(p int) (net.Listener, bool) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	return ln, err == nil
}

// errExitedAtStart is a server that exited before it answered: usually
// one that could not bind its port.
var errExitedAtStart = errors.New("exited before it answered")

// Start starts the server (again), on the same port, and waits until it
// answers.
func (r *RedisServer) Start(t testing.TB) {
	t.Helper()
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
}

func (r *RedisServer) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	cmd := exec.Command("redis-server", append([]string{"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no"}, r.args...)...)
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// A child of the server's (a replica's sync, a BGSAVE) may hold the
	// output pipe past the server's death: Wait waits for it no longer.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited, r.out = cmd, exited, out
	r.mu.Unlock()
	// Short timeouts: whatever else holds the port may accept and never
	// answer, and the server's exit is looked for between pings.
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			r.mu.Lock()
			r.cmd = nil
			r.mu.Unlock()
			return fmt.Errorf("redis-server on %s %w:\n%s", r.Addr, errExitedAtStart, out.String())
		default:
		}
		// The server that answers must be this one, not another test's
		// that took the port first.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			if strings.Contains(info, fmt.Sprintf("process_id:%d\r\n", cmd.Process.Pid)) {
				return nil
			}
			err = errors.New("another server answers there")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer: %v\n%s", r.Addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it
// to exit; it does nothing if the server is not running.
func (r *RedisServer) Kill(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
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
