package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/httpapi"
)

// sharedRedis returns REDIS_ADDR (or the default), skipping the test when nothing answers
// there unless REQUIRE_REDIS=1.
func sharedRedis(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		if os.Getenv("REQUIRE_REDIS") == "1" {
			t.Fatalf("Redis at %s is required (REQUIRE_REDIS=1) but unreachable: %v", addr, err)
		}
		t.Skipf("no Redis at %s: %v", addr, err)
	}
	c.Close()
	return addr
}

// startNode3 is startNode with room for the test's sockets: the per-IP connection limit
// and the per-key API budget are cluster-wide, and every socket here comes from one IP and
// every request uses one key.
func startNode3(t *testing.T, redisAddr, prefix string) *node {
	t.Helper()
	cfg := writeConfig(t, fmt.Sprintf(`
environment = "test"
server {
  host = "127.0.0.1"
  port = 0
}
auth { jwt_secret = %q }
api {
  key "default" {
    secret = %q
    scopes = ["*"]
  }
}
rate_limit {
  http_requests_per_minute  = 0
  ws_connections_per_minute = 0
}
plugins { dir = %q }
cluster {
  redis_url       = "redis://%s/0"
  key_prefix      = %q
  node_ttl        = "3s"
  request_timeout = "10s" # a loaded test machine must not turn an answer partial
}
`, faultJWTSecret, faultAPIKey, t.TempDir(), redisAddr, prefix))
	cmd, addr, logs := start(t, cfg)
	return &node{t: t, cmd: cmd, url: "http://" + addr, logs: logs}
}

// clusterView is /api/status's cluster object.
func (n *node) clusterView() map[string]any {
	n.t.Helper()
	st, m := n.api("GET", "/api/status", nil)
	if st != 200 {
		n.t.Fatalf("/api/status: %d %v", st, m)
	}
	cl, _ := m["cluster"].(map[string]any)
	if cl == nil {
		n.t.Fatalf("/api/status has no cluster: %v", m)
	}
	return cl
}

