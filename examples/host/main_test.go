package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

const testSecret = "host-test-secret-0123"

// testHost is the example host built on a test database, with a chattest
// client that signs chat requests as the host's web page does.
type testHost struct {
	app   *fiber.App
	chat  *module.Module
	gdb   *gorm.DB
	api   *chattest.Server
	clock *chattest.Clock
	logs  *chattest.SyncBuffer
}

func newTestHost(t *testing.T, db *chattest.DB, secret string) *testHost {
	t.Helper()
	logs := &chattest.SyncBuffer{}
	clock := chattest.NewClock(time.Now())
	app, chat, err := newApp(context.Background(), db.Gorm, hostConfig{
		SessionKey:       bytes.Repeat([]byte("k"), 32),
		ChatClientSecret: secret,
		UploadDir:        t.TempDir(),
		Logger:           slog.New(slog.NewTextHandler(logs, nil)),
		Now:              clock.Now,
	})
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	t.Cleanup(func() { _ = chat.Close() })
	// The chat routes run on the real clock; the signer's clock is frozen
	// at the test's start, which the module's midnight skew covers.
	api := &chattest.Server{App: app, Module: chat, DB: db, Clock: chattest.NewClock(time.Now()),
		Prefix: "/chat", ClientID: "web", Secret: testSecret}
	return &testHost{app: app, chat: chat, gdb: db.Gorm, api: api, clock: clock, logs: logs}
}

// page is an answer of a host route.
type page struct {
	status   int
	ctype    string
	body     string
	location string
	cookie   string // the session cookie set, as "name=value"
}

// do sends a request to the host app, with a session cookie when given
// and a form body when form is not nil.
func (h *testHost) do(t *testing.T, method, path, cookie string, form url.Values) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := h.app.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: string(raw), location: resp.Header.Get("Location")}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			p.cookie = c.Name + "=" + c.Value
		}
	}
	return p
}

// login signs in through the host's form and returns the session cookie.
func (h *testHost) login(t *testing.T, email, password string) string {
	t.Helper()
	p := h.do(t, "POST", "/login", "", url.Values{"email": {email}, "password": {password}})
	if p.status != http.StatusSeeOther || p.location != "/" || p.cookie == "" {
		t.Fatalf("login %s: %d location=%q cookie=%q %s", email, p.status, p.location, p.cookie, p.body)
	}
	return p.cookie
}

// chatToken asks the host for a chat session.
func (h *testHost) chatToken(t *testing.T, cookie string) chatTokenResponse {
	t.Helper()
	p := h.do(t, "GET", "/chat-token", cookie, nil)
	if p.status != 200 || !strings.HasPrefix(p.ctype, "application/json") {
		t.Fatalf("/chat-token: %d %s", p.status, p.body)
	}
	var out chatTokenResponse
	if err := json.Unmarshal([]byte(p.body), &out); err != nil {
		t.Fatalf("/chat-token: %v: %s", err, p.body)
	}
	if out.UID == 0 || len(out.AccessToken) != 32 || out.ClientID != "web" {
		t.Fatalf("/chat-token: %+v", out)
	}
	return out
}

// expectHostPage fails unless p is the host's own HTML error page with
// that status, not the chat's JSON envelope.
func expectHostPage(t *testing.T, what string, p page, status int) {
	t.Helper()
	if p.status != status || !strings.HasPrefix(p.ctype, "text/html") ||
		!strings.Contains(p.body, `class="host-error"`) || strings.Contains(p.body, `"error"`) {
		t.Fatalf("%s: got %d %q %s, want the host's %d page", what, p.status, p.ctype, p.body, status)
	}
}

