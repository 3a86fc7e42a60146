package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fiberchat/fiberchat/internal/database/clientcharset"
	"github.com/fiberchat/fiberchat/internal/database/failover"
	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
)

// batchConn is a writer's own connection to MySQL/MariaDB, kept from one
// batch to the next. A batch's round trips are waits that every Send in
// it makes, so the connection is set up to make as few as it can: two in
// the common case (see createBatchOn), four otherwise, against seven for
// a transaction of the pool's (six, and a COMMIT its deadline bounds: see
// createBatch).
//
// A batch has to run at READ COMMITTED: its one locking read (lockAndCheck)
// also reads the pair's contact and block rows, and at REPEATABLE READ a
// locking read of a row that is not there locks the gap where it would go,
// which would hold up, and could deadlock with, unrelated blocks and
// contacts. Asking for READ COMMITTED per transaction costs database/sql a
// round trip of its own (SET TRANSACTION before START TRANSACTION), and
// START TRANSACTION is one more. On a connection of its own the writer
// sets both once: READ COMMITTED for the session and autocommit off, so
// that a batch's first statement opens its transaction and COMMIT ends
// it.
//
// The connection comes from the writers' own pool when there is one (see
// openBatchPool), whose connections run several statements in one round
// trip (multi), else from the module's. Either way it never goes back to
// a pool: a request handed a connection with autocommit off would never
// commit. So it is closed, not released, whenever it is done with (see
// discard): when its writer stops, after a COMMIT that failed, and after
// a failed batch whose ROLLBACK did not answer.
type batchConn struct {
	pool *sql.DB
	// multi is whether the pool's connections take several statements
	// at once; twoTrips counts the batches that took two round trips.
	multi    bool
	twoTrips *atomic.Int64
	conn     *sql.Conn
	// idStep is the connection's auto_increment_increment: how far apart
	// the ids of one multi-row INSERT are.
	idStep int64
	// escapes is whether the driver's escaping is safe in the
	// connection's character_set_client (see clientcharset.Safe). Where
	// it is not, the batch writes its texts as hex literals (see
	// appendText), since a pool that is not the writers' own may still
	// have the driver escape them.
	escapes bool
	// opened and used bound its life: the pool's own limits (a host's
	// SetConnMaxLifetime, a server's wait_timeout) do not reach a
	// connection taken out of it.
	opened, used time.Time
}

// batchConnIdle and batchConnAge are when a writer's connection is
// replaced before its next batch: after that long without a batch (a
// server may have closed it meanwhile), or that long after it was opened
// (so a host's failover or a load balancer's rebalancing reaches it).
const (
	batchConnIdle = 30 * time.Second
	batchConnAge  = 5 * time.Minute
)

// openBatchPool opens the writers' own pool of n connections, on the DSN
// GORM was opened with and multiStatements on, so that a batch sends its
// locking read, INSERT and counters' upsert in one round trip (see
// createBatchOn). It returns no pool and no error when there is no DSN to
// open (a host that handed GORM an open *sql.DB) or GORM's pool runs a
// driver other than go-sql-driver's own (a wrapper that traces, say,
// which the writers would bypass); and no pool and the reason when the
// DSN cannot be used or the pool cannot reach the database within
// timeout. The writers then take their connections from the module's
// pool, four round trips a batch.
//
// multiStatements is otherwise best left off, since it turns an SQL
// injection into any statement at all. The writers' connections only run
// the statements this package builds: uids and counts as integer
// literals, texts as arguments the driver escapes where its escaping is
// safe, as hex literals where it is not (see appendText). Both the pool
// (clientcharset.Guard) and each batch connection (get) ask the
// connection's character_set_client to tell.
func openBatchPool(db *gorm.DB, n int, timeout time.Duration, wrap func(driver.Connector) driver.Connector) (*sql.DB, error) {
	d, ok := db.Dialector.(*mysql.Dialector)
	if !ok || d.Config == nil || (d.DriverName != "" && d.DriverName != mysql.DefaultDriverName) {
		return nil, nil
	}
	if sqlDB, err := db.DB(); err != nil || !isMySQLDriver(sqlDB.Driver()) {
		return nil, nil
	}
	cfgs, err := failover.Configs(d.DSN, d.DSNConfig)
	if cfgs == nil || err != nil {
		return nil, err
	}
	for _, cfg := range cfgs {
		cfg.MultiStatements = true
		// The texts must travel inside the statement: a prepared
		// statement holds one statement only.
		cfg.InterpolateParams = true
	}
	var connector driver.Connector
	if len(cfgs) > 1 {
		connector, err = failover.New(cfgs, clientcharset.Guard)
	} else if connector, err = gomysql.NewConnector(cfgs[0]); err == nil {
		connector = clientcharset.Guard(connector)
	}
	if err != nil {
		return nil, err
	}
	if wrap != nil {
		connector = wrap(connector)
	}
	pool := sql.OpenDB(connector)
	pool.SetMaxOpenConns(n)
	pool.SetMaxIdleConns(n)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := pool.PingContext(ctx); err != nil {
		_ = pool.Close()
		return nil, err
	}
	return pool, nil
}

