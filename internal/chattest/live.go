package chattest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// Live is a Server that also listens on a loopback port, for what
// app.Test cannot do: a long poll that parks takes its connection from
// fasthttp, which needs a real socket. Requests through Server's own
// methods still go through app.Test (and so are held, not parked); Live's
// go through HTTP.
type Live struct {
	*Server
	// Addr is the listener's host:port.
	Addr string
	// Client reaches Addr with keep-alive.
	Client *http.Client
	// transport is Client's, shared with the SDK clients of SDK.
	transport *http.Transport
	// Hijacked counts the connections the server handed over, which is
	// what each parked poll does: a test tells parking from holding by it.
	Hijacked *atomic.Int64
}

// NewLive builds a Server as NewServer does, with ParkLongPolls on and the
// fasthttp server keeping hijacked connections, as the sample app runs
// it, and serves it on 127.0.0.1 until the test ends. opts.Config and
// opts.App run after those settings, so a test may undo them.
func NewLive(t testing.TB, db *DB, opts Options) *Live {
	t.Helper()
	return serveLive(t, opts, func(o Options) *Server { return NewServer(t, db, o) })
}

// LiveTwin is Twin for a Live: another instance on l's database (and
// clock and API client), listening on a port of its own, for what only
// a socket carries (streams, parked polls) on two instances.
func (l *Live) LiveTwin(t testing.TB, opts Options) *Live {
	t.Helper()
	return serveLive(t, opts, func(o Options) *Server { return l.Server.Twin(t, o) })
}

// serveLive is NewLive with the Server made by newServer.
func serveLive(t testing.TB, opts Options, newServer func(Options) *Server) *Live {
	t.Helper()
	config, appHook := opts.Config, opts.App
	opts.Config = func(c *module.Config) {
		c.ParkLongPolls = true
		if config != nil {
			config(c)
		}
	}
	hijacked := new(atomic.Int64)
	opts.App = func(app *fiber.App) {
		app.Server().KeepHijackedConns = true
		app.Server().ConnState = func(_ net.Conn, st fasthttp.ConnState) {
			if st == fasthttp.StateHijacked {
				hijacked.Add(1)
			}
		}
		if appHook != nil {
			appHook(app)
		}
	}
	s := newServer(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.App.Listener(ln) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(func() {
		// As a host shuts down: the module first, so that parked polls
		// are answered, then the server.
		_ = s.Module.Close()
		tr.CloseIdleConnections()
		if err := s.App.ShutdownWithTimeout(5 * time.Second); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &Live{Server: s, Addr: ln.Addr().String(), Client: &http.Client{Transport: tr, Timeout: 60 * time.Second}, transport: tr, Hijacked: hijacked}
}

// CloseIdleConnections closes the client's idle keep-alive connections.
func (l *Live) CloseIdleConnections() { l.Client.CloseIdleConnections() }

// URL is the signed URL of path (relative to the mount prefix).
func (l *Live) URL(path string) string {
	q := url.Values{"client_id": {l.ClientID}, "api_token": {l.Sign(path)}}
	return "http://" + l.Addr + l.Prefix + path + "?" + q.Encode()
}

// TryPost sends a signed JSON request over HTTP and returns failures
// instead of failing a test.
func (l *Live) TryPost(path string, body any) (*Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, l.URL(path), bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return l.Send(req)
}

// Post sends a signed JSON request over HTTP, like Server.Post.
func (l *Live) Post(t testing.TB, path string, body any) *Response {
	t.Helper()
	r, err := l.TryPost(path, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Send sends req with l.Client and decodes the answer, which must be a
// JSON object.
func (l *Live) Send(req *http.Request) (*Response, error) {
	resp, err := l.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if err := json.Unmarshal(raw, &out.Body); err != nil {
		return nil, fmt.Errorf("%s %s: answer is not a JSON object: %w: %q", req.Method, req.URL.Path, err, raw)
	}
	return out, nil
}
