// Package database opens the databases fiberchat runs on from the DSN form
// the sample app, examples/host, the tests and the benchmark share
// ("sqlite:<path>" or "mysql:<go-sql-driver DSN>"), with the settings each
// needs to be safe under concurrency. A host that opens its own *gorm.DB
// does not need it.
package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/internal/database/clientcharset"
	"github.com/fiberchat/fiberchat/internal/database/failover"
	"github.com/fiberchat/fiberchat/internal/walvfs"
	gomysql "github.com/go-sql-driver/mysql"
	"github.com/libtnb/sqlite"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ErrBadDSN is returned for a DSN of neither supported form.
var ErrBadDSN = errors.New(`DSN must be "sqlite:<path>" or "mysql:<dsn>"`)

// Open opens and pings the database a DSN names.
//
// SQLite gets WAL, synchronous=FULL (an acknowledged write survives a power
// cut), foreign keys, a busy timeout, a 64 MiB page cache and one
// connection: SQLite admits one writer at a time anyway, and a single
// connection turns lock contention into orderly queueing instead of
// "database is locked" errors.
func Open(ctx context.Context, dsn string) (*gorm.DB, error) {
	cfg := &gorm.Config{Logger: logger.Discard}
	var (
		db  *gorm.DB
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return nil, ErrBadDSN
		}
		if dir := filepath.Dir(path); path != ":memory:" && !strings.HasPrefix(path, "file:") {
			// The driver reports a missing directory as "out of memory".
			if _, serr := os.Stat(dir); serr != nil {
				return nil, fmt.Errorf("open database: directory %s: %w", dir, serr)
			}
		}
		db, err = openSQLite(path, cfg)
	case strings.HasPrefix(dsn, "mysql:"):
		raw := strings.TrimPrefix(dsn, "mysql:")
		if raw == "" {
			return nil, ErrBadDSN
		}
		db, err = openMySQL(raw, cfg)
	default:
		return nil, ErrBadDSN
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("database does not answer: %w", err)
	}
	return db, nil
}

// openMySQL opens a pool of up to 64 connections on a go-sql-driver DSN,
// with interpolateParams on unless the DSN chose (see withInterpolation),
// and every connection checked by clientcharset.Guard: one whose
// character_set_client makes the driver's escaping unsafe sends its
// statements' arguments as a prepared statement's instead. GORM keeps the
// DSN beside the pool, for the message writers' own (see
// models.MessageWriter).
//
// A DSN may list several servers, tcp(host1:port,host2:port): the nodes
// of a Galera cluster, say. Each new connection then goes to the first
// that answers and is ready (see failover).
func openMySQL(dsn string, cfg *gorm.Config) (*gorm.DB, error) {
	var cfgs []*gomysql.Config
	for _, one := range failover.Split(dsn) {
		one, err := withInterpolation(one)
		if err != nil {
			return nil, err
		}
		c, err := gomysql.ParseDSN(one)
		if err != nil {
			return nil, fmt.Errorf("invalid MySQL DSN: %w", err)
		}
		cfgs = append(cfgs, c)
	}
	var connector driver.Connector
	var err error
	if len(cfgs) == 1 {
		if connector, err = gomysql.NewConnector(cfgs[0]); err != nil {
			return nil, err
		}
		connector = clientcharset.Guard(connector)
		dsn = cfgs[0].FormatDSN()
	} else if connector, err = failover.New(cfgs, clientcharset.Guard); err != nil {
		return nil, err
	}
	pool := sql.OpenDB(connector)
	pool.SetMaxOpenConns(64)
	pool.SetMaxIdleConns(64)
	pool.SetConnMaxLifetime(5 * time.Minute)
	db, err := gorm.Open(mysql.New(mysql.Config{DSN: dsn, Conn: pool}), cfg)
	if err != nil {
		_ = pool.Close()
		return nil, err
	}
	return db, nil
}

// openSQLite opens the file at path (or an in-memory database) with one
// connection and, for a file, its checkpointer (see checkpointer), kept
// among db's plugins for Close.
//
// The dialector, libtnb/sqlite, runs on modernc.org/sqlite's own driver,
// which keeps a prepared statement compiled between executions (the
// message writer's statements rely on it; see models.liteStmts). Loading
// it turns on, for the whole process, that driver's commits by
// fdatasync(2), as SQLite built for Linux makes them, and Linux's
// open-file-description locks, which conflict with other processes'
// POSIX locks as those do with each other.
//
// A file is opened through walvfs's VFS (registered here, once), which
// writes a commit's WAL frames in one system call instead of two a page:
// the SQLite writer's COMMIT is what every Send waits for.
func openSQLite(path string, cfg *gorm.Config) (*gorm.DB, error) {
	if err := walvfs.Register(); err != nil {
		return nil, err
	}
	dsn := sqliteDSN(path)
	db, err := gorm.Open(sqlite.Open(dsn), cfg)
	if err != nil {
		return nil, err
	}
	sqlDB, _ := db.DB()
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetMaxIdleConns(1)
	sqlDB.SetConnMaxLifetime(0)
	sqlDB.SetConnMaxIdleTime(0)
	if inMemory(path) {
		return db, nil
	}
	c, err := startCheckpointer(dsn)
	if err == nil {
		err = db.Use(c)
	}
	if err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	return db, nil
}

