package database_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

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
	_ = database.Close(db)
}
