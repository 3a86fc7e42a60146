package models_test

import (
	"context"
	"database/sql/driver"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
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
