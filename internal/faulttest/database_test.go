//go:build linux

package faulttest

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
)

// queryTimeout is the in-process server's Config.QueryTimeout: short, so
// that a stuck database shows in seconds, yet longer than sendBound's
// room, so that a Send that waited it twice (once for a busy group
// commit, once for its batch) shows too.
const queryTimeout = 2 * time.Second

// sendBound is the longest a Send may take while the database is stuck:
// QueryTimeout, which counts a Send's wait for a busy group commit, plus
// room for a loaded machine.
const sendBound = queryTimeout + 1500*time.Millisecond

// startInProcess serves the module on the test's database from this
// process, as the sample app does but with a short QueryTimeout, which
// the sample app has no flag for. It returns the base URL and the API
// client's credentials.
func startInProcess(t *testing.T, db *mariaDB) (baseURL, clientID, secret string) {
	t.Helper()
	ctx := context.Background()
	gdb, err := database.Open(ctx, "mysql:"+db.dsn("fiberchat"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &chattest.SyncBuffer{}
	chat, err := module.New(module.Config{
		DB:              gdb,
		Logger:          slog.New(slog.NewTextHandler(logs, nil)),
		UploadDir:       filepath.Join(t.TempDir(), "uploads"),
		BcryptCost:      4,
		AllowStrangers:  true,
		QueryTimeout:    queryTimeout,
		ShutdownTimeout: 2 * time.Second,
		ParkLongPolls:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	secret, err = chat.CreateClient(ctx, "fault", "", "Fault tests")
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(chat.AppConfig("faulttest"))
	app.Server().KeepHijackedConns = true
	chat.Mount(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- chat.Serve(serveCtx, app, ln, 2*time.Second) }()
	t.Cleanup(func() {
		// The database may still be paused if the test failed: let it go
		// first, or the shutdown waits out its bound for nothing.
		db.kill()
		stop()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve still running 10 s after its context ended")
		}
		_ = database.Close(gdb)
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return "http://" + ln.Addr().String(), "fault", secret
}

// newSenders registers a recipient and n senders on the server at baseURL.
func newSenders(t *testing.T, baseURL, clientID, secret string, n int) (to *client.Client, senders []*client.Client) {
	t.Helper()
	hc := newHTTPClient(t)
	to = newUser(t, baseURL, clientID, secret, "recipient", hc)
	for range n {
		senders = append(senders, newUser(t, baseURL, clientID, secret, "sender", hc))
	}
	return to, senders
}

// checkOutage checks the Sends of a run with a database outage from
// down to up: every Send was answered (200 or 503/1503, nothing else)
// within sendBound, and those wholly inside the outage with 503/1503.
func checkOutage(t *testing.T, attempts []attempt, down, up time.Time) {
	t.Helper()
	inside := 0
	for _, a := range attempts {
		took := a.end.Sub(a.start)
		switch {
		case a.err != nil && !is503(a.err):
			t.Errorf("Send at %s answered %v after %v; want 200 or 503/1503",
				a.start.Format(time.StampMilli), a.err, took)
		case took > sendBound:
			t.Errorf("Send at %s took %v (%v); want an answer within %v",
				a.start.Format(time.StampMilli), took, a.err, sendBound)
		}
		// A Send that started just after the signal may have been on
		// its way through the server before it; past a moment's grace,
		// none can succeed until the database is back.
		if a.start.After(down.Add(200*time.Millisecond)) && a.end.Before(up) {
			inside++
			if a.err == nil {
				t.Errorf("Send at %s answered 200 while the database was down", a.start.Format(time.StampMilli))
			}
		}
	}
	if inside == 0 {
		t.Errorf("no Send ran wholly inside the outage: the test tested nothing")
	}
	var longest time.Duration
	for _, a := range attempts {
		longest = max(longest, a.end.Sub(a.start))
	}
	t.Logf("%d Sends, %d of them inside the outage; the longest took %v", len(attempts), inside, longest)
}

// TestDatabasePaused pauses the database (SIGSTOP: it takes connections
// and queries and answers nothing) while four senders send, then resumes
// it: Sends answer 503/1503 within their deadline meanwhile, the service
// recovers by itself, and every Send answered 200 is stored exactly once,
// with nothing half written.
func TestDatabasePaused(t *testing.T) {
	db := startMariaDB(t)
	throughOutage(t, db, func() {
		db.pause()
		// Long enough for Sends to start and time out wholly inside it,
		// and for Sends to queue behind batches stuck on it.
		time.Sleep(4 * queryTimeout)
	}, db.resume)
}

// TestDatabaseRestarted stops the database while four senders send, by
// SIGTERM (a clean shutdown that drops every connection) and by SIGKILL
// (a crash), and starts it again on the same datadir: Sends answer
// 503/1503 at once meanwhile, the service recovers by itself, and every
// Send answered 200 survived, stored exactly once and whole.
func TestDatabaseRestarted(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			db := startMariaDB(t)
			throughOutage(t, db, func() {
				db.signal(sig)
				db.wait(30 * time.Second)
				time.Sleep(2 * time.Second)
			}, db.start) // recovery on the same datadir, then answering
		})
	}
}

// throughOutage runs four senders against an in-process server on db,
// takes the database down with outage and brings it back with restore,
// and checks what the senders were answered meanwhile and that every
// Send answered 200 is stored exactly once, whole.
func throughOutage(t *testing.T, db *mariaDB, outage, restore func()) {
	t.Helper()
	baseURL, clientID, secret := startInProcess(t, db)
	to, senders := newSenders(t, baseURL, clientID, secret, 4)

	l := startLoad(senders, to.Session().UID, loadOptions{})
	l.waitAcked(t, len(senders), time.Now(), 30*time.Second)
	time.Sleep(300 * time.Millisecond)

	down := time.Now()
	outage()
	up := time.Now()
	restore()
	l.waitAcked(t, len(senders), up, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	messages, attempts := l.stop()

	checkOutage(t, attempts, down, up)
	check := db.open("fiberchat")
	defer check.Close()
	got := checkStored(t, check, messages)
	t.Logf("%d messages sent, %d answered 200, %d rows", len(messages), got.acked, got.rows)
}
