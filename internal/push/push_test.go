package push

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
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
