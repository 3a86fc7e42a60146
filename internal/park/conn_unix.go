//go:build unix

package park

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed peeks at conn's socket: a read of zero bytes is the peer's
// FIN, EAGAIN an open connection with nothing to read. Go's sockets are
// non-blocking, so the peek never waits.
func peerClosed(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		switch {
		case err == nil:
			gone = n == 0
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		default:
			gone = true // ECONNRESET and the like
		}
		return true // done either way: never wait for input
	})
	return gone || err != nil
}
