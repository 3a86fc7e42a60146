package park

import (
	"crypto/tls"
	"net"
)

// ConnGone reports whether the client has closed conn (or reset it), as
// far as can be told without reading anything from it: the kernel has
// the peer's FIN, or an error, and no bytes waiting before it. Bytes
// waiting (a pipelined request) or a connection it cannot look into (an
// in-memory one, a host's wrapper) count as open. It neither blocks nor
// consumes input.
func ConnGone(conn net.Conn) bool {
	switch c := conn.(type) {
	case *resumedConn:
		if len(c.pending) > 0 {
			return false
		}
		conn = c.Conn
	case resumedTLSConn:
		return ConnGone(c.resumedConn)
	}
	if t, ok := conn.(*tls.Conn); ok {
		conn = t.NetConn()
	}
	return peerClosed(conn)
}
