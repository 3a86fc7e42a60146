package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestServeMetricsAndAccessLog runs serve with --metrics and --access-log:
// GET /metrics answers unsigned with the module's series and the Go
// runtime's, and stderr gets a line per request without its credentials.
func TestServeMetricsAndAccessLog(t *testing.T) {
	t.Parallel()
	s := startServe(t, tempDSN(t), "--metrics", "--access-log")
	m := demoSecretRE.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("no demo client: %q", s.stdout.String())
	}
	token := apiToken("/user/reg/ajax_reg", m[1])
	q := url.Values{"client_id": {"demo"}, "api_token": {token}}
	if status, env := do(t, "POST", s.base+"/user/reg/ajax_reg?"+q.Encode(), `{"name":"alice","passwd":"secret1"}`); status != 200 || env.Error != 0 {
		t.Fatalf("register = %d %+v", status, env)
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
	for _, secret := range []string{token, m[1], "secret1"} {
		if strings.Contains(logs, secret) {
			t.Errorf("stderr contains %q:\n%s", secret, logs)
		}
	}
}
