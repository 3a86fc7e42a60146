package models_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
)

// mysqlOnly runs fn on a fresh MariaDB/MySQL database, where a writer
// keeps a connection of its own; it skips without one.
func mysqlOnly(t *testing.T, fn func(t *testing.T, db *chattest.DB)) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		if db.Name != "mysql" {
			t.Skip("a writer keeps a connection of its own on MySQL/MariaDB only")
		}
		fn(t, db)
	})
}

// sendAll hands msgs to w at once and fails the test on any error.
func sendAll(t *testing.T, w *models.MessageWriter, msgs []*models.Message) {
	t.Helper()
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = w.CreateMessage(context.Background(), m, false)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || msgs[i].ID == 0 {
			t.Fatalf("message %d: id %d, %v", i, msgs[i].ID, err)
		}
	}
}

// TestWriterConnNeverReturnsToPool checks that the connection a writer
// set up for its batches (autocommit off, READ COMMITTED) is closed when
// the writer stops, not handed back to the pool, where the next request
// on it would never commit.
func TestWriterConnNeverReturnsToPool(t *testing.T) {
	mysqlOnly(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		store := models.NewStore(s.Module.DB(), 0)
		w := models.NewMessageWriter(store, 16)
		w.Start(2)
		var msgs []*models.Message
		for i := range 20 {
			msgs = append(msgs, &models.Message{FromUID: a.UID, ToUID: b.UID, Body: fmt.Sprint(i), CreatedAt: 1})
		}
		sendAll(t, w, msgs)
		w.Stop()

		sqlDB, err := s.Module.DB().DB()
		if err != nil {
			t.Fatal(err)
		}
		// Take every idle connection the pool has at once and ask each.
		ctx := context.Background()
		for range sqlDB.Stats().Idle {
			conn, err := sqlDB.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var autocommit int
			if err := conn.QueryRowContext(ctx, "SELECT @@autocommit").Scan(&autocommit); err != nil {
				t.Fatal(err)
			}
			if autocommit != 1 {
				t.Fatal("a pooled connection has autocommit off: a writer's connection went back to the pool")
			}
		}
		if n := s.Count(t, "messages", ""); n != int64(len(msgs)) {
			t.Fatalf("%d messages stored, want %d", n, len(msgs))
		}
	})
}

// TestWriterConnKilled kills every connection of the database between
// two batches, the writer's own among them, as a server restart or a
// wait_timeout does: the next Sends are still stored, once each, and the
// writer commits batches again on a new connection.
func TestWriterConnKilled(t *testing.T) {
	mysqlOnly(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		store := models.NewStore(s.Module.DB(), 0)
		w := models.NewMessageWriter(store, 16)
		w.Start(1)
		defer w.Stop()
		batch := func(tag string) []*models.Message {
			var msgs []*models.Message
			for i := range 5 {
				msgs = append(msgs, &models.Message{FromUID: a.UID, ToUID: b.UID, Body: fmt.Sprint(tag, i), CreatedAt: 1})
			}
			return msgs
		}
		sendAll(t, w, batch("before"))

		killer := chattest.OpenMySQL(t, db.DSN[len("mysql:"):])
		var name string
		if err := s.Module.DB().Raw("SELECT DATABASE()").Scan(&name).Error; err != nil {
			t.Fatal(err)
		}
		var ids []int64
		if err := killer.Gorm.Raw("SELECT id FROM information_schema.PROCESSLIST WHERE db = ?", name).Scan(&ids).Error; err != nil {
			t.Fatal(err)
		}
		if len(ids) == 0 {
			t.Fatal("no connection of the database to kill")
		}
		for _, id := range ids {
			if err := killer.Gorm.Exec(fmt.Sprintf("KILL %d", id)).Error; err != nil {
				t.Fatalf("kill %d: %v", id, err)
			}
		}

		sendAll(t, w, batch("after kill"))
		batches, _ := w.Stats()
		sendAll(t, w, batch("later"))
		if again, _ := w.Stats(); again == batches {
			t.Fatal("no batch committed after the kill: the writer kept its dead connection")
		}
		for _, tag := range []string{"before", "after kill", "later"} {
			for i := range 5 {
				if n := s.Count(t, "messages", "body = ?", fmt.Sprint(tag, i)); n != 1 {
					t.Fatalf("%q stored %d times, want once", fmt.Sprint(tag, i), n)
				}
			}
		}
	})
}
