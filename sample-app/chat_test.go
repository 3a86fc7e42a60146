package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
)

// expectWait bounds how long a chat test waits for a line to appear:
// generous, as a login's bcrypt under -race on a busy machine takes
// seconds, and only a failing test waits it out.
const expectWait = 30 * time.Second

// chatRun is one `sample chat` running in the test, fed through a pipe.
type chatRun struct {
	t      *testing.T
	name   string
	in     *io.PipeWriter
	stdout *chattest.SyncBuffer
	stderr *chattest.SyncBuffer
	seen   int           // how much of stdout expect has gone past
	done   chan struct{} // closed when run returns
	code   int           // run's exit status, once done is closed
}

// startChat runs `sample chat args...` with env as its environment.
func startChat(t *testing.T, name string, env map[string]string, args ...string) *chatRun {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	c := &chatRun{t: t, name: name, in: pw, stdout: &chattest.SyncBuffer{}, stderr: &chattest.SyncBuffer{}, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		// A line said after the chat ended fails instead of blocking.
		defer pr.Close()
		c.code = run(ctx, append([]string{"chat"}, args...), func(k string) string { return env[k] }, pr, c.stdout, c.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(expectWait):
			t.Errorf("%s: chat did not end after its context", name)
		}
	})
	return c
}

// say types line into the chat.
func (c *chatRun) say(line string) {
	c.t.Helper()
	if _, err := fmt.Fprintln(c.in, line); err != nil {
		c.t.Fatalf("%s: say %q: %v (stdout %q, stderr %q)", c.name, line, err, c.stdout.String(), c.stderr.String())
	}
}

