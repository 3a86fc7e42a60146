package module

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/handlers"
	"github.com/fiberchat/fiberchat/internal/push"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The module's Prometheus metrics (Config.Metrics) and access log
// (Config.AccessLog). Only this file imports client_golang: the packages
// below module count what they see in plain atomics (cache hits, held
// polls, open streams) or call a hook (models.MessageWriter.OnCommit), and
// the collectors here read them at scrape time, so a host without metrics
// pays nothing but those counters.

// metrics holds the collectors the module registers on Config.Metrics.
type metrics struct {
	reg      prometheus.Registerer
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	batch    prometheus.Histogram
	commit   prometheus.Histogram
	// registered are the collectors Register accepted, for Close.
	registered []prometheus.Collector
}

// requestBuckets are DefBuckets plus 30 s, the longest long poll, so a
// held Recv lands in a bucket of its own rather than past the last.
var requestBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// newMetrics makes the collectors whose values the module pushes; nil
// when Config.Metrics is nil. They are registered, with those read at
// scrape time, by registerMetrics once the module is built.
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	return &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fiberchat_requests_total",
			Help: "Requests answered by the module's routes, by route pattern and HTTP status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fiberchat_request_duration_seconds",
			Help:    "Time the module's routes took to answer, by route pattern; a held long poll counts its wait, a parked poll or a stream ends when it leaves its handler.",
			Buckets: requestBuckets,
		}, []string{"route"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fiberchat_send_batch_size",
			Help:    "Sends stored per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 to 1024: SendBatchSize is at most 1000
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fiberchat_send_commit_seconds",
			Help:    "Time one group commit of Sends took, its transaction and deadlock retries.",
			Buckets: prometheus.ExponentialBuckets(.0005, 2, 14), // 0.5 ms to about 4 s
		}),
	}
}

// observeCommit is models.MessageWriter.OnCommit; nil without metrics.
func (mt *metrics) observeCommit() func(int, time.Duration) {
	if mt == nil {
		return nil
	}
	return func(size int, took time.Duration) {
		mt.batch.Observe(float64(size))
		mt.commit.Observe(took.Seconds())
	}
}

// registerMetrics registers every collector on Config.Metrics; none stays
// registered when one is refused (a second module on the same registry,
// say: wrap the Registerer with prometheus.WrapRegistererWith to tell
// them apart).
func (m *Module) registerMetrics() error {
	mt := m.metrics
	if mt == nil {
		return nil
	}
	collectors := []prometheus.Collector{
		mt.requests, mt.duration, mt.batch, mt.commit,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fiberchat_long_polls",
			Help: "Recv long polls waiting, held or parked.",
		}, func() float64 { return float64(m.messages.LongPolls()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fiberchat_streams",
			Help: "Open /Message/Stream responses.",
		}, func() float64 { return float64(m.messages.Streams()) }),
		m.cacheCollector(),
	}
	collectors = append(collectors, m.pushCollectors()...)
	if m.cfg.Redis != nil {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fiberchat_redis_up",
			Help: "1 while this instance hears the others over Redis (both subscriptions work), else 0.",
		}, func() float64 {
			if m.RedisUp() {
				return 1
			}
			return 0
		}))
	}
	for _, c := range collectors {
		if err := mt.reg.Register(c); err != nil {
			m.unregisterMetrics()
			return fmt.Errorf("fiberchat: register metrics: %w", err)
		}
		mt.registered = append(mt.registered, c)
	}
	return nil
}

// unregisterMetrics removes what registerMetrics registered, so that a
// module made after Close can register on the same registry.
func (m *Module) unregisterMetrics() {
	if m.metrics == nil {
		return
	}
	for _, c := range m.metrics.registered {
		m.metrics.reg.Unregister(c)
	}
	m.metrics.registered = nil
}

// cacheStats is a cache's hit and miss counts (cache.Cache.Stats).
type cacheStats func() (hits, misses uint64)

// cacheCollector reports each cache's counts as
// fiberchat_cache_requests_total{cache,result}, read at scrape time.
type cacheCollector struct {
	desc   *prometheus.Desc
	caches map[string]cacheStats
}

