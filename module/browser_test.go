package module_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
	"github.com/fiberchat/fiberchat/web"
)

func TestBrowserTokens(t *testing.T) {
	tz := time.FixedZone("UTC+8", 8*3600)
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Prefix: "/chat", Config: func(c *module.Config) {
		c.Location = tz
		c.SignatureSkew = 5 * time.Minute
	}})
	ctx := context.Background()

	// Noon in UTC+8: today's tokens only, for every mounted route.
	s.Clock.Set(time.Date(2026, 3, 14, 4, 0, 0, 0, time.UTC))
	got, err := s.Module.BrowserTokens(ctx, s.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if days := keys(got); !slices.Equal(days, []string{"2026-03-14"}) {
		t.Fatalf("days %v, want [2026-03-14]", days)
	}
	for path, route := range map[string]string{
		"/user/reg/ajax_reg": "userregajax_reg", "/user/login": "userloginindex", "/Message/Send": "messagesendindex",
		"/Contacts/IO/block": "contactsioblock", "/Message/History": "messagehistoryindex",
	} {
		want := s.Module.APIToken(path, s.Secret, s.Clock.Now())
		if tok := got["2026-03-14"][route]; tok != want {
			t.Errorf("%s: token %q, want %q", route, tok, want)
		}
	}
	// A token handed out signs a real request.
	r := s.Do(t, chattest.Req{Path: "/user/reg/ajax_reg?client_id=test&api_token=" + got["2026-03-14"]["userregajax_reg"],
		Unsigned: true, JSON: map[string]any{"name": "n", "passwd": "secret1"}})
	chattest.Expect(t, r, 200, 0)

	// 23:57 in UTC+8: tomorrow's are accepted too, so handed out too.
	s.Clock.Set(time.Date(2026, 3, 14, 15, 57, 0, 0, time.UTC))
	got, err = s.Module.BrowserTokens(ctx, s.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if days := keys(got); !slices.Equal(days, []string{"2026-03-14", "2026-03-15"}) {
		t.Fatalf("near midnight: days %v", days)
	}
	s.Clock.Set(time.Date(2026, 3, 14, 16, 2, 0, 0, time.UTC)) // 00:02 on the 15th
	got, _ = s.Module.BrowserTokens(ctx, s.ClientID)
	if days := keys(got); !slices.Equal(days, []string{"2026-03-14", "2026-03-15"}) {
		t.Fatalf("just past midnight: days %v", days)
	}

	if _, err := s.Module.BrowserTokens(ctx, "nosuch"); !errors.Is(err, module.ErrNoSuchClient) {
		t.Fatalf("no client: %v", err)
	}
	if err := s.Module.SetClientDisabled(ctx, s.ClientID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Module.BrowserTokens(ctx, s.ClientID); !errors.Is(err, module.ErrClientDisabled) {
		t.Fatalf("disabled client: %v", err)
	}
}

// TestBrowserTokensChosenRoutes checks that a host hands a page the
// tokens of the routes it names only, so that a page of a site whose
// users sign up on the site itself holds no token to register with.
func TestBrowserTokensChosenRoutes(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Prefix: "/chat"})
	ctx := context.Background()
	got, err := s.Module.BrowserTokens(ctx, s.ClientID, "/Message/Send", "/Message/Stream", "/user/info")
	if err != nil {
		t.Fatal(err)
	}
	today := got["2026-03-14"]
	if names := slices.Sorted(maps.Keys(today)); !slices.Equal(names, []string{"messagesendindex", "messagestreamindex", "userinfoindex"}) {
		t.Fatalf("routes %v, want the three asked for", names)
	}
	if want := s.Module.APIToken("/Message/Send", s.Secret, s.Clock.Now()); today["messagesendindex"] != want {
		t.Fatalf("Send's token %q, want %q", today["messagesendindex"], want)
	}
	if _, err := s.Module.BrowserTokens(ctx, s.ClientID, "/Message/Send", "/nosuch"); !errors.Is(err, module.ErrNoSuchRoute) {
		t.Fatalf("an unmounted route: %v, want ErrNoSuchRoute", err)
	}
}

// TestHostAccounts checks that with HostAccounts the routes that sign
// users up or in by password are not mounted at all: they answer like
// an unknown path, even signed, and no browser token is made for them,
// while a provisioned user's session works.
func TestHostAccounts(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) { c.HostAccounts = true }})
	ctx := context.Background()
	for _, path := range []string{"/user/reg/ajax_reg", "/user/login", "/user/info/passwd"} {
		r := s.Do(t, chattest.Req{Path: path, JSON: map[string]any{"name": "n", "passwd": "secret1", "uid": 1}})
		chattest.Expect(t, r, 404, 1006)
	}
	got, err := s.Module.BrowserTokens(ctx, s.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"userregajax_reg", "userloginindex", "userinfopasswd"} {
		if _, ok := got["2026-03-14"][name]; ok {
			t.Errorf("a browser token for %s, which is not mounted", name)
		}
	}
	if _, ok := got["2026-03-14"]["messagesendindex"]; !ok {
		t.Error("no browser token for /Message/Send")
	}
	uid, err := s.Module.ProvisionUser(ctx, "site-1", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := s.Module.IssueToken(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	u := chattest.User{UID: uid, Token: sess.AccessToken}
	chattest.Expect(t, s.Do(t, chattest.Req{Path: "/user/info", JSON: u.Creds(nil)}), 200, 0)
}

func keys(m map[string]map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestClientScriptRoute(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Prefix: "/chat"})
	res, err := s.App.Test(httptest.NewRequest("GET", "/chat/static/fiberchat.js", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || string(body) != string(web.ClientJS) {
		t.Fatalf("GET fiberchat.js: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
	req := httptest.NewRequest("GET", "/chat/static/fiberchat.js", nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	if res, err = s.App.Test(req, -1); err != nil || res.StatusCode != 304 {
		t.Fatalf("revalidation: %v %v", res.StatusCode, err)
	}
	// Other static paths stay the module's JSON 404.
	if res, err = s.App.Test(httptest.NewRequest("GET", "/chat/static/other.js", nil), -1); err != nil || res.StatusCode != 404 {
		t.Fatalf("GET other.js: %v %v", res.StatusCode, err)
	}
}
