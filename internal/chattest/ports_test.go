package chattest_test

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
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

// TestQuietPortBelowEphemeralRange: a quiet port, and its port + offset,
// are below the kernel's ephemeral ports, where no outgoing connection
// can take them before a child process binds them, and free.
func TestQuietPortBelowEphemeralRange(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skip("no /proc/sys/net/ipv4/ip_local_port_range here")
	}
	low, err := strconv.Atoi(strings.Fields(string(b))[0])
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		p := chattest.QuietPort(t, 10000)
		for _, q := range []int{p, p + 10000} {
			if q >= low {
				t.Fatalf("port %d (of %d) is in the ephemeral range from %d", q, p, low)
			}
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				t.Fatalf("port %d (of %d) is not free: %v", q, p, err)
			}
			_ = ln.Close()
		}
	}
}
