package chattest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// Mariadbd is a mariadbd child process of a test, on a directory of its
// own, never the shared server on 3306: StartGalera's nodes and the
// fault tests' private server (internal/faulttest) each run on one, and
// may be paused, killed and started again on the same datadir.
type Mariadbd struct {
	// Dir holds the datadir (data), the Unix socket (sock), the pid file
	// and the error log. A short path: a Unix socket's is limited to
	// about 100 bytes, which t.TempDir's long names can pass.
	Dir string
	// Port is the server's MySQL port on 127.0.0.1; it stays the same
	// across Kill and Start.
	Port int
	// Name names the server in failure messages.
	Name string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
}

// LookBinary finds a MariaDB server binary on PATH or in /usr/sbin, where
// Debian puts them.
func LookBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// FreePort finds a loopback TCP port nobody listens on.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts finds n distinct loopback TCP ports nobody listens on, below
// the ephemeral range (QuietPorts).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	return QuietPorts(t, n, 0)
}

// InstallDatadir runs mariadb-install-db into datadir, with a root who
// logs in without a password, for a server that runs as user when the
// test runs as root.
func InstallDatadir(datadir, user string) error {
	bin, err := LookBinary("mariadb-install-db")
	if err != nil {
		return fmt.Errorf("mariadb-install-db not found: %w", err)
	}
	args := []string{"--no-defaults", "--datadir=" + datadir,
		"--auth-root-authentication-method=normal", "--skip-test-db",
		"--innodb-log-file-size=8M"}
	if os.Geteuid() == 0 {
		args = append(args, "--user="+user)
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	return nil
}

// Datadir is the server's datadir, in Dir.
func (m *Mariadbd) Datadir() string { return filepath.Join(m.Dir, "data") }

// Args are the arguments every such server starts with, to which its
// caller adds its own: a small server (16 MiB of buffer pool) on
// 127.0.0.1:Port and its own socket.
func (m *Mariadbd) Args() []string {
	return []string{"--no-defaults",
		"--datadir=" + m.Datadir(),
		"--port=" + strconv.Itoa(m.Port),
		"--bind-address=127.0.0.1",
		"--socket=" + filepath.Join(m.Dir, "sock"),
		"--pid-file=" + filepath.Join(m.Dir, "pid"),
		"--log-error=" + filepath.Join(m.Dir, "error.log"),
		"--innodb-buffer-pool-size=16M",
		"--innodb-log-file-size=8M",
		// An acknowledged commit must be on disk before a SIGKILL: the
		// default, stated so that no configuration can weaken it.
		"--innodb-flush-log-at-trx-commit=1",
		"--max-connections=300",
	}
}

// Start starts mariadbd with args (Args and the caller's own) and env
// added to the test's environment, in a process group of its own (an
// rsync state transfer runs children), and waits up to limit until it
// answers.
func (m *Mariadbd) Start(t testing.TB, args, env []string, limit time.Duration) {
	t.Helper()
	bin, err := LookBinary("mariadbd")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	// Killed with the test binary too, should it die before its
	// cleanups run (a -timeout panic, say): no server is left behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()

	db := m.Root(t)
	defer db.Close()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited at start: %v\n%s", m.Name, cmd.ProcessState, m.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer after %v: %v\n%s", m.Name, limit, err, m.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Root opens the server as root, over its socket, for a test's own
// queries.
func (m *Mariadbd) Root(t testing.TB) *sql.DB {
	t.Helper()
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", filepath.Join(m.Dir, "sock")
	cfg.Timeout = 2 * time.Second
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// Log is the end of the server's error log, for a failure message.
func (m *Mariadbd) Log() string {
	b, _ := os.ReadFile(filepath.Join(m.Dir, "error.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Signal sends sig to the server's process group: SIGSTOP pauses it
// without closing a socket (connections and new connects are taken by
// the kernel and never answered), SIGCONT lets it run again.
func (m *Mariadbd) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	m.mu.Lock()
	cmd := m.cmd
	m.mu.Unlock()
	if cmd == nil {
		t.Fatalf("%s is not running", m.Name)
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("signal %s: %v", m.Name, err)
	}
}

// Wait waits up to limit for the server to exit (after a signal), and
// fails the test if it does not.
func (m *Mariadbd) Wait(t testing.TB, limit time.Duration) {
	t.Helper()
	m.mu.Lock()
	exited := m.exited
	m.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(limit):
		t.Fatalf("%s still running %v after the signal", m.Name, limit)
	}
	m.mu.Lock()
	m.cmd = nil
	m.mu.Unlock()
}

// Stop stops the server cleanly (SIGTERM) and waits up to limit for it:
// its datadir then records its position, safe to start from.
func (m *Mariadbd) Stop(t testing.TB, limit time.Duration) {
	t.Helper()
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(limit):
		t.Fatalf("%s did not stop within %v", m.Name, limit)
	}
}

// Kill ends the server's process group with SIGKILL, paused or not, and
// waits for it; it does nothing if the server is not running.
func (m *Mariadbd) Kill() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
}
