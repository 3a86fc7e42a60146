package module_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

func TestProvisionAndIssueToken(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		ctx := context.Background()
		uid, err := s.Module.ProvisionUser(ctx, "acct-42", "Alice")
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.Module.ProvisionUser(ctx, "acct-42", "Another name")
		if err != nil || again != uid {
			t.Fatalf("second provision: %d %v, want %d", again, err, uid)
		}
		sess, err := s.Module.IssueToken(ctx, uid)
		if err != nil || len(sess.AccessToken) != 32 || sess.UID != uid {
			t.Fatalf("IssueToken: %+v %v", sess, err)
		}
		info, err := s.SDK(t, client.WithSession(client.Session{UID: sess.UID, AccessToken: sess.AccessToken})).Info(ctx)
		if err != nil {
			t.Fatalf("info with the issued token: %v", err)
		}
		if info.UID != uid || info.Name != "Alice" {
			t.Fatalf("provisioned profile: %+v", info)
		}
		// No chat password: the user signs in through the host only.
		for _, pw := range []string{"secret1", "anything"} {
			_, err := s.SDK(t).Login(ctx, uid, pw)
			chattest.ExpectErr(t, err, 401, 1005)
		}
		_, err = s.SDK(t).Login(ctx, uid, "")
		chattest.ExpectErr(t, err, 400, 1001) // passwd is required
		if _, err := s.Module.IssueToken(ctx, 99999999); !errors.Is(err, module.ErrNoSuchUser) {
			t.Fatalf("IssueToken for no user: %v", err)
		}
		for _, bad := range [][2]string{{"", "n"}, {strings.Repeat("r", 65), "n"}, {"r", ""}, {"r", strings.Repeat("n", 33)}, {"r\x00", "n"}} {
			if _, err := s.Module.ProvisionUser(ctx, bad[0], bad[1]); !errors.Is(err, module.ErrInvalidArgument) {
				t.Fatalf("ProvisionUser(%q, %q): %v", bad[0], bad[1], err)
			}
		}

		// Concurrent first calls for one account make one user.
		var wg sync.WaitGroup
		uids := make([]int64, 8)
		for i := range uids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				uids[i], _ = s.Module.ProvisionUser(ctx, "acct-race", "Bob")
			}()
		}
		wg.Wait()
		for _, u := range uids {
			if u == 0 || u != uids[0] {
				t.Fatalf("concurrent provisions gave %v", uids)
			}
		}
		if n := s.Count(t, "users", "host_ref = ?", "acct-race"); n != 1 {
			t.Fatalf("%d users for one host account", n)
		}
	})
}

func TestHostSigningHelpers(t *testing.T) {
	tz := time.FixedZone("UTC+8", 8*3600)
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Prefix: "/chat", Config: func(c *module.Config) {
		c.Location = tz
		c.TablePrefix = "im_"
	}})
	ctx := context.Background()
	secret, err := s.Module.ClientSecret(ctx, s.ClientID)
	if err != nil || secret != s.Secret {
		t.Fatalf("ClientSecret: %q %v", secret, err)
	}
	if _, err := s.Module.ClientSecret(ctx, "nosuch"); !errors.Is(err, module.ErrNoSuchClient) {
		t.Fatalf("ClientSecret of no client: %v", err)
	}
	if got := s.Module.TableName("users"); got != "im_users" {
		t.Fatalf("TableName: %q", got)
	}
	// 20:00 UTC is already the next day in UTC+8: APIToken follows Location.
	s.Clock.Set(time.Date(2026, 3, 14, 20, 0, 0, 0, time.UTC))
	tok := s.Module.APIToken("/user/reg/ajax_reg", secret, s.Clock.Now())
	r := s.Do(t, chattest.Req{Path: "/user/reg/ajax_reg?client_id=test&api_token=" + tok, Unsigned: true,
		JSON: map[string]any{"name": "n", "passwd": "secret1"}})
	chattest.Expect(t, r, 200, 0)
}

func TestAppConfig(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{})
	cfg := s.Module.AppConfig("x")
	// A 30-second long poll must fit in the server's timeouts, the
	// server's body limit must be the module's largest (the file upload's,
	// MaxFileBytes plus framing), and bodies stream, multipart ones
	// unparsed, so that uploads are never held whole (TestMaxBodySize: a
	// larger body is still the envelope's 413).
	if cfg.ReadTimeout < 35*time.Second || cfg.WriteTimeout < 35*time.Second || cfg.IdleTimeout <= 30*time.Second {
		t.Fatalf("timeouts %v/%v/%v do not outlast a 30 s poll", cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout)
	}
	if cfg.BodyLimit != 25<<20+64<<10 || !cfg.StreamRequestBody || !cfg.DisablePreParseMultipartForm || cfg.ErrorHandler == nil || cfg.AppName != "x" {
		t.Fatalf("AppConfig %+v", cfg)
	}
}

// TestResetClientSecret: a reset secret signs from then on, the old one
// no longer (the cached client row is dropped at once), on both
// databases.
func TestResetClientSecret(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		ctx := context.Background()
		path := "/user/reg/ajax_reg"
		reg := func(secret string) *chattest.Response {
			tok := module.APIToken(path, secret, s.Clock.Now().UTC())
			return s.Do(t, chattest.Req{Path: path + "?client_id=test&api_token=" + tok, Unsigned: true,
				JSON: map[string]any{"name": "n", "passwd": "secret1"}})
		}
		chattest.Expect(t, reg(s.Secret), 200, 0) // the row is cached now

		fresh, err := s.Module.ResetClientSecret(ctx, s.ClientID, "")
		if err != nil || len(fresh) < 16 || fresh == s.Secret {
			t.Fatalf("ResetClientSecret = %q, %v; want a new random secret", fresh, err)
		}
		chattest.Expect(t, reg(s.Secret), 403, 1002)
		chattest.Expect(t, reg(fresh), 200, 0)
		if got, err := s.Module.ClientSecret(ctx, s.ClientID); err != nil || got != fresh {
			t.Fatalf("ClientSecret after the reset = %q, %v; want %q", got, err, fresh)
		}

		// A given secret, twice (MySQL reports no row changed the second time).
		for range 2 {
			if got, err := s.Module.ResetClientSecret(ctx, s.ClientID, "chosen-secret"); err != nil || got != "chosen-secret" {
				t.Fatalf("ResetClientSecret with a secret = %q, %v", got, err)
			}
		}
		chattest.Expect(t, reg("chosen-secret"), 200, 0)

		if _, err := s.Module.ResetClientSecret(ctx, "nosuch", ""); !errors.Is(err, module.ErrNoSuchClient) {
			t.Fatalf("ResetClientSecret of no client: %v", err)
		}
		if _, err := s.Module.ResetClientSecret(ctx, s.ClientID, "short"); err == nil {
			t.Fatal("ResetClientSecret took a 5-character secret")
		}
	})
}
