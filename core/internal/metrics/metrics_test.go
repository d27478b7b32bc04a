package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h) // listens on 127.0.0.1:0
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func TestHandlerExposesAllSeries(t *testing.T) {
	m := New()
	m.ActiveConnections.Set(42)
	m.ConnectionsTotal.WithLabelValues("true", "websocket").Add(100)
	m.ConnectionsTotal.WithLabelValues("false", "websocket").Add(10)
	m.CountRoomsWith(func() int { return 3 })
	m.RegisteredUsers.Set(2)
	m.EventsReceived.WithLabelValues(m.EventLabel("client:event")).Inc()
	m.EventsSent.WithLabelValues(m.EventLabel("whatever-the-client-made-up")).Inc()
	m.HTTPRequests.WithLabelValues("/api/push", "POST", "200").Inc()
	m.HTTPDuration.WithLabelValues("/api/push", "POST").Observe(0.002)
	m.RateLimited.WithLabelValues("http").Inc()
	m.Reconnects.Inc()
	m.Recovery.WithLabelValues(RecoveryRecovered).Inc()
	m.Errors.WithLabelValues("INVALID_MESSAGE_DATA").Inc()

	body := scrape(t, m.Handler())
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	want := map[string]string{
		"socket_server_active_connections":            "Number of active socket connections",
		"socket_server_connections_total":             "Total number of connections",
		"socket_server_rooms":                         "",
		"socket_server_registered_users":              "",
		"socket_server_events_received_total":         "",
		"socket_server_events_sent_total":             "",
		"socket_server_http_requests_total":           "",
		"socket_server_http_request_duration_seconds": "",
		"socket_server_rate_limited_total":            "",
		"socket_server_reconnects_total":              "",
		"socket_server_recovery_total":                "",
		"socket_server_ws_errors_total":               "",
		"go_goroutines":                               "",
		"process_resident_memory_bytes":               "",
	}
	for name, help := range want {
		f, ok := fams[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if help != "" && f.GetHelp() != help {
			t.Errorf("%s help = %q, want %q", name, f.GetHelp(), help)
		}
	}
	if g := fams["socket_server_active_connections"].GetMetric()[0].GetGauge().GetValue(); g != 42 {
		t.Errorf("active connections = %v", g)
	}
	var sawOther bool
	for _, mm := range fams["socket_server_events_sent_total"].GetMetric() {
		for _, l := range mm.GetLabel() {
			if l.GetName() == "event" && l.GetValue() == OtherLabel {
				sawOther = true
			}
		}
	}
	if !sawOther {
		t.Errorf("unknown event not counted as %q", OtherLabel)
	}
	if !strings.Contains(body, `socket_server_connections_total{authenticated="true",transport="websocket"} 100`) {
		t.Errorf("connections_total line not in SPEC form:\n%s", body)
	}
}

func TestEventLabel(t *testing.T) {
	m := New()
	for _, tc := range []struct{ in, want string }{
		{"register", "register"},
		{"client:message", "client:message"},
		{"system:notification", "system:notification"},
		{"room:join:ack", "room:join:ack"},
		{"", OtherLabel},
		{"my:custom", OtherLabel},
		{"REGISTER", OtherLabel},
	} {
		if got := m.EventLabel(tc.in); got != tc.want {
			t.Errorf("EventLabel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Two Metrics in one process must not collide (each has its own registry).
func TestNewTwice(t *testing.T) {
	a, b := New(), New()
	a.Reconnects.Inc()
	if scrape(t, b.Handler()) == "" {
		t.Fatal("empty scrape")
	}
}

func TestFixedSeriesStartAtZero(t *testing.T) {
	body := scrape(t, New().Handler())
	for _, line := range []string{
		`socket_server_connections_total{authenticated="false",transport="polling"} 0`,
		`socket_server_connections_total{authenticated="true",transport="websocket"} 0`,
		`socket_server_recovery_total{result="dropped_packets"} 0`,
		`socket_server_active_connections 0`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("missing %q", line)
		}
	}
}
