//go:build linux

package faulttest

import (
	"database/sql"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
	gomysql "github.com/go-sql-driver/mysql"
)

// mariaDB is a MariaDB server of the test's own (chattest.Mariadbd): its
// datadir, port and process, which the test may pause, kill and start
// again. The shared server on 3306 is never touched.
type mariaDB struct {
	chattest.Mariadbd
	t testing.TB
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
		dir, err := os.MkdirTemp(workDir, "template")
		if err != nil {
			installed.err = err
			return
		}
		datadir := filepath.Join(dir, "data")
		if installed.err = chattest.InstallDatadir(datadir, "root"); installed.err == nil {
			installed.datadir = datadir
		}
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
	if _, err := chattest.LookBinary("mariadbd"); err != nil {
		t.Skip("mariadbd is not installed: the fault tests need a MariaDB server of their own (.ci/run installs it)")
	}
	if _, err := chattest.LookBinary("mariadb-install-db"); err != nil {
		t.Skip("mariadb-install-db is not installed: the fault tests need it to create a datadir")
	}
	tmpl := templateDatadir(t)
	// A short path of its own (see chattest.Mariadbd.Dir).
	dir, err := os.MkdirTemp(workDir, "db")
	if err != nil {
		t.Fatal(err)
	}
	m := &mariaDB{Mariadbd: chattest.Mariadbd{Dir: dir, Port: chattest.FreePort(t), Name: "mariadbd"}, t: t}
	if out, err := exec.Command("cp", "-a", tmpl, m.Datadir()).CombinedOutput(); err != nil {
		t.Fatalf("copy datadir: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		m.Kill()
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
	cfg.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port))
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

// start starts mariadbd on the datadir and waits until it answers.
func (m *mariaDB) start() {
	m.t.Helper()
	args := append(m.Args(), "--skip-networking=0", "--skip-log-bin")
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	m.Start(m.t, args, nil, 60*time.Second)
}

// signal sends sig to the server's process group.
func (m *mariaDB) signal(sig syscall.Signal) { m.Signal(m.t, sig) }

// pause stops the server without closing a socket: connections and new
// connects are taken by the kernel and never answered.
func (m *mariaDB) pause() { m.signal(syscall.SIGSTOP) }

// resume lets a paused server run again.
func (m *mariaDB) resume() { m.signal(syscall.SIGCONT) }

// wait waits for the server to exit.
func (m *mariaDB) wait(limit time.Duration) { m.Wait(m.t, limit) }

// kill ends the server, paused or not, at the end of a test.
func (m *mariaDB) kill() { m.Kill() }
