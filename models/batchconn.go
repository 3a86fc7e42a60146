package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// batchConn is a writer's own connection to MySQL/MariaDB, kept from one
// batch to the next, so that a batch is four round trips rather than six.
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
// it. Each round trip saved is a wait the batch, and every Send in it,
// no longer makes.
//
// Such a connection must never go back to the pool: a request handed a
// connection with autocommit off would never commit. So the connection is
// closed, not released, whenever it is done with (see discard), and after
// any failed batch whose ROLLBACK did not answer.
type batchConn struct {
	db   *gorm.DB
	conn *sql.Conn
	// idStep is the connection's auto_increment_increment: how far apart
	// the ids of one multi-row INSERT are.
	idStep int64
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

// get returns the connection, set up for a batch, opening a new one when
// there is none or the last one is too old or was idle too long.
func (b *batchConn) get(ctx context.Context) (*sql.Conn, error) {
	now := time.Now()
	if b.conn != nil && (now.Sub(b.used) > batchConnIdle || now.Sub(b.opened) > batchConnAge) {
		b.discard()
	}
	if b.conn == nil {
		sqlDB, err := b.db.DB()
		if err != nil {
			return nil, err
		}
		conn, err := sqlDB.Conn(ctx)
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
		if err := conn.QueryRowContext(ctx, "SELECT @@auto_increment_increment").Scan(&step); err != nil {
			b.discard()
			return nil, fmt.Errorf("set up a batch connection: %w", err)
		}
		b.idStep = max(step, 1)
	}
	b.used = now
	return b.conn, nil
}

// end commits the batch's transaction, or rolls it back when err is not
// nil, and returns what failed. A connection whose COMMIT failed, or that
// did not answer its ROLLBACK, is discarded: its state is unknown.
func (b *batchConn) end(ctx context.Context, err error) error {
	if err == nil {
		if _, err = b.conn.ExecContext(ctx, "COMMIT"); err != nil {
			b.discard()
		}
		return err
	}
	if ctx.Err() != nil {
		b.discard()
		return err
	}
	// A ROLLBACK of its own deadline: the batch's may be what ran out.
	rctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, rerr := b.conn.ExecContext(rctx, "ROLLBACK"); rerr != nil {
		b.discard()
	}
	return err
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
