//go:build linux

package faulttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/internal/fdlimit"
	"github.com/fiberchat/fiberchat/models"
)

var sampleBinary struct {
	once sync.Once
	path string
	err  error
}

// buildSample builds the sample app once per test binary.
func buildSample(t testing.TB) string {
	t.Helper()
	sampleBinary.once.Do(func() {
		path := filepath.Join(workDir, "sample")
		cmd := exec.Command("go", "build", "-o", path, "./sample-app")
		cmd.Dir = filepath.Join("..", "..") // the module's root
		if out, err := cmd.CombinedOutput(); err != nil {
			sampleBinary.err = fmt.Errorf("go build ./sample-app: %v\n%s", err, out)
			return
		}
		sampleBinary.path = path
	})
	if sampleBinary.err != nil {
		t.Fatal(sampleBinary.err)
	}
	return sampleBinary.path
}

// sampleServer is the sample app serving as a child process, which the
// test may signal and start again on the same address and database.
type sampleServer struct {
	t         testing.TB
	bin, dsn  string
	addr      string
	uploadDir string
	// secret is the "demo" client's, printed by the first start.
	secret string

	cmd            *exec.Cmd
	exited         chan struct{}
	stdout, stderr *chattest.SyncBuffer
}

var demoSecret = regexp.MustCompile(`client_id=demo client_secret=(\S+)`)

// startSample starts the sample app on db's "fiberchat" database and
// kills it when the test ends.
func startSample(t testing.TB, db *mariaDB) *sampleServer {
	t.Helper()
	s := &sampleServer{
		t:         t,
		bin:       buildSample(t),
		dsn:       "mysql:" + db.dsn("fiberchat"),
		addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(chattest.FreePort(t))),
		uploadDir: filepath.Join(t.TempDir(), "uploads"),
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() && s.stderr != nil {
			t.Logf("sample app's log (last run):\n%s", tail(s.stderr.String(), 8000))
		}
	})
	s.start()
	m := demoSecret.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("the sample app printed no demo secret:\n%s", s.stdout.String())
	}
	s.secret = m[1]
	return s
}

// url is the server's base URL.
func (s *sampleServer) url() string { return "http://" + s.addr }

// start runs `sample serve` and waits until /healthz answers.
func (s *sampleServer) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "serve", "--dsn", s.dsn, "--addr", s.addr, "--upload-dir", s.uploadDir)
	cmd.Env = append(os.Environ(), "FIBERCHAT_DSN=", "FIBERCHAT_ADDR=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.stdout, s.stderr = &chattest.SyncBuffer{}, &chattest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start the sample app: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := hc.Get(s.url() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-exited:
			s.t.Fatalf("the sample app exited at start: %v\n%s", cmd.ProcessState, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the sample app is not healthy after 60 s: %v\n%s", err, s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signal sends sig to the sample app's process.
func (s *sampleServer) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal the sample app: %v", err)
	}
}

// wait waits for the sample app to exit, at most limit, and returns how it
// exited.
func (s *sampleServer) wait(limit time.Duration) (*os.ProcessState, error) {
	select {
	case <-s.exited:
		return s.cmd.ProcessState, nil
	case <-time.After(limit):
		return nil, fmt.Errorf("the sample app still runs after %v", limit)
	}
}

// kill ends the sample app if it runs.
func (s *sampleServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
	}
}

// tail is the end of a log, for a failure message.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestServerKilled SIGKILLs the sample app while four senders send, and
// starts it again on the same address and database. Two senders send a
// client_msg_id and retry each message with it until answered 200, as a
// careful client does; two send none and never retry. Every Send answered
// 200 is stored exactly once, retries created no duplicate, and no
// message was half written.
func TestServerKilled(t *testing.T) {
	db := startMariaDB(t)
	srv := startSample(t, db)
	hc := newHTTPClient(t)
	to := newUser(t, srv.url(), "demo", srv.secret, "recipient", hc)
	clients := newContacts(t, srv, to, hc, 4)

	l := startLoad(clients, to.Session().UID, loadOptions{
		withID:  func(i int) bool { return i%2 == 0 },
		backoff: 50 * time.Millisecond,
	})
	l.waitAcked(t, len(clients), time.Now(), 30*time.Second)
	time.Sleep(500 * time.Millisecond)

	srv.signal(syscall.SIGKILL)
	if _, err := srv.wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	up := time.Now()
	srv.start()
	l.waitAcked(t, len(clients), up, 60*time.Second)
	time.Sleep(300 * time.Millisecond)
	messages, attempts := l.stop()

	failed := 0
	for _, a := range attempts {
		if a.err != nil {
			failed++
		}
	}
	for _, m := range messages {
		if m.msgID != "" && m.acked == 0 {
			t.Errorf("%q was retried with its client_msg_id and never answered 200", m.body)
		}
	}
	retried := len(attempts) - len(messages)
	if failed == 0 {
		t.Errorf("no Send failed: the kill missed the load")
	}
	check := db.open("fiberchat")
	defer check.Close()
	got := checkStored(t, check, messages)
	t.Logf("%d messages, %d attempts (%d failed, %d retries), %d answered 200, %d rows",
		len(messages), len(attempts), failed, retried, got.acked, got.rows)
}

// newContacts registers n senders, each a contact of to, through the
// sample app (which allows messages between contacts only).
func newContacts(t *testing.T, srv *sampleServer, to *client.Client, hc *http.Client, n int) []*client.Client {
	t.Helper()
	var senders []*client.Client
	for i := range n {
		c := newUser(t, srv.url(), "demo", srv.secret, fmt.Sprintf("sender %d", i), hc)
		befriend(t, c, to)
		senders = append(senders, c)
	}
	return senders
}

