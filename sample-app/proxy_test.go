package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
)

// The client IP, which rate limits key on, comes from --proxy-header only
// on a connection from one of --trusted-proxies; from anyone else the
// header is ignored, so a client cannot pick its own IP.
func TestProxyFlags(t *testing.T) {
	gdb, err := database.Open(context.Background(), tempDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(gdb)
	chat, err := module.New(module.Config{DB: gdb, UploadDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer chat.Close()

	fs, _ := newFlags("serve", io.Discard)
	header := fs.String("proxy-header", "", "")
	trusted := fs.String("trusted-proxies", "", "")
	if _, ok := parseFlags(fs, []string{"--proxy-header", "X-Forwarded-For", "--trusted-proxies", "10.0.0.1, 0.0.0.0"}, func(string) string { return "" }); !ok {
		t.Fatal("flags refused")
	}
	// app.Test's connections come from 0.0.0.0.
	for _, tc := range []struct {
		header, trusted, want string
	}{
		{"", "", "0.0.0.0"},
		{"X-Forwarded-For", "10.0.0.1", "0.0.0.0"},
		{*header, *trusted, "203.0.113.7"},
	} {
		cfg := appConfig(chat, tc.header, tc.trusted)
		app := fiber.New(cfg)
		app.Get("/ip", func(c *fiber.Ctx) error { return c.SendString(c.IP()) })
		req := httptest.NewRequest("GET", "/ip", nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != tc.want {
			t.Errorf("header %q, trusted %q: client IP %q, want %q", tc.header, tc.trusted, got, tc.want)
		}
	}
}

// Behind a proxy that appends to X-Forwarded-For, as most do, the login
// limit counts per client whatever the client writes into the header
// itself: it keys on the right-most address the trusted proxy did not
// write. The client connects from 127.0.0.2 and 127.0.0.3, the proxy
// from 127.0.0.1, its --trusted-proxies.
func TestProxyAppendingHeader(t *testing.T) {
	gdb, err := database.Open(context.Background(), tempDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(gdb)
	const limit = 5
	chat, err := module.New(module.Config{DB: gdb, UploadDir: t.TempDir(), BcryptCost: 4, LoginRateLimit: limit, LoginFailures: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer chat.Close()
	if err := chat.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	secret, err := chat.CreateClient(context.Background(), "demo", "", "Demo")
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(appConfig(chat, "X-Forwarded-For", "127.0.0.1"))
	chat.Mount(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer func() { _ = app.Shutdown() }()
	// httputil.ReverseProxy appends the address it saw to the header.
	target, _ := url.Parse("http://" + ln.Addr().String())
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer proxy.Close()

	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	}
	login := func(c *http.Client, forged string) int {
		t.Helper()
		q := url.Values{"client_id": {"demo"}, "api_token": {chat.APIToken("/user/login", secret, time.Now())}}
		req, _ := http.NewRequest("POST", proxy.URL+"/user/login?"+q.Encode(), strings.NewReader(`{"uid":1,"passwd":"wrong-pw"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", forged)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	attacker := from("127.0.0.2")
	for i := range 3 * limit {
		want := http.StatusUnauthorized
		if i >= limit {
			want = http.StatusTooManyRequests
		}
		if got := login(attacker, fmt.Sprintf("198.51.100.%d", i)); got != want {
			t.Fatalf("login %d with a new address in front: %d, want %d", i+1, got, want)
		}
	}
	// Another client behind the same proxy has a budget of its own.
	if got := login(from("127.0.0.3"), "198.51.100.1"); got != http.StatusUnauthorized {
		t.Fatalf("another client's login: %d, want 401", got)
	}
}
