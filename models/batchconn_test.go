package models_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
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

// eachPool runs fn on three fresh MariaDB/MySQL databases: with a store on
// the module's *gorm.DB, opened on a DSN, whose writers open a pool of
// their own; and with one on the module's pool handed over open, as a
// host may, whose writers take their connections from it, or, from a
// small pool, none.
func eachPool(t *testing.T, fn func(t *testing.T, s *chattest.Server, store *models.Store, own bool)) {
	base := os.Getenv(chattest.MySQLEnv)
	if base == "" {
		t.Skip(chattest.MySQLEnv + " is not set: a writer keeps a connection of its own on MySQL/MariaDB only")
	}
	t.Run("own pool", func(t *testing.T) {
		s := chattest.NewServer(t, chattest.OpenMySQL(t, base), chattest.Options{})
		fn(t, s, models.NewStore(s.Module.DB(), 0), true)
	})
	// maxOpen 0 leaves the pool unlimited, so the writers hold their
	// connections; 4 is too few to spare 2, so they hold none and run each
	// batch in a transaction of the pool.
	for _, maxOpen := range []int{0, 4} {
		t.Run(fmt.Sprintf("module pool of %d", maxOpen), func(t *testing.T) {
			s := chattest.NewServer(t, chattest.OpenMySQL(t, base), chattest.Options{})
			pool, err := s.Module.DB().DB()
			if err != nil {
				t.Fatal(err)
			}
			pool.SetMaxOpenConns(maxOpen)
			g, err := gorm.Open(mysql.New(mysql.Config{Conn: pool}), &gorm.Config{
				NamingStrategy: s.Module.DB().NamingStrategy,
				Logger:         logger.Discard,
			})
			if err != nil {
				t.Fatal(err)
			}
			fn(t, s, models.NewStore(g, 0), false)
		})
	}
}

