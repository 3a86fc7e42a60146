package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

// result is what one run of the program left behind.
type result struct {
	code           int
	stdout, stderr string
}

// runSample runs the program with args and env as its whole environment.
func runSample(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// tempDSN names a fresh SQLite database in the test's temp dir.
func tempDSN(t *testing.T) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "x.db")
}

// wantOneLineError checks a failure: status 1 and a single `sample: …`
// line on stderr.
func wantOneLineError(t *testing.T, r result) {
	t.Helper()
	if r.code != exitError {
		t.Fatalf("exit status = %d, want %d (stderr %q)", r.code, exitError, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "sample: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Fatalf("stderr = %q, want one line `sample: <message>`", r.stderr)
	}
}

type created struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// createClient runs `client create` and decodes what it prints.
func createClient(t *testing.T, env map[string]string, args ...string) created {
	t.Helper()
	r := runSample(t, env, append([]string{"client", "create"}, args...)...)
	if r.code != exitOK {
		t.Fatalf("client create: exit status %d, stderr %q", r.code, r.stderr)
	}
	var c created
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("client create printed %q: %v", r.stdout, err)
	}
	if rest, _ := io.ReadAll(dec.Buffered()); strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("client create printed more than one JSON object: %q", r.stdout)
	}
	return c
}

type listed struct {
	ClientID string `json:"client_id"`
	Name     string `json:"name"`
	Disabled bool   `json:"disabled"`
}

// listClients runs `client list` and decodes its lines by client_id.
func listClients(t *testing.T, env map[string]string, args ...string) (map[string]listed, string) {
	t.Helper()
	r := runSample(t, env, append([]string{"client", "list"}, args...)...)
	if r.code != exitOK {
		t.Fatalf("client list: exit status %d, stderr %q", r.code, r.stderr)
	}
	out := map[string]listed{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if line == "" {
			continue
		}
		var c listed
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("client list line %q: %v", line, err)
		}
		out[c.ClientID] = c
	}
	return out, r.stdout
}

func TestClientCommands(t *testing.T) {
	t.Parallel()
	dsn := tempDSN(t)

	c := createClient(t, nil, "--dsn", dsn, "--id", "web", "--name", "Web client")
	if c.ClientID != "web" {
		t.Errorf("client_id = %q, want %q", c.ClientID, "web")
	}
	if len(c.ClientSecret) < 16 {
		t.Errorf("generated client_secret %q is shorter than 16 characters", c.ClientSecret)
	}

	t.Run("same id again", func(t *testing.T) {
		r := runSample(t, nil, "client", "create", "--dsn", dsn, "--id", "web")
		wantOneLineError(t, r)
		if r.stdout != "" {
			t.Errorf("stdout = %q, want nothing", r.stdout)
		}
	})

	given := createClient(t, nil, "--dsn", dsn, "--id", "app", "--secret", "s3cret-given")
	if given.ClientSecret != "s3cret-given" {
		t.Errorf("client_secret = %q, want the given one", given.ClientSecret)
	}

	clients, raw := listClients(t, nil, "--dsn", dsn)
	if got, ok := clients["web"]; !ok || got.Name != "Web client" || got.Disabled {
		t.Errorf("list: web = %+v (found %v), want enabled with its name", got, ok)
	}
	if _, ok := clients["app"]; !ok || len(clients) != 2 {
		t.Errorf("list = %v, want web and app", clients)
	}
	for _, secret := range []string{c.ClientSecret, given.ClientSecret} {
		if strings.Contains(raw, secret) {
			t.Errorf("client list shows a secret: %q", raw)
		}
	}

	r := runSample(t, nil, "client", "disable", "--dsn", dsn, "--id", "web")
	if r.code != exitOK {
		t.Fatalf("client disable: exit status %d, stderr %q", r.code, r.stderr)
	}
	clients, _ = listClients(t, nil, "--dsn", dsn)
	if !clients["web"].Disabled || clients["app"].Disabled {
		t.Errorf("after disabling web: %v, want only web disabled", clients)
	}

	t.Run("disable unknown id", func(t *testing.T) {
		wantOneLineError(t, runSample(t, nil, "client", "disable", "--dsn", dsn, "--id", "nosuch"))
	})
}

