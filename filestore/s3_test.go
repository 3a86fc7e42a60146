package filestore_test

import (
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
)

// TestS3 runs the store checks against an S3 server the test starts
// (chattest.StartS3): a SeaweedFS given a weed binary, gofakes3 without.
func TestS3(t *testing.T) {
	testStore(t, chattest.StartS3(t))
}
