package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/proctest"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

const (
	faultJWTSecret = "fault-test-jwt-secret-0123456789"
	faultAPIKey    = "fault-test-api-key-0123456789abc"
)

// node is one rtserver process of the cluster under test.
type node struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	logs *proctest.Logs
}

func startNode(t *testing.T, redisAddr, prefix string) *node {
	t.Helper()
	return startClusterNode(t, prefix, 3, "", fmt.Sprintf("redis_url = \"redis://%s/0\"", redisAddr))
}

// startClusterNode runs a node of the fault tests' cluster: perIP connections per address,
// extra top-level configuration, and redis (the cluster block's lines naming Redis: a
// redis_url, or a sentinel block).
func startClusterNode(t *testing.T, prefix string, perIP int, extra, redis string) *node {
	t.Helper()
	cfg := writeConfig(t, fmt.Sprintf(`
environment = "test"
server {
  host = "127.0.0.1"
  port = 0
}
socketio { max_connections_per_ip = %d }
%s
auth { jwt_secret = %q }
api {
  key "default" {
    secret = %q
    scopes = ["*"]
  }
}
plugins { dir = %q }
cluster {
  key_prefix      = %q
  connect_timeout = "1s"
  node_ttl        = "3s"
  %s
}
`, perIP, extra, faultJWTSecret, faultAPIKey, t.TempDir(), prefix, redis))
	cmd, addr, logs := start(t, cfg)
	return &node{t: t, cmd: cmd, url: "http://" + addr, logs: logs}
}

