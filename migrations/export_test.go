package migrations

import (
	"context"
	"database/sql"
	"log/slog"
)

// UpTo applies the migrations up to and including version, so a test can
// fill a database under an older schema and then upgrade it.
func UpTo(ctx context.Context, db *sql.DB, dialect Dialect, prefix string, version int64) error {
	p, err := provider(db, dialect, prefix, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}
