package main

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
)

// TestServeLongPolls checks the sample server's long polls end to end, as
// it runs them (parked: KeepHijackedConns and ParkLongPolls are on): they
// time out empty, leave their connection open for the next request, and
// are answered at once when the server shuts down.
func TestServeLongPolls(t *testing.T) {
	t.Parallel()
	s, secret := serveDemo(t, tempDSN(t))
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := client.New(s.base, "demo", secret, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	uid, err := c.Register(ctx, "bob", "secret1")
	if err != nil {
		t.Fatal(err)
	}
	if sess, err := c.Login(ctx, uid, "secret1"); err != nil || sess.AccessToken == "" {
		t.Fatalf("login: %+v, %v", sess, err)
	}

	start := time.Now()
	ans, err := c.Recv(ctx, client.RecvRequest{Wait: time.Second})
	if took := time.Since(start); err != nil || ans.Messages == nil || len(ans.Messages) != 0 || took < 900*time.Millisecond {
		t.Fatalf("wait=1 poll: %+v, %v after %v", ans, err, took)
	}
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
	if _, err := c.Recv(httptrace.WithClientTrace(ctx, trace), client.RecvRequest{}); err != nil || !reused {
		t.Fatalf("request after a parked poll: %v, connection reused %v", err, reused)
	}

	held := make(chan time.Time, 1)
	go func() {
		if _, err := c.Recv(ctx, client.RecvRequest{Wait: 20 * time.Second}); err == nil {
			held <- time.Now()
		}
		close(held)
	}()
	time.Sleep(300 * time.Millisecond)
	stopped := time.Now()
	s.stop(t)
	at, ok := <-held
	if !ok {
		t.Fatal("the held poll got no answer at shutdown")
	}
	if d := at.Sub(stopped); d > 5*time.Second {
		t.Fatalf("the held poll was answered %v after shutdown began", d)
	}
}
