package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

var welcomeSID = regexp.MustCompile(`"socketId":"([^"]+)"`)

// memberWithID is member, also returning the socket's id.
func memberWithID(t *testing.T, e *env, userID string) (*rawClient, string) {
	t.Helper()
	c, reply := e.rawAuth(t, `{"token":"`+token(t, userID)+`"}`)
	if !strings.HasPrefix(reply, `40{"sid"`) {
		t.Fatalf("connect reply %q", reply)
	}
	m := welcomeSID.FindStringSubmatch(c.expect("system:welcome"))
	if m == nil {
		t.Fatal("no socket id in the welcome")
	}
	c.send(`42["register",{"userId":"` + userID + `"}]`)
	if ack := c.expect("register:ack"); !strings.Contains(ack, `"success":true`) {
		t.Fatalf("register %s: %s", userID, ack)
	}
	return c, m[1]
}

// TestClusterRemoteSocket: the plugin host services of one node join, leave, list and
// disconnect a socket another node holds (REMOTE_FETCH, REMOTE_JOIN, REMOTE_LEAVE,
// REMOTE_DISCONNECT requests); an id no node holds is ErrUnknownSocket as soon as every
// node said so.
func TestClusterRemoteSocket(t *testing.T) {
	nodes, _, _ := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	dave, id := memberWithID(t, b, "dave")
	host := a.srv.Hub().PluginHost()
	ctx := context.Background()

	if err := host.JoinRoom(ctx, id, "stage"); err != nil {
		t.Fatalf("join through A: %v", err)
	}
	st, body, _ := a.api("POST", "/api/room", map[string]any{"room": "stage", "event": "cue", "data": 1})
	if st != 200 || body["recipients"] != 1.0 {
		t.Fatalf("room after a remote join: %d %v", st, body)
	}
	if f := dave.nextEvent(); f != `42["cue",1]` {
		t.Fatalf("dave got %s", f)
	}
	if err := host.LeaveRoom(ctx, id, "stage"); err != nil {
		t.Fatalf("leave through A: %v", err)
	}
	st, body, _ = a.api("POST", "/api/room", map[string]any{"room": "stage", "event": "cue", "data": 2})
	if st != 200 || body["recipients"] != 0.0 {
		t.Fatalf("room after a remote leave: %d %v", st, body)
	}

	start := time.Now()
	err := host.JoinRoom(ctx, "no-such-socket", "stage")
	if !errors.Is(err, hub.ErrUnknownSocket) {
		t.Fatalf("join of an unknown socket: %v", err)
	}
	// Every other node answered "unknown": no wait for the request timeout (2s).
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Logf("unknown socket took %v (slow machine?)", d)
	}

	if err := host.DisconnectSocket(ctx, id); err != nil {
		t.Fatalf("disconnect through A: %v", err)
	}
	for i := 0; ; i++ {
		f := dave.read()
		if strings.HasPrefix(f, "41") {
			break
		}
		if i > 50 {
			t.Fatalf("no DISCONNECT, last frame %q", f)
		}
	}
}

// TestClusterCountsPartial: a node that never answers (a raw subscriber of the request
// channel, so PUBSUB NUMSUB counts it) does not hang the API: counts come back after the
// request timeout with the nodes that answered, marked partial; /api/status shows the
// cluster and says it is partial too.
func TestClusterCountsPartial(t *testing.T) {
	addr := redistest.Addr(t)
	nodes, _, prefix := startCluster(t, 1)
	b := startServer(t, func(c *config.Config) {
		c.Cluster.RedisURL = "redis://" + addr + "/0"
		c.Cluster.KeyPrefix = prefix
		// Long enough that a node answering on a loaded machine is never taken for a
		// silent one; the silent node below costs this much per call.
		c.Cluster.RequestTimeout = 2 * time.Second
	})
	a := nodes[0]
	member(t, a, "erin", "hall")
	member(t, b, "frank", "hall")

	// Two nodes that answer: complete counts.
	st, body, _ := b.api("POST", "/api/room", map[string]any{"room": "hall", "event": "x"})
	if st != 200 || body["recipients"] != 2.0 || body["partial"] != nil {
		t.Fatalf("room: %d %v", st, body)
	}
	st, body, _ = b.api("GET", "/api/status", nil)
	cl, _ := body["cluster"].(map[string]any)
	if st != 200 || cl["nodes"] != 2.0 || cl["connections"] != 2.0 || cl["rooms"] != 1.0 || cl["partial"] != nil ||
		body["connections"] != 1.0 {
		t.Fatalf("status: %d %v", st, body)
	}

	// A third "node" that hears requests and never answers.
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ps := rc.Subscribe(context.Background(), prefix+"-request#/#")
	defer ps.Close()
	if _, err := ps.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, body, _ = b.api("POST", "/api/room", map[string]any{"room": "hall", "event": "x"})
	if st != 200 || body["recipients"] != 2.0 || body["partial"] != true {
		t.Fatalf("room with a silent node: %d %v", st, body)
	}
	st, body, _ = b.api("POST", "/api/push", map[string]any{"userId": "erin", "event": "x"})
	if st != 200 || body["delivered"] != true || body["partial"] != true {
		t.Fatalf("push with a silent node: %d %v", st, body)
	}
	st, body, _ = b.api("GET", "/api/status", nil)
	cl, _ = body["cluster"].(map[string]any)
	if st != 200 || cl["nodes"] != 3.0 || cl["connections"] != 2.0 || cl["partial"] != true {
		t.Fatalf("status with a silent node: %d %v", st, body)
	}
	// The silent node saw the requests as JSON with numbered types.
	seen := map[float64]bool{}
	for len(seen) < 2 {
		m, err := ps.ReceiveTimeout(context.Background(), 2*time.Second)
		if err != nil {
			t.Fatalf("requests seen %v: %v", seen, err)
		}
		if msg, ok := m.(*redis.Message); ok {
			var r map[string]any
			if err := json.Unmarshal([]byte(msg.Payload), &r); err != nil {
				t.Fatalf("request %q: %v", msg.Payload, err)
			}
			seen[r["type"].(float64)] = true
		}
	}
	if !seen[0] || !seen[1] {
		t.Fatalf("want SOCKETS (0) and ALL_ROOMS (1) requests, saw %v", seen)
	}
}

