package pluginhost

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	restarts *prometheus.CounterVec
	reloads  *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socket_server_plugin_calls_total",
			Help: "Requests dispatched to plugins, by plugin, kind and result code (OK on success).",
		}, []string{"plugin", "kind", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "socket_server_plugin_call_duration_seconds",
			Help:    "Round-trip time of plugin calls.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"plugin", "kind"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "socket_server_plugin_in_flight",
			Help: "Plugin calls waiting for a reply.",
		}, []string{"plugin"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socket_server_plugin_restarts_total",
			Help: "Plugin processes restarted after a crash.",
		}, []string{"plugin"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socket_server_plugin_reloads_total",
			Help: "Plugin binaries hot-reloaded.",
		}, []string{"plugin"}),
	}
	if r == nil {
		return m, nil
	}
	var err error
	m.calls = register(r, m.calls, &err)
	m.duration = register(r, m.duration, &err)
	m.inFlight = register(r, m.inFlight, &err)
	m.restarts = register(r, m.restarts, &err)
	m.reloads = register(r, m.reloads, &err)
	return m, err
}

// register registers c, or reuses the collector already registered under the
// same name (a second Host on one registry, as in tests or a restart in process).
func register[C prometheus.Collector](r prometheus.Registerer, c C, errp *error) C {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}
