//go:build !linux

package main

import (
	"errors"
	"net"
	"os"
)

// The hold and wake workloads read the server's memory and CPU time from
// /proc, and the open-file limit is raised with Linux's rlimit calls.
var errNotLinux = errors.New("this benchmark runs on Linux only")

// No server process is started off Linux (raiseFileLimit fails first),
// and SIGUSR1 and SIGUSR2 do not exist everywhere: nil means none.
var heapProfileSignal, freeMemorySignal os.Signal

func raiseFileLimit() (uint64, error) { return 0, errNotLinux }
func rssKiB(int) (int64, error)       { return 0, errNotLinux }
func cpuTicks(int) (int64, error)     { return 0, errNotLinux }
func openFiles(int) (int, error)      { return 0, errNotLinux }
func answered(net.Conn) (bool, error) { return false, errNotLinux }
