package server_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/nodetest"
)

var isoTime = func(s any) bool {
	str, ok := s.(string)
	if !ok {
		return false
	}
	_, err := time.Parse("2006-01-02T15:04:05.000Z", str)
	return err == nil
}

func TestWelcomeRegisterAndPing(t *testing.T) {
	e := startServer(t, nil)
	for name, tr := range transportSets {
		t.Run(name, func(t *testing.T) {
			e := e.with(t) // the subtest fails and cleans up its own clients
			c := e.dial(token(t, "alice"), tr)
			c.next("connect")
			w := c.nextObj("system:welcome")
			if w["message"] != "Welcome to the Socket.IO server" || w["socketId"] != string(c.s.Id()) || !isoTime(w["timestamp"]) {
				t.Fatalf("welcome: %v (socket id %s)", w, c.s.Id())
			}
			info, _ := w["serverInfo"].(map[string]any)
			if info["environment"] != "test" || info["version"] == nil {
				t.Fatalf("serverInfo: %v", info)
			}

			for _, bad := range []any{map[string]any{"userId": "mallory"}, map[string]any{}, map[string]any{"userId": "  "}, map[string]any{"userId": 5}, "alice", nil, 42} {
				c.emit("register", bad)
				ack := c.nextObj("register:ack")
				if ack["success"] != false || ack["error"] == nil {
					t.Fatalf("register %v: %v", bad, ack)
				}
			}
			c.emit("register", map[string]any{"userId": "alice"})
			if ack := c.nextObj("register:ack"); ack["success"] != true || ack["userId"] != "alice" || len(ack) != 2 {
				t.Fatalf("register: %v", ack)
			}

			if a := c.emitAck("ping", map[string]any{"timestamp": time.Now().UnixMilli()}); len(a) != 0 {
				t.Fatalf("ping ack carries %v", a)
			}
		})
	}
}

func TestRefusedTokens(t *testing.T) {
	e := startServer(t, nil)
	now := time.Now().Unix()
	hs := func(claims map[string]any, secret string) string { return signHS256(claims, secret) }
	cases := map[string]struct {
		token string
		code  string
	}{
		"missing":         {"", "TOKEN_MISSING"},
		"malformed":       {"abc.def", "TOKEN_MALFORMED"},
		"wrong signature": {hs(map[string]any{"userId": "u", "iat": now, "exp": now + 60}, "other"), "TOKEN_INVALID_SIGNATURE"},
		"expired":         {hs(map[string]any{"userId": "u", "iat": now - 7200, "exp": now - 3600}, testSecret), "TOKEN_EXPIRED"},
		"alg none":        {unsigned(map[string]any{"userId": "u", "iat": now, "exp": now + 60}), "TOKEN_ALG_NOT_ALLOWED"},
		"no userId":       {hs(map[string]any{"iat": now, "exp": now + 60}, testSecret), "TOKEN_MISSING_CLAIM"},
		"no exp":          {hs(map[string]any{"userId": "u", "iat": now}, testSecret), "TOKEN_MISSING_CLAIM"},
	}
	for name, tc := range cases {
		for trName, tr := range map[string][]string{"websocket": {"websocket"}, "polling": {"polling"}} {
			t.Run(name+"/"+trName, func(t *testing.T) {
				e := e.with(t) // the subtest fails and cleans up its own clients
				c := e.dial(tc.token, tr)
				a := c.next("connect_error")
				if len(a) == 0 {
					t.Fatal("connect_error without an argument")
				}
				data := errorData(t, a[0])
				if data["code"] != tc.code || data["message"] == "" {
					t.Fatalf("connect_error data %v, want code %s", data, tc.code)
				}
				c.none("system:welcome", 100*time.Millisecond)
			})
		}
	}
}

// errorData digs {code, message} out of whatever the Go client made of CONNECT_ERROR.
func errorData(t *testing.T, v any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if d, ok := m["data"].(map[string]any); ok {
		return d
	}
	if d, ok := m["Data"].(map[string]any); ok {
		return d
	}
	t.Fatalf("connect_error carries no data: %s (%T)", b, v)
	return nil
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func signHS256(claims map[string]any, secret string) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims)).SignedString([]byte(secret))
	if err != nil {
		panic(err)
	}
	return tok
}

func unsigned(claims map[string]any) string {
	return b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64(claims) + "."
}