// inMemory reports whether path names an in-memory SQLite database,
// which has no WAL to checkpoint and which a second connection would not
// share.
func inMemory(path string) bool {
	return path == ":memory:" || strings.Contains(path, "mode=memory") || strings.HasPrefix(path, "file::memory:")
}

// Close closes the connection pool behind db, and the checkpointer Open
// started beside a SQLite file.
func Close(db *gorm.DB) error {
	if p, ok := db.Config.Plugins[checkpointerName].(*checkpointer); ok {
		_ = p.close()
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// pageSize is the page size of the SQLite databases Open creates: 2 KiB
// rather than SQLite's 4. Each message stored dirties a page in each of
// its indexes keyed by recipient and by pair, pages that the other
// messages of its batch rarely share, and every dirty page is written to
// the WAL and synced at COMMIT: half the page is half the bytes each
// commit writes and waits for. Measured with module's BenchmarkSend,
// alternating: 11-16% more Sends a second than with 4 KiB pages, the
// COMMIT of a batch of 32 taking 1.0-1.2 ms instead of 1.25-1.57
// (docs/performance.md). A database made with another size keeps it.
const pageSize = 2048

func sqliteDSN(path string) string {
	// cache_size is in KiB when negative: 64 MiB instead of SQLite's
	// 2 MiB, taken only as pages are read. A conversation's messages lie
	// spread over the table (one page each, as traffic interleaves
	// them), so paging back through a few dozen conversations at once
	// (the benchmark's 64) needs more than 2 MiB; with less, a history
	// page read half its rows from the file again, one system call each.
	//
	// page_size applies to a database this creates (see pageSize); it
	// must come before journal_mode, after which it is fixed. The driver
	// runs the _pragma values in their names' order, whatever their order
	// here, and the _journal_mode key after all of them.
	//
	// temp_store=MEMORY keeps the statement journal (which a multi-row
	// INSERT under a unique index needs, to undo itself alone) in memory
	// rather than in a temporary file written and read back for every
	// batch. wal_autocheckpoint is raised: see walAutocheckpoint.
	pragmas := "_pragma=page_size(" + strconv.Itoa(pageSize) + ")&_pragma=busy_timeout(10000)&_journal_mode=WAL&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=cache_size(-65536)" +
		"&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(" + strconv.Itoa(walAutocheckpoint) + ")"
	if path == ":memory:" {
		return "file::memory:?" + pragmas
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	if !inMemory(path) && !strings.Contains(path, "vfs=") {
		// The unix VFS with the WAL's writes gathered (see walvfs),
		// unless the path chose a VFS itself.
		pragmas += "&vfs=" + walvfs.Name
	}
	return path + sep + pragmas
}

// withInterpolation turns on interpolateParams in a MySQL DSN that does
// not choose: the driver then sends each statement with its arguments in
// one round trip instead of a prepare and an execute. It is safe with the
// utf8/utf8mb4 and latin1 character sets only (see clientcharset): a DSN
// whose charset names any other is returned as it came, and the driver
// refuses interpolateParams with a collation where escaping is unsafe.
// Neither covers a server that sets another charset itself, which is
// why openMySQL checks every connection as well.
//
// The DSN goes through the driver's own ParseDSN and FormatDSN, so a
// malformed one is refused here with the driver's reason. ParseDSN alone
// cannot say whether the DSN chose, though: interpolateParams absent and
// interpolateParams=false both parse to InterpolateParams false, and the
// driver's own keys never reach Config.Params. So the DSN's query is
// read for the key itself (param), and a DSN that names it is returned as
// it came. So is the charset, which ParseDSN keeps unexported.
func withInterpolation(dsn string) (string, error) {
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		// The driver's reasons never quote the DSN, so no password leaks.
		return "", fmt.Errorf("invalid MySQL DSN: %w", err)
	}
	if _, chose := param(dsn, "interpolateParams"); chose {
		return dsn, nil
	}
	if charsets, ok := param(dsn, "charset"); ok {
		for name := range strings.SplitSeq(charsets, ",") {
			if !clientcharset.Safe(name) {
				return dsn, nil
			}
		}
	}
	cfg.InterpolateParams = true
	out := cfg.FormatDSN()
	// The driver refuses interpolateParams with a collation whose escaping
	// is unsafe (its list is unexported); such a DSN keeps the driver's
	// default, off, rather than failing to open.
	if _, err := gomysql.ParseDSN(out); err != nil {
		return dsn, nil
	}
	return out, nil
}

// param returns the value dsn's query sets key to, and whether it sets
// it. The query is found as ParseDSN finds it: after the first '?' that
// follows the last '/' (a password may contain either character), as
// '&'-separated key=value pairs, a pair without '=' being ignored, the
// last of a key's pairs winning. The value is returned as written (the
// driver unescapes none of the keys asked for here).
func param(dsn, key string) (value string, ok bool) {
	_, query, found := strings.Cut(dsn[strings.LastIndexByte(dsn, '/')+1:], "?")
	if !found {
		return "", false
	}
	for pair := range strings.SplitSeq(query, "&") {
		if k, v, found := strings.Cut(pair, "="); found && k == key {
			value, ok = v, true
		}
	}
	return value, ok
}