// TestClientSecretCommands: show-secret prints a client's secret again,
// reset-secret replaces it (random or given), and both say so in words
// for a client that does not exist.
func TestClientSecretCommands(t *testing.T) {
	t.Parallel()
	dsn := tempDSN(t)
	c := createClient(t, nil, "--dsn", dsn, "--id", "demo")
	secretOf := func(args ...string) created {
		t.Helper()
		r := runSample(t, nil, append([]string{"client"}, args...)...)
		var got created
		if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &got) != nil || !strings.HasSuffix(r.stdout, "}\n") {
			t.Fatalf("client %v: exit status %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
		return got
	}
	if got := secretOf("show-secret", "--dsn", dsn, "--id", "demo"); got != c {
		t.Errorf("show-secret printed %+v, want %+v", got, c)
	}
	reset := secretOf("reset-secret", "--dsn", dsn, "--id", "demo")
	if reset.ClientID != "demo" || len(reset.ClientSecret) < 16 || reset.ClientSecret == c.ClientSecret {
		t.Errorf("reset-secret printed %+v, want a new random secret for demo", reset)
	}
	if got := secretOf("show-secret", "--dsn", dsn, "--id", "demo"); got != reset {
		t.Errorf("show-secret after the reset printed %+v, want %+v", got, reset)
	}
	if got := secretOf("reset-secret", "--dsn", dsn, "--id", "demo", "--secret", "my-own-secret"); got.ClientSecret != "my-own-secret" {
		t.Errorf("reset-secret --secret printed %+v", got)
	}
	for _, sub := range []string{"show-secret", "reset-secret"} {
		r := runSample(t, nil, "client", sub, "--dsn", dsn, "--id", "nosuch")
		wantOneLineError(t, r)
		if !strings.Contains(r.stderr, `no client "nosuch"`) {
			t.Errorf("%s of no client: stderr %q, want it to say there is no such client", sub, r.stderr)
		}
	}
	wantOneLineError(t, runSample(t, nil, "client", "reset-secret", "--dsn", dsn, "--id", "demo", "--secret", "short"))
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	fromEnv, fromFlag := tempDSN(t), tempDSN(t)
	env := map[string]string{"FIBERCHAT_DSN": fromEnv}

	createClient(t, env, "--id", "envclient")
	createClient(t, env, "--dsn", fromFlag, "--id", "flagclient")

	if got, _ := listClients(t, env); len(got) != 1 || got["envclient"].ClientID == "" {
		t.Errorf("FIBERCHAT_DSN database holds %v, want only envclient", got)
	}
	if got, _ := listClients(t, nil, "--dsn", fromFlag); len(got) != 1 || got["flagclient"].ClientID == "" {
		t.Errorf("--dsn database holds %v, want only flagclient", got)
	}

	// Every flag reads its variable, not only --dsn.
	c := createClient(t, map[string]string{"FIBERCHAT_DSN": fromEnv, "FIBERCHAT_ID": "byenv", "FIBERCHAT_SECRET": "secret-from-env"})
	if c.ClientID != "byenv" || c.ClientSecret != "secret-from-env" {
		t.Errorf("created %+v from FIBERCHAT_ID and FIBERCHAT_SECRET", c)
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"bad dsn", []string{"client", "list", "--dsn", "nosuch:x"}, exitError},
		{"unreachable mysql", []string{"client", "create", "--dsn", "mysql:u:p@tcp(127.0.0.1:1)/x", "--id", "web"}, exitError},
		{"serve on bad dsn", []string{"serve", "--dsn", "nosuch:x", "--addr", "127.0.0.1:0"}, exitError},
		{"migrate on bad dsn", []string{"migrate", "--dsn", "sqlite:"}, exitError},
		{"no command", nil, exitUsage},
		{"help", []string{"help"}, exitUsage},
		{"unknown command", []string{"frobnicate"}, exitUsage},
		{"client without subcommand", []string{"client"}, exitUsage},
		{"unknown client subcommand", []string{"client", "delete"}, exitUsage},
		{"unknown flag", []string{"migrate", "--nosuch"}, exitUsage},
		{"stray argument", []string{"client", "list", "extra"}, exitUsage},
		{"create without id", []string{"client", "create", "--dsn", "nosuch:x"}, exitUsage},
		{"show-secret without id", []string{"client", "show-secret", "--dsn", "nosuch:x"}, exitUsage},
		{"reset-secret without id", []string{"client", "reset-secret", "--dsn", "nosuch:x"}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := runSample(t, nil, tt.args...)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v, want a quick failure", took)
			}
			if tt.want == exitError {
				wantOneLineError(t, r)
				return
			}
			if r.code != tt.want {
				t.Fatalf("exit status = %d, want %d (stderr %q)", r.code, tt.want, r.stderr)
			}
			if !strings.Contains(r.stderr, "sample ") {
				t.Errorf("stderr = %q, want the usage", r.stderr)
			}
		})
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	dsn := tempDSN(t)
	for i := range 2 { // the second run has nothing to do
		if r := runSample(t, nil, "migrate", "--dsn", dsn); r.code != exitOK {
			t.Fatalf("migrate run %d: exit status %d, stderr %q", i+1, r.code, r.stderr)
		}
	}
}

