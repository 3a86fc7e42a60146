package database

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"gorm.io/gorm"
)

// walAutocheckpoint is the WAL's size, in pages (40 MiB), past which the
// connection that commits runs a checkpoint itself (SQLite's default is
// 1000 pages). It is a backstop: the checkpointer keeps the WAL well below
// it, so the message writer, SQLite's one writing connection, does not
// copy pages into the database file and sync it between two batches.
// Checkpointing rarely also pays by itself: a page written by many
// commits (an index's hot leaf) is copied to the database once per
// checkpoint, not once per commit.
const walAutocheckpoint = 40 << 20 / pageSize

// checkpointEvery is how often the checkpointer copies the WAL into the
// database file. Often enough that the WAL stays far below
// walAutocheckpoint at any rate SQLite can commit, rarely enough that a
// hot page is copied once for many commits.
const checkpointEvery = 250 * time.Millisecond

// checkpointer runs SQLite's WAL checkpoints on a connection of its own,
// beside the pool's one, so that they use another core while the pool's
// connection keeps writing. Its checkpoints are PASSIVE: they copy what no
// reader still needs and never wait for, or block, the writer; what they
// leave, the next one takes. A checkpoint syncs the WAL and then the
// database file, so synchronous=FULL keeps its promise.
type checkpointer struct {
	conn    *sql.DB
	stop    chan struct{}
	stopped sync.Once
	done    sync.WaitGroup
}

// checkpointerName is the checkpointer's name among the *gorm.DB's
// plugins, where Close finds it.
const checkpointerName = "fiberchat:checkpointer"

// Name makes the checkpointer a gorm.Plugin, kept in the *gorm.DB it
// serves so that Close can stop it.
func (c *checkpointer) Name() string { return checkpointerName }

// Initialize is gorm.Plugin's: there is nothing to set up in GORM.
func (c *checkpointer) Initialize(*gorm.DB) error { return nil }

// startCheckpointer opens a connection on dsn and runs checkpoints on it
// until stopped. The connection takes the DSN's pragmas, busy_timeout
// included, so a checkpoint meeting a lock waits rather than fails; a
// failed checkpoint is left to the next (or to walAutocheckpoint).
func startCheckpointer(dsn string) (*checkpointer, error) {
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxLifetime(0)
	conn.SetConnMaxIdleTime(0)
	c := &checkpointer{conn: conn, stop: make(chan struct{})}
	c.done.Add(1)
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer c.done.Done()
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		// A deadline as every call that leaves the goroutine has; a
		// checkpoint of a WAL walAutocheckpoint bounds takes far less.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _ = c.conn.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		cancel()
	}
}

// close stops the checkpoints and closes the connection. It may be
// called again, as Close may (and sql.DB's Close is).
func (c *checkpointer) close() error {
	c.stopped.Do(func() { close(c.stop) })
	c.done.Wait()
	return c.conn.Close()
}
