package module_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// lossyConnector wraps the MySQL driver so that a test can lose the
// answer to a COMMIT: while armed, the next transaction that inserted
// messages commits for real and then reports driver.ErrBadConn, as when
// the connection dies between the server committing and its reply.
type lossyConnector struct {
	driver.Connector
	armed atomic.Bool
	lost  atomic.Int64
	// stall, when set, makes the armed COMMIT wait for it to close before
	// it is sent, as on a database that stopped answering; or until the
	// COMMIT's context ends, when the driver would close the connection.
	stall chan struct{}
	// late makes the armed COMMIT commit and then hold its answer until
	// the COMMIT's context ends, and fail as the driver would then: the
	// answer of a database that committed too slowly.
	late bool
	// pause, while above zero, makes every statement on chat_messages
	// wait that long before it is sent, as on a database that pauses; or
	// until its context ends, as the driver would.
	pause atomic.Int64
	// interpolates says whether the driver sends a statement with
	// arguments as it is (interpolateParams), rather than declining it
	// with driver.ErrSkip and preparing it.
	interpolates bool
}

// hold is where a statement waits while the connector pauses; sent says
// whether the driver will send the statement from this call, so that one
// it declines and then prepares waits once.
func (c *lossyConnector) hold(ctx context.Context, query string, sent bool) error {
	d := time.Duration(c.pause.Load())
	if d <= 0 || !sent || !strings.Contains(strings.ReplaceAll(query, "`", ""), "chat_messages") {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *lossyConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &lossyConn{Conn: conn, c: c}, nil
}

// lossyConn passes everything to the driver's connection, noting whether
// the open transaction inserted messages.
type lossyConn struct {
	driver.Conn
	c        *lossyConnector
	inserted bool
}

func (l *lossyConn) note(query string) {
	if strings.HasPrefix(strings.ReplaceAll(query, "`", ""), "INSERT INTO chat_messages ") {
		l.inserted = true
	}
}

func (l *lossyConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := l.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	l.inserted = false
	return &lossyTx{Tx: tx, l: l}, nil
}

func (l *lossyConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := l.c.hold(ctx, query, true); err != nil {
		return nil, err
	}
	l.note(query)
	return l.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

// ExecContext also sees the COMMIT and ROLLBACK statements of a writer
// that keeps its own connection with autocommit off (MySQL/MariaDB), whose
// batches are no driver.Tx.
func (l *lossyConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := l.c.hold(ctx, query, len(args) == 0 || l.c.interpolates); err != nil {
		return nil, err
	}
	l.note(query)
	exec := func() (driver.Result, error) { return l.Conn.(driver.ExecerContext).ExecContext(ctx, query, args) }
	switch query {
	case "COMMIT":
		var res driver.Result
		err := l.commit(ctx, func() (err error) {
			res, err = exec()
			return err
		})
		return res, err
	case "ROLLBACK":
		l.inserted = false
	}
	return exec()
}

// commit runs a COMMIT (do) and, while armed, loses its answer or holds
// it (see lossyConnector).
func (l *lossyConn) commit(ctx context.Context, do func() error) error {
	inserted := l.inserted
	l.inserted = false
	if c := l.c; c.stall != nil && inserted && c.armed.CompareAndSwap(true, false) {
		select {
		case <-c.stall:
		case <-ctx.Done():
			return driver.ErrBadConn
		}
	}
	if err := do(); err != nil {
		return err
	}
	if l.c.late && inserted && l.c.armed.CompareAndSwap(true, false) {
		l.c.lost.Add(1)
		<-ctx.Done()
		return driver.ErrBadConn
	}
	if inserted && l.c.armed.CompareAndSwap(true, false) {
		l.c.lost.Add(1)
		return driver.ErrBadConn
	}
	return nil
}

func (l *lossyConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := l.c.hold(ctx, query, len(args) == 0 || l.c.interpolates); err != nil {
		return nil, err
	}
	l.note(query)
	return l.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (l *lossyConn) Ping(ctx context.Context) error { return l.Conn.(driver.Pinger).Ping(ctx) }

func (l *lossyConn) ResetSession(ctx context.Context) error {
	return l.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (l *lossyConn) IsValid() bool { return l.Conn.(driver.Validator).IsValid() }

func (l *lossyConn) CheckNamedValue(nv *driver.NamedValue) error {
	return l.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}

type lossyTx struct {
	driver.Tx
	l *lossyConn
}

// Commit is database/sql's Tx.Commit, which takes no context.
func (t *lossyTx) Commit() error { return t.l.commit(context.Background(), t.Tx.Commit) }

// lossyServer serves the module on a MariaDB pool whose connections are
// wrapped by a lossyConnector, of at most poolLimit connections (0: no
// limit).
func lossyServer(t *testing.T, lossy *lossyConnector, poolLimit int, cfg func(*module.Config)) *chattest.Server {
	t.Helper()
	return chattest.NewServer(t, lossyDB(t, lossy, poolLimit), chattest.Options{Config: cfg})
}

// lossyDB is a fresh MariaDB database on a pool whose connections are
// wrapped by lossy, of at most poolLimit connections (0: no limit).
func lossyDB(t *testing.T, lossy *lossyConnector, poolLimit int) *chattest.DB {
	t.Helper()
	base := os.Getenv(chattest.MySQLEnv)
	if base == "" {
		t.Skip(chattest.MySQLEnv + " is not set: faults in COMMIT need MariaDB (.ci/run sets it)")
	}
	plain := chattest.OpenMySQL(t, base)
	dsn, err := gomysql.ParseDSN(strings.TrimPrefix(plain.DSN, "mysql:"))
	if err != nil {
		t.Fatal(err)
	}
	lossy.interpolates = dsn.InterpolateParams
	if lossy.Connector, err = gomysql.NewConnector(dsn); err != nil {
		t.Fatal(err)
	}
	pool := sql.OpenDB(lossy)
	pool.SetMaxOpenConns(poolLimit)
	t.Cleanup(func() { _ = pool.Close() })
	gdb, err := gorm.Open(mysql.New(mysql.Config{Conn: pool}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return &chattest.DB{Name: "mysql", DSN: plain.DSN, Gorm: gdb}
}

// TestStuckCommitAnswers503 holds a group commit's COMMIT, as a database
// that stops answering mid-COMMIT does: the Send answers 503/1503 within
// QueryTimeout, the COMMIT's deadline frees the one writer for the next
// Send while the first COMMIT is still held, the message is stored at
// most once when the database answers again, and Sends work again. The
// writer commits on a connection it keeps, or, when the pool has no room
// to spare it one, in a transaction of the pool.
func TestStuckCommitAnswers503(t *testing.T) {
	for _, tc := range []struct {
		name      string
		poolLimit int
	}{
		{"writer's own connection", 0},
		{"transaction of the pool", 2},
	} {
		t.Run(tc.name, func(t *testing.T) { testStuckCommit(t, tc.poolLimit) })
	}
}

func testStuckCommit(t *testing.T, poolLimit int) {
	lossy := &lossyConnector{stall: make(chan struct{})}
	s := lossyServer(t, lossy, poolLimit, func(c *module.Config) {
		c.AllowStrangers = true
		c.QueryTimeout = time.Second
		c.SendWriters = 1
	})
	a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
	released := false
	release := func() {
		if !released {
			released = true
			close(lossy.stall)
		}
	}
	t.Cleanup(release)
	sender := s.SDKFor(t, a)
	sendOne := func(text string) func() error {
		return func() error {
			_, err := sender.Send(context.Background(), b.UID, text)
			return err
		}
	}
	lossy.armed.Store(true)
	err := within(t, 2*time.Second, "Send with its COMMIT stuck", sendOne("stuck"))
	chattest.ExpectErr(t, err, 503, 1503)
	if err := within(t, 2*time.Second, "Send while the first COMMIT is held", sendOne("meanwhile")); err != nil {
		t.Fatalf("send while the first COMMIT is held: %v", err)
	}
	release()
	if err := within(t, 3*time.Second, "Send after the database answers again", sendOne("after")); err != nil {
		t.Fatalf("send after the database answers again: %v", err)
	}
	if n := s.Count(t, "messages", "body = ?", "stuck"); n > 1 {
		t.Fatalf("the stuck message is stored %d times", n)
	}
}

// TestAmbiguousCommitStoresOnce loses the answer to a group commit's
// COMMIT after the server committed. The batch is then run again message
// by message; messages without a client_msg_id must not be stored twice,
// and every Send is answered 200 (or 503), once.
func TestAmbiguousCommitStoresOnce(t *testing.T) {
	lossy := &lossyConnector{}
	var stored atomic.Int64 // MessageStored events
	s := lossyServer(t, lossy, 0, func(c *module.Config) {
		c.AllowStrangers = true
		c.OnEvent = func(_ context.Context, e events.Event) error {
			if _, ok := e.(events.MessageStored); ok {
				stored.Add(1)
			}
			return nil
		}
	})
	const senders = 24
	var users []chattest.User
	for i := range senders + 1 {
		users = append(users, s.NewUser(t, fmt.Sprintf("u%d", i)))
	}
	to := users[senders]
	clients := make([]*client.Client, senders)
	for i := range senders {
		clients[i] = s.SDKFor(t, users[i])
	}

	answered := 0 // Sends answered 200, each of which announces its message
	for round := range 3 {
		lossy.armed.Store(true)
		answers := make([]client.Sent, senders)
		errs := make([]error, senders)
		var wg sync.WaitGroup
		for i := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var opts []client.SendOption
				if i%3 == 0 {
					opts = append(opts, client.ClientMsgID(fmt.Sprintf("r%d-%d", round, i)))
				}
				answers[i], errs[i] = clients[i].Send(context.Background(), to.UID, fmt.Sprintf("round %d from %d", round, i), opts...)
			}()
		}
		wg.Wait()
		if lossy.armed.Load() {
			t.Fatalf("round %d: no group commit lost its answer", round)
		}
		ids := map[int64]int{}
		for i, r := range answers {
			body := fmt.Sprintf("round %d from %d", round, i)
			n := s.Count(t, "messages", "body = ?", body)
			switch {
			case errs[i] == nil:
				if n != 1 {
					t.Fatalf("round %d: %q answered 200 but stored %d times", round, body, n)
				}
				if r.ID <= 0 {
					t.Fatalf("round %d: %q answered %+v", round, body, r)
				}
				if j, dup := ids[r.ID]; dup {
					t.Fatalf("round %d: senders %d and %d both answered id %d", round, j, i, r.ID)
				}
				ids[r.ID] = i
				answered++
				var id int64
				if err := s.Module.DB().Table("chat_messages").Select("id").Where("body = ?", body).Scan(&id).Error; err != nil || id != r.ID {
					t.Fatalf("round %d: %q answered id %d, stored as %d (%v)", round, body, r.ID, id, err)
				}
			default:
				chattest.ExpectErr(t, errs[i], 503, 1503) // the only refusal allowed
				if n > 1 {
					t.Fatalf("round %d: %q answered 503 and stored %d times", round, body, n)
				}
			}
		}
	}
	if lossy.lost.Load() != 3 {
		t.Fatalf("%d commits lost their answer, want 3", lossy.lost.Load())
	}
	// The messages the lost COMMIT stored are announced once, as any other:
	// their senders' retries are the module's, not the clients'. (A Send
	// answered 503, which a busy host can cause, announces nothing.)
	if n := stored.Load(); n != int64(answered) || answered == 0 {
		t.Fatalf("%d MessageStored events, want %d (one per Send answered 200)", n, answered)
	}
	// Recv hands out the messages without any idempotency key of the
	// server's: read by hand, to see the answer's every byte.
	recv := s.Post(t, "/Message/Recv", to.Creds(map[string]any{"last_id": 0, "limit": 500}))
	if strings.Contains(string(recv.Raw), "client_msg_id") || strings.Contains(string(recv.Raw), `\u0001`) {
		t.Fatalf("Recv shows idempotency keys: %s", recv.Raw)
	}
	if got := len(recv.Body["data"].([]any)); got != 3*senders {
		t.Fatalf("Recv: %d messages, want %d", got, 3*senders)
	}
}

// TestGroupAmbiguousCommitStoresOnce loses the answer to a group batch's
// COMMIT after the server committed: its Sends are answered 503 (their
// messages may be stored, once) and never stored again by a retry of the
// batch, which for messages without a client_msg_id would store them
// twice.
func TestGroupAmbiguousCommitStoresOnce(t *testing.T) {
	lossy := &lossyConnector{}
	s := lossyServer(t, lossy, 0, nil)
	owner := s.NewUser(t, "owner")
	const senders = 12
	var users []chattest.User
	for i := range senders {
		u := s.NewUser(t, fmt.Sprintf("u%d", i))
		s.Befriend(t, owner, u)
		users = append(users, u)
	}
	gid := into[groupCreated](t, gcall(t, s, owner, "/Group/create", map[string]any{"name": "g", "data": members(users...)}, 200, 0)).GID
	for round := range 3 {
		lossy.armed.Store(true)
		codes := make([]int, senders)
		var wg sync.WaitGroup
		for i, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := s.Post(t, "/Message/Send", u.Creds(map[string]any{"gid": gid, "data": fmt.Sprintf("round %d from %d", round, i)}))
				codes[i] = r.Status
			}()
		}
		wg.Wait()
		if lossy.armed.Load() {
			t.Fatalf("round %d: no group commit lost its answer", round)
		}
		for i, code := range codes {
			n := s.Count(t, "messages", "body = ?", fmt.Sprintf("round %d from %d", round, i))
			switch {
			case code == 200 && n != 1, code == 503 && n > 1, code != 200 && code != 503:
				t.Fatalf("round %d, sender %d: answered %d, stored %d times", round, i, code, n)
			}
		}
	}
}