func (n *node) api(method, path string, body any) (int, map[string]any) {
	n.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.url+path, r)
	req.Header.Set("X-API-Key", faultAPIKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// health returns /health's status, the cluster's redis state and the node's uid.
func (n *node) health() (string, string, string) {
	n.t.Helper()
	st, m := n.api("GET", "/health", nil)
	if st != 200 {
		n.t.Fatalf("/health: %d %v", st, m)
	}
	cl, _ := m["cluster"].(map[string]any)
	redisState, _ := cl["redis"].(string)
	uid, _ := cl["node"].(string)
	status, _ := m["status"].(string)
	return status, redisState, uid
}

// waitHealth polls /health until its status is want.
func (n *node) waitHealth(want string) {
	n.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _, _ := n.health()
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("/health stays %q, want %q\n%s", st, want, n.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric reads one sample of /metrics (0 when absent).
func (n *node) metric(name string) float64 {
	n.t.Helper()
	res, err := http.Get(n.url + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// sock is a raw Socket.IO websocket client.
type sock struct {
	t  *testing.T
	ws *websocket.Conn
}

// dialSock opens a websocket session; on a refused handshake it returns the status and body.
func (n *node) dialSock() (*sock, int, string) {
	n.t.Helper()
	u := "ws" + strings.TrimPrefix(n.url, "http") + "/socket.io/?EIO=4&transport=websocket"
	ws, res, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		if res == nil {
			n.t.Fatalf("dial: %v", err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return nil, res.StatusCode, string(b)
	}
	s := &sock{t: n.t, ws: ws}
	n.t.Cleanup(func() { ws.Close() })
	if f := s.read(); !strings.HasPrefix(f, "0{") {
		n.t.Fatalf("open: %q", f)
	}
	return s, 101, ""
}

// member connects userID, registers it and joins room.
func (n *node) member(userID, room string) *sock {
	n.t.Helper()
	s, st, body := n.dialSock()
	if s == nil {
		n.t.Fatalf("dial: %d %s", st, body)
	}
	tok, err := auth.Mint([]byte(faultJWTSecret), "HS256", userID, time.Hour)
	if err != nil {
		n.t.Fatal(err)
	}
	s.send(`40{"token":"` + tok + `"}`)
	if f := s.read(); !strings.HasPrefix(f, `40{"sid"`) {
		n.t.Fatalf("connect: %q", f)
	}
	s.send(`42["register",{"userId":"` + userID + `"}]`)
	s.expect("register:ack")
	s.send(`42["room:join",{"room":"` + room + `"}]`)
	s.expect("room:join:ack")
	return s
}

func (s *sock) send(f string) {
	s.t.Helper()
	if err := s.ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
		s.t.Fatalf("write: %v", err)
	}
}

func (s *sock) read() string {
	s.t.Helper()
	for {
		_ = s.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := s.ws.ReadMessage()
		if err != nil {
			s.t.Fatalf("read: %v", err)
		}
		if string(b) == "2" {
			s.send("3")
			continue
		}
		return string(b)
	}
}

// expect reads until an EVENT named event arrives.
func (s *sock) expect(event string) string {
	s.t.Helper()
	for i := 0; i < 100; i++ {
		if f := s.read(); strings.HasPrefix(f, `42["`+event+`"`) {
			return f
		}
	}
	s.t.Fatalf("no %q", event)
	return ""
}

// TestClusterFaults runs two nodes as processes on a private Redis and breaks things:
//  1. Redis killed: each node keeps serving its own sockets, /health says degraded,
//     socket_server_cluster_redis_up is 0 and what could not be published is counted;
//  2. Redis started again on the same port (empty): both nodes reconnect, resubscribe and
//     write their per-IP counts again; cross-node delivery and the cluster-wide per-IP
//     limit work again;
//  3. one node SIGKILLed: the other keeps serving, and the dead node's per-IP counts stop
//     counting once its heartbeat expires.
func TestClusterFaults(t *testing.T) {
	rds := redistest.StartPrivate(t)
	prefix := redistest.Prefix(t, "fault")
	a := startNode(t, rds.Addr(), prefix)
	b := startNode(t, rds.Addr(), prefix)
	a.waitHealth("ok")
	b.waitHealth("ok")
	alice := a.member("alice", "lobby")
	bob := b.member("bob", "lobby")

	if st, m := a.api("POST", "/api/room", map[string]any{"room": "lobby", "event": "before"}); st != 200 {
		t.Fatalf("room: %d %v", st, m)
	}
	alice.expect("before")
	bob.expect("before")

	// 1. Redis dies.
	rds.Stop()
	if st, m := a.api("POST", "/api/push", map[string]any{"userId": "alice", "event": "local-a", "data": 1}); st != 200 || m["delivered"] != true {
		t.Fatalf("push on A while Redis is down: %d %v", st, m)
	}
	alice.expect("local-a")
	if st, m := b.api("POST", "/api/push", map[string]any{"userId": "bob", "event": "local-b", "data": 1}); st != 200 || m["delivered"] != true {
		t.Fatalf("push on B while Redis is down: %d %v", st, m)
	}
	bob.expect("local-b")
	a.waitHealth("degraded")
	b.waitHealth("degraded")
	if _, redisState, _ := a.health(); redisState != "down" {
		t.Fatalf("A's cluster.redis = %q", redisState)
	}
	if up := a.metric("socket_server_cluster_redis_up"); up != 0 {
		t.Fatalf("A redis_up = %v", up)
	}
	if n := a.metric(`socket_server_cluster_messages_total{result="publish_failed"}`); n < 1 {
		t.Fatalf("A publish_failed = %v", n)
	}
	// A connection while Redis is down is admitted by A's own count, and the fallback is
	// counted; it closes again before Redis returns.
	extra, st, body := a.dialSock()
	if extra == nil {
		t.Fatalf("connection on A while Redis is down: %d %s", st, body)
	}
	if n := a.metric(`socket_server_cluster_fallbacks_total{store="conns_ip"}`); n < 1 {
		t.Fatalf("A conns_ip fallbacks = %v", n)
	}
	extra.ws.Close()

	// 2. Redis comes back, empty.
	rds.Start()
	a.waitHealth("ok")
	b.waitHealth("ok")
	_, _, uidA := a.health()
	_, _, uidB := b.health()
	rc := redis.NewClient(&redis.Options{Addr: rds.Addr()})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Each node writes its connections per IP again (one each).
	for _, uid := range []string{uidA, uidB} {
		deadline := time.Now().Add(20 * time.Second)
		for rc.HGet(ctx, "{"+prefix+"}-conns#"+uid, "127.0.0.1").Val() != "1" {
			if time.Now().After(deadline) {
				t.Fatalf("node %s did not write its counts again", uid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Cross-node delivery resumes both ways. The subscription is confirmed before the
	// node says ok; a fence per direction shows nothing arrives twice.
	if st, m := a.api("POST", "/api/room", map[string]any{"room": "lobby", "event": "after-a"}); st != 200 {
		t.Fatalf("room on A: %d %v", st, m)
	}
	if f := bob.expect("after-a"); f != `42["after-a",null]` && !strings.HasPrefix(f, `42["after-a",null,`) {
		t.Fatalf("bob got %s", f)
	}
	if st, m := b.api("POST", "/api/room", map[string]any{"room": "lobby", "event": "after-b"}); st != 200 {
		t.Fatalf("room on B: %d %v", st, m)
	}
	alice.expect("after-b")
	// The per-IP limit (3) counts both nodes again: one more on A makes 3, B refuses a 4th.
	if s, st, body := a.dialSock(); s == nil {
		t.Fatalf("second on A: %d %s", st, body)
	}
	if _, st, body := b.dialSock(); st != 403 || !strings.Contains(body, "TOO_MANY_CONNECTIONS_PER_IP") {
		t.Fatalf("fourth on B: %d %s", st, body)
	}

	// 3. B is killed. A serves on; B's one connection stops counting once its heartbeat
	// (node_ttl 3s) runs out, and A admits a third connection of its own.
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	if st, m := a.api("POST", "/api/push", map[string]any{"userId": "alice", "event": "still", "data": 1}); st != 200 || m["delivered"] != true {
		t.Fatalf("push on A after B died: %d %v", st, m)
	}
	alice.expect("still")
	if _, st, body := a.dialSock(); st != 403 {
		t.Fatalf("B's count went before its heartbeat expired: %d %s", st, body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, st, body := a.dialSock()
		if s != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's count never expired: %d %s", st, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