// Parked polls in TestShutdown, spread over users and their sessions
// (devices) as clients would be, and within the module's caps of waiting
// polls (4 a session, 16 a user), past which the oldest would be answered
// early: 63 users × 4 sessions × 4 polls, 1 008 in all.
const (
	pollUsers       = 63
	pollSessions    = 4
	pollsPerSession = 4
	pollCount       = pollUsers * pollSessions * pollsPerSession
)

// shutdownBound is how long the sample app may take to exit after
// SIGTERM: the module's Close is bounded by its ShutdownTimeout (the
// default, 10 s), after which nothing here holds the server's own
// shutdown; plus room for a loaded machine.
const shutdownBound = 10*time.Second + 5*time.Second

// TestShutdown sends the sample app SIGTERM while 1 000 long polls are
// parked and four senders send: every poll is answered (empty or with
// data), every Send that had started is answered, the process exits
// within its shutdown bound, and every Send answered 200 is stored once.
func TestShutdown(t *testing.T) {
	// A socket per parked poll is open on each side; the sample app, a
	// child, inherits the raised limit.
	if _, err := fdlimit.Raise(); err != nil {
		t.Logf("open-file limit: %v", err) // 1 000 polls fit the default too
	}
	db := startMariaDB(t)
	srv := startSample(t, db)
	hc := newHTTPClient(t)
	sink := newUser(t, srv.url(), "demo", srv.secret, "recipient", hc)
	senders := newContacts(t, srv, sink, hc, 4)
	pollers := pollSessionsOf(t, srv, db, hc)

	l := startLoad(senders, sink.Session().UID, loadOptions{})
	l.waitAcked(t, len(senders), time.Now(), 30*time.Second)

	// The polls: each is written, then waits for nothing (no one messages
	// the pollers) until the shutdown answers it.
	type poll struct {
		end time.Time
		err error
	}
	polls := make(chan poll, pollCount)
	var written sync.WaitGroup
	written.Add(pollCount)
	for _, c := range pollers {
		for range pollsPerSession {
			var once sync.Once
			trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(written.Done) }}
			ctx := httptrace.WithClientTrace(context.Background(), trace)
			go func() {
				_, err := c.Recv(ctx, client.RecvRequest{Wait: 30 * time.Second})
				once.Do(written.Done) // a poll that never got written is answered below
				polls <- poll{time.Now(), err}
			}()
		}
	}
	allWritten := make(chan struct{})
	go func() { written.Wait(); close(allWritten) }()
	select {
	case <-allWritten:
	case <-time.After(30 * time.Second):
		t.Fatalf("%d polls not written after 30 s", pollCount)
	}
	time.Sleep(time.Second) // for the last of them to park
	early := len(polls)
	if early > pollCount/2 {
		t.Fatalf("%d of %d polls were answered before the shutdown: they did not park", early, pollCount)
	}

	term := time.Now()
	srv.signal(syscall.SIGTERM)
	state, err := srv.wait(shutdownBound)
	if err != nil {
		t.Fatal(err)
	}
	exited := time.Now()
	if !state.Success() {
		t.Errorf("the sample app exited with %v after SIGTERM, want status 0", state)
	}
	messages, attempts := l.stop()

	// Every poll was answered by the server before it exited: what is
	// left to arrive is on its way through the loopback.
	for range pollCount {
		select {
		case p := <-polls:
			if !isAnswer(p.err) {
				t.Errorf("a parked poll got no answer: %v", p.err)
			} else if p.end.After(exited.Add(2 * time.Second)) {
				t.Errorf("a parked poll answered %v after the server exited", p.end.Sub(exited))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a poll still waits 5 s after the server exited")
		}
	}

	inFlight := 0
	for _, a := range attempts {
		if !a.start.Before(term) {
			continue // sent after the signal: refusing it is fine
		}
		if a.end.After(term) {
			inFlight++
		}
		if !isAnswer(a.err) {
			t.Errorf("a Send started %v before SIGTERM got no answer: %v", term.Sub(a.start), a.err)
		}
	}
	check := db.open("fiberchat")
	defer check.Close()
	got := checkStored(t, check, messages)
	t.Logf("exit %v after SIGTERM; %d polls parked at it; %d Sends in flight; %d messages, %d answered 200, %d rows",
		exited.Sub(term).Round(time.Millisecond), pollCount-early, inFlight, len(messages), got.acked, got.rows)
}

// pollSessionsOf registers pollUsers users and returns a client for each of
// their pollSessions sessions. Each user's first session comes from a
// login; the others are written into the token table directly, as the
// sample app's per-IP login limit would refuse so many logins from one
// address.
func pollSessionsOf(t *testing.T, srv *sampleServer, db *mariaDB, hc *http.Client) []*client.Client {
	t.Helper()
	conn := db.open("fiberchat")
	defer conn.Close()
	var out []*client.Client
	for i := range pollUsers {
		c := newUser(t, srv.url(), "demo", srv.secret, fmt.Sprintf("poller %d", i), hc)
		out = append(out, c)
		uid := c.Session().UID
		for range pollSessions - 1 {
			token, err := models.NewToken()
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().Unix()
			if _, err := conn.Exec("INSERT INTO chat_user_tokens (uid, token_hash, expire_time, created_at) VALUES (?, ?, ?, ?)",
				uid, models.HashToken(token), now+3600, now); err != nil {
				t.Fatalf("open a session: %v", err)
			}
			s, err := client.New(srv.url(), "demo", srv.secret, client.WithHTTPClient(hc),
				client.WithSession(client.Session{UID: uid, AccessToken: token, ExpireTime: now + 3600}))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
	}
	return out
}
