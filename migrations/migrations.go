// Package migrations holds fiberchat's versioned schema, one SQL file per
// version and dialect, embedded in the binary and applied by goose when a
// host calls module's Migrate. Table
// names in the files are written {{prefix}}name; Up substitutes the
// configured prefix, so one set of files serves any prefix, and goose's own
// version table carries the prefix too, leaving a host's goose table alone.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"

	"github.com/pressly/goose/v3"
)

//go:embed mysql/*.sql sqlite/*.sql
var files embed.FS

// Dialect names the SQL flavour of a set of migrations.
type Dialect string

// The supported dialects.
const (
	MySQL  Dialect = "mysql"
	SQLite Dialect = "sqlite"
)

// validPrefix keeps the prefix to what can be pasted into SQL safely.
var validPrefix = regexp.MustCompile(`^[A-Za-z0-9_]{0,32}$`)

// ValidPrefix reports whether prefix may be used as a table prefix.
func ValidPrefix(prefix string) bool { return validPrefix.MatchString(prefix) }

// Up applies every pending migration for dialect to db, with table names
// prefixed by prefix.
func Up(ctx context.Context, db *sql.DB, dialect Dialect, prefix string, logger *slog.Logger) error {
	p, err := provider(db, dialect, prefix, logger)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Version reports the schema version db is at and the newest one known.
func Version(ctx context.Context, db *sql.DB, dialect Dialect, prefix string) (current, latest int64, err error) {
	p, err := provider(db, dialect, prefix, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, 0, err
	}
	return p.GetVersions(ctx)
}

func provider(db *sql.DB, dialect Dialect, prefix string, logger *slog.Logger) (*goose.Provider, error) {
	if !ValidPrefix(prefix) {
		return nil, fmt.Errorf("invalid table prefix %q", prefix)
	}
	var gd goose.Dialect
	switch dialect {
	case MySQL:
		gd = goose.DialectMySQL
	case SQLite:
		gd = goose.DialectSQLite3
	default:
		return nil, fmt.Errorf("unsupported dialect %q", dialect)
	}
	sub, err := fs.Sub(files, string(dialect))
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(gd, db, prefixFS{fsys: sub, prefix: prefix},
		goose.WithTableName(prefix+"goose_db_version"),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(logger),
	)
	if err != nil {
		return nil, fmt.Errorf("prepare migrations: %w", err)
	}
	return p, nil
}

// prefixFS serves the embedded files with {{prefix}} replaced.
type prefixFS struct {
	fsys   fs.FS
	prefix string
}

func (p prefixFS) Open(name string) (fs.File, error) {
	f, err := p.fsys.Open(name)
	if err != nil || !strings.HasSuffix(name, ".sql") {
		return f, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b, err := fs.ReadFile(p.fsys, name)
	if err != nil {
		return nil, err
	}
	text := strings.ReplaceAll(string(b), "{{prefix}}", p.prefix)
	return &memFile{Reader: strings.NewReader(text), info: info, size: int64(len(text))}, nil
}

func (p prefixFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(p.fsys, name) }

func (p prefixFS) Glob(pattern string) ([]string, error) { return fs.Glob(p.fsys, pattern) }

type memFile struct {
	*strings.Reader
	info fs.FileInfo
	size int64
}

func (m *memFile) Stat() (fs.FileInfo, error) { return sizedInfo{m.info, m.size}, nil }
func (m *memFile) Close() error               { return nil }

type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (s sizedInfo) Size() int64 { return s.size }