func TestRoomsAndBadPayloads(t *testing.T) {
	e := startServer(t, func(c *config.Config) { c.SocketIO.MaxRoomsPerSocket = 3 })
	for name, tr := range transportSets {
		t.Run(name, func(t *testing.T) {
			e := e.with(t) // the subtest fails and cleans up its own clients
			c := e.connect("roomer", tr)
			c.emit("room:join", map[string]any{"room": "lobby"})
			if a := c.nextObj("room:join:ack"); a["success"] != true || a["room"] != "lobby" {
				t.Fatalf("join ack %v", a)
			}
			c.emit("room:leave", map[string]any{"room": "lobby"})
			if a := c.nextObj("room:leave:ack"); a["success"] != true || a["room"] != "lobby" {
				t.Fatalf("leave ack %v", a)
			}
			long := strings.Repeat("r", 200)
			for _, bad := range []any{map[string]any{"room": ""}, map[string]any{"room": 1}, map[string]any{"room": long},
				map[string]any{"room": "a\x00b"}, map[string]any{}, nil, 5, "lobby", []any{1}} {
				c.emit("room:join", bad)
				if err := c.nextObj("error"); err["event"] != "room:join" || err["code"] != "INVALID_ROOM" || err["message"] == "" {
					t.Fatalf("join %v: %v", bad, err)
				}
			}
			for i := 0; i < 3; i++ {
				c.emit("room:join", map[string]any{"room": fmt.Sprintf("r%d", i)})
				c.nextObj("room:join:ack")
			}
			c.emit("room:join", map[string]any{"room": "one-too-many"})
			if err := c.nextObj("error"); err["code"] != "ROOM_LIMIT_EXCEEDED" {
				t.Fatalf("room limit: %v", err)
			}

			// Wrong types and shapes for every application event.
			for ev, code := range map[string]string{"client:event": "INVALID_EVENT_DATA", "client:message": "INVALID_MESSAGE_DATA", "client:action": "INVALID_ACTION_DATA"} {
				for _, bad := range []any{nil, 1, "x", []any{1, 2}, true, map[string]any{"type": 5, "action": 5, "content": 5}} {
					c.emit(ev, bad)
					if err := c.nextObj("error"); err["event"] != ev || err["code"] != code {
						t.Fatalf("%s %v: %v", ev, bad, err)
					}
				}
			}
			c.emit("client:message", map[string]any{"type": "chat"})
			err := c.nextObj("error")
			if err["message"] != "Invalid message data. Missing content." || err["code"] != "INVALID_MESSAGE_DATA" {
				t.Fatalf("missing content: %v", err)
			}
			var deep any = map[string]any{}
			for i := 0; i < 64; i++ {
				deep = map[string]any{"d": deep}
			}
			c.emit("client:event", map[string]any{"type": "x", "data": deep})
			if err := c.nextObj("error"); err["code"] != "INVALID_PAYLOAD" {
				t.Fatalf("deep payload: %v", err)
			}
			c.emit("no-such-event", 1)
			if err := c.nextObj("error"); err["code"] != "UNKNOWN_EVENT" {
				t.Fatalf("unknown event: %v", err)
			}
			// Still alive.
			if a := c.emitAck("ping", map[string]any{}); len(a) != 0 {
				t.Fatal(a)
			}
		})
	}
}

func TestApplicationEventsWithoutHandler(t *testing.T) {
	e := startServer(t, nil)
	c := e.connect("nohandler", transportSets["websocket"])
	for ev, reply := range map[string]string{"client:event": "server:response", "client:message": "message:ack", "client:action": "action:result"} {
		c.emit(ev, map[string]any{"type": "t", "content": "c", "action": "a"})
		r := c.nextObj(reply)
		if r["success"] != false || r["code"] != "NO_HANDLER" || r["requestId"] == nil || r["requestId"] == "" {
			t.Fatalf("%s: %v", ev, r)
		}
		if ev == "client:message" && r["messageId"] == nil {
			t.Fatalf("message ack without messageId: %v", r)
		}
	}
}

func TestPushBroadcastRoom(t *testing.T) {
	e := startServer(t, nil)
	for name, tr := range transportSets {
		t.Run(name, func(t *testing.T) {
			e := e.with(t) // the subtest fails and cleans up its own clients
			user := "bob-" + name
			a, b := e.connect(user, tr), e.connect(user, tr)
			other := e.connect("carol-"+name, tr)
			for _, c := range []*client{a, b} {
				c.emit("register", map[string]any{"userId": user})
				c.nextObj("register:ack")
			}
			st, res, _ := e.api("POST", "/api/push", map[string]any{"userId": user, "event": "note", "data": map[string]any{"n": 1}})
			if st != 200 || res["success"] != true || res["delivered"] != true || !isoTime(res["timestamp"]) {
				t.Fatalf("push: %d %v", st, res)
			}
			for _, c := range []*client{a, b} {
				if m := c.nextObj("note"); m["n"] != float64(1) {
					t.Fatalf("push data %v", m)
				}
			}
			other.none("note", 100*time.Millisecond)
			if _, res, _ := e.api("POST", "/api/push", map[string]any{"userId": "nobody", "event": "note", "data": map[string]any{}}); res["delivered"] != false {
				t.Fatalf("push to nobody: %v", res)
			}

			room := "room-" + name
			for _, c := range []*client{a, other} {
				c.emit("room:join", map[string]any{"room": room})
				c.nextObj("room:join:ack")
			}
			st, res, _ = e.api("POST", "/api/room", map[string]any{"room": room, "event": "news", "data": map[string]any{"x": "y"}})
			if st != 200 || res["recipients"] != float64(2) {
				t.Fatalf("room: %d %v", st, res)
			}
			a.nextObj("news")
			other.nextObj("news")
			b.none("news", 100*time.Millisecond)

			st, res, _ = e.api("POST", "/api/broadcast", map[string]any{"event": "all", "data": map[string]any{"z": true}})
			if st != 200 || res["recipients"].(float64) < 3 {
				t.Fatalf("broadcast: %d %v", st, res)
			}
			for _, c := range []*client{a, b, other} {
				c.nextObj("all")
			}
		})
	}
}

