package httpapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var isoRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

func wantISO(t *testing.T, v any) {
	t.Helper()
	s, _ := v.(string)
	if !isoRE.MatchString(s) {
		t.Fatalf("timestamp %q is not toISOString format", s)
	}
}

func TestHappyPaths(t *testing.T) {
	e := newEnv(t)

	r := e.do(t, "POST", "/api/push", key(secretAll), []byte(`{"userId":"alice","event":"order:update","data":{"id":1}}`))
	if r.status != 200 || r.body["success"] != true || r.body["delivered"] != true {
		t.Fatalf("push: %d %s", r.status, r.raw)
	}
	wantISO(t, r.body["timestamp"])
	if len(r.body) != 3 {
		t.Fatalf("push shape: %s", r.raw)
	}
	if got := e.hub.last(t); got.kind != "user" || got.target != "alice" || got.event != "order:update" || string(got.data) != `{"id":1}` {
		t.Fatalf("hub got %+v", got)
	}
	if r.header.Get(headerRequestID) == "" {
		t.Fatal("no X-Request-Id")
	}

	r = e.do(t, "POST", "/api/push", key(secretAll), []byte(`{"userId":"nobody","event":"x"}`))
	if r.status != 200 || r.body["delivered"] != false {
		t.Fatalf("push to nobody: %d %s", r.status, r.raw)
	}
	if got := e.hub.last(t); string(got.data) != "null" {
		t.Fatalf("missing data should be null, got %s", got.data)
	}

	r = e.do(t, "POST", "/api/broadcast", key(secretAll), []byte(`{"event":"news","data":[1,2]}`))
	if r.status != 200 || r.body["success"] != true || r.body["recipients"] != float64(5) {
		t.Fatalf("broadcast: %d %s", r.status, r.raw)
	}
	wantISO(t, r.body["timestamp"])
	if got := e.hub.last(t); got.kind != "all" || got.event != "news" || string(got.data) != "[1,2]" {
		t.Fatalf("hub got %+v", got)
	}

	r = e.do(t, "POST", "/api/room", key(secretAll), []byte(`{"room":"lobby","event":"chat","data":"hi"}`))
	if r.status != 200 || r.body["recipients"] != float64(3) {
		t.Fatalf("room: %d %s", r.status, r.raw)
	}
	if got := e.hub.last(t); got.kind != "room" || got.target != "lobby" || string(got.data) != `"hi"` {
		t.Fatalf("hub got %+v", got)
	}

	r = e.do(t, "POST", "/api/notification", key(secretPush), []byte(`{"userId":"alice","title":"T","message":"M","type":"warning"}`))
	if r.status != 200 || r.body["delivered"] != true {
		t.Fatalf("notification: %d %s", r.status, r.raw)
	}
	got := e.hub.last(t)
	if got.kind != "user" || got.target != "alice" || got.event != "system:notification" {
		t.Fatalf("hub got %+v", got)
	}
	var n map[string]any
	if err := json.Unmarshal(got.data, &n); err != nil {
		t.Fatal(err)
	}
	if n["title"] != "T" || n["message"] != "M" || n["type"] != "warning" || len(n) != 4 {
		t.Fatalf("notification payload %s", got.data)
	}
	wantISO(t, n["timestamp"])

	r = e.do(t, "GET", "/api/status", key(secretStatus), nil)
	if r.status != 200 || r.body["success"] != true || r.body["status"] != "ok" ||
		r.body["connections"] != float64(7) || r.body["rooms"] != float64(2) {
		t.Fatalf("status: %d %s", r.status, r.raw)
	}
	if _, ok := r.body["uptime"].(float64); !ok {
		t.Fatalf("uptime: %s", r.raw)
	}
	mem, _ := r.body["memory"].(map[string]any)
	for _, f := range []string{"rss", "heapTotal", "heapUsed", "external"} {
		if v, _ := mem[f].(float64); v <= 0 {
			t.Fatalf("memory.%s = %v", f, mem[f])
		}
	}
	if mem["heapUsed"].(float64) > mem["heapTotal"].(float64) {
		t.Fatalf("heapUsed > heapTotal: %s", r.raw)
	}
	wantISO(t, r.body["timestamp"])

	r = e.do(t, "GET", "/health", nil, nil)
	if r.status != 200 || r.body["status"] != "ok" || len(r.body) != 2 {
		t.Fatalf("health: %d %s", r.status, r.raw)
	}
	wantISO(t, r.body["timestamp"])

	r = e.do(t, "GET", "/api/plugins", key(secretAll), nil)
	if r.status != 200 || string(r.raw) != `{"success":true,"plugins":[]}` {
		t.Fatalf("plugins: %d %s", r.status, r.raw)
	}

	r = e.do(t, "GET", "/metrics", nil, nil)
	if r.status != 200 {
		t.Fatalf("metrics: %d", r.status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(r.raw)))
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	for _, name := range []string{"socket_server_active_connections", "socket_server_connections_total",
		"socket_server_http_requests_total", "socket_server_http_request_duration_seconds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("metrics lack %s", name)
		}
	}
	if fams["socket_server_active_connections"].GetHelp() != "Number of active socket connections" {
		t.Errorf("help text differs from SPEC")
	}
	var sawPush bool
	for _, m := range fams["socket_server_http_requests_total"].GetMetric() {
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		if l["route"] == "/api/push" && l["method"] == "POST" && l["status"] == "200" && m.GetCounter().GetValue() == 2 {
			sawPush = true
		}
	}
	if !sawPush {
		t.Errorf("push requests not counted by route pattern:\n%s", r.raw)
	}
}

