// Package metrics holds the server's Prometheus collectors: one private registry with
// the socket_server_* series, plus the Go runtime and process collectors, exposed in the
// Prometheus text format by Handler.
package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// OtherLabel is the label value used for any event name that is not one of the known
// ones, so a client cannot grow the number of series by inventing event names.
const OtherLabel = "other"

// knownEvents are the event names of the SPEC (client-to-server, server-to-client and
// system events) plus the Socket.IO reserved ones; only these become label values.
var knownEvents = map[string]struct{}{
	// client to server
	"register":       {},
	"client:event":   {},
	"client:message": {},
	"client:action":  {},
	"room:join":      {},
	"room:leave":     {},
	"ping":           {},
	// server to client
	"register:ack":    {},
	"server:response": {},
	"message:ack":     {},
	"action:result":   {},
	"room:join:ack":   {},
	"room:leave:ack":  {},
	"error":           {},
	// system
	"system:welcome":               {},
	"system:notification":          {},
	"system:reconnect_status":      {},
	"system:state_recovered":       {},
	"system:state_recovery_failed": {},
	// Socket.IO reserved
	"connect":       {},
	"connect_error": {},
	"disconnect":    {},
	"disconnecting": {},
}

// Metrics is the set of collectors the core updates. All fields are registered on
// Registry by New; the zero value is not usable.
type Metrics struct {
	Registry *prometheus.Registry

	ActiveConnections prometheus.Gauge         // socket_server_active_connections
	ConnectionsTotal  *prometheus.CounterVec   // socket_server_connections_total{authenticated,transport}
	Rooms             prometheus.GaugeFunc     // socket_server_rooms, read at scrape (CountRoomsWith)
	RegisteredUsers   prometheus.Gauge         // socket_server_registered_users
	EventsReceived    *prometheus.CounterVec   // socket_server_events_received_total{event}
	EventsSent        *prometheus.CounterVec   // socket_server_events_sent_total{event}
	HTTPRequests      *prometheus.CounterVec   // socket_server_http_requests_total{route,method,status}
	HTTPDuration      *prometheus.HistogramVec // socket_server_http_request_duration_seconds{route,method}
	RateLimited       *prometheus.CounterVec   // socket_server_rate_limited_total{kind}
	Reconnects        prometheus.Counter       // socket_server_reconnects_total
	Recovery          *prometheus.CounterVec   // socket_server_recovery_total{result}
	Errors            *prometheus.CounterVec   // socket_server_ws_errors_total{code}

	// The counters of each event label, looked up once: WithLabelValues hashes the label
	// and takes a lock on every call, which showed in the per-event CPU.
	received, sent sync.Map // label -> prometheus.Counter

	rooms atomic.Pointer[func() int] // what socket_server_rooms reads; nil reads 0
}

// Recovery result label values.
const (
	RecoveryRecovered      = "recovered"
	RecoveryFailed         = "failed"
	RecoveryDroppedPackets = "dropped_packets"
	RecoveryStoreFailed    = "store_failed" // the shared store (Redis) failed an operation
)

