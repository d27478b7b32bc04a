package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/proctest"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

// Connection state recovery across the nodes of a cluster: sessions and missed packets are
// in Redis, so a client comes back on another node, also after its node was SIGKILLed.

// recoveringClient is a raw client that remembers what it needs to recover.
type recoveringClient struct {
	*rawClient
	tok, sid, pid, offset string
}

// recoverable connects userID to e, registers it and joins rooms, noting the last offset.
func recoverable(t *testing.T, e *env, userID string, rooms ...string) *recoveringClient {
	t.Helper()
	tok := token(t, userID)
	c, reply := e.rawAuth(t, `{"token":"`+tok+`"}`)
	m := connectReply(t, reply)
	rc := &recoveringClient{rawClient: c, tok: tok, sid: m["sid"], pid: m["pid"]}
	rc.offset = lastString(t, c.expect("system:welcome"))
	c.send(`42["register",{"userId":"` + userID + `"}]`)
	if ack := c.expect("register:ack"); !strings.Contains(ack, `"success":true`) {
		t.Fatalf("register: %s", ack)
	} else {
		rc.offset = lastString(t, ack)
	}
	for _, r := range rooms {
		c.send(`42["room:join",{"room":"` + r + `"}]`)
		ack := c.expect("room:join:ack")
		if !strings.Contains(ack, `"success":true`) {
			t.Fatalf("join %s: %s", r, ack)
		}
		rc.offset = lastString(t, ack)
	}
	return rc
}

// comeBack reconnects to e with the pid and offset and returns the CONNECT reply and the
// events read up to the system:state_* event (included).
func (rc *recoveringClient) comeBack(t *testing.T, e *env) (map[string]string, []string, *rawClient) {
	t.Helper()
	c, reply := e.rawAuth(t, `{"token":"`+rc.tok+`","pid":"`+rc.pid+`","offset":"`+rc.offset+`"}`)
	m := connectReply(t, reply)
	var events []string
	for i := 0; i < 200; i++ {
		f := c.read()
		if !strings.HasPrefix(f, "42") {
			continue
		}
		f = recoveryOffset.ReplaceAllString(f, "]")
		events = append(events, f)
		if strings.HasPrefix(f, `42["system:state_recover`) {
			return m, events, c
		}
	}
	t.Fatal("no system:state_* event")
	return nil, nil, nil
}