type listerFunc func() []PluginInfo

func (f listerFunc) Plugins() []PluginInfo { return f() }

func TestPluginsList(t *testing.T) {
	hub := newFakeHub()
	api, err := New(Options{Keys: testKeys()}, hub, nil, listerFunc(func() []PluginInfo {
		return []PluginInfo{{Name: "chat", Version: "1", Routes: PluginRoutes{Events: []string{"chat"}}, State: "running", PID: 7}}
	}))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{api: api, hub: hub, url: serve(t, api)}
	r := e.do(t, "GET", "/api/plugins", key(secretAll), nil)
	if r.status != 200 || string(r.raw) != `{"success":true,"plugins":[{"name":"chat","version":"1","sha256":"","routes":{"events":["chat"],"messages":null,"actions":null},"state":"running","restarts":0,"pid":7}]}` {
		t.Fatalf("plugins: %d %s", r.status, r.raw)
	}
	// No metrics configured: /metrics is just an unknown route.
	wantError(t, e.do(t, "GET", "/metrics", nil, nil), 404, CodeNotFound)
}

func TestInvalidRequests(t *testing.T) {
	cases := []struct {
		name, path, body string
	}{
		{"bad json", "/api/push", `{"userId":`},
		{"not an object", "/api/push", `["alice","ev"]`},
		{"empty body", "/api/push", ``},
		{"null body", "/api/push", `null`},
		{"trailing data", "/api/push", `{"userId":"a","event":"e"} {}`},
		{"missing userId", "/api/push", `{"event":"e"}`},
		{"empty userId", "/api/push", `{"userId":"","event":"e"}`},
		{"mistyped userId", "/api/push", `{"userId":42,"event":"e"}`},
		{"null event", "/api/push", `{"userId":"a","event":null}`},
		{"reserved event", "/api/push", `{"userId":"a","event":"disconnect"}`},
		{"missing event", "/api/broadcast", `{"data":{}}`},
		{"mistyped event", "/api/broadcast", `{"event":{"x":1}}`},
		{"empty room", "/api/room", `{"room":"","event":"e"}`},
		{"missing room", "/api/room", `{"event":"e"}`},
		{"mistyped room", "/api/room", `{"room":["x"],"event":"e"}`},
		{"notification bad type", "/api/notification", `{"userId":"a","title":"t","message":"m","type":"debug"}`},
		{"notification no type", "/api/notification", `{"userId":"a","title":"t","message":"m"}`},
		{"notification no title", "/api/notification", `{"userId":"a","message":"m","type":"info"}`},
		{"notification no message", "/api/notification", `{"userId":"a","title":"t","type":"info"}`},
		{"notification mistyped title", "/api/notification", `{"userId":"a","title":1,"message":"m","type":"info"}`},
		{"notification empty user", "/api/notification", `{"userId":"","title":"t","message":"m","type":"info"}`},
	}
	e := newEnv(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do(t, "POST", tc.path, key(secretAll), []byte(tc.body)), 400, CodeInvalidRequest)
		})
	}
	if n := e.hub.count(); n != 0 {
		t.Fatalf("hub received %d emits from invalid requests", n)
	}
}