// connsOutsidePool returns what counts the server's connections to the
// module's database that are not the module pool's (the module's own
// writers', and those of the writer a test runs), seen from a connection
// to another database.
func connsOutsidePool(t *testing.T, s *chattest.Server) func() int64 {
	t.Helper()
	var name string
	if err := s.Module.DB().Raw("SELECT DATABASE()").Scan(&name).Error; err != nil {
		t.Fatal(err)
	}
	admin := chattest.OpenMySQL(t, os.Getenv(chattest.MySQLEnv))
	pool, err := s.Module.DB().DB()
	if err != nil {
		t.Fatal(err)
	}
	return func() int64 {
		var n int64
		if err := admin.Gorm.Raw("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE db = ?", name).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n - int64(pool.Stats().OpenConnections)
	}
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
	eachPool(t, func(t *testing.T, s *chattest.Server, store *models.Store, own bool) {
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		outside := connsOutsidePool(t, s)
		before := outside()
		w := models.NewMessageWriter(store, 16)
		w.Start(2)
		if w.OwnPool() != own {
			t.Fatalf("writers' own pool: %v, want %v", w.OwnPool(), own)
		}
		var msgs []*models.Message
		for i := range 20 {
			msgs = append(msgs, &models.Message{FromUID: a.UID, ToUID: b.UID, Body: fmt.Sprint(i), CreatedAt: 1})
		}
		sendAll(t, w, msgs)
		w.Stop()
		// The server drops a closed connection from its list a moment after.
		for deadline := time.Now().Add(2 * time.Second); outside() != before; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections to the database outside the module's pool after Stop, %d before Start", outside(), before)
			}
		}

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
	eachPool(t, func(t *testing.T, s *chattest.Server, store *models.Store, _ bool) {
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
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

		killer := chattest.OpenMySQL(t, os.Getenv(chattest.MySQLEnv))
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

// TestWriterOneRoundTrip sends batches in which every message may be
// stored, which go in one round trip and a COMMIT, and batches with one
// message that must not, which are rolled back and decided message by
// message: each message gets its own row's id, the counters come out
// right, and the refused message alone is refused.
func TestWriterOneRoundTrip(t *testing.T) {
	mysqlOnly(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c, d := s.NewUser(t, "a"), s.NewUser(t, "b"), s.NewUser(t, "c"), s.NewUser(t, "d")
		s.Befriend(t, a, b)
		store := models.NewStore(s.Module.DB(), 0)
		ctx := context.Background()
		if _, _, err := store.BlockUsers(ctx, d.UID, []int64{c.UID}, 1); err != nil {
			t.Fatal(err)
		}
		key := func(k string) *string { return &k }
		earlier := &models.Message{FromUID: a.UID, ToUID: b.UID, Body: "earlier", CreatedAt: 1, ClientMsgID: key("k0")}
		if _, err := store.CreateMessage(ctx, earlier, false); err != nil {
			t.Fatal(err)
		}

		// send queues the messages before a writer starts, so that they
		// share one batch, and returns each one's outcome and how many
		// batches took two round trips.
		send := func(msgs []*models.Message, contactsOnly []bool) ([]bool, []error, int64) {
			t.Helper()
			w := models.NewMessageWriter(store, 64)
			replayed, errs, own := sendQueued(w, msgs, contactsOnly, 0)
			if !own {
				t.Fatal("the writer has no pool of its own on a DSN-opened database")
			}
			if batches, written := w.Stats(); batches != 1 || written != int64(len(msgs)) {
				t.Fatalf("%d batches for %d sends, want one", batches, written)
			}
			return replayed, errs, w.TwoTripBatches()
		}
		msg := func(from, to chattest.User, body string) *models.Message {
			return &models.Message{FromUID: from.UID, ToUID: to.UID, Body: body, CreatedAt: 2}
		}
		cases := []struct {
			name         string
			msgs         []*models.Message
			contactsOnly []bool
			refuse       int   // the message that must fail, -1 for none
			want         error // its error
		}{
			{"all stored", []*models.Message{msg(a, b, "1"), msg(b, a, "2"), msg(c, a, "3"), msg(a, b, "4"), msg(c, b, "5")},
				[]bool{true, true, false, true, false}, -1, nil},
			{"a stranger", []*models.Message{msg(a, b, "6"), msg(c, b, "7"), msg(b, a, "8")},
				[]bool{true, true, true}, 1, models.ErrNotContact},
			{"a block", []*models.Message{msg(a, b, "9"), msg(c, d, "10"), msg(b, a, "11")},
				[]bool{true, false, true}, 1, models.ErrBlocked},
			{"no recipient", []*models.Message{msg(a, b, "12"), {FromUID: a.UID, ToUID: 99999999, Body: "13", CreatedAt: 2}, msg(b, a, "14")},
				[]bool{true, false, true}, 1, models.ErrNotFound},
			{"a key seen before", []*models.Message{msg(a, b, "15"), {FromUID: a.UID, ToUID: b.UID, Body: "16", CreatedAt: 2, ClientMsgID: key("k0")}, msg(b, a, "17")},
				[]bool{true, true, true}, 1, nil},
		}
		for _, tc := range cases {
			replayed, errs, twoTrips := send(tc.msgs, tc.contactsOnly)
			if want := map[bool]int64{true: 1, false: 0}[tc.refuse < 0]; twoTrips != want {
				t.Fatalf("%s: %d batches in two round trips, want %d", tc.name, twoTrips, want)
			}
			for i, m := range tc.msgs {
				if i == tc.refuse {
					if tc.want != nil && !errors.Is(errs[i], tc.want) {
						t.Fatalf("%s: message %q: %v, want %v", tc.name, m.Body, errs[i], tc.want)
					}
					if tc.want == nil && (errs[i] != nil || !replayed[i] || m.ID != earlier.ID) {
						t.Fatalf("%s: message %q: id %d replayed %v %v, want the earlier %d", tc.name, m.Body, m.ID, replayed[i], errs[i], earlier.ID)
					}
					continue
				}
				if errs[i] != nil || replayed[i] {
					t.Fatalf("%s: message %q: replayed %v, %v", tc.name, m.Body, replayed[i], errs[i])
				}
				var row models.Message
				if err := s.Module.DB().First(&row, m.ID).Error; err != nil || row.Body != m.Body || row.ToUID != m.ToUID {
					t.Fatalf("%s: message %q got id %d, whose row is %q to %d (%v)", tc.name, m.Body, m.ID, row.Body, row.ToUID, err)
				}
			}
		}

		checkCounters(t, s, "")
	})
}

// checkCounters fails t unless every counter matches the messages
// stored: unread is their number, last_id the newest.
func checkCounters(t *testing.T, s *chattest.Server, what string) {
	t.Helper()
	type counter struct{ UID, PeerUID, LastID, Unread int64 }
	var got, want []counter
	if err := s.Module.DB().Raw("SELECT uid, peer_uid, last_id, unread FROM chat_conversations ORDER BY uid, peer_uid").Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	if err := s.Module.DB().Raw("SELECT to_uid AS uid, from_uid AS peer_uid, MAX(id) AS last_id, COUNT(*) AS unread FROM chat_messages GROUP BY to_uid, from_uid ORDER BY to_uid, from_uid").Scan(&want).Error; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%scounters %v, want %v", what, got, want)
	}
}

// TestWriterOwnPoolUnreachable gives the writers a DSN on which nothing
// answers: Start reports why they have no connections of their own, and
// they store messages on the module's pool.
func TestWriterOwnPoolUnreachable(t *testing.T) {
	base := os.Getenv(chattest.MySQLEnv)
	if base == "" {
		t.Skip(chattest.MySQLEnv + " is not set: a writer keeps a connection of its own on MySQL/MariaDB only")
	}
	s := chattest.NewServer(t, chattest.OpenMySQL(t, base), chattest.Options{})
	a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
	pool, err := s.Module.DB().DB()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := gomysql.ParseDSN(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = "127.0.0.1:1" // nothing listens there
	g, err := gorm.Open(mysql.New(mysql.Config{Conn: pool, DSN: cfg.FormatDSN()}), &gorm.Config{
		NamingStrategy: s.Module.DB().NamingStrategy,
		Logger:         logger.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	w := models.NewMessageWriter(models.NewStore(g, 2*time.Second), 16)
	var reported error
	w.OnOwnPoolError = func(err error) { reported = err }
	w.Start(1)
	defer w.Stop()
	if reported == nil || w.OwnPool() {
		t.Fatalf("own pool %v, reported %v: want none, and why", w.OwnPool(), reported)
	}
	sendAll(t, w, []*models.Message{{FromUID: a.UID, ToUID: b.UID, Body: "on the module's pool", CreatedAt: 1}})
	if n := s.Count(t, "messages", "body = ?", "on the module's pool"); n != 1 {
		t.Fatalf("stored %d times, want once", n)
	}
}

// stepping wraps a connector so that each connection it opens hands out
// ids step apart, as a server set up for several masters does.
type stepping struct {
	driver.Connector
	step int
}

func (s stepping) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := s.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	set := fmt.Sprintf("SET SESSION auto_increment_increment = %d", s.step)
	if _, err := c.(driver.ExecerContext).ExecContext(ctx, set, nil); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// TestWriterIDStep runs batches on connections that hand out ids three
// apart: each message gets its own row's id, and the counters' last_id,
// written as the first id plus the row's offset, is each pair's newest,
// in a batch whose pairs are checked afresh and in one whose pairs are
// kept.
func TestWriterIDStep(t *testing.T) {
	mysqlOnly(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c := s.NewUser(t, "a"), s.NewUser(t, "b"), s.NewUser(t, "c")
		s.Befriend(t, a, b)
		s.Befriend(t, b, c)
		store := models.NewStore(s.Module.DB(), 0)
		for round := range 2 {
			w := models.NewMessageWriter(store, 64)
			w.WrapConnector(func(c driver.Connector) driver.Connector { return stepping{Connector: c, step: 3} })
			var msgs []*models.Message
			for i, p := range [][2]chattest.User{{a, b}, {b, c}, {a, b}, {c, b}, {b, a}, {a, b}} {
				msgs = append(msgs, &models.Message{FromUID: p[0].UID, ToUID: p[1].UID, Body: fmt.Sprint("round ", round, " message ", i), CreatedAt: 1})
			}
			_, errs, own := sendQueued(w, msgs, []bool{true, true, true, true, true, true}, 0)
			if !own {
				t.Fatal("the writer has no pool of its own on a DSN-opened database")
			}
			if batches, _ := w.Stats(); batches != 1 {
				t.Fatalf("round %d: %d batches, want one", round, batches)
			}
			// The Sends queued at once, in any order; one INSERT gave
			// their ids, three apart.
			ids := make([]int64, len(msgs))
			for i, m := range msgs {
				ids[i] = m.ID
			}
			slices.Sort(ids)
			for i := 1; i < len(ids); i++ {
				if ids[i] != ids[i-1]+3 {
					t.Fatalf("round %d: ids %v, want three apart", round, ids)
				}
			}
			for i, m := range msgs {
				if errs[i] != nil {
					t.Fatalf("round %d, message %d: %v", round, i, errs[i])
				}
				var row models.Message
				if err := s.Module.DB().First(&row, m.ID).Error; err != nil || row.Body != m.Body {
					t.Fatalf("round %d: message %q got id %d, whose row is %q (%v)", round, m.Body, m.ID, row.Body, err)
				}
			}
			checkCounters(t, s, fmt.Sprintf("round %d: ", round))
		}
	})
}
