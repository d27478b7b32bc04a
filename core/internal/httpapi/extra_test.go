package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

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

func TestKeysNeverLogged(t *testing.T) {
	var buf syncBuffer
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &buf})
	e := newEnv(t, func(o *Options) { o.Logger = log; o.Signing.Required = true })
	e.hub.panics = true
	push := []byte(`{"userId":"alice","event":"e"}`)
	const guessed = "guessed-secret-value"
	e.do(t, "POST", "/api/push", key(guessed), push)
	e.do(t, "POST", "/api/push", key(secretAll), push)
	s := signedReq{secret: secretAll, version: SignatureV2, method: "POST", path: "/api/push", nonce: "z", ts: time.Now(), body: push}
	e.do(t, "POST", "/api/push", s.headers(), push) // reaches the panicking hub
	out := buf.String()
	if !strings.Contains(out, "panic in http handler") || !strings.Contains(out, "api key refused") {
		t.Fatalf("expected log lines missing:\n%s", out)
	}
	for _, secret := range []string{guessed, secretAll, secretPush, secretStatus} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains a key:\n%s", out)
		}
	}
}

func TestMetricsRouteLabelsBounded(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/a", "/b/c", "/api/push/x", "/x?y=1"} {
		e.do(t, "GET", p, nil, nil)
	}
	// A method the HTTP server does not know is refused there, before any route or label.
	wantError(t, e.do(t, "BREW", "/a", nil, nil), 405, CodeMethodNotAllowed)
	e.do(t, "GET", "/api/push", key(secretAll), nil)
	if got := counterValue(t, e.m.HTTPRequests.WithLabelValues(routeUnmatched, "GET", "404")); got != 4 {
		t.Fatalf("unmatched 404 = %v", got)
	}
	if got := counterValue(t, e.m.HTTPRequests.WithLabelValues(routeUnmatched, "GET", "405")); got != 1 {
		t.Fatalf("unmatched 405 = %v", got)
	}
	// 404 + 405 (+ nothing else): two series only
	if n := seriesCount(t, e.m.HTTPRequests); n != 2 {
		t.Fatalf("series = %d", n)
	}
	if n := seriesCount(t, e.m.HTTPDuration); n != 1 {
		t.Fatalf("duration series = %d", n)
	}
}

func TestRateLimitedMetric(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RequestsPerMinute = 1; o.FailedAuthPerMinute = 1 })
	for i := 0; i < 3; i++ {
		e.do(t, "GET", "/api/status", key(secretAll), nil)
		e.do(t, "GET", "/api/status", key("nope"), nil)
	}
	if got := counterValue(t, e.m.RateLimited.WithLabelValues(limitKindHTTP)); got != 2 {
		t.Fatalf("http limited = %v", got)
	}
	if got := counterValue(t, e.m.RateLimited.WithLabelValues(limitKindHTTPAuth)); got != 2 {
		t.Fatalf("http_auth limited = %v", got)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RequestsPerMinute = 100 })
	e.do(t, "GET", "/health", nil, nil) // the HTTP server's own goroutines are running
	before := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		e.do(t, "POST", "/api/push", key(secretAll), []byte(`{"userId":"alice","event":"e"}`))
		e.do(t, "GET", "/metrics", nil, nil)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+2 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines %d -> %d\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func seriesCount(t *testing.T, c prometheus.Collector) int {
	t.Helper()
	ch := make(chan prometheus.Metric, 1024)
	c.Collect(ch)
	close(ch)
	return len(ch)
}

// Label values must not alias Fiber's reused request buffers: a later request would
// rewrite a stored label ("POST" turning into "GETT").
func TestMetricLabelsSurviveBufferReuse(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 10; i++ {
		e.do(t, "POST", "/api/push", key(secretAll), []byte(`{"userId":"alice","event":"e"}`))
		e.do(t, "GET", "/api/status", key(secretAll), nil)
		e.do(t, "DELETE", "/nope", nil, nil)
	}
	fams, err := e.m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "socket_server_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" && l.GetValue() != "POST" && l.GetValue() != "GET" && l.GetValue() != "DELETE" {
					t.Fatalf("corrupted method label %q", l.GetValue())
				}
			}
			if m.GetCounter().GetValue() != 10 {
				t.Fatalf("series %v = %v, want 10", m.GetLabel(), m.GetCounter().GetValue())
			}
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// The bridge answers a body it cannot read with the JSON contract (the stock adaptor
// answers a plain-text 500).
func TestBridgeUnreadableBody(t *testing.T) {
	api, err := New(Options{Keys: testKeys()}, newFakeHub(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/api/push", failingReader{})
	req.Header.Set(headerAPIKey, secretAll)
	req.RemoteAddr = "not an address"
	rec := httptest.NewRecorder()
	api.Handler().ServeHTTP(rec, req)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"code":"INVALID_REQUEST"`) ||
		rec.Header().Get(headerRequestID) == "" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}

func TestClockDrivenStatusAndWindow(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e := newEnv(t, func(o *Options) { o.Now = clock; o.Signing.Window = 30 * time.Second })
	advance(90 * time.Second)
	r := e.do(t, "GET", "/api/status", key(secretAll), nil)
	if r.body["uptime"] != float64(90) || r.body["timestamp"] != "2026-05-01T12:01:30.000Z" {
		t.Fatalf("status %s", r.raw)
	}
	s := signedReq{secret: secretAll, version: SignatureV1, method: "GET", path: "/api/status", nonce: "n1", ts: clock()}
	if r := e.do(t, "GET", "/api/status", s.headers(), nil); r.status != 200 {
		t.Fatalf("fresh: %d %s", r.status, r.raw)
	}
	// Within the window the nonce is remembered...
	advance(29 * time.Second)
	wantError(t, e.do(t, "GET", "/api/status", s.headers(), nil), 401, CodeNonceReused)
	// ...and once the timestamp is stale the request is refused for that reason.
	advance(2 * time.Second)
	wantError(t, e.do(t, "GET", "/api/status", s.headers(), nil), 401, CodeTimestampInvalid)
	if n := e.api.nonces.len(); n != 1 {
		t.Fatalf("nonces = %d", n)
	}
	s2 := signedReq{secret: secretAll, version: SignatureV1, method: "GET", path: "/api/status", nonce: "n2", ts: clock()}
	if r := e.do(t, "GET", "/api/status", s2.headers(), nil); r.status != 200 {
		t.Fatalf("second: %d %s", r.status, r.raw)
	}
	if n := e.api.nonces.len(); n != 1 {
		t.Fatalf("expired nonce not pruned: %d", n)
	}
}

func TestConcurrentSignedRequests(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Signing.Required = true; o.RequestsPerMinute = 10_000 })
	body := []byte(`{"userId":"alice","event":"e"}`)
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				s := signedReq{secret: secretAll, version: SignatureV2, method: "POST", path: "/api/push",
					nonce: fmt.Sprintf("g%d-%d", g, i), ts: time.Now(), body: body}
				req, _ := http.NewRequest("POST", e.url+"/api/push", bytes.NewReader(body))
				for k, v := range s.headers() {
					req.Header.Set(k, v)
				}
				res, err := testClient.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					errs <- fmt.Sprint("status ", res.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := e.hub.count(); n != 200 {
		t.Fatalf("hub emits %d", n)
	}
}
