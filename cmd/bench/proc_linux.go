//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/fiberchat/fiberchat/internal/fdlimit"
)

// The signals the parent sends the server process: write a heap profile
// (--profile), and collect garbage and return free memory to the OS.
var (
	heapProfileSignal os.Signal = syscall.SIGUSR1
	freeMemorySignal  os.Signal = syscall.SIGUSR2
)

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard one: the hold
// workload keeps one socket per poll open on each side. It returns the
// limit in force afterwards.
var raiseFileLimit = fdlimit.Raise

// rssKiB reads a process's resident set size (VmRSS) in KiB.
func rssKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// cpuTicks reads the user plus system CPU time a process has used, in
// clock ticks, to tell when the server has stopped working.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name in field 2 may hold spaces; the fields after its
	// closing parenthesis start at field 3 (state), so utime and stime,
	// fields 14 and 15, are at 11 and 12.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + s, nil
}

// openFiles counts a process's open file descriptors.
func openFiles(pid int) (int, error) {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es), err
}

// answered reports, without blocking or consuming anything, whether the
// server has written to c or closed it: a held poll has done neither.
func answered(c net.Conn) (bool, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false, errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, err
	}
	var (
		n    int
		rerr error
		buf  [1]byte
	)
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	switch {
	case err != nil:
		return false, err
	case errors.Is(rerr, syscall.EAGAIN):
		return false, nil
	case rerr != nil:
		return true, rerr // reset by the server: not held either
	}
	return n >= 0, nil // n > 0: data; n == 0: the server closed it
}