// cacheCollector collects the caches Config left on: "sessions",
// "clients" and "profiles".
func (m *Module) cacheCollector() *cacheCollector {
	c := &cacheCollector{
		desc: prometheus.NewDesc("fiberchat_cache_requests_total",
			"Lookups in the module's caches, by cache and result (hit: served from memory; miss: read from the database).",
			[]string{"cache", "result"}, nil),
		caches: map[string]cacheStats{},
	}
	if tc, ok := m.tokens.(*middleware.TokenCache); ok {
		c.caches["sessions"] = tc.Stats
	}
	// The client cache is always on: ClientCacheTTL must be positive.
	c.caches["clients"] = m.signature.Stats
	if m.profileCache != nil {
		c.caches["profiles"] = m.profileCache.Stats
	}
	return c
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	for name, stats := range c.caches {
		hits, misses := stats()
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(hits), name, "hit")
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(misses), name, "miss")
	}
}

// observed returns the handlers that go first on every route Mount adds,
// after the request id: the metrics and access log's, or none when both
// are off. The slice is new on every call, for the caller to append to.
func (m *Module) observed() []fiber.Handler {
	if m.metrics == nil && m.cfg.AccessLog == nil {
		return nil
	}
	return []fiber.Handler{m.observe}
}

// observe counts and logs one request once the rest of its route has
// answered it. It runs before the route's error boundary, which turns any
// error into a response, so the status it reads is the one sent.
func (m *Module) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	took := time.Since(start)
	// The mounted pattern, never the URL: bounded label values, and no
	// path parameter (an avatar's name) in the log.
	route := c.Route().Path
	status := c.Response().StatusCode()
	if err != nil {
		// Only a handler placed before the boundary returns one, and the
		// app's error handler answers it: Fiber's status, else 500.
		status = fiber.StatusInternalServerError
		if fe := (*fiber.Error)(nil); errors.As(err, &fe) {
			status = fe.Code
		}
	}
	if mt := m.metrics; mt != nil {
		mt.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		mt.duration.WithLabelValues(route).Observe(took.Seconds())
	}
	if log := m.cfg.AccessLog; log != nil {
		log.LogAttrs(c.UserContext(), slog.LevelInfo, "request",
			slog.String("method", c.Method()),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Duration("duration", took),
			slog.String("request_id", handlers.RequestIDFrom(c)))
	}
	return err
}

// MetricsHandler serves Config.Metrics in Prometheus's text format, for a
// host without a /metrics of its own: mount it where the scraper looks,
// behind what keeps the public out (it is unsigned, like HealthHandler).
// It serves what Config.Metrics gathers, the host's collectors too, when
// that is a prometheus.Gatherer (a *prometheus.Registry is); otherwise,
// and without Config.Metrics, it answers 404/1404.
func (m *Module) MetricsHandler() fiber.Handler {
	g, ok := m.cfg.Metrics.(prometheus.Gatherer)
	if !ok {
		return func(c *fiber.Ctx) error {
			return handlers.WriteError(c, m.cfg.Logger, apierr.NotFound("metrics are off (Config.Metrics)"), nil)
		}
	}
	return adaptor.HTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slogPrinter{m.cfg.Logger}}))
}

// slogPrinter gives promhttp's error log to the module's logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "error", fmt.Sprint(v...)) }

// pushCollectors count Web Push's pushes by what became of them:
// fiberchat_push_total{result="sent|gone|failed|dropped"}.
func (m *Module) pushCollectors() []prometheus.Collector {
	results := []struct {
		name string
		read func(push.Stats) uint64
	}{
		{"sent", func(s push.Stats) uint64 { return s.Sent }},
		{"gone", func(s push.Stats) uint64 { return s.Gone }},
		{"failed", func(s push.Stats) uint64 { return s.Failed }},
		{"dropped", func(s push.Stats) uint64 { return s.Dropped }},
	}
	out := make([]prometheus.Collector, len(results))
	for i, r := range results {
		out[i] = prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "fiberchat_push_total",
			Help:        "Web Push pushes: sent (accepted by the push service), gone (404/410, subscription dropped), failed (refused, or every retry failed), dropped (a queue was full, or subscriptions unreadable).",
			ConstLabels: prometheus.Labels{"result": r.name},
		}, func() float64 { return float64(r.read(m.pusher.Stats())) })
	}
	return out
}
