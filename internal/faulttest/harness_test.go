//go:build linux

package faulttest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	gomysql "github.com/go-sql-driver/mysql"
)

// workDir holds what the tests create outside t.TempDir: the datadirs,
// whose socket paths must stay short, and the sample app's binary, built
// once for the whole run.
var workDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "faulttest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	// The driver logs every connection a killed or paused server breaks;
	// the tests expect those and check the answers instead.
	_ = gomysql.SetLogger(log.New(io.Discard, "", 0))
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// password is every test user's password.
const password = "fault-test-password"

// newHTTPClient is a keep-alive client with room for many concurrent
// requests to one host, as a busy client process has.
func newHTTPClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 200}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// newUser registers a user through the API and logs it in: the returned
// Client holds its session.
func newUser(t testing.TB, baseURL, clientID, secret, name string, hc *http.Client) *client.Client {
	t.Helper()
	c, err := client.New(baseURL, clientID, secret, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uid, err := c.Register(ctx, name, password)
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	if _, err := c.Login(ctx, uid, password); err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return c
}

// befriend makes a and b contacts: a asks, b accepts.
func befriend(t testing.TB, a, b *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.AddContacts(ctx, b.Session().UID); err != nil {
		t.Fatalf("add contact: %v", err)
	}
	if err := b.AnswerRequest(ctx, a.Session().UID, true); err != nil {
		t.Fatalf("accept contact: %v", err)
	}
}

// attempt is one Send request and how it ended.
type attempt struct {
	sender     int
	body       string
	start, end time.Time
	err        error // nil for 200
}

// message is one message a sender meant to send, over all its attempts.
type message struct {
	from, to int64
	body     string // unique in the run: the test finds rows by it
	msgID    string // client_msg_id, "" for none
	acked    int64  // the id a 200 answered, 0 when none did
}

// loadOptions shape a load.
type loadOptions struct {
	// withID tells whether sender i sends a client_msg_id and retries
	// each message with it until answered 200; the others send none and
	// never retry.
	withID func(i int) bool
	// retryFor bounds a message's retries once the load is stopping.
	retryFor time.Duration
	// backoff is the pause after a failed Send.
	backoff time.Duration
	// timeout is the client's deadline for one Send.
	timeout time.Duration
}

// load is a few senders sending numbered messages to one recipient as
// fast as answers come, until stopped.
type load struct {
	opts     loadOptions
	stopping chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	attempts []attempt
	messages []message
}

// startLoad starts one goroutine per sender, each sending to the user to.
func startLoad(senders []*client.Client, to int64, opts loadOptions) *load {
	if opts.withID == nil {
		opts.withID = func(int) bool { return false }
	}
	if opts.timeout == 0 {
		opts.timeout = 30 * time.Second
	}
	if opts.backoff == 0 {
		opts.backoff = 20 * time.Millisecond
	}
	if opts.retryFor == 0 {
		opts.retryFor = 30 * time.Second
	}
	l := &load{opts: opts, stopping: make(chan struct{})}
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	for i, c := range senders {
		l.wg.Add(1)
		go l.send(i, c, to, run)
	}
	return l
}

func (l *load) send(i int, c *client.Client, to int64, run string) {
	defer l.wg.Done()
	withID := l.opts.withID(i)
	for n := 0; ; n++ {
		select {
		case <-l.stopping:
			return
		default:
		}
		m := message{from: c.Session().UID, to: to, body: fmt.Sprintf("fault %s sender %d message %d", run, i, n)}
		if withID {
			m.msgID = fmt.Sprintf("%s-%d-%d", run, i, n)
		}
		var giveUp time.Time // set once stopping: how long retries may go on
		for {
			var opts []client.SendOption
			if m.msgID != "" {
				opts = append(opts, client.ClientMsgID(m.msgID))
			}
			ctx, cancel := context.WithTimeout(context.Background(), l.opts.timeout)
			a := attempt{sender: i, body: m.body, start: time.Now()}
			sent, err := c.Send(ctx, to, m.body, opts...)
			cancel()
			a.end, a.err = time.Now(), err
			l.mu.Lock()
			l.attempts = append(l.attempts, a)
			l.mu.Unlock()
			if err == nil {
				m.acked = sent.ID
				break
			}
			if !withID {
				break
			}
			if giveUp.IsZero() {
				select {
				case <-l.stopping:
					giveUp = time.Now().Add(l.opts.retryFor)
				default:
				}
			} else if time.Now().After(giveUp) {
				break
			}
			time.Sleep(l.opts.backoff)
		}
		if m.acked == 0 {
			time.Sleep(l.opts.backoff)
		}
		l.mu.Lock()
		l.messages = append(l.messages, m)
		l.mu.Unlock()
	}
}

// stop ends the load once every sender has finished its current message,
// and returns what was sent.
func (l *load) stop() ([]message, []attempt) {
	close(l.stopping)
	l.wg.Wait()
	return l.snapshot()
}

// snapshot returns what was sent so far.
func (l *load) snapshot() ([]message, []attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]message(nil), l.messages...), append([]attempt(nil), l.attempts...)
}

