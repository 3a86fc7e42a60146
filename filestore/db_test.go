package filestore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/filestore"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

// testStore checks any Store: contents round-trip across chunk bounds, a
// failed Put leaves nothing, Delete removes and is idempotent.
func testStore(t *testing.T, st filestore.Store) {
	t.Helper()
	ctx := context.Background()
	data := make([]byte, 2*filestore.ChunkSize+12345)
	_, _ = rand.Read(data)
	n, err := st.Put(ctx, "k1", bytes.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Put: %d %v, want %d", n, err, len(data))
	}
	r, err := st.Open(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	_ = r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), want %d equal", len(got), err, len(data))
	}

	boom := errors.New("client went away")
	failing := io.MultiReader(bytes.NewReader(data[:filestore.ChunkSize+1]), errReader{boom})
	if _, err := st.Put(ctx, "k2", failing); !errors.Is(err, boom) {
		t.Fatalf("Put of a failing reader: %v, want %v", err, boom)
	}
	if _, err := st.Open(ctx, "k2"); !errors.Is(err, filestore.ErrNotFound) {
		t.Fatalf("Open after a failed Put: %v, want ErrNotFound", err)
	}

	if err := st.Delete(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "k1"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := st.Open(ctx, "k1"); !errors.Is(err, filestore.ErrNotFound) {
		t.Fatalf("Open after Delete: %v, want ErrNotFound", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestDB(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		m, err := module.New(module.Config{DB: db.Gorm})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		testStore(t, filestore.NewDB(m.DB(), "chat_file_chunks", 5*time.Second))
	})
}
