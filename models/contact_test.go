package models

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// TestContactTxRetriesDeadlocks checks the retry that MariaDB's deadlock
// victims rely on, which the race tests cannot force: a transaction rolled
// back as a deadlock victim (or by Galera's certification, the same 1213)
// runs again until the store's deadline, and any other failure is
// returned at once.
func TestContactTxRetriesDeadlocks(t *testing.T) {
	db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "tx.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	s := NewStore(db, timeout)
	deadlock := &gomysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock"}
	other := errors.New("something else")
	for _, tc := range []struct {
		name      string
		failures  int   // attempts that fail before one succeeds
		err       error // what the failing attempts return
		wantCalls int   // -1: more than a few, until the deadline
		wantErr   error
	}{
		{"no failure", 0, deadlock, 1, nil},
		{"deadlock then success", 2, deadlock, 3, nil},
		{"deadlock every time", 1 << 30, deadlock, -1, deadlock},
		{"other error", 99, other, 1, other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			start := time.Now()
			err := s.contactTx(context.Background(), func(*gorm.DB) error {
				calls++
				if calls <= tc.failures {
					return tc.err
				}
				return nil
			})
			if took := time.Since(start); took > timeout+time.Second {
				t.Fatalf("returned after %v, past the %v deadline", took, timeout)
			}
			if tc.wantCalls < 0 && calls > 4 && Unavailable(err) {
				// The last deadlock, or the deadline meeting the next
				// try's BEGIN: either is a 503.
				tc.wantCalls, tc.wantErr = calls, err
			}
			if calls != tc.wantCalls || !errors.Is(err, tc.wantErr) {
				t.Fatalf("%d calls, error %v; want %d calls, error %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
}
