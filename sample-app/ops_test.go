package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fiberchat/fiberchat/client"
)

// TestServeMetricsAndAccessLog runs serve with --metrics and --access-log:
// GET /metrics answers unsigned with the module's series and the Go
// runtime's, and stderr gets a line per request without its credentials.
func TestServeMetricsAndAccessLog(t *testing.T) {
	t.Parallel()
	s, secret := serveDemo(t, tempDSN(t), "--metrics", "--access-log")
	c, err := client.New(s.base, "demo", secret)
	if err != nil {
		t.Fatal(err)
	}
	token := c.APIToken("/user/reg/ajax_reg") // what the register is signed with
	if uid, err := c.Register(context.Background(), "alice", "secret1"); err != nil || uid == 0 {
		t.Fatalf("register = %d, %v", uid, err)
	}

	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{
		`fiberchat_requests_total{route="/user/reg/ajax_reg",status="200"} 1`,
		`fiberchat_long_polls 0`,
		`go_goroutines `,
	} {
		if resp.StatusCode != 200 || !strings.Contains(string(text), want) {
			t.Errorf("GET /metrics = %d, lacks %q:\n%s", resp.StatusCode, want, text)
		}
	}
	s.stop(t)

	logs := s.stderr.String()
	if !strings.Contains(logs, "msg=request method=POST route=/user/reg/ajax_reg status=200") {
		t.Errorf("no access log line for the register:\n%s", logs)
	}
	for _, sensitive := range []string{token, secret, "secret1"} {
		if strings.Contains(logs, sensitive) {
			t.Errorf("stderr contains %q:\n%s", sensitive, logs)
		}
	}
}
