package module_test

import (
	"context"
	"testing"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
)

func TestRegisterLoginInfo(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		reg := s.Post(t, "/user/reg/ajax_reg", map[string]any{"name": "Xiao Wang", "passwd": "admin123"})
		chattest.Expect(t, reg, 200, 0)
		if reg.Int("uid") != 10000001 || reg.Int("reg") != 1 || reg.Str("msg") != "success" {
			t.Fatalf("register: %s", reg)
		}
		reg2 := s.Post(t, "/user/reg/ajax_reg", map[string]any{"name": "Zhang", "passwd": "admin123"})
		if reg2.Int("uid") != 10000002 {
			t.Fatalf("second uid: %s", reg2)
		}
		login := s.Post(t, "/user/login", map[string]any{"uid": "10000001", "passwd": "admin123"})
		chattest.Expect(t, login, 200, 0)
		tok := login.Str("access_token")
		if len(tok) != 32 || login.Int("login") != 1 || login.Str("msg") != "Login successfully" {
			t.Fatalf("login: %s", login)
		}
		if want := s.Clock.Now().Unix() + 7*24*3600; login.Int("expire_time") != want {
			t.Fatalf("expire_time %d, want %d", login.Int("expire_time"), want)
		}
		if n := s.Count(t, "user_tokens", "token_hash = ?", tok); n != 0 {
			t.Fatal("the raw token is stored")
		}
		// The session the login answered works in the SDK.
		info, err := s.SDK(t, client.WithSession(client.Session{UID: 10000001, AccessToken: tok})).Info(context.Background())
		if err != nil || info.UID != 10000001 || info.Name != "Xiao Wang" || info.Time != s.Clock.Now().Unix() {
			t.Fatalf("info: %+v, %v", info, err)
		}
	})
}