// waitAcked waits until each sender has had a Send that started at or
// after since answered 200, and fails the test after limit.
func (l *load) waitAcked(t testing.TB, senders int, since time.Time, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		_, attempts := l.snapshot()
		ok := map[int]bool{}
		for _, a := range attempts {
			if a.err == nil && !a.start.Before(since) {
				ok[a.sender] = true
			}
		}
		if len(ok) == senders {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d senders have had a Send answered 200 (since %s); last errors:\n%s",
				limit, len(ok), senders, since.Format(time.StampMilli), lastErrors(attempts, 5))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastErrors lists the last n failed attempts, for a failure message.
func lastErrors(attempts []attempt, n int) string {
	var b strings.Builder
	for i := len(attempts) - 1; i >= 0 && n > 0; i-- {
		if attempts[i].err != nil {
			fmt.Fprintf(&b, "  %s: %v\n", attempts[i].start.Format(time.StampMilli), attempts[i].err)
			n--
		}
	}
	return b.String()
}

// is503 tells whether err is the server's answer 503/1503: the database
// is unavailable and nothing was written.
func is503(err error) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Status == http.StatusServiceUnavailable && e.Code == client.CodeUnavailable
}

// isAnswer tells whether err is an answer from the server (any status),
// not a failure to reach it.
func isAnswer(err error) bool {
	var e *client.Error
	return err == nil || errors.As(err, &e)
}

// stored is what checkStored found.
type stored struct {
	rows, acked int
}

// checkStored checks the messages table against what the senders were
// told: every message answered 200 is stored exactly once, under the id
// it was answered with; every other one at most once; nothing is stored
// that no one sent; and each conversation's counters agree with its
// messages, so no Send was half written.
func checkStored(t testing.TB, db *sql.DB, messages []message) stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type row struct {
		id, from, to int64
		msgID        sql.NullString
	}
	rs, err := db.QueryContext(ctx, "SELECT id, from_uid, to_uid, body, client_msg_id FROM chat_messages")
	if err != nil {
		t.Fatalf("read messages: %v", err)
	}
	byBody := map[string][]row{}
	n := 0
	for rs.Next() {
		var r row
		var body string
		if err := rs.Scan(&r.id, &r.from, &r.to, &body, &r.msgID); err != nil {
			t.Fatal(err)
		}
		byBody[body] = append(byBody[body], r)
		n++
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	rs.Close()

	out := stored{rows: n}
	sent := map[string]bool{}
	for _, m := range messages {
		sent[m.body] = true
		rows := byBody[m.body]
		for _, r := range rows {
			if r.from != m.from || r.to != m.to {
				t.Errorf("%q stored from %d to %d, sent from %d to %d", m.body, r.from, r.to, m.from, m.to)
			}
			if m.msgID != "" && r.msgID.String != m.msgID {
				t.Errorf("%q stored with client_msg_id %q, sent with %q", m.body, r.msgID.String, m.msgID)
			}
		}
		switch {
		case m.acked != 0 && len(rows) != 1:
			t.Errorf("%q answered 200 (id %d) is stored %d times, want once", m.body, m.acked, len(rows))
		case m.acked != 0 && rows[0].id != m.acked:
			t.Errorf("%q answered 200 with id %d is stored as id %d", m.body, m.acked, rows[0].id)
		case len(rows) > 1:
			t.Errorf("%q (never answered 200) is stored %d times, want at most once", m.body, len(rows))
		}
		if m.acked != 0 {
			out.acked++
		}
	}
	for body, rows := range byBody {
		if !sent[body] && strings.HasPrefix(body, "fault ") {
			t.Errorf("%q is stored %d times, and its sender never finished it", body, len(rows))
		}
	}

	// The conversation row a Send keeps in the same transaction: its
	// newest id and unread count (nothing is ever read here) must be the
	// messages' own.
	cs, err := db.QueryContext(ctx, `
		SELECT m.to_uid, m.from_uid, MAX(m.id), COUNT(*), COALESCE(MAX(c.last_id), -1), COALESCE(MAX(c.unread), -1)
		FROM chat_messages m
		LEFT JOIN chat_conversations c ON c.uid = m.to_uid AND c.peer_uid = m.from_uid
		GROUP BY m.to_uid, m.from_uid`)
	if err != nil {
		t.Fatalf("read conversations: %v", err)
	}
	defer cs.Close()
	for cs.Next() {
		var to, from, maxID, count, lastID, unread int64
		if err := cs.Scan(&to, &from, &maxID, &count, &lastID, &unread); err != nil {
			t.Fatal(err)
		}
		if lastID != maxID || unread != count {
			t.Errorf("conversation %d←%d: last_id %d, unread %d; its messages: newest %d, count %d",
				to, from, lastID, unread, maxID, count)
		}
	}
	if err := cs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
