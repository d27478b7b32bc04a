package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/engineio"
	"github.com/rtserver/rtserver/core/internal/metrics"
)

// emit is one call the fake hub received.
type emit struct {
	kind, target, event string
	data                json.RawMessage
}

// fakeHub stands in for core/hub: users and rooms map to socket counts.
type fakeHub struct {
	mu     sync.Mutex
	users  map[string]int
	rooms  map[string]int
	all    int
	emits  []emit
	panics bool
}

func newFakeHub() *fakeHub {
	return &fakeHub{users: map[string]int{"alice": 2}, rooms: map[string]int{"lobby": 3}, all: 5}
}

func (h *fakeHub) record(kind, target, event string, data json.RawMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.panics {
		panic("hub exploded: secret internal detail")
	}
	h.emits = append(h.emits, emit{kind, target, event, data})
}

func (h *fakeHub) PushToUser(userID, event string, data json.RawMessage) int {
	h.record("user", userID, event, data)
	return h.users[userID]
}

func (h *fakeHub) Broadcast(event string, data json.RawMessage) int {
	h.record("all", "", event, data)
	return h.all
}

func (h *fakeHub) EmitToRoom(room, event string, data json.RawMessage) int {
	h.record("room", room, event, data)
	return h.rooms[room]
}

func (h *fakeHub) Stats() Stats { return Stats{Connections: 7, Rooms: 2, Users: 1} }

func (h *fakeHub) last(t *testing.T) emit {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.emits) == 0 {
		t.Fatal("hub received nothing")
	}
	return h.emits[len(h.emits)-1]
}

func (h *fakeHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.emits)
}

const (
	secretAll    = "secret-all-0123456789"
	secretPush   = "secret-push-only"
	secretStatus = "secret-status-only"
)

func testKeys() []Key {
	return []Key{
		{Name: "admin", Secret: secretAll, Scopes: []string{ScopeAll}},
		{Name: "pusher", Secret: secretPush, Scopes: []string{ScopePush, ScopeNotify}},
		{Name: "monitor", Secret: secretStatus, Scopes: []string{ScopeStatus}},
	}
}

type env struct {
	api *API
	hub *fakeHub
	m   *metrics.Metrics
	url string
}

type option func(*Options)

func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	o := Options{Keys: testKeys(), MetricsPath: "/metrics", MaxBodyBytes: 4096}
	for _, f := range opts {
		f(&o)
	}
	hub := newFakeHub()
	m := metrics.New()
	api, err := New(o, hub, m, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &env{api: api, hub: hub, m: m, url: serve(t, api)}
}

// serve serves api as the product does: Handler behind core/engineio's HTTP server, with
// the body limit and the refusal body core/server gives it, on 127.0.0.1:0.
func serve(t *testing.T, api *API) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	hs := engineio.NewHTTPServer(ln, api.Handler())
	hs.MaxBodyBytes = api.maxBody
	hs.RefusalBody = RefusalBody
	if err := hs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

var testClient = &http.Client{Timeout: 10 * time.Second}

func init() {
	// Fresh connections per test server; CloseIdleConnections in cleanup keeps the
	// goroutine count honest.
	testClient.Transport = &http.Transport{DisableKeepAlives: true}
}

func (e *env) do(t *testing.T, method, path string, hdr map[string]string, body []byte) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return doReq(t, req)
}

func doReq(t *testing.T, req *http.Request) resp {
	t.Helper()
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("body is not JSON: %v: %s", err, raw)
		}
	}
	return r
}

func key(secret string) map[string]string { return map[string]string{headerAPIKey: secret} }

// wantError checks the SPEC error shape and the request id header.
func wantError(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.raw)
	}
	if r.body == nil {
		t.Fatalf("error body is not a JSON object: %q", r.raw)
	}
	if r.body["success"] != false || r.body["code"] != code {
		t.Fatalf("body = %s, want success:false code:%s", r.raw, code)
	}
	if msg, _ := r.body["error"].(string); msg == "" {
		t.Fatalf("no error message: %s", r.raw)
	}
	id, _ := r.body["requestId"].(string)
	if id == "" || id != r.header.Get(headerRequestID) {
		t.Fatalf("requestId %q vs header %q", id, r.header.Get(headerRequestID))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
}
