package models_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// losing wraps a connector so that, while armed, the next COMMIT is
// carried out by the server and its answer lost (driver.ErrBadConn), as
// when the connection dies between the two.
type losing struct {
	driver.Connector
	armed atomic.Bool
	lost  atomic.Int64
}

func (l *losing) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := l.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &losingConn{Conn: c, l: l}, nil
}

type losingConn struct {
	driver.Conn
	l *losing
}

func (c *losingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
	if err == nil && query == "COMMIT" && c.l.armed.CompareAndSwap(true, false) {
		c.l.lost.Add(1)
		return nil, driver.ErrBadConn
	}
	return res, err
}

func (c *losingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (c *losingConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

func (c *losingConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *losingConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

func (c *losingConn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}

// TestWriterLostCommitTwoTrips loses the answer to the COMMIT of a batch
// that took two round trips, after the server committed: the batch is
// settled message by message, and every Send is answered once, with its
// own message's id, as stored and not as a replay, and stored once.
func TestWriterLostCommitTwoTrips(t *testing.T) {
	base := os.Getenv(chattest.MySQLEnv)
	if base == "" {
		t.Skip(chattest.MySQLEnv + " is not set: a writer keeps a connection of its own on MySQL/MariaDB only")
	}
	s := chattest.NewServer(t, chattest.OpenMySQL(t, base), chattest.Options{})
	to := s.NewUser(t, "to")
	const senders = 12
	store := models.NewStore(s.Module.DB(), 0)
	for round := range 3 {
		l := &losing{}
		w := models.NewMessageWriter(store, 64)
		w.WrapConnector(func(c driver.Connector) driver.Connector { l.Connector = c; return l })
		l.armed.Store(true)
		msgs := make([]*models.Message, senders)
		for i := range msgs {
			msgs[i] = &models.Message{FromUID: int64(1000 + i), ToUID: to.UID, Body: fmt.Sprintf("round %d from %d", round, i), CreatedAt: 1}
			if i%3 == 0 {
				key := fmt.Sprintf("r%d-%d", round, i)
				msgs[i].ClientMsgID = &key
			}
		}
		replayed, errs, own := sendQueued(w, msgs, nil, 0)
		if !own {
			t.Fatal("the writer has no pool of its own on a DSN-opened database")
		}
		if l.lost.Load() != 1 {
			t.Fatalf("round %d: %d COMMIT answers lost, want 1", round, l.lost.Load())
		}
		if w.TwoTripBatches() != 0 {
			t.Fatalf("round %d: a batch whose COMMIT answer was lost counted as committed", round)
		}
		ids := map[int64]bool{}
		for i, m := range msgs {
			if errs[i] != nil || replayed[i] {
				t.Fatalf("round %d, message %d: replayed %v, %v", round, i, replayed[i], errs[i])
			}
			var row models.Message
			if err := s.Module.DB().First(&row, m.ID).Error; err != nil || row.Body != m.Body {
				t.Fatalf("round %d, message %d: id %d holds %q (%v)", round, i, m.ID, row.Body, err)
			}
			if n := s.Count(t, "messages", "body = ?", m.Body); n != 1 {
				t.Fatalf("round %d: %q stored %d times", round, m.Body, n)
			}
			if ids[m.ID] {
				t.Fatalf("round %d: id %d answered twice", round, m.ID)
			}
			ids[m.ID] = true
		}
	}
}

// committedLost wraps a SQLite connection so that, while armed, the next
// transaction is committed and its COMMIT's answer lost (an error), as
// SQLite itself never does: a COMMIT that fails there has not committed.
// It makes the one case where a message stored without a key could be
// stored twice.
type committedLost struct {
	driver.Conn
	l *losing
}

func (c committedLost) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return lostTx{Tx: tx, l: c.l}, nil
}

func (c committedLost) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c committedLost) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (c committedLost) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

type lostTx struct {
	driver.Tx
	l *losing
}

func (t lostTx) Commit() error {
	if err := t.Tx.Commit(); err != nil {
		return err
	}
	if t.l.armed.CompareAndSwap(true, false) {
		t.l.lost.Add(1)
		return errors.New("disk I/O error (the COMMIT's answer, lost)")
	}
	return nil
}

// sqliteConnector opens SQLite connections on a DSN.
type sqliteConnector struct {
	d   driver.Driver
	dsn string
	l   *losing
}

func (c sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.d.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return committedLost{Conn: conn, l: c.l}, nil
}

func (c sqliteConnector) Driver() driver.Driver { return c.d }

// TestWriterLostCommitSQLite loses the answer to a SQLite batch's COMMIT
// after it committed: the messages sent without a client_msg_id, which
// carry no key on SQLite, are found where the batch put them and answered
// as stored, once each; none is stored twice.
func TestWriterLostCommitSQLite(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "chat.db") + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"
	probe, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	l := &losing{}
	pool := sql.OpenDB(sqliteConnector{d: probe.Driver(), dsn: dsn, l: l})
	_ = probe.Close()
	pool.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = pool.Close() })
	g, err := gorm.Open(sqlite.Dialector{Conn: pool}, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	s := chattest.NewServer(t, &chattest.DB{Name: "sqlite", DSN: "sqlite:" + dsn, Gorm: g}, chattest.Options{})
	to := s.NewUser(t, "to")
	store := models.NewStore(s.Module.DB(), 0)
	const senders = 12
	for round := range 3 {
		w := models.NewMessageWriter(store, 64)
		l.armed.Store(true)
		msgs := make([]*models.Message, senders)
		for i := range msgs {
			msgs[i] = &models.Message{FromUID: int64(1000 + i), ToUID: to.UID, Body: fmt.Sprintf("round %d from %d", round, i), CreatedAt: 1}
			if i%3 == 0 {
				key := fmt.Sprintf("r%d-%d", round, i)
				msgs[i].ClientMsgID = &key
			}
		}
		replayed, errs, _ := sendQueued(w, msgs, nil, 0)
		if l.lost.Load() != int64(round+1) {
			t.Fatalf("round %d: %d COMMIT answers lost in all, want %d", round, l.lost.Load(), round+1)
		}
		ids := map[int64]bool{}
		for i, m := range msgs {
			if errs[i] != nil || replayed[i] {
				t.Fatalf("round %d, message %d: replayed %v, %v", round, i, replayed[i], errs[i])
			}
			if n := s.Count(t, "messages", "body = ?", m.Body); n != 1 {
				t.Fatalf("round %d: %q stored %d times", round, m.Body, n)
			}
			var row models.Message
			if err := s.Module.DB().First(&row, m.ID).Error; err != nil || row.Body != m.Body {
				t.Fatalf("round %d, message %d: id %d holds %q (%v)", round, i, m.ID, row.Body, err)
			}
			if (row.ClientMsgID == nil) != (m.ClientMsgID == nil) {
				t.Fatalf("round %d, message %d: stored key %v, sent %v: SQLite stores no key of its own", round, i, row.ClientMsgID, m.ClientMsgID)
			}
			if ids[m.ID] {
				t.Fatalf("round %d: id %d answered twice", round, m.ID)
			}
			ids[m.ID] = true
		}
	}
}