// sessionKept waits until Redis holds rc's session with every one of wants in it.
func sessionKept(t *testing.T, rdb *redis.Client, prefix, pid string, wants ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var d string
	for time.Now().Before(deadline) {
		d, _ = rdb.HGet(context.Background(), prefix+":session:"+pid, "d").Result()
		ok := d != ""
		for _, w := range wants {
			ok = ok && strings.Contains(d, w)
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("session %s in Redis: %q, want %q", pid, d, wants)
}

func redisClient(t *testing.T, addr string) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// sendMissed sends, through e's API, a room message to lobby, a push to userID and a room
// message to a room the client is not in.
func sendMissed(t *testing.T, e *env, userID string) {
	t.Helper()
	for _, req := range []struct {
		path string
		body map[string]any
	}{
		{"/api/room", map[string]any{"room": "lobby", "event": "m1", "data": map[string]any{"n": 1}}},
		{"/api/room", map[string]any{"room": "elsewhere", "event": "not-for-you"}},
		{"/api/push", map[string]any{"userId": userID, "event": "p1", "data": "hi"}},
		{"/api/room", map[string]any{"room": "lobby", "event": "m2", "data": 2}},
	} {
		if st, body, _ := e.api("POST", req.path, req.body); st != 200 {
			t.Fatalf("%s: %d %v", req.path, st, body)
		}
	}
}

// checkRecovered checks a recovery on another node: same id and pid, the missed room
// messages and push in order, nothing else, then the recovery flag; and that the socket is
// still in its room and its user's room there.
func checkRecovered(t *testing.T, e *env, rc *recoveringClient, userID string) {
	t.Helper()
	m, events, c := rc.comeBack(t, e)
	if m["sid"] != rc.sid || m["pid"] != rc.pid {
		t.Fatalf("recovered as %v, want sid %s pid %s", m, rc.sid, rc.pid)
	}
	want := []string{`42["m1",{"n":1}]`, `42["p1","hi"]`, `42["m2",2]`}
	var got []string
	for _, f := range events {
		if !strings.HasPrefix(f, `42["system:`) {
			got = append(got, f)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("replayed %q, want %q (all: %q)", got, want, events)
	}
	if last := events[len(events)-1]; !strings.HasPrefix(last, `42["system:state_recovered"`) {
		t.Fatalf("last event %s", last)
	}
	// Rooms and registration came back with the session.
	if st, body, _ := e.api("POST", "/api/room", map[string]any{"room": "lobby", "event": "after", "data": 3}); st != 200 || body["recipients"] != 1.0 {
		t.Fatalf("room after recovery: %d %v", st, body)
	}
	if f := c.nextEvent(); f != `42["after",3]` {
		t.Fatalf("after recovery got %s", f)
	}
	if st, body, _ := e.api("POST", "/api/push", map[string]any{"userId": userID, "event": "p2"}); st != 200 || body["delivered"] != true {
		t.Fatalf("push after recovery: %d %v", st, body)
	}
	if f := c.nextEvent(); f != `42["p2",null]` {
		t.Fatalf("push after recovery got %s", f)
	}
}

// TestClusterRecoveryGracefulClose: node A shuts down; the client comes back on node B
// and gets what was sent meanwhile through B.
func TestClusterRecoveryGracefulClose(t *testing.T) {
	nodes, addr, prefix := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	rdb := redisClient(t, addr)

	rc := recoverable(t, a, "alice", "lobby")
	// A broadcast through B before the close gives the client an offset B issued.
	if st, _, _ := b.api("POST", "/api/room", map[string]any{"room": "lobby", "event": "m0"}); st != 200 {
		t.Fatal("m0")
	}
	f := rc.expect("m0")
	rc.offset = lastString(t, f)
	sessionKept(t, rdb, prefix, rc.pid, `"lobby"`, `"registered":true`)
	// While connected, the record outlives its next refresh by the whole window, so it
	// survives the node's death for at least max_disconnection_duration.
	if ttl := rdb.PTTL(context.Background(), prefix+":session:"+rc.pid).Val(); ttl <= a.cfg.Recovery.MaxDisconnectionDuration {
		t.Fatalf("a connected session's record lives %v, window %v", ttl, a.cfg.Recovery.MaxDisconnectionDuration)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	sendMissed(t, b, "alice")
	checkRecovered(t, b, rc, "alice")
}

// TestClusterRecoveryAfterSIGKILL: node A is a separate process killed with SIGKILL; its
// client comes back on node B with its id, rooms, registration and missed packets.
func TestClusterRecoveryAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	addr := redistest.Addr(t)
	nodes, _, prefix := startClusterAt(t, addr, 1)
	b := nodes[0]
	rdb := redisClient(t, addr)

	bin := buildPlugin(t, "core/cmd/rtserver", t.TempDir(), "")
	cfgPath := filepath.Join(t.TempDir(), "node-a.hcl")
	cfg := fmt.Sprintf(`
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
plugins { dir = %q }
cluster {
  redis_url  = "redis://%s/0"
  key_prefix = %q
}
`, testSecret, testAPIKey, t.TempDir(), addr, prefix)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, url := startBinary(t, bin, cfgPath)
	a := &env{t: t, url: url, apiURL: url}

	rc := recoverable(t, a, "bob", "lobby")
	sessionKept(t, rdb, prefix, rc.pid, `"lobby"`, `"registered":true`)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	sendMissed(t, b, "bob")
	checkRecovered(t, b, rc, "bob")
}

// TestClusterRecoveryBounds: the stream keeps about max_packets_total entries; a client
// whose offset was trimmed away, or whose session expired, is not recovered.
func TestClusterRecoveryBounds(t *testing.T) {
	addr := redistest.Addr(t)
	nodes, _, prefix := startClusterAt(t, addr, 2, func(c *config.Config) {
		c.Recovery.MaxPacketsTotal = 100
		c.Recovery.MaxDisconnectionDuration = 3 * time.Second
	})
	a, b := nodes[0], nodes[1]
	rdb := redisClient(t, addr)

	// A session lives max_disconnection_duration after its close, then is not recovered.
	expired := recoverable(t, a, "dave", "lobby")
	sessionKept(t, rdb, prefix, expired.pid, `"lobby"`)
	expired.close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Exists(context.Background(), prefix+":session:"+expired.pid).Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("session record still in Redis 10s after a 3s window")
		}
		time.Sleep(100 * time.Millisecond)
	}
	m, events, _ := expired.comeBack(t, b)
	if m["sid"] == expired.sid || !strings.HasPrefix(events[len(events)-1], `42["system:state_recovery_failed"`) {
		t.Fatalf("recovered an expired session: %v %q", m, events)
	}

	// The stream keeps about max_packets_total entries; a client whose offset was trimmed
	// away is not recovered.
	trimmed := recoverable(t, a, "carol", "lobby")
	for i := 0; i < 400; i++ {
		if st, _, _ := b.api("POST", "/api/room", map[string]any{"room": "nobody", "event": "fill", "data": i}); st != 200 {
			t.Fatal("fill")
		}
	}
	// MAXLEN ~ trims whole blocks of 100 entries (stream-node-max-entries).
	if n := rdb.XLen(context.Background(), prefix+":recovery").Val(); n < 100 || n > 200 {
		t.Fatalf("stream length %d, want about 100", n)
	}
	trimmed.close()
	m, events, _ = trimmed.comeBack(t, b)
	if m["sid"] == trimmed.sid || !strings.HasPrefix(events[len(events)-1], `42["system:state_recovery_failed"`) {
		t.Fatalf("recovered past the trimmed log: %v %q", m, events)
	}
}

// startClusterAt runs n nodes joined through the Redis at addr under a key prefix of their
// own, with every mutate applied to each node's configuration after the cluster settings.
func startClusterAt(t *testing.T, addr string, n int, mutate ...func(*config.Config)) ([]*env, string, string) {
	t.Helper()
	prefix := redistest.Prefix(t, "rt-test")
	nodes := make([]*env, n)
	for i := range nodes {
		nodes[i] = startServer(t, func(c *config.Config) {
			c.Cluster.RedisURL = "redis://" + addr + "/0"
			c.Cluster.KeyPrefix = prefix
			for _, m := range mutate {
				m(c)
			}
		})
	}
	return nodes, addr, prefix
}

// startBinary runs the server binary with a config and returns it and its base URL once it
// listens; the test's end kills it.
func startBinary(t *testing.T, bin, cfgPath string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	addr, _ := proctest.Start(t, cmd)
	return cmd, "http://" + addr
}

// TestClusterRecoveryRedisDown: with the cluster's Redis unreachable, a recovery fails
// cleanly (a fresh session and system:state_recovery_failed, without waiting on Redis) and
// the store's failures are counted.
func TestClusterRecoveryRedisDown(t *testing.T) {
	dead := redistest.DeadAddr(t) // nothing listens there
	e := startServer(t, func(c *config.Config) {
		c.Cluster.RedisURL = "redis://" + dead + "/0"
		c.Cluster.ConnectTimeout = 300 * time.Millisecond
	})
	tok := token(t, "erin")
	c, reply := e.rawAuth(t, `{"token":"`+tok+`"}`)
	m := connectReply(t, reply)
	c.expect("system:welcome")
	c.send(`42["room:join",{"room":"lobby"}]`)
	c.expect("room:join:ack")
	c.close()

	rc := &recoveringClient{tok: tok, sid: m["sid"], pid: m["pid"], offset: "1-0"}
	got, events, _ := rc.comeBack(t, e)
	if got["sid"] == rc.sid || !strings.HasPrefix(events[len(events)-1], `42["system:state_recovery_failed"`) {
		t.Fatalf("recovery with Redis down: %v %q", got, events)
	}
	if n := scrapeMetrics(t, e)[`socket_server_recovery_total{result="store_failed"}`]; n < 1 {
		t.Errorf("store_failed = %v, want at least 1", n)
	}
}

// TestClusterRecoveryTakeover: a client comes back on node B while its old connection on
// node A is still open; when that one closes later, A's final write must not overwrite the
// record of the connection that recovered on B.
func TestClusterRecoveryTakeover(t *testing.T) {
	nodes, addr, prefix := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	rdb := redisClient(t, addr)

	rc := recoverable(t, a, "frank", "lobby")
	sessionKept(t, rdb, prefix, rc.pid, `"lobby"`)
	m, events, c := rc.comeBack(t, b)
	if m["sid"] != rc.sid || !strings.HasPrefix(events[len(events)-1], `42["system:state_recovered"`) {
		t.Fatalf("takeover: %v %q", m, events)
	}
	c.send(`42["room:join",{"room":"b-only"}]`)
	if ack := c.expect("room:join:ack"); !strings.Contains(ack, `"success":true`) {
		t.Fatalf("join: %s", ack)
	}
	sessionKept(t, rdb, prefix, rc.pid, `"b-only"`)

	rc.close() // the old connection on A
	deadline := time.Now().Add(10 * time.Second)
	for a.srv.Hub().Stats().Connections > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // A's writer has had its chance
	if d := rdb.HGet(context.Background(), prefix+":session:"+rc.pid, "d").Val(); !strings.Contains(d, `"b-only"`) {
		t.Fatalf("the stale connection overwrote the record: %q", d)
	}
}