// New builds the collectors and registers them, with the Go and process collectors, on
// a fresh registry (never the global one, so tests and several servers in one process
// do not collide).
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry:          r,
		ActiveConnections: gauge(r, "active_connections", "Number of active socket connections"),
		ConnectionsTotal: counterVec(r, "connections_total", "Total number of connections",
			"authenticated", "transport"),
		RegisteredUsers: gauge(r, "registered_users",
			"Number of distinct registered users with at least one socket"),
		EventsReceived: counterVec(r, "events_received_total",
			"Total number of events received from clients, by event name (unknown names counted as other)",
			"event"),
		EventsSent: counterVec(r, "events_sent_total",
			"Total number of events sent to clients, by event name (unknown names counted as other)",
			"event"),
		HTTPRequests: counterVec(r, "http_requests_total",
			"Total number of HTTP API requests, by route pattern, method and status",
			"route", "method", "status"),
		HTTPDuration: register(r, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    prefix + "http_request_duration_seconds",
			Help:    "HTTP API request latency in seconds, by route pattern and method",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"})),
		RateLimited: counterVec(r, "rate_limited_total",
			"Total number of requests, connections or messages refused by a rate limit, by kind",
			"kind"),
		Reconnects: counter(r, "reconnects_total",
			"Total number of connections whose client reported a reconnection attempt (auth.attempt > 0)"),
		Recovery: counterVec(r, "recovery_total",
			"Connection state recovery outcomes: recovered, failed, dropped_packets, store_failed", "result"),
		Errors: counterVec(r, "ws_errors_total",
			"Total number of error events sent to socket clients, by error code", "code"),
	}
	// Counted when scraped, from the same numbers /api/status shows: no join or leave on
	// the hot path has to keep a gauge up to date.
	m.Rooms = register(r, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: prefix + "rooms",
		Help: "Number of rooms with at least one member",
	}, func() float64 {
		if f := m.rooms.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	}))
	// Series with a small known label set start at zero, so they are scraped (and rate()
	// works) before the first event.
	for _, auth := range []string{"true", "false"} {
		for _, tr := range []string{"polling", "websocket"} {
			m.ConnectionsTotal.WithLabelValues(auth, tr)
		}
	}
	for _, r := range []string{RecoveryRecovered, RecoveryFailed, RecoveryDroppedPackets, RecoveryStoreFailed} {
		m.Recovery.WithLabelValues(r)
	}
	return m
}

// prefix starts the name of every series of the product.
const prefix = "socket_server_"

// The series are built and registered by the helpers below, so that each is named and
// registered in one place and none is built and then left out of the registry.

func gauge(r *prometheus.Registry, name, help string) prometheus.Gauge {
	return register(r, prometheus.NewGauge(prometheus.GaugeOpts{Name: prefix + name, Help: help}))
}

func counter(r *prometheus.Registry, name, help string) prometheus.Counter {
	return register(r, prometheus.NewCounter(prometheus.CounterOpts{Name: prefix + name, Help: help}))
}

func counterVec(r *prometheus.Registry, name, help string, labels ...string) *prometheus.CounterVec {
	return register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + name, Help: help}, labels))
}

// register adds c to r and returns it, typed as built.
func register[C prometheus.Collector](r *prometheus.Registry, c C) C {
	r.MustRegister(c)
	return c
}

// Handler serves the registry in the Prometheus text exposition format. A collector that
// fails (a plugin's, say) leaves its series out instead of turning the whole scrape
// into a 500 whose body would carry the internal error text; promhttp counts such
// failures in promhttp_metric_handler_errors_total.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		Registry:      m.Registry,
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// CountRoomsWith makes socket_server_rooms report what f returns at each scrape.
func (m *Metrics) CountRoomsWith(f func() int) { m.rooms.Store(&f) }

// CountReceived adds one to socket_server_events_received_total for event.
func (m *Metrics) CountReceived(event string) {
	m.eventCounter(&m.received, m.EventsReceived, event).Inc()
}

// CountSent adds n to socket_server_events_sent_total for event.
func (m *Metrics) CountSent(event string, n int) {
	m.eventCounter(&m.sent, m.EventsSent, event).Add(float64(n))
}

func (m *Metrics) eventCounter(cache *sync.Map, vec *prometheus.CounterVec, event string) prometheus.Counter {
	label := m.EventLabel(event)
	if c, ok := cache.Load(label); ok {
		return c.(prometheus.Counter)
	}
	c := vec.WithLabelValues(label)
	cache.Store(label, c)
	return c
}

// EventLabel maps an event name to a bounded label value: the name itself when it is
// one of the known events, OtherLabel otherwise.
func (m *Metrics) EventLabel(name string) string {
	if _, ok := knownEvents[name]; ok {
		return name
	}
	return OtherLabel
}