func TestAuthAndScopes(t *testing.T) {
	e := newEnv(t)
	push := []byte(`{"userId":"alice","event":"e"}`)
	wantError(t, e.do(t, "POST", "/api/push", nil, push), 401, CodeUnauthorized)
	wantError(t, e.do(t, "POST", "/api/push", key("wrong"), push), 401, CodeUnauthorized)
	wantError(t, e.do(t, "POST", "/api/push", key(secretAll+"x"), push), 401, CodeUnauthorized)
	wantError(t, e.do(t, "GET", "/api/status", nil, nil), 401, CodeUnauthorized)
	// Valid keys outside their scopes.
	wantError(t, e.do(t, "POST", "/api/push", key(secretStatus), push), 403, CodeForbidden)
	wantError(t, e.do(t, "POST", "/api/broadcast", key(secretPush), []byte(`{"event":"e"}`)), 403, CodeForbidden)
	wantError(t, e.do(t, "POST", "/api/room", key(secretPush), []byte(`{"room":"r","event":"e"}`)), 403, CodeForbidden)
	wantError(t, e.do(t, "GET", "/api/status", key(secretPush), nil), 403, CodeForbidden)
	wantError(t, e.do(t, "GET", "/api/plugins", key(secretPush), nil), 403, CodeForbidden)
	wantError(t, e.do(t, "POST", "/api/notification", key(secretStatus),
		[]byte(`{"userId":"a","title":"t","message":"m","type":"info"}`)), 403, CodeForbidden)
	if r := e.do(t, "POST", "/api/push", key(secretPush), push); r.status != 200 {
		t.Fatalf("pusher push: %d %s", r.status, r.raw)
	}
	if n := e.hub.count(); n != 1 {
		t.Fatalf("hub emits = %d, want 1", n)
	}
	// health and metrics need no key
	if r := e.do(t, "GET", "/health", nil, nil); r.status != 200 {
		t.Fatalf("health: %d", r.status)
	}
}

func TestNotFoundAndMethod(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.do(t, "GET", "/nope", nil, nil), 404, CodeNotFound)
	wantError(t, e.do(t, "POST", "/api/unknown", key(secretAll), []byte(`{}`)), 404, CodeNotFound)
	wantError(t, e.do(t, "GET", "/", nil, nil), 404, CodeNotFound)
	r := e.do(t, "GET", "/api/push", key(secretAll), nil)
	wantError(t, r, 405, CodeMethodNotAllowed)
	if r.header.Get("Allow") != "POST" {
		t.Fatalf("Allow = %q", r.header.Get("Allow"))
	}
	r = e.do(t, "DELETE", "/health", nil, nil)
	wantError(t, r, 405, CodeMethodNotAllowed)
	if r.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("Allow = %q", r.header.Get("Allow"))
	}
	if r := e.do(t, "HEAD", "/health", nil, nil); r.status != 200 {
		t.Fatalf("HEAD /health: %d", r.status)
	}
	wantError(t, e.do(t, "BREW", "/api/push", key(secretAll), nil), 405, CodeMethodNotAllowed)
	// Fiber's routing is case-insensitive and ignores a trailing slash, like Express.
	if r := e.do(t, "GET", "/health/", nil, nil); r.status != 200 {
		t.Fatalf("/health/: %d", r.status)
	}
}

