package server_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

// startCluster runs n nodes joined through Redis under a key prefix of their own, so tests
// running side by side do not hear each other.
func startCluster(t *testing.T, n int) ([]*env, string, string) {
	t.Helper()
	return startClusterAt(t, redistest.Addr(t), n)
}

// recoveryOffset is the last argument connection state recovery adds to a broadcast.
var recoveryOffset = regexp.MustCompile(`,"[A-Za-z0-9_-]+-[0-9a-z]+"\]$`)

// nextEvent returns the next EVENT frame, without its recovery offset.
func (c *rawClient) nextEvent() string {
	c.t.Helper()
	for i := 0; i < 100; i++ {
		if f := c.read(); strings.HasPrefix(f, "42") {
			return recoveryOffset.ReplaceAllString(f, "]")
		}
	}
	c.t.Fatal("no event")
	return ""
}

// member connects userID to node e, registers it and puts it in rooms.
func member(t *testing.T, e *env, userID string, rooms ...string) *rawClient {
	t.Helper()
	c := e.raw(t, userID)
	c.send(`42["register",{"userId":"` + userID + `"}]`)
	if ack := c.expect("register:ack"); !strings.Contains(ack, `"success":true`) {
		t.Fatalf("register %s: %s", userID, ack)
	}
	for _, r := range rooms {
		c.send(`42["room:join",{"room":"` + r + `"}]`)
		if ack := c.expect("room:join:ack"); !strings.Contains(ack, `"success":true`) {
			t.Fatalf("join %s: %s", r, ack)
		}
	}
	return c
}

