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
	addr := redisAddr(t)
	nodes, _, prefix := startCluster(t, 1)
	b := startServer(t, func(c *config.Config) {
		c.Cluster.RedisURL = "redis://" + addr + "/0"
		c.Cluster.KeyPrefix = prefix
		c.Cluster.RequestTimeout = 300 * time.Millisecond
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
