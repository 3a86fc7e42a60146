package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// answerTransport answers every request with one status and body.
type answerTransport struct {
	status int
	body   string
}

func (a answerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: a.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(a.body)), Request: r}, nil
}

// TestEnvelopedAnswer checks that an answer struct embedding envelope,
// decoded in one pass, comes out as the two passes (envelope, then data)
// make it: the same error or none, and the same data.
func TestEnvelopedAnswer(t *testing.T) {
	t.Parallel()
	type data struct {
		Data []Message `json:"data"`
		More bool      `json:"more"`
	}
	type both struct {
		envelope
		data
	}
	for _, tt := range []struct {
		name   string
		status int
		body   string
	}{
		{"success", 200, `{"error":0,"msg":"success","data":[{"id":7,"uid_from":2,"message":"hi","time":5}],"more":true}`},
		{"error envelope", 401, `{"error":1004,"msg":"bad access_token"}`},
		{"error code on 200", 200, `{"error":1500,"msg":"internal"}`},
		{"success code on 500", 500, `{"error":0,"msg":"odd"}`},
		{"no error field", 200, `{"data":[{"id":7}]}`},
		{"not JSON", 502, `<html>bad gateway</html>`},
		{"not JSON on 200", 200, `hello`},
		{"data of another shape", 200, `{"error":0,"msg":"success","data":"nope"}`},
		{"error with data of another shape", 403, `{"error":1008,"msg":"no","data":"nope"}`},
		{"error with data of the right shape", 403, `{"error":1008,"msg":"no","data":[{"id":7,"uid_from":2,"message":"hi","time":5}],"more":true}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New("http://chat.test", "test", "secret", WithHTTPClient(&http.Client{Transport: answerTransport{tt.status, tt.body}}))
			if err != nil {
				t.Fatal(err)
			}
			var two data
			errTwo := c.post(context.Background(), "/Message/History", "application/json", []byte("{}"), 0, &two)
			var one both
			errOne := c.post(context.Background(), "/Message/History", "application/json", []byte("{}"), 0, &one)
			if (errOne == nil) != (errTwo == nil) {
				t.Fatalf("one pass: %v; two passes: %v", errOne, errTwo)
			}
			var e1, e2 *Error
			if errors.As(errOne, &e1) != errors.As(errTwo, &e2) || (e1 != nil && *e1 != *e2) {
				t.Errorf("one pass: %#v; two passes: %#v", e1, e2)
			}
			// A success envelope whose data will not decode is a decode
			// error either way (json names the two structs differently).
			if errOne != nil && e1 == nil && (!strings.Contains(errOne.Error(), "decode answer") || !strings.Contains(errTwo.Error(), "decode answer")) {
				t.Errorf("one pass: %v; two passes: %v", errOne, errTwo)
			}
			if errOne == nil && !reflect.DeepEqual(one.data, two) {
				t.Errorf("one pass decoded %+v; two passes %+v", one.data, two)
			}
			if errOne != nil && !reflect.DeepEqual(one.data, data{}) {
				t.Errorf("a failed call left data %+v", one.data)
			}
		})
	}
}

// BenchmarkHistoryAnswer is the client's cost of a 50-message History
// answer (the server's default page), transport aside.
func BenchmarkHistoryAnswer(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"error":0,"msg":"success","data":[`)
	for i := range 50 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"id":123456,"uid_from":10000001,"uid_to":10000002,"message":"benchmark message from worker 12, number 3456","time":1790000000,"read":true}`)
	}
	sb.WriteString(`],"more":true}`)
	c, err := New("http://chat.test", "test", "secret", WithHTTPClient(&http.Client{Transport: answerTransport{200, sb.String()}}),
		WithSession(Session{UID: 10000001, AccessToken: "0123456789abcdef0123456789abcdef"}))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.History(ctx, HistoryRequest{With: 10000002, BeforeID: 99}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestURL checks the signed URL of a call without extra parameters
// against the one url.Values writes.
func TestURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		base, id string
		tokens   func(string) string
	}{
		{"http://chat.test", "web", nil},
		{"https://chat.test:8443/chat/", "web", nil},
		{"http://chat.test/a%20b", "id with&odd=chars/", nil},
		{"http://chat.test/chat", "web", func(string) string { return "a token/with+chars&=" }},
	} {
		opts := []Option{WithClock(func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) })}
		if tt.tokens != nil {
			opts = append(opts, WithTokenSource(tt.tokens))
		}
		c, err := New(tt.base, tt.id, "secret", opts...)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/Message/Send", "/user/reg/ajax_reg"} {
			u := *c.base
			u.Path += path
			u.RawQuery = url.Values{"client_id": {tt.id}, "api_token": {c.APIToken(path)}}.Encode()
			if got, want := c.url(path, nil), u.String(); got != want {
				t.Errorf("%s %s: url %q, want %q", tt.base, path, got, want)
			}
		}
	}
}