// expect waits until the output past what earlier expects matched holds
// want, and returns the line it is on.
func (c *chatRun) expect(want string) string {
	c.t.Helper()
	deadline := time.Now().Add(expectWait)
	for {
		out := c.stdout.String()
		if i := strings.Index(out[c.seen:], want); i >= 0 {
			start := c.seen + i
			lineStart := strings.LastIndex(out[:start], "\n") + 1
			end := start + len(want)
			if nl := strings.IndexByte(out[end:], '\n'); nl >= 0 {
				end += nl
			} else {
				end = len(out)
			}
			c.seen = end
			return out[lineStart:end]
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: no %q within %v in output past %d:\n%s\nstderr: %q", c.name, want, expectWait, c.seen, out, c.stderr.String())
		}
		select {
		case <-c.done:
			if !strings.Contains(c.stdout.String()[c.seen:], want) {
				c.t.Fatalf("%s: chat exited %d without printing %q:\n%s\nstderr: %q", c.name, c.code, want, out, c.stderr.String())
			}
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// exit waits for the chat to end and returns its exit status.
func (c *chatRun) exit() int {
	c.t.Helper()
	select {
	case <-c.done:
		return c.code
	case <-time.After(expectWait):
		c.t.Fatalf("%s: chat did not exit", c.name)
		return -1
	}
}

var uidRE = regexp.MustCompile(`your uid is (\d+)`)

// registerChat starts a chat, with extra flags, that registers name
// (password name-pw) and returns its uid.
func registerChat(t *testing.T, env map[string]string, name string, extra ...string) (*chatRun, string) {
	t.Helper()
	c := startChat(t, name, env, append([]string{"--register", name, "--password", name + "-pw"}, extra...)...)
	m := uidRE.FindStringSubmatch(c.expect("your uid is"))
	if m == nil {
		t.Fatalf("%s: no uid in %q", name, c.stdout.String())
	}
	c.expect("logged in as " + name)
	return c, m[1]
}

func TestChat(t *testing.T) {
	t.Parallel()
	srv, secret, env := serveChat(t, tempDSN(t))

	alice, aliceUID := registerChat(t, env, "alice")
	bob, bobUID := registerChat(t, env, "bob")

	alice.say("/open " + bobUID)
	alice.expect("conversation with bob (" + bobUID + ")")
	alice.expect("no messages yet")
	alice.say("hi bob")
	alice.expect("not sent: they are not your contact (yet): /add UID asks them")

	alice.say("/add " + bobUID)
	alice.expect("request sent to bob")
	bob.say("/requests")
	bob.expect(aliceUID + "  alice asks to be your contact")
	bob.say("/accept " + aliceUID)
	bob.expect("you and alice (" + aliceUID + ") are contacts now")

	// Live, both ways; bob has no conversation open, so his stays unread.
	alice.say("hello bob")
	bob.expect("[alice] hello bob")
	bob.say("/contacts")
	if line := bob.expect("  " + aliceUID + "  alice"); !strings.HasSuffix(line, "(1 unread)") {
		t.Errorf("bob's /contacts shows %q, want alice with 1 unread", line)
	}
	bob.say("/open " + aliceUID)
	bob.expect("[alice] hello bob") // the history
	bob.say("/contacts")
	if line := bob.expect("  " + aliceUID + "  alice"); strings.Contains(line, "unread") {
		t.Errorf("after /open, bob's /contacts shows %q, want nothing unread", line)
	}

	// alice has bob open: what arrives is marked read.
	for i := 1; i <= 25; i++ {
		bob.say(fmt.Sprintf("m%02d", i))
	}
	alice.expect("[bob] m01")
	alice.expect("[bob] m25")
	aliceAPI := apiClient(t, srv.base, secret, aliceUID, "alice-pw")
	waitUnread(t, aliceAPI, 0)

	alice.say("/quit")
	if code := alice.exit(); code != exitOK {
		t.Fatalf("alice's /quit: exit status %d, stderr %q", code, alice.stderr.String())
	}

	// Back with --uid: only new messages are printed live; the backlog is
	// counted and /open shows it.
	bob.say("while you were away")
	waitUnread(t, aliceAPI, 1)
	alice = startChat(t, "alice again", env, "--uid", aliceUID, "--password", "alice-pw")
	alice.expect("logged in as alice")
	alice.say("/contacts")
	if line := alice.expect("  " + bobUID + "  bob"); !strings.HasSuffix(line, "(1 unread)") {
		t.Errorf("alice's /contacts shows %q, want bob with 1 unread", line)
	}
	if out := alice.stdout.String(); strings.Contains(out, "[bob]") {
		t.Errorf("alice was shown the backlog at login:\n%s", out)
	}
	alice.say("/open " + bobUID)
	alice.expect("conversation with bob")
	opened := alice.seen
	alice.expect("[bob] m07") // the 20 newest of 27, oldest first: m07…m25, then the last
	alice.expect("[bob] while you were away")
	if page := alice.stdout.String()[opened:alice.seen]; strings.Contains(page, "m06") || strings.Count(page, "] ") != 20 {
		t.Errorf("/open printed %q, want the 20 newest messages", page)
	}
	alice.say("/history")
	alice.expect("older messages with bob")
	alice.expect("[alice] hello bob")
	alice.expect("[bob] m06")
	alice.say("/history")
	alice.expect("no older messages")
	waitUnread(t, aliceAPI, 0)

	alice.say("back?")
	bob.expect("[alice] back?")
	bob.say("yes")
	alice.expect("[bob] yes")

	bob.say("/block " + aliceUID)
	bob.expect("blocked alice")
	alice.say("still there?")
	alice.expect("not sent: they are not your contact (yet)") // blocking ended the contact too

	alice.in.Close() // the end of input ends the chat like /quit
	if code := alice.exit(); code != exitOK {
		t.Errorf("alice at end of input: exit status %d, stderr %q", code, alice.stderr.String())
	}

	t.Run("wrong password", func(t *testing.T) {
		r := runSample(t, env, "chat", "--uid", aliceUID, "--password", "not-hers")
		wantOneLineError(t, r)
		if !strings.Contains(r.stderr, "wrong uid or password") {
			t.Errorf("stderr = %q, want it to say wrong uid or password", r.stderr)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		r := runSample(t, env, "chat", "--uid", aliceUID, "--password", "alice-pw", "--secret", "not-the-secret")
		wantOneLineError(t, r)
		if !strings.Contains(r.stderr, "check --client-id and --secret") {
			t.Errorf("stderr = %q, want a hint at the API client", r.stderr)
		}
	})
}

// apiClient logs uid in through package client, beside the chat.
func apiClient(t *testing.T, base, secret, uid, password string) *client.Client {
	t.Helper()
	c, err := client.New(base, "demo", secret)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := strconv.ParseInt(uid, 10, 64)
	ctx, cancel := context.WithTimeout(context.Background(), expectWait)
	defer cancel()
	if _, err := c.Login(ctx, id, password); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitUnread waits until c's user has want unread messages in all.
func waitUnread(t *testing.T, c *client.Client, want int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), expectWait)
	defer cancel()
	var got int64
	for {
		unread, err := c.Unread(ctx)
		if err != nil {
			t.Fatalf("unread: %v", err)
		}
		got = 0
		for _, u := range unread {
			got += u.Count
		}
		if got == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d unread, want %d", got, want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestChatUsage(t *testing.T) {
	t.Parallel()
	env := map[string]string{"FIBERCHAT_SECRET": "s"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"no secret", nil, []string{"--uid", "1", "--password", "p"}},
		{"no password", env, []string{"--uid", "1"}},
		{"neither uid nor register", env, []string{"--password", "p"}},
		{"both uid and register", env, []string{"--uid", "1", "--register", "x", "--password", "p"}},
		{"bad uid", env, []string{"--uid", "x", "--password", "p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runSample(t, tt.env, append([]string{"chat"}, tt.args...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, "sample chat") {
				t.Errorf("exit status %d, stderr %q; want %d and the usage", r.code, r.stderr, exitUsage)
			}
		})
	}
	t.Run("unreachable server", func(t *testing.T) {
		r := runSample(t, env, "chat", "--url", "http://127.0.0.1:1", "--uid", "1", "--password", "p")
		wantOneLineError(t, r)
		if !strings.Contains(r.stderr, "cannot reach the server") {
			t.Errorf("stderr = %q, want it to say the server cannot be reached", r.stderr)
		}
	})
}

// TestChatTyping shows a contact typing, and who is online in /contacts.
func TestChatTyping(t *testing.T) {
	t.Parallel()
	srv, secret, env := serveChat(t, tempDSN(t))
	alice, aliceUID := registerChat(t, env, "alice")
	bob, bobUID := registerChat(t, env, "bob")
	befriendChats(alice, bob, aliceUID, bobUID)
	alice.say("/open " + bobUID)
	alice.expect("conversation with bob")
	alice.say("hello")
	bob.expect("[alice] hello") // bob's stream is open

	aliceAPI := apiClient(t, srv.base, secret, aliceUID, "alice-pw")
	uid, _ := strconv.ParseInt(bobUID, 10, 64)
	if err := aliceAPI.Typing(context.Background(), uid); err != nil {
		t.Fatal(err)
	}
	bob.expect("alice is typing…")
	bob.say("/contacts")
	if line := bob.expect("  " + aliceUID + "  alice"); !strings.Contains(line, "(online)") {
		t.Errorf("bob's /contacts shows %q, want alice online", line)
	}
}

// TestChatSendFile: /send-file uploads a file and sends it to the open
// conversation; the other side is shown it live and in /open's history.
func TestChatSendFile(t *testing.T) {
	t.Parallel()
	_, _, env := serveChat(t, tempDSN(t))
	alice, aliceUID := registerChat(t, env, "alice")
	bob, bobUID := registerChat(t, env, "bob")
	befriendChats(alice, bob, aliceUID, bobUID)

	path := t.TempDir() + "/notes.txt"
	if err := os.WriteFile(path, []byte(strings.Repeat("notes ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	alice.say("/send-file " + path)
	alice.expect("no conversation open")
	alice.say("/open " + bobUID)
	alice.expect("conversation with bob")
	alice.say("/send-file " + path)
	alice.expect("sent 📎 notes.txt (file, 5.9 KiB)")
	bob.expect("[alice] 📎 notes.txt (file, 5.9 KiB)")
	bob.say("/open " + aliceUID)
	bob.expect("[alice] 📎 notes.txt")
}