// waitNodes polls /api/status until the cluster view shows want nodes, all answering.
func (n *node) waitNodes(want int) map[string]any {
	n.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cl := n.clusterView()
		if cl["nodes"] == float64(want) && cl["partial"] == nil {
			return cl
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("cluster view stays %v, want %d nodes answering\n%s", cl, want, n.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mustPost sends an API request that must answer 200 and returns the answer.
func (n *node) mustPost(path string, body map[string]any) map[string]any {
	n.t.Helper()
	st, m := n.api("POST", path, body)
	if st != 200 || m["success"] != true {
		n.t.Fatalf("POST %s %v: %d %v", path, body, st, m)
	}
	return m
}

// drain reads s's events up to and including fence and counts them by name. The fence is
// sent by the node that sent the events counted, after them: Redis delivers one
// publisher's messages in order, so anything sent twice would show before it.
func (s *sock) drain(fence string) map[string]int {
	s.t.Helper()
	got := map[string]int{}
	for i := 0; i < 1000; i++ {
		f := s.read()
		if !strings.HasPrefix(f, "42") {
			s.t.Fatalf("unexpected frame %q before %q", f, fence)
		}
		var args []json.RawMessage
		if err := json.Unmarshal([]byte(f[2:]), &args); err != nil || len(args) == 0 {
			s.t.Fatalf("bad event %q: %v", f, err)
		}
		var name string
		_ = json.Unmarshal(args[0], &name)
		got[name]++
		if name == fence {
			return got
		}
	}
	s.t.Fatalf("no %q", fence)
	return nil
}

// eventArgs decodes an EVENT frame's arguments.
func eventArgs(t *testing.T, f string) []json.RawMessage {
	t.Helper()
	var args []json.RawMessage
	if !strings.HasPrefix(f, "42") || json.Unmarshal([]byte(f[2:]), &args) != nil {
		t.Fatalf("not an event: %q", f)
	}
	return args
}

// checkCounts compares what each socket received with what it should have, exactly.
func checkCounts(t *testing.T, phase string, socks map[string]*sock, want map[string]map[string]int, fence string) {
	t.Helper()
	for name, s := range socks {
		got := s.drain(fence)
		w := want[name]
		w[fence] = 1
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s: %s received %v, want %v", phase, name, got, w)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// TestClusterThreeNodes runs three nodes as processes on the shared Redis (a prefix of the
// test's own) with sockets on each, and checks with exact counts that push, room, broadcast
// and the status view cover the whole cluster; that a client of a SIGKILLed node recovers
// its session and missed event on another node; that a signed request cannot be replayed
// on another node; and that the two nodes left keep delivering with exact counts once the
// dead one has left the request channel.
func TestClusterThreeNodes(t *testing.T) {
	addr := sharedRedis(t)
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	prefix := "rt-three-" + hex.EncodeToString(rb[:])
	rc := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		it := rc.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for it.Next(ctx) {
			rc.Del(ctx, it.Val())
		}
		rc.Close()
	})

	n1 := startNode3(t, addr, prefix)
	n2 := startNode3(t, addr, prefix)
	n3 := startNode3(t, addr, prefix)
	for _, n := range []*node{n1, n2, n3} {
		n.waitHealth("ok")
	}
	for _, n := range []*node{n1, n2, n3} {
		n.waitNodes(3)
	}

	// alice on nodes 1 and 2; room hall on all three nodes; room side on 2 and 3.
	socks := map[string]*sock{
		"alice1": n1.member("alice", "hall"),
		"carol":  n1.member("carol", "hall"),
		"alice2": n2.member("alice", "hall"),
		"dave":   n2.member("dave", "side"),
		"erin":   n3.member("erin", "hall"),
		"frank":  n3.member("frank", "side"),
	}

	// Push, room and broadcast, all through node 3 (which holds none of alice's sockets),
	// then a fence from node 3.
	if m := n3.mustPost("/api/push", map[string]any{"userId": "alice", "event": "p1", "data": 1}); m["delivered"] != true || m["partial"] != nil {
		t.Fatalf("push: %v", m)
	}
	if m := n3.mustPost("/api/room", map[string]any{"room": "hall", "event": "r1"}); m["recipients"] != 4.0 || m["partial"] != nil {
		t.Fatalf("room hall: %v", m)
	}
	if m := n3.mustPost("/api/broadcast", map[string]any{"event": "b1"}); m["recipients"] != 6.0 || m["partial"] != nil {
		t.Fatalf("broadcast: %v", m)
	}
	if m := n3.mustPost("/api/broadcast", map[string]any{"event": "fence1"}); m["recipients"] != 6.0 || m["partial"] != nil {
		t.Fatalf("fence: %v", m)
	}
	checkCounts(t, "three nodes", socks, map[string]map[string]int{
		"alice1": {"p1": 1, "r1": 1, "b1": 1},
		"alice2": {"p1": 1, "r1": 1, "b1": 1},
		"carol":  {"r1": 1, "b1": 1},
		"erin":   {"r1": 1, "b1": 1},
		"dave":   {"b1": 1},
		"frank":  {"b1": 1},
	}, "fence1")

	// The status view: three nodes, six sockets, two rooms (own rooms and user groups left out).
	for _, n := range []*node{n1, n2, n3} {
		cl := n.clusterView()
		if cl["nodes"] != 3.0 || cl["connections"] != 6.0 || cl["rooms"] != 2.0 || cl["partial"] != nil {
			t.Fatalf("%s cluster view: %v", n.url, cl)
		}
	}

	// A signed request accepted by node 1 is refused on node 2 as a replay.
	body := []byte(`{"userId":"nobody","event":"signed"}`)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	nonce := "three-" + hex.EncodeToString(rb[:])
	signed := func(n *node) (int, map[string]any) {
		req, _ := http.NewRequest("POST", n.url+"/api/push", strings.NewReader(string(body)))
		req.Header.Set("X-API-Key", faultAPIKey)
		req.Header.Set("X-Request-Timestamp", ts)
		req.Header.Set("X-Request-Nonce", nonce)
		req.Header.Set("X-Signature-Version", "v2")
		req.Header.Set("X-Signature", httpapi.Sign(faultAPIKey, "v2", "POST", "/api/push", ts, nonce, body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	if st, m := signed(n1); st != 200 || m["delivered"] != false {
		t.Fatalf("signed push on node 1: %d %v", st, m)
	}
	if st, m := signed(n2); st != 401 || m["code"] != "NONCE_REUSED" {
		t.Fatalf("replay on node 2: %d %v", st, m)
	}

	// gina on node 2 sees one event of room rec and keeps its offset.
	gws, st, b := n2.dialSock()
	if gws == nil {
		t.Fatalf("gina dial: %d %s", st, b)
	}
	tok, err := auth.Mint([]byte(faultJWTSecret), "HS256", "gina", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	gws.send(`40{"token":"` + tok + `"}`)
	var hello struct{ SID, PID string }
	if f := gws.read(); !strings.HasPrefix(f, "40") || json.Unmarshal([]byte(f[2:]), &hello) != nil || hello.PID == "" {
		t.Fatalf("gina connect: %q", f)
	}
	gws.send(`42["register",{"userId":"gina"}]`)
	gws.expect("register:ack")
	gws.send(`42["room:join",{"room":"rec"}]`)
	gws.expect("room:join:ack")
	if m := n1.mustPost("/api/room", map[string]any{"room": "rec", "event": "seen"}); m["recipients"] != 1.0 {
		t.Fatalf("room rec: %v", m)
	}
	args := eventArgs(t, gws.expect("seen"))
	var offset string
	if len(args) != 3 || json.Unmarshal(args[2], &offset) != nil || offset == "" {
		t.Fatalf("seen carries no offset: %v", args)
	}
	// The session record is written by a background writer: wait until it holds the room
	// and the registration, so the SIGKILL below loses nothing the test relies on.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d := rc.HGet(ctx, prefix+":session:"+hello.PID, "d").Val()
		if strings.Contains(d, `"rec"`) && strings.Contains(d, `"registered":true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gina's session record is %q", d)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Node 2 dies: alice2, dave and gina lose their connection.
	_ = n2.cmd.Process.Kill()
	_ = n2.cmd.Wait()
	delete(socks, "alice2")
	delete(socks, "dave")
	// Missed by gina while away; the count of a node still listed may be partial.
	n1.mustPost("/api/room", map[string]any{"room": "rec", "event": "missed", "data": "m"})

	// gina comes back on node 3 with pid and offset: same id, the missed event, then the
	// welcome and system:state_recovered.
	g3, st, b := n3.dialSock()
	if g3 == nil {
		t.Fatalf("gina redial: %d %s", st, b)
	}
	g3.send(`40{"token":"` + tok + `","pid":"` + hello.PID + `","offset":"` + offset + `"}`)
	var again struct{ SID, PID string }
	if f := g3.read(); !strings.HasPrefix(f, "40") || json.Unmarshal([]byte(f[2:]), &again) != nil || again.SID != hello.SID {
		t.Fatalf("gina recovery connect: %q (sid was %s)", f, hello.SID)
	}
	if f := g3.read(); !strings.HasPrefix(f, `42["missed","m"`) {
		t.Fatalf("gina's first event after recovery: %q", f)
	}
	if f := g3.read(); !strings.HasPrefix(f, `42["system:welcome"`) {
		t.Fatalf("after the replay: %q", f)
	}
	if f := g3.read(); !strings.HasPrefix(f, `42["system:state_recovered",{"userId":"gina"`) {
		t.Fatalf("after the welcome: %q", f)
	}
	socks["gina"] = g3

	// The two nodes left deliver with exact counts once node 2 has left the request
	// channel's subscribers (until then the answers may be partial).
	n1.waitNodes(2)
	n3.waitNodes(2)
	if m := n3.mustPost("/api/push", map[string]any{"userId": "alice", "event": "p2"}); m["delivered"] != true || m["partial"] != nil {
		t.Fatalf("push after the kill: %v", m)
	}
	if m := n3.mustPost("/api/push", map[string]any{"userId": "gina", "event": "p3"}); m["delivered"] != true || m["partial"] != nil {
		t.Fatalf("push to the recovered gina: %v", m)
	}
	if m := n3.mustPost("/api/room", map[string]any{"room": "hall", "event": "r2"}); m["recipients"] != 3.0 || m["partial"] != nil {
		t.Fatalf("room hall after the kill: %v", m)
	}
	if m := n3.mustPost("/api/room", map[string]any{"room": "rec", "event": "r3"}); m["recipients"] != 1.0 || m["partial"] != nil {
		t.Fatalf("room rec after the kill: %v", m)
	}
	if m := n3.mustPost("/api/broadcast", map[string]any{"event": "b2"}); m["recipients"] != 5.0 || m["partial"] != nil {
		t.Fatalf("broadcast after the kill: %v", m)
	}
	if m := n3.mustPost("/api/broadcast", map[string]any{"event": "fence2"}); m["recipients"] != 5.0 || m["partial"] != nil {
		t.Fatalf("fence after the kill: %v", m)
	}
	checkCounts(t, "after the kill", socks, map[string]map[string]int{
		"alice1": {"p2": 1, "r2": 1, "b2": 1},
		"carol":  {"r2": 1, "b2": 1},
		"erin":   {"r2": 1, "b2": 1},
		"frank":  {"b2": 1},
		"gina":   {"p3": 1, "r3": 1, "b2": 1},
	}, "fence2")
	// Node 1 too: its broadcast reaches the same five sockets once each.
	if m := n1.mustPost("/api/broadcast", map[string]any{"event": "fence3"}); m["recipients"] != 5.0 || m["partial"] != nil {
		t.Fatalf("broadcast from node 1: %v", m)
	}
	checkCounts(t, "from node 1", socks, map[string]map[string]int{
		"alice1": {}, "carol": {}, "erin": {}, "frank": {}, "gina": {},
	}, "fence3")
	for _, n := range []*node{n1, n3} {
		cl := n.clusterView()
		if cl["nodes"] != 2.0 || cl["connections"] != 5.0 || cl["rooms"] != 3.0 || cl["partial"] != nil {
			t.Fatalf("%s cluster view after the kill: %v", n.url, cl)
		}
	}
}
