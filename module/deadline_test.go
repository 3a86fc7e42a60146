package module_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

// stuckServer starts a server on a fresh MariaDB database and returns it
// with a function that makes the database stop answering the module
// without refusing anything: another session takes the users table with
// LOCK TABLES … WRITE, so every query reading it waits (for a year, by
// MariaDB's default lock_wait_timeout) until the test ends.
func stuckServer(t *testing.T, cfg func(*module.Config)) (*chattest.Server, func()) {
	t.Helper()
	base := os.Getenv(chattest.MySQLEnv)
	if base == "" {
		t.Skip(chattest.MySQLEnv + " is not set: a stuck database needs MariaDB (.ci/run sets it)")
	}
	db := chattest.OpenMySQL(t, base)
	s := chattest.NewServer(t, db, chattest.Options{Config: cfg})
	pool, err := db.Gorm.DB()
	if err != nil {
		t.Fatal(err)
	}
	var conn *sql.Conn
	lock := func() {
		t.Helper()
		var err error
		if conn, err = pool.Conn(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(context.Background(), "LOCK TABLES chat_users WRITE"); err != nil {
			t.Fatal(err)
		}
	}
	// Registered after the server's cleanups, so it runs before them:
	// Close and DROP DATABASE must not wait on the lock.
	t.Cleanup(func() {
		if conn != nil {
			_, _ = conn.ExecContext(context.Background(), "UNLOCK TABLES")
			_ = conn.Close()
		}
	})
	return s, lock
}

// within runs f and fails the test unless it returns within limit; a
// request that hangs fails the test instead of stalling it.
func within[T any](t *testing.T, limit time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	start := time.Now()
	go func() { done <- f() }()
	select {
	case v := <-done:
		if took := time.Since(start); took > limit {
			t.Fatalf("%s took %v, want at most %v", what, took, limit)
		}
		return v
	case <-time.After(limit + 5*time.Second):
		t.Fatalf("%s still waiting after %v, want an answer within %v", what, limit+5*time.Second, limit)
	}
	panic("unreachable")
}

// TestStuckDatabaseAnswers503 checks that a database that takes queries
// but never answers them costs a request QueryTimeout, not minutes: a
// login, a Send (through the group commit) and a Send's fallback each
// answer 503/1503 within it.
func TestStuckDatabaseAnswers503(t *testing.T) {
	s, lock := stuckServer(t, func(c *module.Config) {
		c.QueryTimeout = time.Second
		c.AllowStrangers = true
	})
	a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
	lock()
	ctx := context.Background()
	anon, asA, asB := s.SDK(t), s.SDKFor(t, a), s.SDKFor(t, b)
	cases := []struct {
		name string
		call func() error
	}{
		{"login", func() error { _, err := anon.Login(ctx, a.UID, a.Password); return err }},
		{"send", func() error { _, err := asA.Send(ctx, b.UID, "hello"); return err }},
		{"profile", func() error { _, err := asB.Info(ctx); return err }},
	}
	for _, c := range cases {
		err := within(t, 3*time.Second, c.name, c.call)
		chattest.ExpectErr(t, err, 503, 1503)
	}
}

// TestCloseBoundedOnStuckDatabase checks that Close returns within
// ShutdownTimeout while a group commit waits on a stuck database, however
// long its QueryTimeout.
func TestCloseBoundedOnStuckDatabase(t *testing.T) {
	s, lock := stuckServer(t, func(c *module.Config) {
		c.QueryTimeout = time.Minute
		c.ShutdownTimeout = 500 * time.Millisecond
		c.AllowStrangers = true
	})
	a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
	lock()
	sender := s.SDKFor(t, a)
	sent := make(chan error, 1)
	go func() {
		_, err := sender.Send(context.Background(), b.UID, "stuck")
		sent <- err
	}()
	time.Sleep(300 * time.Millisecond) // the Send's batch is now waiting on the lock
	err := within(t, 2*time.Second, "Close", s.Module.Close)
	if !errors.Is(err, module.ErrShutdownTimeout) {
		t.Fatalf("Close with a batch stuck on the database: %v, want ErrShutdownTimeout", err)
	}
	select {
	case err := <-sent:
		t.Fatalf("the stuck Send answered before the database did: %v", err)
	default:
	}
}

// TestQueuedSendAnswersWithinQueryTimeout checks that QueryTimeout bounds
// a Send in all, its wait for a busy group commit included: with one
// writer held by a batch stuck on the database, a second Send queued
// behind it answers 503/1503 within QueryTimeout of its own start, not
// after the first batch's timeout and then its own.
func TestQueuedSendAnswersWithinQueryTimeout(t *testing.T) {
	const queryTimeout = 3 * time.Second
	s, lock := stuckServer(t, func(c *module.Config) {
		c.QueryTimeout = queryTimeout
		c.SendWriters = 1
		c.AllowStrangers = true
	})
	a, b, c := s.NewUser(t, "a"), s.NewUser(t, "b"), s.NewUser(t, "c")
	lock()
	first := make(chan error, 1)
	go func() {
		_, err := s.SDKFor(t, a).Send(context.Background(), c.UID, "first")
		first <- err
	}()
	time.Sleep(200 * time.Millisecond) // the first Send's batch now holds the writer
	err := within(t, queryTimeout+1500*time.Millisecond, "a Send queued behind a stuck batch", func() error {
		_, err := s.SDKFor(t, b).Send(context.Background(), c.UID, "second")
		return err
	})
	chattest.ExpectErr(t, err, 503, 1503)
	chattest.ExpectErr(t, <-first, 503, 1503)
}

// TestSendAnswersWithinQueryTimeout checks that QueryTimeout bounds a
// Send in all, not each of its queries: with the database pausing just
// under QueryTimeout before each statement on the messages table, a Send
// with a client_msg_id (a lookup, then the write) answers 503/1503 within
// QueryTimeout, whether it shares a group commit or stores alone.
func TestSendAnswersWithinQueryTimeout(t *testing.T) {
	const queryTimeout = 2 * time.Second
	for _, tc := range []struct {
		name      string
		batchSize int
	}{
		{"group commit", 0},
		{"alone", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lossy := &lossyConnector{}
			s := lossyServer(t, lossy, 0, func(c *module.Config) {
				c.AllowStrangers = true
				c.QueryTimeout = queryTimeout
				c.SendBatchSize = tc.batchSize
			})
			a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
			sender := s.SDKFor(t, a)
			lossy.pause.Store(int64(queryTimeout - 300*time.Millisecond))
			err := within(t, queryTimeout+700*time.Millisecond, "a Send on a pausing database", func() error {
				_, err := sender.Send(context.Background(), b.UID, "hello", client.ClientMsgID("k1"))
				return err
			})
			chattest.ExpectErr(t, err, 503, 1503)
		})
	}
}
