package module_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/fiberchat/fiberchat/database"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

// TestLogsHoldNoSecrets runs a whole flow with the module logging at debug
// level, failures included (a 500 from a host hook, a panic, a 503 from a
// closed database), and checks that no password, access token, client
// secret or api_token appears in the log.
func TestLogsHoldNoSecrets(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		logs := &chattest.SyncBuffer{}
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) {
			c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c.AllowStrangers = true
			c.BeforeSend = func(_ context.Context, m events.Outgoing) error {
				switch m.Body {
				case "fail":
					return errors.New("host hook failed")
				case "panic":
					panic("host hook panicked")
				}
				return nil
			}
			c.OnEvent = func(context.Context, events.Event) error { return errors.New("event sink down") }
		}})
		secrets := map[string]string{"client secret": s.Secret}
		a, b := s.NewUser(t, "alice"), s.NewUser(t, "bob")
		secrets["alice's password"], secrets["alice's token"] = a.Password, a.Token
		secrets["bob's password"], secrets["bob's token"] = b.Password, b.Token

		wrong := s.Post(t, "/user/login", map[string]any{"uid": a.UID, "passwd": "wrong-password-123"})
		chattest.Expect(t, wrong, 401, wrong.Code())
		secrets["the wrong password"] = "wrong-password-123"

		second := s.Post(t, "/user/login", map[string]any{"uid": a.UID, "passwd": a.Password})
		chattest.Expect(t, second, 200, 0)
		secrets["alice's second token"] = second.Str("access_token")

		r := s.Post(t, "/user/info/passwd", b.Creds(map[string]any{"old_passwd": b.Password, "new_passwd": "bobs-new-password"}))
		chattest.Expect(t, r, 200, 0)
		secrets["bob's new password"] = "bobs-new-password"

		chattest.Expect(t, s.Post(t, "/Message/Send", a.Creds(map[string]any{"uid_to": b.UID, "data": "hello"})), 200, 0)
		chattest.Expect(t, s.Post(t, "/Message/Recv", b.Creds(map[string]any{"last_id": 0})), 200, 0)
		chattest.Expect(t, s.Post(t, "/Message/Send", a.Creds(map[string]any{"uid_to": b.UID, "data": "fail"})), 500, 1500)
		chattest.Expect(t, s.Post(t, "/Message/Send", a.Creds(map[string]any{"uid_to": b.UID, "data": "panic"})), 500, 1500)
		chattest.Expect(t, s.Post(t, "/user/logout", map[string]any{"uid": a.UID, "access_token": second.Str("access_token")}), 200, 0)
		for _, path := range []string{"/user/login", "/user/reg/ajax_reg", "/user/info/passwd", "/Message/Send", "/Message/Recv", "/user/logout"} {
			secrets["api_token of "+path] = s.Sign(path)
		}

		if err := database.Close(db.Gorm); err != nil {
			t.Fatal(err)
		}
		chattest.Expect(t, s.Post(t, "/user/login", map[string]any{"uid": a.UID, "passwd": a.Password}), 503, 1503)
		chattest.Expect(t, s.Post(t, "/Message/Send", b.Creds(map[string]any{"uid_to": a.UID, "data": "down"})), 503, 1503)
		chattest.Expect(t, s.Post(t, "/user/reg/ajax_reg", map[string]any{"name": "carol", "passwd": "carols-password"}), 503, 1503)
		secrets["carol's password"] = "carols-password"

		out := logs.String() + s.Logs.String()
		for _, want := range []string{"host hook failed", "host hook panicked", "request failed", "event sink down"} {
			if !strings.Contains(out, want) {
				t.Fatalf("the log misses %q, so the flow did not run as meant:\n%s", want, out)
			}
		}
		for what, secret := range secrets {
			if secret == "" {
				t.Fatalf("%s is empty", what)
			}
			if strings.Contains(out, secret) {
				t.Errorf("the log holds %s (%q):\n%s", what, secret, out)
			}
		}
	})
}
