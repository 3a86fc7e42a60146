package models_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	sqlite "modernc.org/sqlite"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
)

// kind is what the classification says of one error.
type kind struct{ duplicate, deadlock, unavailable, notReady bool }

func classify(err error) kind {
	return kind{models.IsDuplicate(err), models.IsDeadlock(err), models.Unavailable(err), models.NodeNotReady(err)}
}

func wantKind(t *testing.T, err error, want kind) {
	t.Helper()
	if err == nil {
		t.Fatal("the statement did not fail")
	}
	if got := classify(err); got != want {
		t.Fatalf("%T %v: got %+v, want %+v", err, err, got, want)
	}
	// Wrapping, as the store does, must not change the answer.
	if got := classify(fmt.Errorf("context: %w", err)); got != want {
		t.Fatalf("wrapped %v: got %+v, want %+v", err, got, want)
	}
}

// TestClassifyRealErrors provokes each error on the database itself.
func TestClassifyRealErrors(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		g := db.Gorm
		if err := g.Exec("CREATE TABLE dberr (id INT PRIMARY KEY, name VARCHAR(16) NOT NULL UNIQUE)").Error; err != nil {
			t.Fatal(err)
		}
		if err := g.Exec("INSERT INTO dberr (id, name) VALUES (1, 'a')").Error; err != nil {
			t.Fatal(err)
		}
		t.Run("duplicate primary key", func(t *testing.T) {
			wantKind(t, g.Exec("INSERT INTO dberr (id, name) VALUES (1, 'b')").Error, kind{duplicate: true})
		})
		t.Run("duplicate unique key", func(t *testing.T) {
			wantKind(t, g.Exec("INSERT INTO dberr (id, name) VALUES (2, 'a')").Error, kind{duplicate: true})
		})
		t.Run("not null is no duplicate", func(t *testing.T) {
			wantKind(t, g.Exec("INSERT INTO dberr (id, name) VALUES (3, NULL)").Error, kind{})
		})
		t.Run("syntax error", func(t *testing.T) {
			wantKind(t, g.Exec("SELEC 1").Error, kind{})
		})
		if db.Name == "mysql" {
			t.Run("lock wait timeout", func(t *testing.T) { testLockWaitTimeout(t, db) })
		}
		t.Run("closed database", func(t *testing.T) {
			pool, err := g.DB()
			if err != nil {
				t.Fatal(err)
			}
			if err := pool.Close(); err != nil {
				t.Fatal(err)
			}
			var one int
			wantKind(t, g.Raw("SELECT 1").Scan(&one).Error, kind{unavailable: true})
		})
	})
}

// testLockWaitTimeout has one transaction wait for a row another holds
// until InnoDB gives up (error 1205).
func testLockWaitTimeout(t *testing.T, db *chattest.DB) {
	ctx := context.Background()
	pool, err := db.Gorm.DB()
	if err != nil {
		t.Fatal(err)
	}
	holder, err := pool.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback() }()
	if _, err := holder.Exec("UPDATE dberr SET name = 'held' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	waiter, err := pool.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	if _, err := waiter.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = 1"); err != nil {
		t.Fatal(err)
	}
	_, err = waiter.ExecContext(ctx, "UPDATE dberr SET name = 'waited' WHERE id = 1")
	var me *gomysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1205 {
		t.Fatalf("got %v, want MySQL error 1205", err)
	}
	wantKind(t, err, kind{unavailable: true})
}

// TestClassifySQLiteBusy has a second connection ask to write while the
// first holds the write lock, with no busy timeout: SQLITE_BUSY at once.
func TestClassifySQLiteBusy(t *testing.T) {
	pool, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "busy.db")+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx := context.Background()
	a, err := pool.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := pool.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.ExecContext(ctx, "CREATE TABLE t (x INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = a.ExecContext(ctx, "ROLLBACK") }()
	_, err = b.ExecContext(ctx, "BEGIN IMMEDIATE")
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code()&0xff != 5 {
		t.Fatalf("got %v, want SQLITE_BUSY", err)
	}
	wantKind(t, err, kind{unavailable: true})
}

// TestClassifyConnectionRefused dials a port nothing listens on.
func TestClassifyConnectionRefused(t *testing.T) {
	pool, err := sql.Open("mysql", "u:p@tcp(127.0.0.1:1)/x?timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	wantKind(t, pool.Ping(), kind{unavailable: true})
}

// TestClassifyConstructed covers what a test cannot provoke on demand.
func TestClassifyConstructed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	for _, tc := range []struct {
		name string
		err  error
		want kind
	}{
		{"mysql duplicate", &gomysql.MySQLError{Number: 1062, Message: "Duplicate entry 'a' for key 'name'"}, kind{duplicate: true}},
		{"mysql deadlock", &gomysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock"}, kind{deadlock: true, unavailable: true}},
		{"mysql lock wait timeout", &gomysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded"}, kind{unavailable: true}},
		{"mysql too many connections", &gomysql.MySQLError{Number: 1040, Message: "Too many connections"}, kind{unavailable: true}},
		{"galera node not ready", &gomysql.MySQLError{Number: 1047, Message: "WSREP has not yet prepared node for application use"}, kind{unavailable: true, notReady: true}},
		{"mysql read-only option", &gomysql.MySQLError{Number: 1290, Message: "The MariaDB server is running with the --read-only option so it cannot execute this statement"}, kind{unavailable: true, notReady: true}},
		{"mysql read-only mode", &gomysql.MySQLError{Number: 1836, Message: "Running in read-only mode"}, kind{unavailable: true, notReady: true}},
		{"mysql syntax", &gomysql.MySQLError{Number: 1064, Message: "You have an error"}, kind{}},
		{"mysql invalid connection", gomysql.ErrInvalidConn, kind{unavailable: true}},
		{"bad connection", driver.ErrBadConn, kind{unavailable: true}},
		{"connection done", sql.ErrConnDone, kind{unavailable: true}},
		{"deadline", ctx.Err(), kind{unavailable: true}},
		{"other", errors.New("Duplicate entry, Deadlock found, Too many connections"), kind{}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantKind(t, tc.err, tc.want) })
	}
	if got := classify(nil); got != (kind{}) {
		t.Fatalf("nil: got %+v", got)
	}
}
