package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/middleware"
)

// TestHostChatPage: a signed-in host user gets the chat page and its
// settings (tokens, never the secret; the chat uid; where its session
// comes from), with which the page can call the chat; a visitor gets
// neither.
func TestHostChatPage(t *testing.T) {
	h := newTestHost(t, chattest.OpenSQLite(t), testSecret)
	seed(t, h.gdb, "carol@example.com", "Carol", 0)

	if p := h.do(t, "GET", "/app/", "", nil); p.status != 303 || p.location != "/" {
		t.Fatalf("/app/ without a session: %d %q", p.status, p.location)
	}
	expectHostPage(t, "/app/config.json without a session", h.do(t, "GET", "/app/config.json", "", nil), 401)

	c := h.login(t, "carol@example.com", "pw-Carol")
	if p := h.do(t, "GET", "/app/", c, nil); p.status != 200 || !strings.HasPrefix(p.ctype, "text/html") || !strings.Contains(p.body, `src="app.js"`) {
		t.Fatalf("/app/: %d %q %.200s", p.status, p.ctype, p.body)
	}
	if p := h.do(t, "GET", "/app/app.js", c, nil); p.status != 200 || !strings.Contains(p.body, "session_url") {
		t.Fatalf("/app/app.js: %d %.100s", p.status, p.body)
	}
	p := h.do(t, "GET", "/app/config.json", c, nil)
	if p.status != 200 || strings.Contains(p.body, testSecret) {
		t.Fatalf("/app/config.json: %d %s", p.status, p.body)
	}
	var cfg chatPageSettings
	if err := json.Unmarshal([]byte(p.body), &cfg); err != nil {
		t.Fatal(err)
	}
	sess := h.chatToken(t, c)
	if cfg.Base != "/chat" || cfg.ClientID != "web" || cfg.SessionURL != "/chat-token" || cfg.UID != sess.UID {
		t.Fatalf("settings %+v, session uid %d", cfg, sess.UID)
	}
	// The page signs with a token from the settings and the session from
	// /chat-token: no password anywhere.
	day := time.Now().UTC().Format(time.DateOnly)
	tok := cfg.Tokens[day][middleware.RouteName("/user/info")]
	if tok == "" {
		t.Fatalf("settings hold no token for /user/info today: %+v", cfg.Tokens)
	}
	// The SDK signs as the page does, through a token source over the
	// settings' tokens.
	page := h.api.SDK(t, client.WithSession(client.Session{UID: sess.UID, AccessToken: sess.AccessToken}),
		client.WithTokenSource(func(path string) string { return cfg.Tokens[day][middleware.RouteName(path)] }))
	info, err := page.Info(context.Background())
	if err != nil || info.UID != sess.UID || info.Name != "Carol" {
		t.Fatalf("chat profile %+v, %v", info, err)
	}
	// The module serves the client script the page imports.
	if p := h.do(t, "GET", "/chat/static/fiberchat.js", "", nil); p.status != 200 || !strings.Contains(p.body, "export function configure") {
		t.Fatalf("/chat/static/fiberchat.js: %d", p.status)
	}
}
