package filestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"gorm.io/gorm"
)

// ChunkSize is how much of a file one row of the database store holds:
// large enough that a 25 MiB file is a hundred rows, small enough that
// neither a write nor a read holds more than this of it (and far below
// MySQL's max_allowed_packet).
const ChunkSize = 256 << 10

// DB stores files in the module's database, as numbered chunks in one
// table ({{prefix}}file_chunks, created by the module's migrations), so
// that every instance on the database serves every file.
//
// Each chunk is its own statement, not one transaction: a transaction
// open while an upload trickles in would hold SQLite's one writer (and
// InnoDB's undo) for as long as the client takes. Readers never see a
// half-written file: they find a key only through the file's row, which
// the module writes once Put has returned.
type DB struct {
	db      *gorm.DB
	table   string
	timeout time.Duration
}

// NewDB returns the database store on db, in table (the module's
// "<TablePrefix>file_chunks"), each statement bounded by timeout.
func NewDB(db *gorm.DB, table string, timeout time.Duration) *DB {
	return &DB{db: db, table: table, timeout: timeout}
}

// Put implements Store.
func (d *DB) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	buf := make([]byte, ChunkSize)
	var size int64
	for seq := 0; ; seq++ {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := d.exec(ctx, "INSERT INTO "+d.table+" (blob_key, seq, data) VALUES (?, ?, ?)", key, seq, buf[:n]); err != nil {
				return 0, d.undo(key, fmt.Errorf("store file chunk: %w", err))
			}
			size += int64(n)
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF), errors.Is(rerr, io.ErrUnexpectedEOF):
			return size, nil
		default:
			return 0, d.undo(key, fmt.Errorf("read file: %w", rerr))
		}
	}
}

// undo removes what a failed Put stored, on a context of its own (the
// request's may be what ended), and returns err.
func (d *DB) undo(key string, err error) error {
	if derr := d.Delete(context.Background(), key); derr != nil {
		return errors.Join(err, derr)
	}
	return err
}

// Open implements Store. It reads the first chunk at once, so that a key
// holding nothing is ErrNotFound here rather than an empty body later.
func (d *DB) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	r := &chunkReader{d: d, key: key}
	if err := r.fetch(ctx); err != nil {
		return nil, err
	}
	if r.chunk == nil {
		return nil, ErrNotFound
	}
	return r, nil
}

// Delete implements Store.
func (d *DB) Delete(ctx context.Context, key string) error {
	if err := d.exec(ctx, "DELETE FROM "+d.table+" WHERE blob_key = ?", key); err != nil {
		return fmt.Errorf("delete file: %w", err)
	}
	return nil
}

func (d *DB) exec(ctx context.Context, q string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.db.WithContext(ctx).Exec(q, args...).Error
}

// chunkReader reads a file chunk by chunk, one query each, holding one
// chunk at a time.
type chunkReader struct {
	d     *DB
	key   string
	next  int // the seq of the chunk fetch reads
	chunk []byte
	done  bool
}

// fetch reads the next chunk into r.chunk, nil when there is none.
func (r *chunkReader) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.d.timeout)
	defer cancel()
	var data []byte
	err := r.d.db.WithContext(ctx).Raw("SELECT data FROM "+r.d.table+" WHERE blob_key = ? AND seq = ?", r.key, r.next).Row().Scan(&data)
	r.chunk = nil
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("read file chunk: %w", err)
	}
	r.chunk = data
	r.next++
	return nil
}

// Read implements io.Reader. Each fetch has a deadline of its own, not
// the request's: the body is read after the handler returned.
func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.chunk) == 0 {
		if r.done {
			return 0, io.EOF
		}
		if err := r.fetch(context.Background()); err != nil {
			return 0, err
		}
		if r.chunk == nil {
			r.done = true
		}
	}
	n := copy(p, r.chunk)
	r.chunk = r.chunk[n:]
	return n, nil
}

// Close implements io.Closer.
func (r *chunkReader) Close() error {
	r.chunk, r.done = nil, true
	return nil
}
