package module

import (
	"net"
	"strings"

	"github.com/fiberchat/fiberchat/internal/database/failover"
	"github.com/fiberchat/fiberchat/migrations"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
)

// sendWriters applies SendWriters' default, a rule rather than a value
// (see Config.SendWriters): one writer on SQLite, where one connection
// writes anyway, and on a MySQL/MariaDB server on this host; two on one
// elsewhere, or where db names no server.
//
// A second writer overlaps one batch's round trips and fsync with the
// next batch, which pays when the network is what a batch waits on. It
// also halves the batches, and each batch costs the server a fixed
// share besides its messages' (docs/performance.md: about 360 µs of
// mariadbd's CPU a batch, as much as eight of its messages). A server on
// this host shares its processors with the module, so there what bounds
// Send is the processor time a message costs in all, and one writer's
// larger batches store more Sends a second.
func sendWriters(n int, dialect migrations.Dialect, db *gorm.DB) int {
	switch {
	case n != 0:
		return n
	case dialect == migrations.MySQL && !serverOnThisHost(db):
		return 2
	default:
		return 1
	}
}

// serverOnThisHost reports whether every server db's DSN names (as the
// message writers' own pool reads it: failover.Configs) is reached
// through a unix socket or a loopback address; false when db has no DSN
// (a host handed GORM an open pool), as its servers are then unknown.
func serverOnThisHost(db *gorm.DB) bool {
	d, ok := db.Dialector.(*mysql.Dialector)
	if !ok || d.Config == nil {
		return false
	}
	cfgs, err := failover.Configs(d.DSN, d.DSNConfig)
	if err != nil || len(cfgs) == 0 {
		return false
	}
	for _, cfg := range cfgs {
		if !localAddr(cfg.Net, cfg.Addr) {
			return false
		}
	}
	return true
}

// localAddr reports whether the driver's network and address reach this
// host: a unix socket, localhost, or a loopback IP.
func localAddr(network, addr string) bool {
	if network == "unix" {
		return true
	}
	if !strings.HasPrefix(network, "tcp") {
		return false
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr // the driver's default port is added later
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
