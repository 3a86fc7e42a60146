package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
)

// TestRedirectElsewhereRefused checks that a redirect to another host is
// not followed, so that the body (with the access_token) and the stream's
// X-Access-Token header are not sent there, with the package's own HTTP
// client and with one a program gives; a redirect on the same host is.
func TestRedirectElsewhereRefused(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		body, _ := io.ReadAll(r.Body)
		t.Errorf("another host got %s %s with body %q and X-Access-Token %q", r.Method, r.URL.Path, body, r.Header.Get("X-Access-Token"))
	}))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/moved/"):
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"uid":10000002,"name":"a","head_img":"","time":1,"error":0,"msg":"success"}`)
		case r.URL.Path == "/chat/user/info":
			http.Redirect(w, r, "/moved/user/info", http.StatusTemporaryRedirect)
		default:
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusPermanentRedirect)
		}
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name string
		opts []client.Option
	}{
		{"own http client", nil},
		{"given http client", []client.Option{client.WithHTTPClient(&http.Client{})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]client.Option{
				client.WithClock(func() time.Time { return day }),
				client.WithSession(client.Session{UID: 10000002, AccessToken: "tok"}),
			}, tc.opts...)
			c, err := client.New(srv.URL+"/chat", "test", "secret", opts...)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := c.UpdateProfile(ctx, client.ProfileUpdate{Name: "b"}); !errors.Is(err, client.ErrRedirectElsewhere) {
				t.Errorf("POST redirected elsewhere: %v, want ErrRedirectElsewhere", err)
			}
			if _, err := c.Stream(ctx, nil); !errors.Is(err, client.ErrRedirectElsewhere) {
				t.Errorf("stream redirected elsewhere: %v, want ErrRedirectElsewhere", err)
			}
			if info, err := c.Info(ctx); err != nil || info.UID != 10000002 {
				t.Errorf("redirected on the same host: %+v, %v; want it followed", info, err)
			}
		})
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("another host got %d requests", n)
	}
}