func seed(t *testing.T, gdb *gorm.DB, email, name string, level int) *User {
	t.Helper()
	u, err := upsertUser(context.Background(), gdb, email, name, "pw-"+name, level, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestHostChat is the acceptance path: host login, chat token,
// a message from one host user to another, the hooks, and the host's
// columns on the chat user.
func TestHostChat(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		h := newTestHost(t, db, testSecret)
		alice := seed(t, h.gdb, "alice@example.com", "Alice", 2)
		bob := seed(t, h.gdb, "bob@example.com", "Bob", 1)

		// Host login; the host's own /me.
		if p := h.do(t, "POST", "/login", "", url.Values{"email": {"alice@example.com"}, "password": {"wrong"}}); p.status != 401 || !strings.Contains(p.body, "Wrong email or password") {
			t.Fatalf("wrong password: %d %s", p.status, p.body)
		}
		ca := h.login(t, "alice@example.com", "pw-Alice")
		if p := h.do(t, "GET", "/me", ca, nil); p.status != 200 || !strings.Contains(p.body, `"email":"alice@example.com"`) {
			t.Fatalf("/me: %d %s", p.status, p.body)
		}

		// The host session gives a chat session, for the same chat user
		// every time: no second registration.
		ta := h.chatToken(t, ca)
		again := h.chatToken(t, ca)
		if again.UID != ta.UID || again.AccessToken == ta.AccessToken {
			t.Fatalf("second /chat-token: uid %d token same=%v, want uid %d and a new session", again.UID, again.AccessToken == ta.AccessToken, ta.UID)
		}
		// The browser signs with the day's tokens from the hint, never
		// holding the secret; they are the tokens the secret gives.
		if want := h.api.Sign("/user/info"); ta.APITokenHint.Tokens["/user/info"] != want {
			t.Fatalf("hint token %q, want %q", ta.APITokenHint.Tokens["/user/info"], want)
		}
		// The SDK signs with them as a page does, through a token source.
		ctx := context.Background()
		page := h.api.SDK(t, client.WithSession(client.Session{UID: ta.UID, AccessToken: ta.AccessToken}),
			client.WithTokenSource(func(path string) string { return ta.APITokenHint.Tokens[path] }))
		if info, err := page.Info(ctx); err != nil || info.UID != ta.UID || info.Name != "Alice" {
			t.Fatalf("/chat/user/info: %+v, %v", info, err)
		}

		cb := h.login(t, "bob@example.com", "pw-Bob")
		tb := h.chatToken(t, cb)
		if tb.UID == ta.UID {
			t.Fatalf("alice and bob share chat uid %d", tb.UID)
		}

		// Contacts, then a message from alice to bob.
		ac := h.api.SDKFor(t, chattest.User{UID: ta.UID, Token: ta.AccessToken})
		bc := h.api.SDKFor(t, chattest.User{UID: tb.UID, Token: tb.AccessToken})
		if _, err := ac.AddContacts(ctx, tb.UID); err != nil {
			t.Fatal(err)
		}
		if err := bc.AnswerRequest(ctx, ta.UID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := ac.Send(ctx, tb.UID, "hello bob"); err != nil {
			t.Fatal(err)
		}
		zero := int64(0)
		recv, err := bc.Recv(ctx, client.RecvRequest{LastID: &zero})
		if err != nil {
			t.Fatal(err)
		}
		if len(recv.Messages) != 1 {
			t.Fatalf("bob received %+v, want one message", recv)
		}
		if m := recv.Messages[0]; m.Message != "hello bob" || m.UIDFrom != ta.UID {
			t.Fatalf("bob received %+v", m)
		}

		// BeforeSend: the host's spam filter refuses, and nothing is stored.
		_, err = ac.Send(ctx, tb.UID, "FREE money, click")
		chattest.ExpectErr(t, err, 403, client.CodeForbidden)
		if n := h.api.Count(t, "messages", ""); n != 1 {
			t.Fatalf("%d messages stored, want 1", n)
		}

		// OnEvent: the host's audit log has the one stored message, and
		// the home page shows the count.
		var audit []AuditEntry
		if err := h.gdb.Where("kind = ?", "message.stored").Find(&audit).Error; err != nil {
			t.Fatal(err)
		}
		if len(audit) != 1 || audit[0].UID != ta.UID || audit[0].Peer != tb.UID {
			t.Fatalf("audit of message.stored: %+v", audit)
		}
		if p := h.do(t, "GET", "/", ca, nil); p.status != 200 || !strings.Contains(p.body, `<span id="messages">1</span>`) || !strings.Contains(p.body, "Signed in as Alice") {
			t.Fatalf("home: %d %s", p.status, p.body)
		}

		// The host's columns on the chat user: set by /chat-token, read
		// with ordinary GORM, and untouched by the chat's profile update.
		if err := bc.UpdateProfile(ctx, client.ProfileUpdate{Name: "Bobby"}); err != nil {
			t.Fatal(err)
		}
		var cu ChatUser
		if err := h.gdb.First(&cu, tb.UID).Error; err != nil {
			t.Fatal(err)
		}
		if cu.Name != "Bobby" || cu.Email != "bob@example.com" || cu.Level != 1 || cu.HostRef == nil || *cu.HostRef != hostRef(bob) {
			t.Fatalf("chat user after update: %+v host_ref=%v", cu, cu.HostRef)
		}
		var cols struct {
			Email string
			Level int
		}
		if err := h.gdb.Model(&ChatUser{}).Select("email", "level").Where("uid = ?", ta.UID).Scan(&cols).Error; err != nil {
			t.Fatal(err)
		}
		if cols.Email != alice.Email || cols.Level != 2 {
			t.Fatalf("alice's host columns: %+v", cols)
		}
		// A later /chat-token copies the host's current values and leaves
		// the chat profile (the name bob chose) alone.
		if err := h.gdb.Model(bob).Update("level", 3).Error; err != nil {
			t.Fatal(err)
		}
		h.chatToken(t, cb)
		cu = ChatUser{}
		if err := h.gdb.First(&cu, tb.UID).Error; err != nil {
			t.Fatal(err)
		}
		if cu.Name != "Bobby" || cu.Level != 3 {
			t.Fatalf("chat user after a new token: %+v", cu)
		}

		// Nothing collided: the host's users table holds the host's two
		// accounts, the chat's its two users.
		var hostUsers int64
		if err := h.gdb.Model(&User{}).Count(&hostUsers).Error; err != nil {
			t.Fatal(err)
		}
		if hostUsers != 2 || h.api.Count(t, "users", "") != 2 {
			t.Fatalf("host users %d, chat users %d; want 2 and 2", hostUsers, h.api.Count(t, "users", ""))
		}
	})
}

// TestHostPages checks that the host's routes and error pages stay the
// host's with the chat mounted, and that the chat answers its own paths.
func TestHostPages(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		h := newTestHost(t, db, testSecret)
		carol := seed(t, h.gdb, "carol@example.com", "Carol", 0)
		eve := seed(t, h.gdb, "eve@example.com", "Eve", 0)

		if p := h.do(t, "GET", "/", "", nil); p.status != 200 || !strings.Contains(p.body, `action="/login"`) {
			t.Fatalf("home: %d %s", p.status, p.body)
		}
		expectHostPage(t, "GET /nosuch", h.do(t, "GET", "/nosuch", "", nil), 404)
		expectHostPage(t, "POST /chatty", h.do(t, "POST", "/chatty", "", nil), 404)
		boom := h.do(t, "GET", "/boom", "", nil)
		expectHostPage(t, "GET /boom", boom, 500)
		if strings.Contains(boom.body, "bug") {
			t.Fatalf("the 500 page shows the panic: %s", boom.body)
		}
		if !strings.Contains(h.logs.String(), "a bug in the host") {
			t.Fatalf("the panic was not logged: %s", h.logs.String())
		}

		// Without a valid host session there is no chat session.
		expectHostPage(t, "/chat-token without session", h.do(t, "GET", "/chat-token", "", nil), 401)
		c := h.login(t, "carol@example.com", "pw-Carol")
		// Carol's signed cookie with Eve's id in it.
		forged := strings.Replace(c, fmt.Sprintf("=%d.", carol.ID), fmt.Sprintf("=%d.", eve.ID), 1)
		if forged == c {
			t.Fatalf("cookie %q has no user id to forge", c)
		}
		expectHostPage(t, "/chat-token with a forged cookie", h.do(t, "GET", "/chat-token", forged, nil), 401)
		expectHostPage(t, "/me after sign-out", h.do(t, "GET", "/me", h.do(t, "POST", "/logout", c, nil).cookie, nil), 401)
		h.clock.Advance(25 * time.Hour)
		expectHostPage(t, "/me with an expired session", h.do(t, "GET", "/me", c, nil), 401)

		// Under /chat the module answers in its own JSON.
		chattest.Expect(t, h.api.Do(t, chattest.Req{Path: "/nosuch", Method: "GET"}), 404, 1006)
		chattest.Expect(t, h.api.Post(t, "/user/info", map[string]any{"uid": 1, "access_token": "x"}), 401, 1004)
		chattest.Expect(t, h.api.Do(t, chattest.Req{Path: "/user/info", Unsigned: true, JSON: map[string]any{}}), 403, 1002)
	})
}

