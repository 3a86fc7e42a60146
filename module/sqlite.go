package module

import (
	"context"
	"database/sql"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// sqliteCheck is one setting checkSQLite reads (a PRAGMA that answers one
// value) and the warning for a value that is not safe.
type sqliteCheck struct {
	pragma string
	// unsafe tells whether the value read is not as database.Open sets it.
	unsafe  func(v string) bool
	warning string
}

// sqliteChecks are the settings database.Open makes and the module relies
// on. WAL, so that long polls' reads do not wait behind writes.
// synchronous FULL (2) or EXTRA (3), since a Send is acknowledged once
// committed and only a synced commit survives a power cut; OFF (0) and
// NORMAL (1, in WAL) may lose acknowledged commits. A busy timeout, so
// that a write meeting another connection's lock waits for it rather
// than failing at once with "database is locked" (a 503 to the client).
// Foreign keys, which SQLite leaves off by default, so that a user the
// host deletes takes its sessions, contacts and conversations with it
// (ON DELETE CASCADE) instead of leaving rows behind.
var sqliteChecks = []sqliteCheck{
	{"journal_mode", func(v string) bool { return !strings.EqualFold(v, "wal") },
		"sqlite journal_mode is not WAL: long polls' reads wait behind writes; set _pragma=journal_mode(WAL) (docs/security.md)"},
	{"synchronous", func(v string) bool { return atoi(v) < 2 },
		"sqlite synchronous is below FULL: messages acknowledged as stored can be lost in a power cut; set _pragma=synchronous(FULL) (docs/security.md)"},
	{"busy_timeout", func(v string) bool { return atoi(v) <= 0 },
		"sqlite busy_timeout is 0: a write that meets another connection's lock fails at once (503) instead of waiting; set _pragma=busy_timeout(10000) (docs/security.md)"},
	{"foreign_keys", func(v string) bool { return atoi(v) == 0 },
		"sqlite foreign_keys is off: a user the host deletes leaves its sessions, contacts and conversations behind; set _pragma=foreign_keys(1) (docs/security.md)"},
}

// checkSQLite warns through logger when a host-supplied SQLite handle is
// not set up as database.Open sets one (sqliteChecks). It warns rather
// than refuses: a host may accept the risk (a cache, tests), and changing
// the host's settings behind its back is not the module's call. The
// pragmas are per connection; the one checked stands for the pool, as a
// DSN's _pragma settings apply to each.
func checkSQLite(ctx context.Context, pool *sql.DB, timeout time.Duration, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, c := range sqliteChecks {
		var v string
		if err := pool.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&v); err != nil {
			logger.Warn("sqlite settings not checked", "error", err.Error())
			return
		}
		if c.unsafe(v) {
			logger.Warn(c.warning, c.pragma, v)
		}
	}
}

// atoi reads a PRAGMA's number; anything else reads as 0, the unsafe
// value of every numeric check.
func atoi(v string) int {
	n, _ := strconv.Atoi(v)
	return n
}
