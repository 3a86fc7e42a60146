package chattest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/fiberchat/fiberchat/client"
	"github.com/gofiber/fiber/v2"
)

// sdkHost is the host part of the base URL of an in-process SDK client:
// its requests never leave the process, so any name does.
const sdkHost = "chat.test"

// appTransport is an http.RoundTripper that serves each request with
// app.Test, so an SDK client reaches the Fiber app in-process. Requests
// are held, never parked (app.Test has no socket to hand over), and an
// answer is read whole before it is returned, so a push stream cannot go
// through it: use Live's SDK for those.
type appTransport struct{ app *fiber.App }

// RoundTrip rebuilds req as a server-side request, as httptest.NewRequest
// makes one (app.Test writes out the request target and Host), and serves
// it.
func (tr appTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	in := req.Clone(context.Background())
	in.Body = io.NopCloser(bytes.NewReader(body))
	in.ContentLength = int64(len(body))
	in.RequestURI = req.URL.RequestURI()
	in.Host = req.URL.Host
	resp, err := tr.app.Test(in, -1)
	if err != nil {
		return nil, fmt.Errorf("app.Test %s %s: %w", req.Method, req.URL.Path, err)
	}
	resp.Request = req
	return resp, nil
}

// SDK returns a client of the Go SDK (package client) without a session,
// signing as the server's API client on the server's clock, whose
// requests go to the app in-process. opts come after those settings.
func (s *Server) SDK(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	base := []client.Option{
		client.WithHTTPClient(&http.Client{Transport: appTransport{app: s.App}}),
		client.WithClock(s.Clock.Now),
	}
	c, err := client.New("http://"+sdkHost+s.Prefix, s.ClientID, s.Secret, append(base, opts...)...)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

// SDKFor returns an in-process SDK client that holds u's session.
func (s *Server) SDKFor(t testing.TB, u User) *client.Client {
	t.Helper()
	return s.SDK(t, client.WithSession(u.Session()))
}

// SDK returns an SDK client without a session that reaches the server
// over its loopback socket, as a real client does: a long poll through it
// parks, and a push stream through it streams. opts come after the
// settings SDK makes.
func (l *Live) SDK(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	base := []client.Option{
		// A client of its own rather than l.Client, whose Timeout would
		// cut streams.
		client.WithHTTPClient(&http.Client{Transport: l.transport}),
		client.WithClock(l.Clock.Now),
	}
	c, err := client.New("http://"+l.Addr+l.Prefix, l.ClientID, l.Secret, append(base, opts...)...)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

// SDKFor returns an SDK client over the socket that holds u's session.
func (l *Live) SDKFor(t testing.TB, u User) *client.Client {
	t.Helper()
	return l.SDK(t, client.WithSession(u.Session()))
}

// Session is u's session as the SDK holds one.
func (u User) Session() client.Session {
	return client.Session{UID: u.UID, AccessToken: u.Token}
}

// ExpectErr fails the test unless err is, or wraps, the SDK's *client.Error
// with the status and envelope code given and a message.
func ExpectErr(t testing.TB, err error, status, code int) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v, want a *client.Error with %d error=%d", err, status, code)
	}
	if e.Status != status || e.Code != code {
		t.Fatalf("got %d error=%d (%s), want %d error=%d", e.Status, e.Code, e.Msg, status, code)
	}
	if e.Msg == "" {
		t.Fatalf("answer %d error=%d has no msg", e.Status, e.Code)
	}
}