// TestClusterDelivery: push, room messages and broadcasts sent through one node reach the
// matching sockets on the other nodes exactly once, and no others. After each send a fence
// broadcast goes out through each client's own node: the next event a client reads must be
// the expected one and then the fence, so a duplicate or a stray delivery shows.
func TestClusterDelivery(t *testing.T) {
	nodes, _, _ := startCluster(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	carol := member(t, a, "carol")          // on the sending node, in no room
	alice := member(t, b, "alice", "lobby") // another node, in the room
	bob := member(t, c, "bob")              // a third node, in no room

	fence := func(name string) {
		t.Helper()
		for _, n := range nodes {
			if st, body, _ := n.api("POST", "/api/broadcast", map[string]any{"event": name}); st != 200 {
				t.Fatalf("fence: %d %v", st, body)
			}
		}
	}
	// Each node's fence reaches every client once, its own node's first or not: read the
	// three fences in any order.
	fenced := func(cl *rawClient, name string) {
		t.Helper()
		for i := 0; i < len(nodes); i++ {
			if f := cl.nextEvent(); f != `42["`+name+`",null]` {
				t.Fatalf("want fence %s, got %s", name, f)
			}
		}
	}

	// A room message through A reaches alice on B once, and A counts her.
	st, body, _ := a.api("POST", "/api/room", map[string]any{"room": "lobby", "event": "r1", "data": map[string]any{"x": 1, "s": "é"}})
	if st != 200 || body["recipients"] != 1.0 || body["partial"] != nil {
		t.Fatalf("room: %d %v", st, body)
	}
	fence("f1")
	if f := alice.nextEvent(); f != `42["r1",{"s":"é","x":1}]` {
		t.Fatalf("alice got %s", f)
	}
	fenced(alice, "f1")
	fenced(bob, "f1")
	fenced(carol, "f1")

	// A broadcast through A reaches everyone once, on every node.
	st, body, _ = a.api("POST", "/api/broadcast", map[string]any{"event": "all", "data": []any{1.5, true, nil}})
	if st != 200 || body["recipients"] != 3.0 || body["partial"] != nil {
		t.Fatalf("broadcast: %d %v", st, body)
	}
	fence("f2")
	for _, cl := range []*rawClient{alice, bob, carol} {
		if f := cl.nextEvent(); f != `42["all",[1.5,true,null]]` {
			t.Fatalf("got %s", f)
		}
		fenced(cl, "f2")
	}

	// A push through A reaches bob's socket on C once, and "delivered" says so.
	st, body, _ = a.api("POST", "/api/push", map[string]any{"userId": "bob", "event": "p1", "data": "hi"})
	if st != 200 || body["delivered"] != true || body["partial"] != nil {
		t.Fatalf("push: %d %v", st, body)
	}
	fence("f3")
	if f := bob.nextEvent(); f != `42["p1","hi"]` {
		t.Fatalf("bob got %s", f)
	}
	for _, cl := range []*rawClient{alice, bob, carol} {
		fenced(cl, "f3")
	}
}

// TestClusterEmitterWire: a broadcast published by hand in the layout of
// @socket.io/redis-emitter (uid "emitter", the room's own channel, several arguments)
// reaches the room's sockets with all its arguments.
func TestClusterEmitterWire(t *testing.T) {
	nodes, addr, prefix := startCluster(t, 2)
	alice := member(t, nodes[1], "alice", "lobby")
	bob := member(t, nodes[0], "bob")

	msg, err := msgpack.Marshal([]any{
		"emitter",
		map[string]any{"type": 2, "data": []any{"news", "a", 2, map[string]any{"k": []any{true}}}, "nsp": "/"},
		map[string]any{"rooms": []string{"lobby"}, "flags": map[string]any{}, "except": []string{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rc.Publish(ctx, prefix+"#/#lobby#", msg).Err(); err != nil {
		t.Fatal(err)
	}
	if f := alice.nextEvent(); f != `42["news","a",2,{"k":[true]}]` {
		t.Fatalf("alice got %s", f)
	}
	// bob, in no room, gets the fence and nothing before it.
	if st, _, _ := nodes[0].api("POST", "/api/broadcast", map[string]any{"event": "fence"}); st != 200 {
		t.Fatal("fence")
	}
	if f := bob.nextEvent(); f != `42["fence",null]` {
		t.Fatalf("bob got %s", f)
	}
}

// TestClusterRedisDown: a node whose Redis does not answer at start still starts, serves
// its own sockets, and says so in its metrics.
func TestClusterRedisDown(t *testing.T) {
	dead := redistest.DeadAddr(t) // nothing listens there
	e := startServer(t, func(c *config.Config) {
		c.Cluster.RedisURL = "redis://" + dead + "/0"
		c.Cluster.ConnectTimeout = 300 * time.Millisecond
	})
	alice := member(t, e, "alice", "lobby")
	st, body, _ := e.api("POST", "/api/room", map[string]any{"room": "lobby", "event": "local", "data": 1})
	if st != 200 || body["recipients"] != 1.0 {
		t.Fatalf("room: %d %v", st, body)
	}
	if f := alice.nextEvent(); f != `42["local",1]` {
		t.Fatalf("alice got %s", f)
	}
	m := scrapeMetrics(t, e)
	if up, ok := m["socket_server_cluster_redis_up"]; !ok || up != 0 {
		t.Errorf("redis_up = %v (present %v), want 0", up, ok)
	}
	if n := m[`socket_server_cluster_messages_total{result="publish_failed"}`]; n != 1 {
		t.Errorf("publish_failed = %v, want 1", n)
	}
}

// TestClusterRedisComesBack: a node that loses Redis keeps serving its own sockets, reports
// itself down, and once Redis answers again resubscribes and delivers other nodes'
// broadcasts and publishes its own.
func TestClusterRedisComesBack(t *testing.T) {
	addr := redistest.Addr(t)
	nodes, _, prefix := startCluster(t, 1)
	a := nodes[0]
	proxy := newCutProxy(t, addr)
	b := startServer(t, func(c *config.Config) {
		c.Cluster.RedisURL = "redis://" + proxy.addr() + "/0"
		c.Cluster.KeyPrefix = prefix
		c.Cluster.ConnectTimeout = time.Second
	})
	alice := member(t, b, "alice", "lobby")
	bob := member(t, a, "bob", "lobby")

	proxy.cut()
	// B's own sockets are still served, and B knows Redis is gone once it tries to publish.
	if st, body, _ := b.api("POST", "/api/room", map[string]any{"room": "lobby", "event": "alone"}); st != 200 || body["recipients"] != 1.0 {
		t.Fatalf("room on B while down: %d %v", st, body)
	}
	if f := alice.nextEvent(); f != `42["alone",null]` {
		t.Fatalf("alice got %s", f)
	}
	if up := scrapeMetrics(t, b)["socket_server_cluster_redis_up"]; up != 0 {
		t.Fatalf("redis_up = %v while cut", up)
	}

	proxy.restore()
	deadline := time.Now().Add(15 * time.Second)
	for scrapeMetrics(t, b)["socket_server_cluster_redis_up"] != 1 {
		if time.Now().After(deadline) {
			t.Fatal("B did not resubscribe within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Both directions work again.
	if st, _, _ := a.api("POST", "/api/room", map[string]any{"room": "lobby", "event": "from-a"}); st != 200 {
		t.Fatal("room on A")
	}
	if f := alice.nextEvent(); f != `42["from-a",null]` {
		t.Fatalf("alice got %s", f)
	}
	if f := bob.nextEvent(); f != `42["from-a",null]` {
		t.Fatalf("bob got %s", f)
	}
	if st, _, _ := b.api("POST", "/api/room", map[string]any{"room": "lobby", "event": "from-b"}); st != 200 {
		t.Fatal("room on B")
	}
	if f := bob.nextEvent(); f != `42["from-b",null]` {
		t.Fatalf("bob got %s", f)
	}
}
