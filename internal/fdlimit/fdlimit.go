//go:build linux

// Package fdlimit raises a process's open-file limit, for the two
// programs that hold thousands of sockets at once: the benchmark's hold
// and stream workloads, and the fault tests' shutdown with a thousand
// parked polls. It is a package of its own so that both share one copy;
// the module itself never changes a host's limits.
package fdlimit

import (
	"fmt"
	"syscall"
)

// Raise lifts the soft RLIMIT_NOFILE to the hard one and returns the limit
// in force afterwards (the soft one still, if raising it failed). Child
// processes inherit it.
func Raise() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("read open-file limit: %w", err)
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = want.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return l.Cur, fmt.Errorf("raise open-file limit: %w", err)
		}
		l = want
	}
	return l.Cur, nil
}
