package middleware_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// newApp is an app whose error handler answers an *apierr.Error with its
// status, as the module's boundary does, and anything else with 500.
func newApp() *fiber.App {
	return fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		var e *apierr.Error
		if errors.As(err, &e) {
			return c.SendStatus(e.Status)
		}
		return c.SendStatus(fiber.StatusInternalServerError)
	}})
}

func status(t *testing.T, app *fiber.App, target string) (int, string) {
	t.Helper()
	resp, err := app.Test(httptest.NewRequest(fiber.MethodPost, target, nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get(fiber.HeaderRetryAfter)
}

// countingClients is a ClientSource that counts reads.
type countingClients struct {
	mu    sync.Mutex
	rows  map[string]models.APIClient
	reads int
}

func (c *countingClients) ClientByID(_ context.Context, id string) (*models.APIClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	row, ok := c.rows[id]
	if !ok {
		return nil, models.ErrNotFound
	}
	return &row, nil
}

func TestSignatureCachesClients(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	src := &countingClients{rows: map[string]models.APIClient{
		"good": {ClientID: "good", Secret: "s1"},
		"off":  {ClientID: "off", Secret: "s2", Disabled: true},
	}}
	sig := middleware.NewSignature(middleware.SignatureConfig{
		Clients: src, Location: time.UTC, CacheTTL: 30 * time.Second, CacheSize: 100,
		Now: func() time.Time { return now },
	})
	route := middleware.RouteName("/user/info")
	app := newApp()
	app.Post("/user/info", sig.Require(route), ok)
	target := func(id, secret string) string {
		return "/user/info?client_id=" + id + "&api_token=" + middleware.Token(route, now.Format(time.DateOnly), secret)
	}
	for _, tc := range []struct {
		id, secret string
		want       int
	}{{"good", "s1", 200}, {"off", "s2", 403}, {"nobody", "x", 403}} {
		for i := 0; i < 3; i++ {
			if got, _ := status(t, app, target(tc.id, tc.secret)); got != tc.want {
				t.Fatalf("%s: %d, want %d", tc.id, got, tc.want)
			}
		}
	}
	// Unknown and disabled clients are remembered too, so made-up ids cost
	// one read each per TTL.
	if src.reads != 3 {
		t.Fatalf("%d reads for three clients asked three times each, want 3", src.reads)
	}
	// A change made in this process shows at once: it calls Forget.
	src.rows["off"] = models.APIClient{ClientID: "off", Secret: "s2"}
	sig.Forget("off")
	if got, _ := status(t, app, target("off", "s2")); got != 200 {
		t.Fatalf("after Forget: %d, want 200", got)
	}
}

// Made-up client ids are remembered apart from real clients: a flood of
// them, more than the cache holds, evicts no real client, and each costs
// one read per TTL.
func TestSignatureUnknownClientsEvictNoClient(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	src := &countingClients{rows: map[string]models.APIClient{"good": {ClientID: "good", Secret: "s1"}}}
	sig := middleware.NewSignature(middleware.SignatureConfig{
		Clients: src, Location: time.UTC, CacheTTL: 30 * time.Second, CacheSize: 8,
		Now: func() time.Time { return now },
	})
	route := middleware.RouteName("/user/info")
	app := newApp()
	app.Post("/user/info", sig.Require(route), ok)
	target := func(id, secret string) string {
		return "/user/info?client_id=" + id + "&api_token=" + middleware.Token(route, now.Format(time.DateOnly), secret)
	}
	if got, _ := status(t, app, target("good", "s1")); got != 200 {
		t.Fatalf("good client: %d", got)
	}
	for i := 0; i < 100; i++ {
		for range 2 {
			if got, _ := status(t, app, target("made-up"+strconv.Itoa(i), "x")); got != 403 {
				t.Fatalf("unknown client: %d, want 403", got)
			}
		}
	}
	if got, _ := status(t, app, target("good", "s1")); got != 200 || src.reads != 101 {
		t.Fatalf("good client after the flood: %d after %d reads, want 200 after 101 (no read again)", got, src.reads)
	}
}

// A gate given a config it cannot use refuses every request with an
// internal error instead of panicking or letting requests through.
func TestMisconfiguredGates(t *testing.T) {
	src := &countingClients{}
	for name, h := range map[string]fiber.Handler{
		"signature without Location": middleware.NewSignature(middleware.SignatureConfig{Clients: src, Now: time.Now}).Require("userinfoindex"),
		"signature without Now":      middleware.NewSignature(middleware.SignatureConfig{Clients: src, Location: time.UTC}).Require("userinfoindex"),
		"signature without Clients":  middleware.NewSignature(middleware.SignatureConfig{Location: time.UTC, Now: time.Now}).Require("userinfoindex"),
		"auth without Now":           middleware.NewAuth(middleware.AuthConfig{Tokens: &fakeTokens{}}),
		"auth without Tokens":        middleware.NewAuth(middleware.AuthConfig{Now: time.Now}),
		"rate limit without Window":  middleware.NewRateLimit(middleware.RateLimitConfig{Max: 1}),
	} {
		app := newApp()
		app.Post("/x", h, ok)
		if got, _ := status(t, app, "/x?client_id=a&api_token=0123456789abcdef0123456789abcdef&user_id=1&user_token=x"); got != 500 {
			t.Errorf("%s: %d, want 500", name, got)
		}
	}
}

func TestRateLimit(t *testing.T) {
	t.Run("refuses past Max with Retry-After", func(t *testing.T) {
		app := newApp()
		app.Post("/x", middleware.NewRateLimit(middleware.RateLimitConfig{Name: "x", Max: 2, Window: time.Minute}), ok)
		for i := 0; i < 2; i++ {
			if got, _ := status(t, app, "/x"); got != 200 {
				t.Fatalf("request %d: %d, want 200", i+1, got)
			}
		}
		got, retry := status(t, app, "/x")
		if got != fiber.StatusTooManyRequests {
			t.Fatalf("past Max: %d, want 429", got)
		}
		if n, err := strconv.Atoi(retry); err != nil || n < 1 || n > 60 {
			t.Fatalf("Retry-After %q, want whole seconds between 1 and 60", retry)
		}
	})
	t.Run("not positive disables", func(t *testing.T) {
		for _, max := range []int{0, -1} {
			app := newApp()
			app.Post("/x", middleware.NewRateLimit(middleware.RateLimitConfig{Max: max, Window: time.Minute}), ok)
			for i := 0; i < 10; i++ {
				if got, _ := status(t, app, "/x"); got != 200 {
					t.Fatalf("Max %d, request %d: %d, want 200", max, i+1, got)
				}
			}
		}
	})
	t.Run("processes sharing a Storage pass Max together, never more", func(t *testing.T) {
		// Four processes' limits on one store that increments in one step
		// (the module's Redis store), each call a round trip away. A
		// counter read and then written back would let requests that read
		// it at once each count one more.
		const max, requests = 20, 200
		store := &slowCounters{memStorage: newMemStorage()}
		var apps []*fiber.App
		for range 4 {
			app := newApp()
			app.Post("/x", middleware.NewRateLimit(middleware.RateLimitConfig{Name: "x", Max: max, Window: time.Hour, Storage: store}), ok)
			apps = append(apps, app)
		}
		var passed atomic.Int64
		var wg sync.WaitGroup
		for i := range requests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if got, _ := status(t, apps[i%len(apps)], "/x"); got == 200 {
					passed.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := passed.Load(); n != max {
			t.Fatalf("%d of %d requests passed a limit of %d shared by 4 processes", n, requests, max)
		}
		if got, retry := status(t, apps[0], "/x"); got != 429 || retry == "" {
			t.Fatalf("past Max: %d, Retry-After %q; want 429 with one", got, retry)
		}
	})
	t.Run("limits sharing a Storage keep apart", func(t *testing.T) {
		store := newMemStorage()
		app := newApp()
		app.Post("/a", middleware.NewRateLimit(middleware.RateLimitConfig{Name: "a", Max: 1, Window: time.Minute, Storage: store}), ok)
		app.Post("/b", middleware.NewRateLimit(middleware.RateLimitConfig{Name: "b", Max: 1, Window: time.Minute, Storage: store}), ok)
		for _, path := range []string{"/a", "/b"} {
			if got, _ := status(t, app, path); got != 200 {
				t.Fatalf("first %s: %d, want 200", path, got)
			}
		}
		if got, _ := status(t, app, "/a"); got != 429 {
			t.Fatalf("second /a: %d, want 429 from the shared storage", got)
		}
	})
}

// memStorage is a fiber.Storage in a map, standing in for Redis.
type memStorage struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemStorage() *memStorage { return &memStorage{m: map[string][]byte{}} }

func (s *memStorage) Get(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key], nil
}

func (s *memStorage) Set(key string, val []byte, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), val...)
	return nil
}

func (s *memStorage) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

func (s *memStorage) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.m)
	return nil
}

func (s *memStorage) Close() error { return nil }

// slowCounters is a memStorage that increments in one step, each call a
// round trip away, standing in for the module's Redis store.
type slowCounters struct{ *memStorage }

func (s *slowCounters) Get(key string) ([]byte, error) {
	time.Sleep(2 * time.Millisecond)
	return s.memStorage.Get(key)
}

func (s *slowCounters) Set(key string, val []byte, exp time.Duration) error {
	time.Sleep(2 * time.Millisecond)
	return s.memStorage.Set(key, val, exp)
}

func (s *slowCounters) Incr(key string, delta int64, _ time.Duration) (int64, error) {
	time.Sleep(2 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, _ := strconv.ParseInt(string(s.m[key]), 10, 64)
	n += delta
	s.m[key] = strconv.AppendInt(nil, n, 10)
	return n, nil
}
