package handlers

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestUploadTurns: a user has maxUploadsAtOnce turns to upload; one more
// waits until a turn is given back, or its context ends; other users are
// not held up; nothing is left once all are done.
func TestUploadTurns(t *testing.T) {
	h := NewFiles(FilesConfig{})
	ctx := context.Background()
	for range maxUploadsAtOnce {
		if err := h.startUpload(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.startUpload(ctx, 2); err != nil {
		t.Fatalf("another user's upload: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := h.startUpload(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a third upload at once = %v, want it to wait until its context ended", err)
	}
	got := make(chan error, 1)
	go func() { got <- h.startUpload(ctx, 1) }()
	select {
	case err := <-got:
		t.Fatalf("a third upload went on while two were under way: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	h.endUpload(1)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a turn given back was not taken")
	}
	for range maxUploadsAtOnce {
		h.endUpload(1)
	}
	h.endUpload(2)
	if len(h.uploading) != 0 {
		t.Fatalf("turns left: %v", h.uploading)
	}
}
