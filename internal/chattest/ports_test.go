package chattest_test

import (
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
)

// TestFreePortsDistinct asks for a Galera cluster's twelve ports many
// times over: a port listened on and closed at once is often the next
// pick too (about one cluster in 150 got a port twice, and its joiner
// aborted), so every set must hold twelve different ports.
func TestFreePortsDistinct(t *testing.T) {
	for round := 0; round < 500; round++ {
		ports := chattest.FreePorts(t, 12)
		seen := make(map[int]bool, len(ports))
		for _, p := range ports {
			if p <= 0 || seen[p] {
				t.Fatalf("round %d: port %d handed out twice or invalid in %v", round, p, ports)
			}
			seen[p] = true
		}
	}
}