func TestBodyTooLarge(t *testing.T) {
	big := []byte(`{"userId":"alice","event":"e","data":"` + strings.Repeat("x", 5000) + `"}`)
	e := newEnv(t)
	wantError(t, e.do(t, "POST", "/api/push", key(secretAll), big), 413, CodePayloadTooLarge)
	// Without Content-Length (chunked) the limit holds too.
	req, err := http.NewRequest("POST", e.url+"/api/push", strings.NewReader(string(big)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set(headerAPIKey, secretAll)
	r := doReq(t, req)
	wantError(t, r, 413, CodePayloadTooLarge)
	if n := e.hub.count(); n != 0 {
		t.Fatalf("hub got %d emits", n)
	}
	// Just under the limit is fine.
	ok := []byte(`{"userId":"alice","event":"e","data":"` + strings.Repeat("x", 4000) + `"}`)
	if r := e.do(t, "POST", "/api/push", key(secretAll), ok); r.status != 200 {
		t.Fatalf("4 KB body: %d %s", r.status, r.raw)
	}
}

func TestPanicIsInternalError(t *testing.T) {
	e := newEnv(t)
	e.hub.mu.Lock()
	e.hub.panics = true
	e.hub.mu.Unlock()
	r := e.do(t, "POST", "/api/broadcast", key(secretAll), []byte(`{"event":"e"}`))
	wantError(t, r, 500, CodeInternal)
	if strings.Contains(string(r.raw), "exploded") || strings.Contains(string(r.raw), "secret") {
		t.Fatalf("internals leaked: %s", r.raw)
	}
	// the server keeps serving
	if r := e.do(t, "GET", "/health", nil, nil); r.status != 200 {
		t.Fatalf("health after panic: %d", r.status)
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "GET", "/health", map[string]string{headerRequestID: "client-id_1.2:3"}, nil)
	if got := r.header.Get(headerRequestID); got != "client-id_1.2:3" {
		t.Fatalf("sane id not echoed: %q", got)
	}
	r = e.do(t, "GET", "/nope", map[string]string{headerRequestID: "abc"}, nil)
	if r.body["requestId"] != "abc" {
		t.Fatalf("error requestId %v", r.body["requestId"])
	}
	for _, bad := range []string{"has space", strings.Repeat("a", 200), "<script>", "a\"b"} {
		r = e.do(t, "GET", "/health", map[string]string{headerRequestID: bad}, nil)
		got := r.header.Get(headerRequestID)
		if got == bad || len(got) != 36 {
			t.Fatalf("insane id %q handled as %q", bad, got)
		}
	}
	a := e.do(t, "GET", "/health", nil, nil).header.Get(headerRequestID)
	b := e.do(t, "GET", "/health", nil, nil).header.Get(headerRequestID)
	if a == "" || a == b {
		t.Fatalf("generated ids %q %q", a, b)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	hub := newFakeHub()
	bad := []Options{
		{Keys: []Key{{Name: "", Secret: "s", Scopes: []string{"*"}}}},
		{Keys: []Key{{Name: "a", Secret: "", Scopes: []string{"*"}}}},
		{Keys: []Key{{Name: "a", Secret: "s", Scopes: []string{"*"}}, {Name: "a", Secret: "t", Scopes: []string{"*"}}}},
		{Keys: []Key{{Name: "a", Secret: "s", Scopes: []string{"*"}}, {Name: "b", Secret: "s", Scopes: []string{"*"}}}},
		{Keys: []Key{{Name: "a", Secret: "s", Scopes: []string{"everything"}}}},
		{Keys: []Key{{Name: "a", Secret: "s"}}},
		{TrustedProxies: []string{"not-an-ip"}},
		{Signing: Signing{MinVersion: "v3"}},
		{Signing: Signing{RequiredRoutes: []string{"/api/typo"}}},
		{MetricsPath: "metrics"},
		{MetricsPath: "/health"},
		{MaxBodyBytes: -1},
	}
	for i, o := range bad {
		if _, err := New(o, hub, nil, nil); err == nil {
			t.Errorf("case %d: New accepted %+v", i, o)
		}
	}
	if _, err := New(Options{}, nil, nil, nil); err == nil {
		t.Error("nil hub accepted")
	}
	if _, err := New(Options{TrustedProxies: []string{"10.0.0.0/8", "::1", "127.0.0.1"}}, hub, nil, nil); err != nil {
		t.Errorf("good options refused: %v", err)
	}
}

func TestKeyLookupFindsEveryKey(t *testing.T) {
	ring, err := newKeyRing(testKeys())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range testKeys() {
		got := ring.lookup(k.Secret)
		if got == nil || got.name != k.Name {
			t.Fatalf("lookup(%s) = %v", k.Name, got)
		}
	}
	for _, s := range []string{"", "secret", secretAll[:len(secretAll)-1], secretAll + "0"} {
		if ring.lookup(s) != nil {
			t.Fatalf("lookup(%q) matched", s)
		}
	}
}
