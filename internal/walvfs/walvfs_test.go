package walvfs_test

import (
	"bufio"
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fiberchat/fiberchat/internal/walvfs"
	_ "modernc.org/sqlite"
)

// open opens path in WAL mode with synchronous=FULL, through this
// package's VFS or, when gather is false, SQLite's unix VFS; extra is
// more DSN parameters.
func open(t testing.TB, path string, gather bool, extra string) *sql.DB {
	t.Helper()
	if err := walvfs.Register(); err != nil {
		t.Fatal(err)
	}
	dsn := path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" + extra
	if gather {
		dsn += "&vfs=" + walvfs.Name
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// openChecked opens path through SQLite's unix VFS and fails the test
// unless SQLite finds the database whole.
func openChecked(t testing.TB, path string) *sql.DB {
	t.Helper()
	db := open(t, path, false, "")
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
	return db
}

func exec1(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// insertRows inserts rows n texts of 100 bytes under two indexes in one
// transaction.
func insertRows(t testing.TB, db *sql.DB, from, n int) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		if _, err := tx.Exec("INSERT INTO t (id, k, body) VALUES (?, ?, ?)", i, (i*7919)%100003, strings.Repeat(strconv.Itoa(i%10), 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

const schema = "CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, body TEXT NOT NULL); CREATE INDEX t_k ON t (k)"

// A database written through the VFS reads back whole through SQLite's
// own: transactions of one row, of more frames than the VFS gathers at
// once, and one that outgrows a 16-page cache, so that SQLite writes
// some pages to the WAL twice and rewrites their frames' headers at
// COMMIT.
func TestSameDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "same.db")
	db := open(t, path, true, "&_pragma=cache_size(16)")
	exec1(t, db, schema)
	next := 0
	for _, n := range []int{1, 1, 300, 5000, 1, 20000, 7} {
		insertRows(t, db, next, n)
		next += n
	}
	exec1(t, db, "DELETE FROM t WHERE id % 3 = 0")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	plain := openChecked(t, path)
	var rows, sum int
	if err := plain.QueryRow("SELECT count(*), sum(id) FROM t").Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	wantRows, wantSum := 0, 0
	for i := range next {
		if i%3 != 0 {
			wantRows++
			wantSum += i
		}
	}
	if rows != wantRows || sum != wantSum {
		t.Fatalf("%d rows summing to %d, want %d and %d", rows, sum, wantRows, wantSum)
	}
}

// writeCalls is the process's write system calls so far (syscw in
// /proc/self/io), or -1 where that is not available.
func writeCalls(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return -1
}

// A COMMIT that writes about 70 pages to the WAL makes about 140 write
// calls through SQLite's unix VFS and a few through this one.
func TestGathersWrites(t *testing.T) {
	if writeCalls(t) < 0 {
		t.Skip("no /proc/self/io here")
	}
	for _, gather := range []bool{false, true} {
		db := open(t, filepath.Join(t.TempDir(), "count.db"), gather, "")
		exec1(t, db, schema)
		insertRows(t, db, 0, 20000)
		before := writeCalls(t)
		// Keys spread over the index: most rows dirty a page of their own.
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for i := range 60 {
			if _, err := tx.Exec("UPDATE t SET body = 'x' WHERE id = ?", i*333); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		calls := writeCalls(t) - before
		switch {
		case gather && calls > 4:
			t.Errorf("through the VFS: %d write calls for one COMMIT, want at most 4", calls)
		case !gather && calls < 100:
			t.Errorf("through SQLite's unix VFS: %d write calls, want 100 or more (the test needs a COMMIT of many pages)", calls)
		}
	}
}

// killedEnv names the database the test binary, run again as a child,
// writes to until it is killed.
const killedEnv = "WALVFS_KILLED_DB"

// A process killed while it commits through the VFS loses no commit it
// saw succeed: each row is committed alone, and the child prints its id
// once COMMIT returned.
func TestKilledWriterLosesNothing(t *testing.T) {
	if path := os.Getenv(killedEnv); path != "" {
		db := open(t, path, true, "")
		exec1(t, db, schema)
		out := bufio.NewWriter(os.Stdout)
		for i := 0; ; i++ {
			insertRows(t, db, i, 1)
			fmt.Fprintln(out, i)
			_ = out.Flush()
		}
	}
	path := filepath.Join(t.TempDir(), "killed.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriterLosesNothing$", "-test.count=1")
	cmd.Env = append(os.Environ(), killedEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	committed := -1
	lines := bufio.NewScanner(stdout)
	for committed < 300 && lines.Scan() {
		if n, err := strconv.Atoi(lines.Text()); err == nil {
			committed = n
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if committed < 300 {
		t.Fatalf("the child committed up to %d before it ended: %s", committed, stderr.String())
	}

	plain := openChecked(t, path)
	var rows, top int
	if err := plain.QueryRow("SELECT count(*), max(id) FROM t").Scan(&rows, &top); err != nil {
		t.Fatal(err)
	}
	if top < committed || rows != top+1 {
		t.Fatalf("%d rows up to id %d after the child said %d was committed", rows, top, committed)
	}
}