func TestClientCreateMySQL(t *testing.T) {
	base := os.Getenv(chattest.MySQLEnv)
	if base == "" {
		t.Skip(chattest.MySQLEnv + " is not set: skipping client create on MariaDB")
	}
	db := chattest.OpenMySQL(t, base) // a fresh fiberchat_test_* database, dropped afterwards
	c := createClient(t, nil, "--dsn", db.DSN, "--id", "web")
	if c.ClientID != "web" || len(c.ClientSecret) < 16 {
		t.Errorf("created %+v, want web with a generated secret", c)
	}
	wantOneLineError(t, runSample(t, nil, "client", "create", "--dsn", db.DSN, "--id", "web"))
	if got, _ := listClients(t, nil, "--dsn", db.DSN); got["web"].ClientID != "web" {
		t.Errorf("list = %v, want web", got)
	}
}

// forEachDatabase runs f as a subtest per database `serve` can run on:
// a fresh SQLite file, and a fresh MariaDB database when
// FIBERCHAT_TEST_MYSQL_DSN names a server (the subtest skips, saying so,
// when it does not).
func forEachDatabase(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, tempDSN(t)) })
	t.Run("mysql", func(t *testing.T) {
		base := os.Getenv(chattest.MySQLEnv)
		if base == "" {
			t.Skip(chattest.MySQLEnv + " is not set: skipping the MariaDB run")
		}
		f(t, chattest.OpenMySQL(t, base).DSN)
	})
}