// roomToHold reports whether the module's pool can spare a connection for
// each of n writers for good: when it has no limit, or at least four
// connections for each. A writer whose batch fails needs another
// connection for its fallback, and the module's other queries need some
// too; a small pool would leave them waiting for the query timeout.
func roomToHold(pool *sql.DB, n int) bool {
	limit := pool.Stats().MaxOpenConnections
	return limit == 0 || limit >= 4*n
}

// isMySQLDriver reports whether d is go-sql-driver's own.
func isMySQLDriver(d driver.Driver) bool {
	switch d.(type) {
	case *gomysql.MySQLDriver, gomysql.MySQLDriver:
		return true
	}
	return false
}

// get returns the connection, set up for a batch, opening a new one when
// there is none or the last one is too old or was idle too long.
func (b *batchConn) get(ctx context.Context) (*sql.Conn, error) {
	now := time.Now()
	if b.conn != nil && (now.Sub(b.used) > batchConnIdle || now.Sub(b.opened) > batchConnAge || !valid(b.conn)) {
		b.discard()
	}
	if b.conn == nil {
		conn, err := b.pool.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("open a batch connection: %w", err)
		}
		b.conn, b.opened = conn, now
		for _, set := range []string{
			"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
			"SET autocommit = 0",
		} {
			if _, err := conn.ExecContext(ctx, set); err != nil {
				b.discard()
				return nil, fmt.Errorf("set up a batch connection: %w", err)
			}
		}
		var step int64
		var charset string
		if err := conn.QueryRowContext(ctx, "SELECT @@auto_increment_increment, @@character_set_client").Scan(&step, &charset); err != nil {
			b.discard()
			return nil, fmt.Errorf("set up a batch connection: %w", err)
		}
		b.idStep, b.escapes = max(step, 1), clientcharset.Safe(charset)
	}
	b.used = now
	return b.conn, nil
}

// end commits the batch's transaction, or rolls it back when err is not
// nil, and returns what failed. A connection whose COMMIT failed is
// discarded: its state is unknown.
//
// COMMIT is sent with the batch's deadline, which is its Sends' (see
// MessageWriter.commit). Past it, the driver closes the connection and
// reports the COMMIT failed, though the server may have committed; the
// Sends are answered unavailable, which allows for either, and a retry
// with its client_msg_id finds the message if it was stored. Without the
// deadline (as database/sql's Tx.Commit sends it), a database that
// stopped answering mid-COMMIT held the writer, and every Send queued
// behind it, for as long as the connection lived.
func (b *batchConn) end(ctx context.Context, err error) error {
	if err == nil {
		// As Tx.Commit: no COMMIT once the deadline has passed.
		err = ctx.Err()
	}
	if nodeNotReady(err) {
		// Its node takes no writes: the next batch connects anew.
		b.discard()
		return err
	}
	if err != nil {
		b.rollback(ctx)
		return err
	}
	if _, err = b.conn.ExecContext(ctx, "COMMIT"); err != nil {
		b.discard()
	}
	return err
}

// rollback ends the batch's transaction without storing anything, and
// discards the connection if it does not answer.
func (b *batchConn) rollback(ctx context.Context) {
	if ctx.Err() != nil {
		b.discard()
		return
	}
	// A ROLLBACK of its own deadline: the batch's may be what ran out.
	rctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := b.conn.ExecContext(rctx, "ROLLBACK"); err != nil {
		b.discard()
	}
}

// valid says whether the driver still holds conn good (driver.Validator,
// which database/sql asks only of pooled connections, never of one held):
// failover retires every connection of a pool to a node cut off from the
// cluster at the first answer that says so on any of them, so with
// several writers the first to fail there moves the others off it too.
// (The writers' pool is their own: a failure on the module's pool does
// not retire theirs.)
func valid(conn *sql.Conn) bool {
	ok := true
	_ = conn.Raw(func(dc any) error {
		if v, is := dc.(driver.Validator); is {
			ok = v.IsValid()
		}
		return nil
	})
	return ok
}

// discard closes the connection rather than returning it to the pool
// (database/sql closes a connection whose Raw call reports it bad).
func (b *batchConn) discard() {
	if b.conn == nil {
		return
	}
	_ = b.conn.Raw(func(any) error { return driver.ErrBadConn })
	b.conn = nil
}

// appendInsertedID appends the id the INSERT just before on the
// connection gave its row at place: LAST_INSERT_ID() (the first row's)
// plus place times the step, written as one integer when step is
// positive (the connection's own, which holds for its life off Galera),
// and as the server's @@auto_increment_increment when negative (Galera
// changes it as nodes come and go: see Store.idStep). A step read per
// row costs the server a variable's lookup and a product.
func appendInsertedID(q []byte, place, step int64) []byte {
	if step > 0 {
		return strconv.AppendInt(append(q, "LAST_INSERT_ID() + "...), place*step, 10)
	}
	return strconv.AppendInt(append(q, "LAST_INSERT_ID() + @@auto_increment_increment * "...), place, 10)
}