// TestClusterRequestsFromRedis: requests published by hand in the Node.js adapter's layout
// are answered on the requester's response channel; malformed and oversized ones are
// counted and ignored, and the node goes on answering.
func TestClusterRequestsFromRedis(t *testing.T) {
	nodes, addr, prefix := startCluster(t, 1)
	a := nodes[0]
	_, id := memberWithID(t, a, "gina")
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ps := rc.Subscribe(ctx, prefix+"-response#/#tester#")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	req := prefix + "-request#/#"
	publish := func(payload string) {
		t.Helper()
		if err := rc.Publish(ctx, req, payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	answer := func() map[string]any {
		t.Helper()
		m, err := ps.ReceiveTimeout(ctx, 3*time.Second)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(m.(*redis.Message).Payload), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	publish("{not json")
	publish(`{"uid":"tester","requestId":"` + strings.Repeat("x", 200) + `","type":0}`)
	publish(`{"uid":"tester","requestId":"r0","type":0,"rooms":` + strings.Repeat("[", 1) + strings.Repeat(`"r",`, 5000) + `"r"]}`)
	publish(strings.Repeat(" ", 2<<20))
	publish(`{"uid":"tester","requestId":"r1","type":0}`)
	if r := answer(); r["requestId"] != "r1" || len(r["sockets"].([]any)) != 1 || r["sockets"].([]any)[0] != id {
		t.Fatalf("SOCKETS answer %v", r)
	}
	publish(`{"uid":"tester","requestId":"r2","type":5,"opts":{"rooms":["` + id + `"],"except":[]}}`)
	r := answer()
	list, _ := r["sockets"].([]any)
	if r["requestId"] != "r2" || len(list) != 1 {
		t.Fatalf("REMOTE_FETCH answer %v", r)
	}
	if s := list[0].(map[string]any); s["id"] != id || s["handshake"] == nil {
		t.Fatalf("fetched socket %v", s)
	}
	// Requests are handled concurrently: the malformed count may trail the answers a bit.
	m := scrapeMetrics(t, a)
	for deadline := time.Now().Add(3 * time.Second); m[`socket_server_cluster_requests_total{result="malformed"}`] < 3 &&
		time.Now().Before(deadline); m = scrapeMetrics(t, a) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := m[`socket_server_cluster_requests_total{result="malformed"}`]; n != 3 {
		t.Fatalf("malformed requests counted %v, want 3", n)
	}
	if n := m[`socket_server_cluster_requests_total{result="too_large"}`]; n != 1 {
		t.Fatalf("oversized requests counted %v, want 1", n)
	}
}

// TestClusterPluginJoinsRemoteSocket: a real plugin process on node A joins a socket held
// by node B to a room through the host services; a room message then reaches it, and a
// socket no node holds is reported unknown to the plugin.
func TestClusterPluginJoinsRemoteSocket(t *testing.T) {
	addr := redistest.Addr(t)
	_, _, prefix := startCluster(t, 0) // a key prefix of this test's own
	dir := t.TempDir()
	buildPlugin(t, "core/internal/pluginhost/testdata/testplugin", dir, "")
	a := startServer(t, func(c *config.Config) {
		c.Plugins.Dir = dir
		c.Cluster.RedisURL = "redis://" + addr + "/0"
		c.Cluster.KeyPrefix = prefix
	})
	b := startServer(t, func(c *config.Config) {
		c.Cluster.RedisURL = "redis://" + addr + "/0"
		c.Cluster.KeyPrefix = prefix
	})
	caller := a.raw(t, "caller")
	hana, id := memberWithID(t, b, "hana")

	caller.send(`42["client:event",{"type":"t","data":{"join":{"socket":"` + id + `","room":"band"}}}]`)
	if r := caller.expect("server:response"); !strings.Contains(r, `"ok":true`) {
		t.Fatalf("plugin join of a socket on B: %s", r)
	}
	st, body, _ := a.api("POST", "/api/room", map[string]any{"room": "band", "event": "tune", "data": "la"})
	if st != 200 || body["recipients"] != 1.0 {
		t.Fatalf("room: %d %v", st, body)
	}
	if f := hana.nextEvent(); f != `42["tune","la"]` {
		t.Fatalf("hana got %s", f)
	}
	caller.send(`42["client:event",{"type":"t","data":{"join":{"socket":"nobody","room":"band"}}}]`)
	if r := caller.expect("server:response"); !strings.Contains(r, `"unknown_socket":true`) {
		t.Fatalf("plugin join of an unknown socket: %s", r)
	}
}

// TestClusterReservedRoom: a client may not join a room named after a socket of another
// node (it would hear what is sent to that socket); other rooms join as before.
func TestClusterReservedRoom(t *testing.T) {
	nodes, _, _ := startCluster(t, 2)
	_, id := memberWithID(t, nodes[1], "ivy")
	c := member(t, nodes[0], "jack", "plain-room")
	c.send(`42["room:join",{"room":"` + id + `"}]`)
	if f := c.expect("error"); !strings.Contains(f, "reserved") {
		t.Fatalf("join of another node's socket room: %s", f)
	}
}
