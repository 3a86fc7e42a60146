//go:build linux

package faulttest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
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

// mariaDB is a MariaDB server of the test's own: its datadir, port and
// process, which the test may pause, kill and start again. The shared
// server on 3306 is never touched.
type mariaDB struct {
	t       testing.TB
	dir     string // holds the datadir, socket, pid file and error log
	datadir string
	port    int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
}

// mariadbd and installDB are the server binaries, looked up on PATH and in
// /usr/sbin, where Debian puts them.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

var installed struct {
	once    sync.Once
	datadir string
	err     error
}

// templateDatadir runs mariadb-install-db once per test binary; each test
// copies the result, which costs a fraction of a second instead of five.
func templateDatadir(t testing.TB) string {
	t.Helper()
	installed.once.Do(func() {
		installDB, err := findBinary("mariadb-install-db")
		if err != nil {
			installed.err = fmt.Errorf("mariadb-install-db not found: %w", err)
			return
		}
		dir, err := os.MkdirTemp(workDir, "template")
		if err != nil {
			installed.err = err
			return
		}
		datadir := filepath.Join(dir, "data")
		args := []string{"--no-defaults", "--datadir=" + datadir,
			"--auth-root-authentication-method=normal", "--skip-test-db",
			"--innodb-log-file-size=8M"}
		if os.Geteuid() == 0 {
			args = append(args, "--user=root")
		}
		out, err := exec.Command(installDB, args...).CombinedOutput()
		if err != nil {
			installed.err = fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
			return
		}
		installed.datadir = datadir
	})
	if installed.err != nil {
		t.Fatal(installed.err)
	}
	return installed.datadir
}

// startMariaDB starts a fresh MariaDB server with an empty "fiberchat"
// database, and kills it when the test ends. It skips the test when
// MariaDB is not installed.
func startMariaDB(t testing.TB) *mariaDB {
	t.Helper()
	if _, err := findBinary("mariadbd"); err != nil {
		t.Skip("mariadbd is not installed: the fault tests need a MariaDB server of their own (.ci/run installs it)")
	}
	if _, err := findBinary("mariadb-install-db"); err != nil {
		t.Skip("mariadb-install-db is not installed: the fault tests need it to create a datadir")
	}
	tmpl := templateDatadir(t)
	// A short path of its own: a Unix socket's path is limited to about
	// 100 bytes, which t.TempDir's long names can pass.
	dir, err := os.MkdirTemp(workDir, "db")
	if err != nil {
		t.Fatal(err)
	}
	datadir := filepath.Join(dir, "data")
	if out, err := exec.Command("cp", "-a", tmpl, datadir).CombinedOutput(); err != nil {
		t.Fatalf("copy datadir: %v\n%s", err, out)
	}
	m := &mariaDB{t: t, dir: dir, datadir: datadir, port: freePort(t)}
	t.Cleanup(func() {
		m.kill()
		_ = os.RemoveAll(dir)
	})
	m.start()
	db := m.open("")
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE fiberchat CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return m
}

// dsn is the go-sql-driver DSN of database name ("" for none) as root,
// who has no password on this private server.
func (m *mariaDB) dsn(name string) string {
	cfg := gomysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port))
	cfg.DBName = name
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.Params = map[string]string{"charset": "utf8mb4"}
	return cfg.FormatDSN()
}

// open opens database name for the test's own queries.
func (m *mariaDB) open(name string) *sql.DB {
	m.t.Helper()
	db, err := sql.Open("mysql", m.dsn(name))
	if err != nil {
		m.t.Fatal(err)
	}
	return db
}

// start starts mariadbd on the datadir, in a process group of its own,
// and waits until it answers.
func (m *mariaDB) start() {
	m.t.Helper()
	bin, err := findBinary("mariadbd")
	if err != nil {
		m.t.Fatal(err)
	}
	args := []string{"--no-defaults",
		"--datadir=" + m.datadir,
		"--port=" + strconv.Itoa(m.port),
		"--bind-address=127.0.0.1",
		"--skip-networking=0",
		"--socket=" + filepath.Join(m.dir, "sock"),
		"--pid-file=" + filepath.Join(m.dir, "pid"),
		"--log-error=" + filepath.Join(m.dir, "error.log"),
		"--innodb-buffer-pool-size=16M",
		"--innodb-log-file-size=8M",
		// An acknowledged commit must be on disk before a SIGKILL: the
		// default, stated so that no configuration can weaken it.
		"--innodb-flush-log-at-trx-commit=1",
		"--skip-log-bin",
		"--max-connections=300",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.Command(bin, args...)
	// Killed with the test binary too, should it die before its
	// cleanups run (a -timeout panic, say): no server is left behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start mariadbd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()

	db := m.open("")
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-exited:
			m.t.Fatalf("mariadbd exited at start: %v\n%s", cmd.ProcessState, m.log())
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mariadbd does not answer after 60 s: %v\n%s", err, m.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// log is the end of mariadbd's error log, for a failure message.
func (m *mariaDB) log() string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "error.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// signal sends sig to the server's process group.
func (m *mariaDB) signal(sig syscall.Signal) {
	m.t.Helper()
	m.mu.Lock()
	cmd := m.cmd
	m.mu.Unlock()
	if cmd == nil {
		m.t.Fatal("mariadbd is not running")
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		m.t.Fatalf("signal mariadbd: %v", err)
	}
}

// pause stops the server without closing a socket: connections and new
// connects are taken by the kernel and never answered.
func (m *mariaDB) pause() { m.signal(syscall.SIGSTOP) }

// resume lets a paused server run again.
func (m *mariaDB) resume() { m.signal(syscall.SIGCONT) }

// wait waits for the server to exit.
func (m *mariaDB) wait(limit time.Duration) {
	m.t.Helper()
	m.mu.Lock()
	exited := m.exited
	m.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(limit):
		m.t.Fatalf("mariadbd still running %v after the signal", limit)
	}
	m.mu.Lock()
	m.cmd = nil
	m.mu.Unlock()
}

// kill ends the server, paused or not, at the end of a test.
func (m *mariaDB) kill() {
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

// freePort finds a loopback TCP port nobody listens on.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
