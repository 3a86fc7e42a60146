package filestore_test

import (
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
)

// TestS3 runs the store checks against a real S3-compatible server: a
// SeaweedFS the test starts (chattest.StartS3), skipped, saying so,
// without a weed binary.
func TestS3(t *testing.T) {
	testStore(t, chattest.StartS3(t))
}
