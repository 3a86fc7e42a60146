package database_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/database"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{"", "postgres://x", "sqlite:", "mysql:"} {
		if _, err := database.Open(ctx, dsn); !errors.Is(err, database.ErrBadDSN) {
			t.Errorf("%q: %v, want ErrBadDSN", dsn, err)
		}
	}
	// A malformed MySQL DSN is refused before any connection is tried.
	if _, err := database.Open(ctx, "mysql:u:p@tcp(127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "invalid MySQL DSN") {
		t.Errorf("malformed MySQL DSN: %v, want invalid MySQL DSN", err)
	}
	_, err := database.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "no", "such", "x.db"))
	if err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("missing directory: %v", err)
	}
	db, err := database.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	var mode, sync string
	db.Raw("PRAGMA journal_mode").Scan(&mode)
	db.Raw("PRAGMA synchronous").Scan(&sync)
	if mode != "wal" || sync != "2" {
		t.Errorf("journal_mode %q synchronous %q, want wal and 2 (FULL)", mode, sync)
	}
	var cache int64
	db.Raw("PRAGMA cache_size").Scan(&cache)
	if cache != -65536 {
		t.Errorf("cache_size %d, want -65536 (64 MiB)", cache)
	}
	var tempStore, autocheckpoint int64
	db.Raw("PRAGMA temp_store").Scan(&tempStore)
	db.Raw("PRAGMA wal_autocheckpoint").Scan(&autocheckpoint)
	if tempStore != 2 || autocheckpoint != 20480 {
		t.Errorf("temp_store %d wal_autocheckpoint %d, want 2 (MEMORY) and 20480 (40 MiB)", tempStore, autocheckpoint)
	}
	var pageSize int64
	db.Raw("PRAGMA page_size").Scan(&pageSize)
	if pageSize != 2048 {
		t.Errorf("page_size %d, want 2048", pageSize)
	}
	_ = database.Close(db)
}

// TestOpenKeepsPageSize: a database made with SQLite's default page size
// opens as it is, keeping its pages, its rows and WAL mode.
func TestOpenKeepsPageSize(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"PRAGMA journal_mode=WAL", "CREATE TABLE t (x INTEGER)", "INSERT INTO t VALUES (42)"} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	_ = raw.Close()
	db, err := database.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	var pageSize, x int64
	var mode string
	db.Raw("PRAGMA page_size").Scan(&pageSize)
	db.Raw("PRAGMA journal_mode").Scan(&mode)
	db.Raw("SELECT x FROM t").Scan(&x)
	if pageSize != 4096 || mode != "wal" || x != 42 {
		t.Errorf("page_size %d journal_mode %q x %d, want 4096, wal and 42", pageSize, mode, x)
	}
}

// TestCheckpointer writes to a SQLite file that database.Open opened and
// sees its WAL copied into the database file by the checkpointer: the
// writing connection, below its wal_autocheckpoint, never does it itself,
// and only a checkpoint writes to the database file in WAL mode.
func TestCheckpointer(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := database.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	// Closed twice (a test's own Close and its cleanup's, say), as a
	// *sql.DB may be.
	defer database.Close(db)
	defer database.Close(db)
	if err := db.Exec("CREATE TABLE t (v TEXT)").Error; err != nil {
		t.Fatal(err)
	}
	const rows, size = 50, 1000
	for range rows {
		if err := db.Exec("INSERT INTO t (v) VALUES (?)", strings.Repeat("x", size)).Error; err != nil {
			t.Fatal(err)
		}
	}
	// The checkpointer runs every quarter second; a generous bound.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() >= rows*size {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file of %d bytes after %d bytes written: no checkpoint ran", st.Size(), rows*size)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
