package module_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/module"
)

// TestLogsHoldNoSecrets runs a whole flow with the module logging at debug
// level, failures included (a 500 from a host hook, a panic, a 503 from a
// closed database), and checks that no password, access token, client
// secret or api_token appears in the log.
func TestLogsHoldNoSecrets(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		// Closing the pool below is the database going down. Handed a
		// DSN, the message writers would keep connections of their own
		// and Sends would go on; handed the pool, they take theirs from it.
		db = chattest.PoolOnly(t, db)
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

		ctx := context.Background()
		_, err := s.SDK(t).Login(ctx, a.UID, "wrong-password-123")
		chattest.ExpectErr(t, err, 401, 1005)
		secrets["the wrong password"] = "wrong-password-123"

		second := s.SDK(t)
		sess, err := second.Login(ctx, a.UID, a.Password)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		secrets["alice's second token"] = sess.AccessToken

		if err := s.SDKFor(t, b).ChangePassword(ctx, b.Password, "bobs-new-password"); err != nil {
			t.Fatalf("change password: %v", err)
		}
		secrets["bob's new password"] = "bobs-new-password"

		alice, bob := s.SDKFor(t, a), s.SDKFor(t, b)
		if _, err := alice.Send(ctx, b.UID, "hello"); err != nil {
			t.Fatalf("send: %v", err)
		}
		if _, err := bob.Recv(ctx, client.RecvRequest{LastID: last(0)}); err != nil {
			t.Fatalf("recv: %v", err)
		}
		_, err = alice.Send(ctx, b.UID, "fail")
		chattest.ExpectErr(t, err, 500, 1500)
		_, err = alice.Send(ctx, b.UID, "panic")
		chattest.ExpectErr(t, err, 500, 1500)
		if err := second.Logout(ctx); err != nil {
			t.Fatalf("logout: %v", err)
		}
		for _, path := range []string{"/user/login", "/user/reg/ajax_reg", "/user/info/passwd", "/Message/Send", "/Message/Recv", "/user/logout"} {
			secrets["api_token of "+path] = s.Sign(path)
		}

		if err := database.Close(db.Gorm); err != nil {
			t.Fatal(err)
		}
		_, err = s.SDK(t).Login(ctx, a.UID, a.Password)
		chattest.ExpectErr(t, err, 503, 1503)
		_, err = bob.Send(ctx, a.UID, "down")
		chattest.ExpectErr(t, err, 503, 1503)
		_, err = s.SDK(t).Register(ctx, "carol", "carols-password")
		chattest.ExpectErr(t, err, 503, 1503)
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