// server is one `sample serve` running in the test.
type server struct {
	base   string // http://host:port
	stdout *chattest.SyncBuffer
	stderr *chattest.SyncBuffer
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	code   int           // run's exit status, once done is closed
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// startServe runs `sample serve` on dsn, with extra flags, and waits
// until it listens.
func startServe(t *testing.T, dsn string, extra ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stdout: &chattest.SyncBuffer{}, stderr: &chattest.SyncBuffer{}, cancel: cancel, done: make(chan struct{})}
	args := []string{"serve", "--dsn", dsn, "--addr", "127.0.0.1:0", "--upload-dir", filepath.Join(t.TempDir(), "uploads")}
	args = append(args, extra...)
	go func() {
		defer close(s.done)
		s.code = run(ctx, args, func(string) string { return "" }, nil, s.stdout, s.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
		}
	})

	// Generous: migrating and hashing (bcrypt, under -race) on a machine
	// busy with other packages' tests takes tens of seconds; only a
	// failing start waits it out.
	deadline := time.After(time.Minute)
	for {
		if m := listeningRE.FindStringSubmatch(s.stdout.String()); m != nil {
			s.base = m[1]
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("serve exited with %d before listening; stderr %q", s.code, s.stderr.String())
		case <-deadline:
			t.Fatalf("serve did not report its address; stdout %q, stderr %q", s.stdout.String(), s.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop cancels the server's context and checks that it exits 0 promptly.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
		if s.code != exitOK {
			t.Errorf("serve exited with %d, want 0; stderr %q", s.code, s.stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("serve did not exit within 5s of cancel")
	}
}

// envelope is the part of every response the tests read.
type envelope struct {
	Error int    `json:"error"`
	Msg   string `json:"msg"`
	UID   int64  `json:"uid"`
}

func do(t *testing.T, method, url, body string) (int, envelope) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, url, raw, err)
	}
	return resp.StatusCode, env
}

// sendWhole POSTs body on a connection of its own, reading the answer
// while the body is still being written, as a browser does: a server
// refusing the body answers from its declared length and closes the
// connection, and a client that reads only after writing it all would
// find the connection reset.
func sendWhole(t *testing.T, base, path, body string) (int, envelope) {
	t.Helper()
	conn, host := dialBase(t, base)
	defer conn.Close()
	go func() {
		// A write cut short by the server's close is expected.
		_, _ = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, host, len(body), body)
	}()
	return readEnvelope(t, conn, path, len(body))
}

// declareBody sends the head of a POST whose Content-Length is size and
// reads the answer without sending the body. The server refuses a body
// past its own limit from that header alone and closes the connection: a
// client still sending the body would then be reset, and lose the answer
// with it, about half the time.
func declareBody(t *testing.T, base, path string, size int) (int, envelope) {
	t.Helper()
	conn, host := dialBase(t, base)
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, host, size); err != nil {
		t.Fatal(err)
	}
	// The server streams bodies (AppConfig): fasthttp reads up to 8 KiB
	// of one before the route runs, which then answers from the declared
	// length. So a little more than that is sent, not the whole body.
	if _, err := conn.Write(make([]byte, min(size, 16<<10))); err != nil {
		t.Fatal(err)
	}
	return readEnvelope(t, conn, path, size)
}

// dialBase opens a connection of its own to the server at base, for a
// request written by hand, and returns it with the Host to name.
func dialBase(t *testing.T, base string) (net.Conn, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn, u.Host
}

// readEnvelope reads the answer to the POST of a size-byte body to path
// from conn.
func readEnvelope(t *testing.T, conn net.Conn, path string, size int) (int, envelope) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("POST %s with a %d-byte body: %v", path, size, err)
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("POST %s: body is not JSON: %v", path, err)
	}
	return resp.StatusCode, env
}

// apiToken signs a request for path as a client of the sample server
// does, through the module's public API; the server runs in UTC, the
// default Location.
func apiToken(path, secret string) string {
	return module.APIToken(path, secret, time.Now().UTC())
}

