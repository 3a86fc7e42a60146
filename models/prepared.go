package models

import (
	"database/sql"
	"sync"

	"gorm.io/gorm"
)

// maxPrepared bounds how many statement texts a Store keeps prepared:
// the reads that clients repeat (Unread's, and Recv's and History's for
// each limit a client asks for), with room to spare.
const maxPrepared = 64

// preparedReads keeps the hot reads' statements prepared on SQLite, once
// per text (see Store.rows): Recv's, Unread's and History's.
type preparedReads struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// rows runs the read q with args on db (a *gorm.DB from with, whose
// context bounds the call). On SQLite it runs q as a statement prepared
// once on the pool, which database/sql keeps for the pool's connection:
// compiling a small read costs SQLite about what running it does (in the
// bench's Unread workload, sqlite3_prepare_v2 took as much CPU as the
// statement's steps; module's BenchmarkUnread, 25-28 µs a request
// against 48-71). Elsewhere, and for a text that cannot be prepared or
// past maxPrepared texts, it runs q through GORM; MySQL's driver sends
// a statement with its arguments in one round trip already
// (interpolateParams).
func (s *Store) rows(db *gorm.DB, q string, args ...any) (*sql.Rows, error) {
	if st := s.prepare(db, q); st != nil {
		return st.QueryContext(db.Statement.Context, args...)
	}
	return db.Raw(q, args...).Rows()
}

// scanRow runs the one-row read q as rows does and scans its row into
// dest; no row is sql.ErrNoRows.
func (s *Store) scanRow(db *gorm.DB, q string, args []any, dest ...any) error {
	rows, err := s.rows(db, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// prepare returns q prepared on the pool, on SQLite, or nil. The lock is
// not held while SQLite compiles q, which waits for the pool's one
// connection: two first calls of a text may both prepare it, and the
// second closes its own.
func (s *Store) prepare(db *gorm.DB, q string) *sql.Stmt {
	if s.mysql() {
		return nil
	}
	s.reads.mu.Lock()
	st, ok := s.reads.stmts[q]
	full := len(s.reads.stmts) >= maxPrepared
	s.reads.mu.Unlock()
	if ok || full {
		return st
	}
	pool, err := s.db.DB()
	if err != nil {
		return nil
	}
	st, err = pool.PrepareContext(db.Statement.Context, q)
	if err != nil {
		return nil
	}
	s.reads.mu.Lock()
	defer s.reads.mu.Unlock()
	if first, ok := s.reads.stmts[q]; ok {
		_ = st.Close()
		return first
	}
	if len(s.reads.stmts) >= maxPrepared {
		_ = st.Close()
		return nil
	}
	if s.reads.stmts == nil {
		s.reads.stmts = map[string]*sql.Stmt{}
	}
	s.reads.stmts[q] = st
	return st
}
