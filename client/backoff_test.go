package client

import (
	"testing"
	"time"
)

// TestReconnectBackoff checks Listen's waits: the n-th below backoffMin
// doubled n times, never past backoffMax, never stopping, and spread
// (full jitter), so that clients that lost one server do not return in
// step.
func TestReconnectBackoff(t *testing.T) {
	b := reconnectBackoff()
	seen := map[time.Duration]bool{}
	for n := range 64 {
		wait, stop := b.Next()
		if stop {
			t.Fatalf("attempt %d: the backoff stopped", n)
		}
		ceiling := backoffMax
		if n < 16 {
			ceiling = min(backoffMin<<n, backoffMax)
		}
		if wait < 0 || wait >= ceiling {
			t.Fatalf("attempt %d: wait %v, want within [0, %v)", n, wait, ceiling)
		}
		if n >= 16 {
			seen[wait] = true
		}
	}
	if len(seen) < 2 {
		t.Fatalf("48 waits at the cap were all %v: no jitter", seen)
	}
}
