package module

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"time"
)

// checkSQLite warns through logger when a host-supplied SQLite handle is
// not set up as database.Open sets one: WAL, so that long polls' reads do
// not wait behind writes, and synchronous FULL (or EXTRA), since a Send is
// acknowledged once committed and only a synced commit survives a power
// cut. It warns rather than refuses: a host may accept the risk (a cache,
// tests), and changing the host's settings behind its back is not the
// module's call. The pragmas are per connection; the one checked stands
// for the pool, as a DSN's _pragma settings apply to each.
func checkSQLite(ctx context.Context, pool *sql.DB, timeout time.Duration, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var mode string
	if err := pool.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		logger.Warn("sqlite settings not checked", "error", err.Error())
		return
	}
	if !strings.EqualFold(mode, "wal") {
		logger.Warn("sqlite journal_mode is not WAL: long polls' reads wait behind writes; set _pragma=journal_mode(WAL) (docs/security.md)", "journal_mode", mode)
	}
	var sync int
	if err := pool.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		logger.Warn("sqlite settings not checked", "error", err.Error())
		return
	}
	// 2 is FULL, 3 EXTRA; 0 OFF and 1 NORMAL (in WAL) may lose
	// acknowledged commits in a power cut or an OS crash.
	if sync < 2 {
		logger.Warn("sqlite synchronous is below FULL: messages acknowledged as stored can be lost in a power cut; set _pragma=synchronous(FULL) (docs/security.md)", "synchronous", sync)
	}
}
