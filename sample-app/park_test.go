package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServeLongPolls checks the sample server's long polls end to end, as
// it runs them (parked: KeepHijackedConns and ParkLongPolls are on): they
// time out empty, leave their connection open for the next request, and
// are answered at once when the server shuts down.
func TestServeLongPolls(t *testing.T) {
	t.Parallel()
	s := startServe(t, tempDSN(t))
	m := demoSecretRE.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("no demo client: %q", s.stdout.String())
	}
	secret := m[1]
	signed := func(path string) string {
		q := url.Values{"client_id": {"demo"}, "api_token": {apiToken(path, secret)}}
		return "?" + q.Encode()
	}
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	post := func(path, body string, reused *bool) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, s.base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if reused != nil {
			trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { *reused = info.Reused }}
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("POST %s: %q is not JSON", path, raw)
		}
		return resp.StatusCode, out
	}

	_, reg := post("/user/reg/ajax_reg"+signed("/user/reg/ajax_reg"), `{"name":"bob","passwd":"secret1"}`, nil)
	uid, _ := reg["uid"].(float64)
	_, login := post("/user/login"+signed("/user/login"), `{"uid":`+strconv.FormatInt(int64(uid), 10)+`,"passwd":"secret1"}`, nil)
	token, _ := login["access_token"].(string)
	if token == "" {
		t.Fatalf("login: %v", login)
	}
	recv := "/Message/Recv" + signed("/Message/Recv")
	creds := `"uid":` + strconv.FormatInt(int64(uid), 10) + `,"access_token":"` + token + `"`

	start := time.Now()
	status, ans := post(recv, `{`+creds+`,"wait":1}`, nil)
	if took := time.Since(start); status != 200 || ans["error"] != 0.0 || ans["num"] != 0.0 || took < 900*time.Millisecond {
		t.Fatalf("wait=1 poll: %d %v after %v", status, ans, took)
	}
	var reused bool
	if status, _ := post(recv, `{`+creds+`}`, &reused); status != 200 || !reused {
		t.Fatalf("request after a parked poll: %d, connection reused %v", status, reused)
	}

	held := make(chan time.Time, 1)
	go func() {
		resp, err := client.Post(s.base+recv, "application/json", strings.NewReader(`{`+creds+`,"wait":20}`))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				held <- time.Now()
			}
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
