package server_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/httpapi"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

// startClusterWith is startCluster with every node's configuration changed by mutate
// after the cluster settings are in.
func startClusterWith(t *testing.T, n int, mutate func(*config.Config)) ([]*env, string, string) {
	t.Helper()
	var mutates []func(*config.Config)
	if mutate != nil {
		mutates = append(mutates, mutate)
	}
	nodes, addr, prefix := startClusterAt(t, redistest.Addr(t), n, mutates...)
	t.Cleanup(func() { dropKeys(t, addr, prefix) })
	return nodes, addr, prefix
}

// dropKeys deletes the keys a test left under its own prefix (never anything else: the
// Redis is shared).
func dropKeys(t *testing.T, addr, prefix string) {
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The per-node keys carry the prefix as a hash tag (one Redis Cluster slot).
	for _, match := range []string{prefix + "-*", "{" + prefix + "}-*"} {
		iter := rc.Scan(ctx, 0, match, 100).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
	}
}

var pushBody = []byte(`{"userId":"nobody","event":"e","data":1}`)

// signedPush builds a v2-signed POST /api/push for e with the given nonce.
func signedPush(t *testing.T, e *env, nonce string) *http.Request {
	t.Helper()
	body := pushBody
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req, _ := http.NewRequest("POST", e.apiURL+"/api/push", bytes.NewReader(body))
	req.Header.Set("X-API-Key", testAPIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Timestamp", ts)
	req.Header.Set("X-Request-Nonce", nonce)
	req.Header.Set("X-Signature-Version", "v2")
	req.Header.Set("X-Signature", httpapi.Sign(testAPIKey, "v2", "POST", "/api/push", ts, nonce, body))
	return req
}

// TestClusterNonceReplayOnAnotherNode: a signed request accepted by node A and replayed to
// node B is refused there with NONCE_REUSED, and so is a replay to A itself.
func TestClusterNonceReplayOnAnotherNode(t *testing.T) {
	nodes, _, _ := startClusterWith(t, 2, nil)
	a, b := nodes[0], nodes[1]
	req := signedPush(t, a, "n-"+t.Name())
	replay, _ := http.NewRequest("POST", b.apiURL+"/api/push", bytes.NewReader(pushBody))
	replay.Header = req.Header.Clone()
	replayA, _ := http.NewRequest("POST", a.apiURL+"/api/push", bytes.NewReader(pushBody))
	replayA.Header = req.Header.Clone()
	if st, body, _ := a.do(req); st != 200 {
		t.Fatalf("first: %d %v", st, body)
	}
	if st, body, _ := a.do(replayA); st != 401 || body["code"] != "NONCE_REUSED" {
		t.Fatalf("replay on A: %d %v", st, body)
	}
	st, body, _ := b.do(replay)
	if st != 401 || body["code"] != "NONCE_REUSED" {
		t.Fatalf("replay on B: %d %v", st, body)
	}
	// A fresh nonce is fine on B.
	if st, body, _ := b.do(signedPush(t, b, "n2-"+t.Name())); st != 200 {
		t.Fatalf("fresh on B: %d %v", st, body)
	}
}

// TestClusterHTTPLimitsAcrossNodes: the per-key request budget and the failed-auth budget
// are spent by requests to any node.
func TestClusterHTTPLimitsAcrossNodes(t *testing.T) {
	nodes, _, _ := startClusterWith(t, 2, func(c *config.Config) {
		c.RateLimit.HTTPRequestsPerMinute = 4
		c.RateLimit.HTTPFailedAuthPerMinute = 3
	})
	a, b := nodes[0], nodes[1]
	for i, n := range []*env{a, b, a, b} {
		if st, body, _ := n.api("GET", "/api/status", nil); st != 200 {
			t.Fatalf("request %d: %d %v", i, st, body)
		}
	}
	for _, n := range []*env{a, b} {
		st, body, h := n.api("GET", "/api/status", nil)
		if st != 429 || body["code"] != "RATE_LIMITED" || h.Get("Retry-After") == "" {
			t.Fatalf("over budget: %d %v %v", st, body, h)
		}
	}

	badKey := func(n *env) (int, map[string]any) {
		req, _ := http.NewRequest("GET", n.apiURL+"/api/status", nil)
		req.Header.Set("X-API-Key", "wrong")
		st, body, _ := n.do(req)
		return st, body
	}
	for i, n := range []*env{a, b, a} {
		if st, body := badKey(n); st != 401 {
			t.Fatalf("bad key %d: %d %v", i, st, body)
		}
	}
	if st, body := badKey(b); st != 429 || body["code"] != "RATE_LIMITED" {
		t.Fatalf("failed auth over budget on B: %d %v", st, body)
	}
}

// dialWS opens an Engine.IO websocket to e and returns the handshake's status and body
// when it is refused.
func dialWS(t *testing.T, e *env) (*websocket.Conn, int, string) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(e.url, "http") + "/socket.io/?EIO=4&transport=websocket"
	ws, res, err := websocket.DefaultDialer.Dial(u, nil)
	if err == nil {
		t.Cleanup(func() { ws.Close() })
		// The session exists once the open packet arrives.
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, f, err := ws.ReadMessage(); err != nil || !bytes.HasPrefix(f, []byte("0{")) {
			t.Fatalf("open: %q %v", f, err)
		}
		return ws, 101, ""
	}
	if res == nil {
		t.Fatalf("dial: %v", err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	return nil, res.StatusCode, buf.String()
}

// TestClusterPerIPAcrossNodes: max_connections_per_ip counts this address's sessions on
// every node; closing one on another node makes room again.
func TestClusterPerIPAcrossNodes(t *testing.T) {
	nodes, _, _ := startClusterWith(t, 2, func(c *config.Config) {
		c.SocketIO.MaxConnectionsPerIP = 2
	})
	a, b := nodes[0], nodes[1]
	if _, st, body := dialWS(t, a); st != 101 {
		t.Fatalf("first on A: %d %s", st, body)
	}
	wsB, st, body := dialWS(t, b)
	if st != 101 {
		t.Fatalf("first on B: %d %s", st, body)
	}
	_, st, body = dialWS(t, a)
	if st != 403 || !strings.Contains(body, `"code":"TOO_MANY_CONNECTIONS_PER_IP"`) {
		t.Fatalf("third on A: %d %s", st, body)
	}
	wsB.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ws, st, body := dialWS(t, a)
		if st == 101 {
			ws.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after B's socket closed: %d %s", st, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterConnectionRateAcrossNodes: the connections-per-minute budget of an address is
// spent on any node.
func TestClusterConnectionRateAcrossNodes(t *testing.T) {
	nodes, _, _ := startClusterWith(t, 2, func(c *config.Config) {
		c.RateLimit.WSConnectionsPerMinute = 3
	})
	a, b := nodes[0], nodes[1]
	for i, n := range []*env{a, b, a} {
		if _, st, body := dialWS(t, n); st != 101 {
			t.Fatalf("handshake %d: %d %s", i, st, body)
		}
	}
	if _, st, body := dialWS(t, b); st != 429 || !strings.Contains(body, `"code":"RATE_LIMITED"`) {
		t.Fatalf("fourth on B: %d %s", st, body)
	}
}

// TestClusterDeadNodeCountsExpire: connections counted by a node that stopped without a
// word (its heartbeat's expiry written by hand, as a SIGKILLed node leaves it) stop
// counting once that expiry passes.
func TestClusterDeadNodeCountsExpire(t *testing.T) {
	nodes, addr, prefix := startClusterWith(t, 1, func(c *config.Config) {
		c.SocketIO.MaxConnectionsPerIP = 2
	})
	a := nodes[0]
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now, err := rc.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	ghost := "ghost0000000"
	if err := rc.ZAdd(ctx, "{"+prefix+"}-nodes", redis.Z{Score: float64(now.Add(1500 * time.Millisecond).UnixMilli()), Member: ghost}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.HSet(ctx, "{"+prefix+"}-conns#"+ghost, "127.0.0.1", 2).Err(); err != nil {
		t.Fatal(err)
	}
	if _, st, body := dialWS(t, a); st != 403 || !strings.Contains(body, "TOO_MANY_CONNECTIONS_PER_IP") {
		t.Fatalf("while the ghost lives: %d %s", st, body)
	}
	time.Sleep(time.Until(now.Add(1600 * time.Millisecond)))
	if _, st, body := dialWS(t, a); st != 101 {
		t.Fatalf("after the ghost expired: %d %s", st, body)
	}
}

// TestClusterLimitsWithoutRedis: a node whose Redis does not answer keeps its own nonce
// store and limits: a replay to it is refused, its API budget holds, and each decision
// made alone is counted; /health says degraded.
func TestClusterLimitsWithoutRedis(t *testing.T) {
	dead := redistest.DeadAddr(t) // nothing listens there
	e := startServer(t, func(c *config.Config) {
		c.Cluster.RedisURL = "redis://" + dead + "/0"
		c.Cluster.ConnectTimeout = 300 * time.Millisecond
		c.RateLimit.HTTPRequestsPerMinute = 3
	})
	req := signedPush(t, e, "n-"+t.Name())
	replay, _ := http.NewRequest("POST", e.apiURL+"/api/push", bytes.NewReader(pushBody))
	replay.Header = req.Header.Clone()
	if st, body, _ := e.do(req); st != 200 {
		t.Fatalf("first: %d %v", st, body)
	}
	if st, body, _ := e.do(replay); st != 401 || body["code"] != "NONCE_REUSED" {
		t.Fatalf("replay: %d %v", st, body)
	}
	if st, body, _ := e.api("GET", "/api/status", nil); st != 200 {
		t.Fatalf("third: %d %v", st, body)
	}
	if st, body, _ := e.api("GET", "/api/status", nil); st != 429 || body["code"] != "RATE_LIMITED" {
		t.Fatalf("over budget: %d %v", st, body)
	}
	m := scrapeMetrics(t, e)
	if n := m[`socket_server_cluster_fallbacks_total{store="nonce"}`]; n < 1 {
		t.Errorf("nonce fallbacks = %v", n)
	}
	if n := m[`socket_server_cluster_fallbacks_total{store="rate"}`]; n < 1 {
		t.Errorf("rate fallbacks = %v", n)
	}
	if st, body, _ := e.api("GET", "/health", nil); st != 200 || body["status"] != "degraded" {
		t.Errorf("health: %d %v", st, body)
	}
}