// TestHostRestart starts the host twice on one database, as a restart
// does: the migrations, the host's columns and the API client are each
// applied once, and the module's second Migrate keeps the host's values.
func TestHostRestart(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		first := newTestHost(t, db, testSecret)
		seed(t, first.gdb, "dave@example.com", "Dave", 7)
		tok := first.chatToken(t, first.login(t, "dave@example.com", "pw-Dave"))
		_ = first.chat.Close()

		second := newTestHost(t, db, testSecret)
		var cu ChatUser
		if err := second.gdb.First(&cu, tok.UID).Error; err != nil {
			t.Fatal(err)
		}
		if cu.Email != "dave@example.com" || cu.Level != 7 {
			t.Fatalf("host columns after restart: %+v", cu)
		}
		// A restart without a configured secret finds the stored one.
		got, err := ensureClient(context.Background(), second.chat, "web", "")
		if err != nil || got != testSecret {
			t.Fatalf("ensureClient without a secret: %q %v", got, err)
		}
		// A configured secret that is not the stored one is an error, not
		// a site whose chat signatures silently fail.
		if _, _, err := newApp(context.Background(), db.Gorm, hostConfig{SessionKey: bytes.Repeat([]byte("k"), 32), ChatClientSecret: "another-secret-99", UploadDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}); err == nil || !strings.Contains(err.Error(), "another secret") {
			t.Fatalf("newApp with another secret: %v", err)
		}
	})
}
