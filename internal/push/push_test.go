package push

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/models"
)

// TestQueueNeverBlocks: past Queue waiting messages, Queue drops and
// counts rather than waits.
func TestQueueNeverBlocks(t *testing.T) {
	p := New(Config{Delay: time.Hour, Workers: 1, Queue: 1, Timeout: time.Second, Now: time.Now,
		Logger: slog.New(slog.DiscardHandler)})
	defer p.Close()
	done := make(chan struct{})
	go func() {
		for range 3 {
			p.Queue(&models.Message{FromUID: 1, Body: "x"}, []int64{2, 3})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Queue blocked")
	}
	if d := p.Stats().Dropped; d < 2 {
		t.Fatalf("dropped %d pushes, want at least the 2 of one message", d)
	}
}

func TestPreview(t *testing.T) {
	long := strings.Repeat("é", PreviewChars+5)
	for _, c := range []struct{ in, want string }{
		{"hi", "hi"},
		{strings.Repeat("é", PreviewChars), strings.Repeat("é", PreviewChars)},
		{long, strings.Repeat("é", PreviewChars) + "…"},
	} {
		if got := preview(c.in); got != c.want {
			t.Errorf("preview(%d runes) = %d bytes, want %d", len([]rune(c.in)), len(got), len(c.want))
		}
	}
}

// TestGuardedClientRefusesLoopback: endpoints come from users, and the
// default client connects to none on the server's own network.
func TestGuardedClientRefusesLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the guarded client reached a loopback address")
	}))
	defer srv.Close()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, strings.NewReader("x"))
	resp, err := GuardedClient(time.Second).Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	var refused *refusedError
	if !errors.As(err, &refused) {
		t.Fatalf("got %v, want a refused address", err)
	}
}

// fakeStore is a Store of subs, with no names.
type fakeStore struct{ subs []models.PushSubscription }

func (f *fakeStore) VAPIDKeyPair(_ context.Context, _ int64, generate func() (string, string, error)) (models.VapidKey, error) {
	priv, pub, err := generate()
	return models.VapidKey{PrivateKey: priv, PublicKey: pub}, err
}

func (f *fakeStore) PushSubscriptions(context.Context, []int64) ([]models.PushSubscription, error) {
	return f.subs, nil
}

func (f *fakeStore) DeletePushSubscription(context.Context, int64, string) error { return nil }

func (f *fakeStore) Profiles(context.Context, []int64) ([]models.Profile, error) { return nil, nil }

func (f *fakeStore) PushPreviews(_ context.Context, ids []int64) (map[int64]models.Message, error) {
	out := map[int64]models.Message{}
	for _, id := range ids {
		out[id] = models.Message{ID: id, Body: "hi"}
	}
	return out, nil
}

// syncBuffer is a log's output, written by the pusher's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFailedPushLogsNoEndpoint: a push that fails is logged with its
// endpoint's host only. An HTTP client's error names the whole URL, and
// the endpoint's path is a capability: whoever has it can push to that
// browser.
func TestFailedPushLogsNoEndpoint(t *testing.T) {
	var log syncBuffer
	const secret = "SECRET-CAPABILITY-abcdef"
	st := &fakeStore{subs: []models.PushSubscription{{UID: 2, Endpoint: "https://127.0.0.1/wpush/v2/" + secret,
		P256dh: "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM", Auth: "tBHItJI5svbpez7KI4CCXg"}}}
	p := New(Config{Store: st, Online: func(context.Context, []int64) map[int64]bool { return nil },
		Delay: time.Millisecond, Workers: 1, Queue: 10, Subscriber: "mailto:ops@example.com",
		Timeout: time.Second, Now: time.Now, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	defer p.Close()
	p.Queue(&models.Message{ID: 1, FromUID: 1, Body: "hi"}, []int64{2})
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Failed == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the push to a loopback address did not fail: %+v", p.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := log.String()
	if !strings.Contains(out, "push: not sent") || !strings.Contains(out, "host=127.0.0.1") || !strings.Contains(out, "refusing") {
		t.Fatalf("log: %s, want the failure with its host and cause", out)
	}
	if strings.Contains(out, secret) {
		t.Fatalf("the endpoint's path is in the log: %s", out)
	}
}
