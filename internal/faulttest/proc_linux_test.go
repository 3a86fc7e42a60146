//go:build linux

package faulttest

import (
	"fmt"
	"syscall"
)

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard one, as the
// benchmark does: TestShutdown keeps a socket per parked poll open on
// each side. The sample app, a child, inherits the raised limit.
func raiseFileLimit() (uint64, error) {
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