func TestServe(t *testing.T) {
	t.Parallel()
	dsn := tempDSN(t)
	s, secret := serveDemo(t, dsn)

	if status, env := do(t, "GET", s.base+"/healthz", ""); status != 200 || env.Error != 0 || env.Msg != "ok" {
		t.Errorf("GET /healthz = %d %+v, want 200 {error:0 msg:ok}", status, env)
	}
	// It says where the chat page is, and how to find the secret again.
	if want := "chat page: " + s.base + "/app/ (open it in a browser)\n"; !strings.Contains(s.stdout.String(), want) {
		t.Errorf("serve printed %q, want the line %q", s.stdout.String(), want)
	}
	if want := "print this secret again with: sample client show-secret --id demo"; !strings.Contains(s.stdout.String(), want) {
		t.Errorf("serve printed %q, want %q", s.stdout.String(), want)
	}

	// A client of the demo API client registers, logs in and reads its
	// profile through the Go SDK.
	ctx := context.Background()
	c, err := client.New(s.base, "demo", secret)
	if err != nil {
		t.Fatal(err)
	}
	if uid, err := c.Register(ctx, "alice", "secret1"); err != nil || uid != 10000001 {
		t.Errorf("register = %d, %v, want uid 10000001", uid, err)
	}
	if _, err := c.Login(ctx, 10000001, "secret1"); err != nil {
		t.Errorf("login: %v", err)
	} else if info, err := c.Info(ctx); err != nil || info.UID != 10000001 || info.Name != "alice" {
		t.Errorf("info = %+v, %v, want alice's", info, err)
	}

	// By hand from here: bodies the SDK never sends.
	q := url.Values{"client_id": {"demo"}, "api_token": {apiToken("/user/reg/ajax_reg", secret)}}

	if status, env := do(t, "GET", s.base+"/nosuch", ""); status != 404 || env.Error != 1006 {
		t.Errorf("GET /nosuch = %d %+v, want 404 error 1006", status, env)
	}
	// Past the route's own limit (1 MiB), sent and only declared: both
	// are the envelope's 413, not fasthttp's plain text.
	big := `{"name":"` + strings.Repeat("x", 3<<19) + `"}`
	if status, env := sendWhole(t, s.base, "/user/reg/ajax_reg?"+q.Encode(), big); status != 413 || env.Error != 1009 {
		t.Errorf("1.5 MiB body = %d %+v, want 413 error 1009", status, env)
	}
	if status, env := declareBody(t, s.base, "/user/reg/ajax_reg?"+q.Encode(), 20<<20); status != 413 || env.Error != 1009 {
		t.Errorf("20 MiB body = %d %+v, want 413 error 1009", status, env)
	}

	s.stop(t)

	t.Run("second run prints no new secret", func(t *testing.T) {
		s := startServe(t, dsn)
		if out := s.stdout.String(); strings.Contains(out, "client_secret") || strings.Contains(out, secret) {
			t.Errorf("second serve printed a demo secret: %q", out)
		}
		if out := s.stdout.String(); !strings.Contains(out, "the demo API client's secret: sample client show-secret --id demo\n") ||
			!strings.Contains(out, "chat page: "+s.base+"/app/") {
			t.Errorf("second serve printed %q, want the page's URL and where the secret is", out)
		}
		if status, _ := do(t, "GET", s.base+"/healthz", ""); status != 200 {
			t.Errorf("GET /healthz = %d, want 200", status)
		}
		s.stop(t)
	})
}

// TestSiteRoutesCloseOnUnreadBody: a body sent with a request to the
// site's own routes (which read none) is never read as the connection's
// next request: one request cannot carry others past a proxy.
func TestSiteRoutesCloseOnUnreadBody(t *testing.T) {
	t.Parallel()
	s := startServe(t, tempDSN(t))
	for _, path := range []string{"/healthz", "/app/", "/app/config.json"} {
		// Past fasthttp's read buffer, so that the body streams.
		hidden := strings.Repeat("GET /healthz HTTP/1.1\r\nHost: chat\r\n\r\n", 2000)
		conn, host := dialBase(t, s.base)
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s", path, host, len(hidden), hidden)
		all, err := io.ReadAll(conn)
		_ = conn.Close()
		// Closed with the body unread, the socket may answer a reset.
		closed := err == nil || errors.Is(err, syscall.ECONNRESET)
		if n := bytes.Count(all, []byte("HTTP/1.1 ")); n != 1 || !closed {
			t.Errorf("GET %s with requests as its body: %d answers and %v, want 1 and the connection closed", path, n, err)
		}
	}
}
