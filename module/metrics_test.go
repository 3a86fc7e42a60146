package module_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metricsOpts gives the module a fresh registry and mounts it at /chat,
// so that route labels show the mounted pattern, prefix included.
func metricsOpts(reg *prometheus.Registry, more func(*module.Config)) chattest.Options {
	return chattest.Options{Prefix: "/chat", Config: func(c *module.Config) {
		c.Metrics = reg
		if more != nil {
			more(c)
		}
	}}
}

// series finds the metric of family name whose labels include want; nil
// when there is none.
func series(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

// value is a counter's or gauge's value, or a histogram's sample count;
// -1 when the series does not exist.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	m := series(t, reg, name, labels)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("%s: unexpected metric type", name)
	return 0
}

// awaitValue waits up to 10 s for a gauge to read want.
func awaitValue(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := value(t, reg, name, nil)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMetricsRequests checks the request, batch and cache series against
// the requests a test made, and their exposition through MetricsHandler.
func TestMetricsRequests(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		reg := prometheus.NewRegistry()
		s := chattest.NewServer(t, db, metricsOpts(reg, nil))
		s.App.Get("/metrics", s.Module.MetricsHandler())
		a, b := s.NewUser(t, "ann"), s.NewUser(t, "bob")
		s.Befriend(t, a, b)
		const sends = 5
		for i := range sends {
			mustSend(t, s, a, b, "hi "+string(rune('a'+i)))
		}
		// Refused before the handler: a 401 of the same route.
		wrong := s.SDK(t, client.WithSession(client.Session{UID: a.UID, AccessToken: "wrong"}))
		_, err := wrong.Send(context.Background(), b.UID, "x")
		chattest.ExpectErr(t, err, 401, 1004)
		// No route: the catch-all's pattern, not the URL.
		if r := s.Post(t, "/no/such/route", nil); r.Status != 404 {
			t.Fatalf("no route: %s, want 404", r)
		}

		send := map[string]string{"route": "/chat/Message/Send", "status": "200"}
		if got := value(t, reg, "fiberchat_requests_total", send); got != sends {
			t.Errorf("requests_total%v = %v, want %d", send, got, sends)
		}
		refused := map[string]string{"route": "/chat/Message/Send", "status": "401"}
		if got := value(t, reg, "fiberchat_requests_total", refused); got != 1 {
			t.Errorf("requests_total%v = %v, want 1", refused, got)
		}
		if got := value(t, reg, "fiberchat_request_duration_seconds", map[string]string{"route": "/chat/Message/Send"}); got != sends+1 {
			t.Errorf("request_duration_seconds count for Send = %v, want %d", got, sends+1)
		}
		if got := value(t, reg, "fiberchat_requests_total", map[string]string{"route": "/chat/*", "status": "404"}); got != 1 {
			t.Errorf("requests_total for the catch-all 404 = %v, want 1", got)
		}
		if m := series(t, reg, "fiberchat_requests_total", map[string]string{"route": "/chat/no/such/route"}); m != nil {
			t.Errorf("a raw URL became a route label: %v", m)
		}

		// Every Send went through one group commit or another: the batch
		// sizes add up to the Sends, one commit time per batch.
		batch := series(t, reg, "fiberchat_send_batch_size", nil)
		commits := value(t, reg, "fiberchat_send_commit_seconds", nil)
		if batch == nil || batch.Histogram.GetSampleSum() != sends || float64(batch.Histogram.GetSampleCount()) != commits || commits < 1 {
			t.Errorf("send_batch_size %v, send_commit_seconds count %v: want a sum of %d over as many batches as commits", batch, commits, sends)
		}

		// Each authenticated request after the first of a session is a
		// session cache hit; every request but the first of the client a
		// client cache hit.
		if hits := value(t, reg, "fiberchat_cache_requests_total", map[string]string{"cache": "sessions", "result": "hit"}); hits < sends-1 {
			t.Errorf("session cache hits = %v, want at least %d", hits, sends-1)
		}
		if hits := value(t, reg, "fiberchat_cache_requests_total", map[string]string{"cache": "clients", "result": "hit"}); hits < sends {
			t.Errorf("client cache hits = %v, want at least %d", hits, sends)
		}
		if misses := value(t, reg, "fiberchat_cache_requests_total", map[string]string{"cache": "clients", "result": "miss"}); misses < 1 {
			t.Errorf("client cache misses = %v, want at least 1", misses)
		}
		if got := value(t, reg, "fiberchat_redis_up", nil); got != -1 {
			t.Errorf("fiberchat_redis_up without Redis = %v, want no series", got)
		}

		resp, err := s.App.Test(httptest.NewRequest("GET", "/metrics", nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(resp.Body)
		for _, want := range []string{
			`fiberchat_requests_total{route="/chat/Message/Send",status="200"} 5`,
			`fiberchat_long_polls 0`,
			`fiberchat_streams 0`,
			`fiberchat_send_batch_size_sum 5`,
			`# TYPE fiberchat_request_duration_seconds histogram`,
		} {
			if !strings.Contains(string(text), want) {
				t.Errorf("GET /metrics (%d) lacks %q:\n%s", resp.StatusCode, want, text)
			}
		}
	})
}

// TestMetricsLongPollsAndStreams checks that a held poll, a parked poll
// and an open stream each show in their gauge while they wait, and leave
// it once answered.
func TestMetricsLongPollsAndStreams(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := chattest.NewLive(t, chattest.OpenSQLite(t), metricsOpts(reg, func(c *module.Config) {
		c.StreamPingInterval = 50 * time.Millisecond
	}))
	a, b := l.NewUser(t, "ann"), l.NewUser(t, "bob")
	l.Befriend(t, a, b)
	ctx := context.Background()
	sender := l.SDKFor(t, a)
	metricsPoll := func(s sdker) {
		t.Helper()
		done := poll(t, s, b, client.RecvRequest{Wait: 20 * time.Second})
		awaitValue(t, reg, "fiberchat_long_polls", 1)
		sent, err := sender.Send(ctx, b.UID, "wake")
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		if r := awaitPoll(t, done); len(r.ans.Messages) != 1 || r.ans.Messages[0].ID != sent.ID {
			t.Fatalf("woken poll: %+v, want message %d", r.ans, sent.ID)
		}
		awaitValue(t, reg, "fiberchat_long_polls", 0)
	}
	// Through app.Test the poll is held; over the socket it parks.
	metricsPoll(l.Server)
	parked := l.Hijacked.Load()
	metricsPoll(l)
	if l.Hijacked.Load() == parked {
		t.Fatal("the live poll did not park")
	}

	stream, err := l.SDKFor(t, b).Stream(ctx, nil)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	awaitValue(t, reg, "fiberchat_streams", 1)
	_ = stream.Close()
	// The next ping finds the connection gone.
	awaitValue(t, reg, "fiberchat_streams", 0)
}

// TestMetricsRedisUp checks fiberchat_redis_up against a real Redis.
func TestMetricsRedisUp(t *testing.T) {
	rs := chattest.StartRedis(t)
	reg := prometheus.NewRegistry()
	s := chattest.NewServer(t, chattest.OpenSQLite(t), metricsOpts(reg, func(c *module.Config) { c.Redis = rs.Client(t) }))
	chattest.AwaitRedis(t, s)
	if got := value(t, reg, "fiberchat_redis_up", nil); got != 1 {
		t.Fatalf("fiberchat_redis_up = %v with Redis up, want 1", got)
	}
	rs.Kill(t)
	awaitValue(t, reg, "fiberchat_redis_up", 0)
}

// TestMetricsRegistration checks that a second module cannot take the
// names of a first on one registry, and can once the first is closed.
func TestMetricsRegistration(t *testing.T) {
	db := chattest.OpenSQLite(t)
	reg := prometheus.NewRegistry()
	first, err := module.New(module.Config{DB: db.Gorm, Metrics: reg, BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := module.New(module.Config{DB: db.Gorm, Metrics: reg, BcryptCost: 4}); err == nil || !strings.Contains(err.Error(), "register metrics") {
		t.Fatalf("second module on one registry: %v, want a registration error", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := module.New(module.Config{DB: db.Gorm, Metrics: reg, BcryptCost: 4})
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}

	off, err := module.New(module.Config{DB: db.Gorm, BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	app := fiber.New()
	app.Get("/metrics", off.MetricsHandler())
	resp, err := app.Test(httptest.NewRequest("GET", "/metrics", nil), -1)
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("MetricsHandler without Config.Metrics: %v %v, want 404", resp.StatusCode, err)
	}
}

// TestAccessLog checks one JSON line per request with the route pattern,
// status and request id, and none of the credentials the requests
// carried: api_token, access_token, password, message text.
func TestAccessLog(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		buf := &chattest.SyncBuffer{}
		logger := slog.New(slog.NewJSONHandler(buf, nil))
		s := chattest.NewServer(t, db, chattest.Options{Prefix: "/chat", Config: func(c *module.Config) { c.AccessLog = logger }})
		a, b := s.NewUser(t, "ann"), s.NewUser(t, "bob")
		s.Befriend(t, a, b)
		mustSend(t, s, a, b, "very private words")
		// By hand, for the request id header.
		r := s.Do(t, chattest.Req{Path: "/Message/Send", JSON: a.Creds(map[string]any{"uid_to": b.UID, "data": "x"}), Header: map[string]string{"X-Request-Id": "trace-42"}})
		chattest.Expect(t, r, 200, 0)

		type line struct {
			Msg       string  `json:"msg"`
			Method    string  `json:"method"`
			Route     string  `json:"route"`
			Status    int     `json:"status"`
			Duration  float64 `json:"duration"`
			RequestID string  `json:"request_id"`
		}
		var lines []line
		raw := buf.String()
		for _, l := range strings.Split(strings.TrimSpace(raw), "\n") {
			var ln line
			if err := json.Unmarshal([]byte(l), &ln); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			lines = append(lines, ln)
		}
		// Two registers, two logins, the befriending's two, two sends.
		if len(lines) < 6 {
			t.Fatalf("%d access log lines, want one per request:\n%s", len(lines), raw)
		}
		last := lines[len(lines)-1]
		if last.Msg != "request" || last.Method != "POST" || last.Route != "/chat/Message/Send" || last.Status != 200 || last.Duration <= 0 || last.RequestID != "trace-42" {
			t.Errorf("last line %+v, want request POST /chat/Message/Send 200 with a duration and request_id trace-42", last)
		}
		for _, secret := range []string{a.Token, b.Token, a.Password, s.Secret, "api_token", "very private words", "client_id="} {
			if strings.Contains(raw, secret) {
				t.Errorf("access log contains %q:\n%s", secret, raw)
			}
		}
	})
}

// TestMetricsStreamsAfterUserCap opens one more stream than a user may
// have, which ends the oldest, then closes them all: fiberchat_streams
// must come back to 0, not keep the one the cap ended.
func TestMetricsStreamsAfterUserCap(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		reg := prometheus.NewRegistry()
		l := chattest.NewLive(t, db, metricsOpts(reg, func(c *module.Config) {
			c.StreamPingInterval = 50 * time.Millisecond
		}))
		streams := openPastUserCap(t, l, l.NewUser(t, "bob"))
		streams[0].expectBye(t, "replaced")
		awaitValue(t, reg, "fiberchat_streams", 16)
		for _, s := range streams {
			_ = s.st.Close()
		}
		// Each ping finds its connection gone.
		awaitValue(t, reg, "fiberchat_streams", 0)
	})
}

// TestMaxWaiters checks the process's cap on waiters: past it a long poll
// is answered at once and a stream is refused 503/1503; once a waiter
// ends, both wait again.
func TestMaxWaiters(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		reg := prometheus.NewRegistry()
		l := chattest.NewLive(t, db, metricsOpts(reg, func(c *module.Config) { c.MaxWaiters = 1 }))
		a, b := l.NewUser(t, "ann"), l.NewUser(t, "bob")
		l.Befriend(t, a, b)
		ctx := context.Background()
		held := poll(t, l, b, client.RecvRequest{Wait: 20 * time.Second})
		awaitValue(t, reg, "fiberchat_long_polls", 1)

		start := time.Now()
		if _, err := l.SDKFor(t, a).Recv(ctx, client.RecvRequest{Wait: 10 * time.Second}); err != nil {
			t.Fatalf("poll past MaxWaiters: %v", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("a poll past MaxWaiters waited %v, want an answer at once", took)
		}
		var e *client.Error
		if _, err := l.SDKFor(t, a).Stream(ctx, nil); !errors.As(err, &e) || e.Status != 503 || e.Code != 1503 {
			t.Fatalf("stream past MaxWaiters: %v, want 503/1503", err)
		}

		sent, err := l.SDKFor(t, a).Send(ctx, b.UID, "wake")
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		if r := awaitPoll(t, held); len(r.ans.Messages) != 1 || r.ans.Messages[0].ID != sent.ID {
			t.Fatalf("held poll: %+v, want message %d", r.ans, sent.ID)
		}
		awaitValue(t, reg, "fiberchat_long_polls", 0)
		stream, err := l.SDKFor(t, a).Stream(ctx, nil)
		if err != nil {
			t.Fatalf("stream once the poll ended: %v", err)
		}
		_ = stream.Close()
	})
}
