//go:build linux

package fdlimit_test

import (
	"syscall"
	"testing"

	"github.com/fiberchat/fiberchat/internal/fdlimit"
)

// TestRaise lowers the soft limit, raises it again and checks that the
// hard limit is what is in force afterwards, and what Raise reports.
func TestRaise(t *testing.T) {
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &before) })
	if before.Max > 64 {
		lowered := syscall.Rlimit{Cur: 64, Max: before.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
			t.Fatal(err)
		}
	}
	got, err := fdlimit.Raise()
	if err != nil {
		t.Fatal(err)
	}
	var after syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &after); err != nil {
		t.Fatal(err)
	}
	if got != before.Max || after.Cur != before.Max {
		t.Fatalf("Raise reported %d, soft limit now %d, want the hard limit %d", got, after.Cur, before.Max)
	}
}
