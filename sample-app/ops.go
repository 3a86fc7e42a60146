package main

import (
	"flag"
	"log/slog"

	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// opsFlags are serve's operations switches: --metrics serves GET /metrics
// (module.Config.Metrics), --access-log logs one line per request to
// stderr (module.Config.AccessLog).
type opsFlags struct{ metrics, accessLog *bool }

func newOpsFlags(fs *flag.FlagSet) opsFlags {
	return opsFlags{
		metrics:   fs.Bool("metrics", false, "serve Prometheus metrics at GET /metrics (unsigned, like /healthz)"),
		accessLog: fs.Bool("access-log", false, "log one line per request: method, route, status, duration, request id"),
	}
}

// configure adds what the flags ask for to cfg: a registry of the
// sample's own, since it has no other, with the Go runtime's and the
// process's collectors beside the module's; and log as the access log.
func (o opsFlags) configure(cfg module.Config, log *slog.Logger) module.Config {
	if *o.metrics {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Metrics = reg
	}
	if *o.accessLog {
		cfg.AccessLog = log
	}
	return cfg
}

// mount adds GET /metrics with --metrics. Like /healthz it is unsigned:
// a site exposed to the public keeps it from them at its proxy.
func (o opsFlags) mount(app *fiber.App, chat *module.Module) {
	if *o.metrics {
		app.Get("/metrics", chat.MetricsHandler())
	}
}
