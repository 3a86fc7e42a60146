// Package filestore keeps the contents of the files users send in
// messages (API.md §13). It is a package of its own, at the root, because
// a host chooses where files live: Config.Files takes any Store, the
// module's database (DB, the default, so every instance serves every file
// with nothing else to run) or an S3-compatible bucket (S3), or one the
// host writes. The module keeps what a file is (its owner, name, type,
// size) in its own tables and asks a Store only for contents, by key.
//
// A Store streams: Put reads its reader to the end without holding it
// whole, and Open's reader yields the contents a piece at a time, so a
// 25 MiB file never sits in memory at once.
package filestore

import (
	"context"
	"io"
)

// Store keeps file contents by key. Keys are chosen by the module (random,
// at most 64 characters of [0-9a-z.]) and never reused.
type Store interface {
	// Put stores what r yields under key, reading r to its end, and
	// returns how many bytes that was. An error from r is returned as it
	// is (wrapped), and whatever the error, nothing stays stored under
	// key.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Open returns a reader of what Put stored under key, or an error
	// that is ErrNotFound when nothing is. The reader may outlive ctx's
	// request (a response body is written after its handler returns), so
	// a Store bounds each of its reads itself.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes what Put stored under key; a key that is gone
	// already is no error.
	Delete(ctx context.Context, key string) error
}

// ErrNotFound is what Open returns for a key that holds nothing.
var ErrNotFound = errNotFound{}

type errNotFound struct{}

func (errNotFound) Error() string { return "filestore: not found" }