func TestStatusHealthMetrics(t *testing.T) {
	e := startServer(t, nil)
	c := e.connect("metric-user", transportSets["websocket"])
	c.emit("room:join", map[string]any{"room": "m"})
	c.nextObj("room:join:ack")
	c.emit("register", map[string]any{"userId": "metric-user"})
	c.nextObj("register:ack")

	st, res, h := e.api("GET", "/api/status", nil)
	if st != 200 || res["status"] != "ok" || res["connections"] != float64(1) || res["rooms"] != float64(1) || h.Get("X-Request-Id") == "" {
		t.Fatalf("status: %d %v", st, res)
	}
	mem, _ := res["memory"].(map[string]any)
	for _, k := range []string{"rss", "heapTotal", "heapUsed", "external"} {
		if v, ok := mem[k].(float64); !ok || v < 0 {
			t.Fatalf("memory.%s = %v", k, mem[k])
		}
	}
	req, _ := http.NewRequest("GET", e.url+"/health", nil)
	if st, res, _ := e.do(req); st != 200 || res["status"] != "ok" || !isoTime(res["timestamp"]) {
		t.Fatalf("health: %d %v", st, res)
	}
	req, _ = http.NewRequest("GET", e.url+"/api/status", nil)
	if st, res, h := e.do(req); st != 401 || res["code"] != "UNAUTHORIZED" || res["requestId"] != h.Get("X-Request-Id") {
		t.Fatalf("no key: %d %v", st, res)
	}
	req, _ = http.NewRequest("GET", e.url+"/no/such/route", nil)
	if st, res, _ := e.do(req); st != 404 || res["code"] != "NOT_FOUND" {
		t.Fatalf("unknown route: %d %v", st, res)
	}

	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	if g := fams["socket_server_active_connections"]; g == nil || g.Metric[0].GetGauge().GetValue() != 1 {
		t.Fatalf("active connections: %v", g)
	}
	ct := fams["socket_server_connections_total"]
	if ct == nil {
		t.Fatal("socket_server_connections_total missing")
	}
	found := false
	for _, m := range ct.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["authenticated"] == "true" && labels["transport"] == "websocket" && m.GetCounter().GetValue() >= 1 {
			found = true
		}
	}
	if !found {
		t.Fatalf("connections_total has no authenticated websocket count: %v", ct)
	}
	for _, name := range []string{"socket_server_rooms", "socket_server_registered_users", "socket_server_events_received_total",
		"socket_server_events_sent_total", "socket_server_http_requests_total", "socket_server_http_request_duration_seconds"} {
		if fams[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
}

func TestGoroutinesReturnAfterClientsLeave(t *testing.T) {
	e := startServer(t, nil)
	// Raw protocol clients: the count then shows the server's goroutines, not a client
	// library's.
	w := e.raw(t, "warm")
	w.close()
	time.Sleep(200 * time.Millisecond)
	base := runtime.NumGoroutine()
	var clients []*rawClient
	for i := 0; i < 50; i++ {
		c := e.raw(t, fmt.Sprintf("g%d", i))
		c.send(`42["room:join",{"room":"g"}]`)
		c.expect("room:join:ack")
		c.send(`42["client:event",{"type":"x"}]`)
		c.expect("server:response")
		clients = append(clients, c)
	}
	if n := runtime.NumGoroutine(); n > base+10 {
		t.Errorf("%d goroutines with 50 idle websockets, %d before: a goroutine per connection?", n, base)
	}
	for _, c := range clients {
		c.close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.srv.Hub().Stats().Connections > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.srv.Hub().Stats().Connections; n != 0 {
		t.Fatalf("%d connections left", n)
	}
	waitGoroutines(t, base)
}

// TestNodeClient runs the end-to-end suite of the official npm socket.io-client@4.
func TestNodeClient(t *testing.T) {
	node := nodetest.Node(t)
	dir := filepath.Join(moduleRoot(t), "core", "internal", "server", "testdata", "node")
	nodetest.Install(t, dir, filepath.Join("node_modules", "socket.io-client"))
	for _, withEcho := range []bool{false, true} {
		name := "no-plugins"
		if withEcho {
			name = "echo-plugin"
		}
		t.Run(name, func(t *testing.T) {
			pluginDir := t.TempDir()
			plugins := ""
			if withEcho {
				buildPlugin(t, "echo", pluginDir, "")
				plugins = "echo"
			}
			e := startServer(t, func(c *config.Config) { c.Plugins.Dir = pluginDir })
			nodetest.Run(t, node, dir, []string{"SERVER_URL=" + e.url, "JWT_SECRET=" + testSecret, "API_KEY=" + testAPIKey, "PLUGINS=" + plugins},
				"e2e.test.mjs", "recovery.test.mjs")
		})
	}
}
