package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtserver/rtserver/core/internal/redistest"
)

// A master that dies under Sentinel: not a failover the Sentinels are asked for, but a
// SIGKILL the nodes learn of from broken connections, and the Sentinels from silence.

const publishFailed = `socket_server_cluster_messages_total{result="publish_failed"}`

// callTimeout bounds every HTTP call of the failover test: a call that takes longer has
// hung on Redis, which the node must never do, however long the switch takes.
const callTimeout = 30 * time.Second

var boundedClient = &http.Client{Timeout: callTimeout}

// startSentinelNode runs a node that reaches its master through the Sentinels of sn.
func startSentinelNode(t *testing.T, sn *redistest.Sentinel, prefix string) *node {
	t.Helper()
	addrs, _ := json.Marshal(sn.Addrs)
	return startClusterNode(t, prefix, 50, "rate_limit { http_requests_per_minute = 100000 }",
		fmt.Sprintf("sentinel {\n    master_name = %q\n    addrs       = %s\n  }", sn.MasterName, addrs))
}

// room sends event to room through n and returns the answer's recipients and partial;
// a call that does not return within callTimeout fails the test.
func (n *node) room(room, event string) (int, bool) {
	n.t.Helper()
	b, _ := json.Marshal(map[string]any{"room": room, "event": event})
	req, _ := http.NewRequest("POST", n.url+"/api/room", bytes.NewReader(b))
	req.Header.Set("X-API-Key", faultAPIKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := boundedClient.Do(req)
	if err != nil {
		n.t.Fatalf("POST /api/room %s: %v\n%s", event, err, n.logs)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var m struct {
		Success    bool `json:"success"`
		Recipients int  `json:"recipients"`
		Partial    bool `json:"partial"`
	}
	if res.StatusCode != 200 || json.Unmarshal(body, &m) != nil || !m.Success {
		n.t.Fatalf("POST /api/room %s: %d %s", event, res.StatusCode, body)
	}
	return m.Recipients, m.Partial
}

// healthState is /health's status, read within callTimeout.
func (n *node) healthState() string {
	n.t.Helper()
	res, err := boundedClient.Get(n.url + "/health")
	if err != nil {
		n.t.Fatalf("/health: %v\n%s", err, n.logs)
	}
	defer res.Body.Close()
	var m struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		n.t.Fatalf("/health: %d %v", res.StatusCode, err)
	}
	return m.Status
}

// healthWatch polls a node's /health on a goroutine of its own and remembers whether it
// ever said degraded.
type healthWatch struct {
	degraded atomic.Bool
	done     chan struct{}
	ended    chan struct{}
}

func watchHealth(n *node) *healthWatch {
	w := &healthWatch{done: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(w.ended)
		for {
			select {
			case <-w.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			res, err := boundedClient.Get(n.url + "/health")
			if err != nil {
				continue
			}
			var m struct {
				Status string `json:"status"`
			}
			_ = json.NewDecoder(res.Body).Decode(&m)
			res.Body.Close()
			if m.Status == "degraded" {
				w.degraded.Store(true)
			}
		}
	}()
	n.t.Cleanup(w.stop)
	return w
}

// stop ends the polling and waits for it; calling it again does nothing.
func (w *healthWatch) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	<-w.ended
}

// waitState polls /health until its status is want, failing with the node's logs after
// timeout.
func (n *node) waitState(want string, timeout time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := n.healthState()
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("/health stays %q after %s, want %q\n%s", st, timeout, want, n.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// inbox reads a client's frames on a goroutine of its own, answering pings, so that the
// client stays connected however long the test waits for the Sentinels, and counts every
// event it receives.
type inbox struct {
	t      *testing.T
	name   string
	frames chan string
	seen   map[string]int // event name → times received
}

func listen(t *testing.T, name string, s *sock) *inbox {
	in := &inbox{t: t, name: name, frames: make(chan string, 4096), seen: make(map[string]int)}
	go func() {
		defer close(in.frames)
		for {
			_ = s.ws.SetReadDeadline(time.Time{})
			_, b, err := s.ws.ReadMessage()
			if err != nil {
				return
			}
			if string(b) == "2" {
				if s.ws.WriteMessage(websocket.TextMessage, []byte("3")) != nil {
					return
				}
				continue
			}
			in.frames <- string(b)
		}
	}()
	return in
}

// until consumes events up to and including fence, counting each, and fails the test when
// the client is dropped or fence does not come within callTimeout.
func (in *inbox) until(fence string) {
	in.t.Helper()
	timeout := time.After(callTimeout)
	for {
		select {
		case f, ok := <-in.frames:
			if !ok {
				in.t.Fatalf("%s was disconnected waiting for %q", in.name, fence)
			}
			var args []json.RawMessage
			var ev string
			if rest, found := strings.CutPrefix(f, "42"); !found || json.Unmarshal([]byte(rest), &args) != nil ||
				len(args) == 0 || json.Unmarshal(args[0], &ev) != nil {
				continue
			}
			in.seen[ev]++
			if ev == fence {
				return
			}
		case <-timeout:
			in.t.Fatalf("%s did not receive %q within %s", in.name, fence, callTimeout)
		}
	}
}

// exchange sends three room messages from each node, each reaching every member of the
// room (three sockets over two nodes) and counted so, then a fence from a; each client
// must then have received each of them exactly once.
func exchange(t *testing.T, a, b *node, everyone []*inbox, tag string) {
	t.Helper()
	var sent []string
	for _, from := range []struct {
		n    *node
		name string
	}{{a, "a"}, {b, "b"}} {
		for i := 0; i < 3; i++ {
			ev := fmt.Sprintf("%s-%s%d", tag, from.name, i)
			if n, partial := from.n.room("lobby", ev); n != 3 || partial {
				t.Fatalf("%s from %s: recipients %d partial %v, want 3 and complete", ev, from.name, n, partial)
			}
			sent = append(sent, ev)
		}
	}
	fence := tag + "-end"
	if n, partial := a.room("lobby", fence); n != 3 || partial {
		t.Fatalf("%s: recipients %d partial %v", fence, n, partial)
	}
	for _, in := range everyone {
		in.until(fence)
		for _, ev := range append(sent, fence) {
			if in.seen[ev] != 1 {
				t.Fatalf("%s received %q %d times, want once", in.name, ev, in.seen[ev])
			}
		}
	}
}

// outcome is a room message sent while the master was being replaced, and its answer.
type outcome struct {
	from      string // "a" or "b"
	event     string
	recipient int
	partial   bool
}

// TestClusterSentinelMasterKilled: two nodes (processes) reach a master through three
// Sentinels; the master is killed with SIGKILL. Meanwhile each node keeps serving its own
// sockets, says degraded in /health and counts the room messages it could not publish;
// once the Sentinels have promoted the replica both nodes say ok again, and room messages
// cross both ways with exact counts, each reaching each client once. Then the old master
// comes back as a replica and the new master is killed in turn: the nodes follow the
// Sentinels back to it rather than keep the address they knew first.
func TestClusterSentinelMasterKilled(t *testing.T) {
	sn := redistest.StartSentinelWith(t, redistest.SentinelOptions{
		Sentinels: 3, DownAfter: 3 * time.Second, FailoverTimeout: 5 * time.Second,
	})
	prefix := redistest.Prefix(t, "failover")
	a := startSentinelNode(t, sn, prefix)
	b := startSentinelNode(t, sn, prefix)
	a.waitHealth("ok")
	b.waitHealth("ok")
	alice := listen(t, "alice", a.member("alice", "lobby"))
	bob := listen(t, "bob", b.member("bob", "lobby"))
	carol := listen(t, "carol", b.member("carol", "lobby"))
	everyone := []*inbox{alice, bob, carol}
	exchange(t, a, b, everyone, "before")

	during := masterKilled(t, sn, a, b, everyone, sn.Master, sn.Replica, "first")
	sn.Restart(t, sn.Master)
	during = append(during, masterKilled(t, sn, a, b, everyone, sn.Replica, sn.Master, "second")...)

	// What was sent during the switches reached the sender's own sockets exactly once,
	// and the other node's at most once, and surely when counted in full.
	local := map[string][]*inbox{"a": {alice}, "b": {bob, carol}}
	for _, o := range during {
		if o.recipient == 3 && o.partial {
			t.Fatalf("%s: counted in full yet partial", o.event)
		}
		full := o.recipient == 3 && !o.partial
		if !full && !o.partial {
			// The other node's subscription to the room was not back yet: Redis counted
			// no other node in the room, so the sender could not know it missed one.
			t.Logf("%s: %d recipients, complete as far as Redis knew", o.event, o.recipient)
		}
		for _, in := range everyone {
			got := in.seen[o.event]
			switch {
			case slices.Contains(local[o.from], in) || full:
				if got != 1 {
					t.Fatalf("%s received %s %d times, want once (recipients %d, partial %v)", in.name, o.event, got, o.recipient, o.partial)
				}
			case got > 1:
				t.Fatalf("%s received %s %d times", in.name, o.event, got)
			}
		}
	}
}

// masterKilled kills the master at dead, sends room messages through both nodes until
// both have said degraded, waits for the Sentinels to promote next and for both nodes to
// say ok, and checks that room messages cross again at once with exact counts. It returns
// what was sent while the master was missing, for the caller to check once every client
// has read past it.
func masterKilled(t *testing.T, sn *redistest.Sentinel, a, b *node, everyone []*inbox, dead, next, round string) []outcome {
	t.Helper()
	failedA, failedB := a.metric(publishFailed), b.metric(publishFailed)
	// The outage lasts down-after (3 s) and the election: longer than a call's bound (the
	// connect timeout, 1 s), so the nodes cannot ride it out on go-redis' retries, and
	// each must say so. /health is watched all along, as a switch may end between two
	// looks of a loop that also sends.
	watchA, watchB := watchHealth(a), watchHealth(b)
	sn.Kill(t, dead)
	// Until the Sentinels agree the master is dead and promote the replica there is no
	// master: each node delivers to its own sockets, answers (partial) and says degraded.
	// A message may cross once both nodes have found the new master; it is counted in full.
	var during []outcome
	nodes := map[string]*node{"a": a, "b": b}
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; !watchA.degraded.Load() || !watchB.degraded.Load(); i++ {
		for _, name := range []string{"a", "b"} {
			ev := fmt.Sprintf("%s-during-%s%d", round, name, i)
			r, partial := nodes[name].room("lobby", ev)
			during = append(during, outcome{name, ev, r, partial})
			t.Logf("%s: recipients %d partial %v", ev, r, partial)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: degraded seen on A %v, on B %v\nA:\n%s\nB:\n%s", round, watchA.degraded.Load(), watchB.degraded.Load(), a.logs, b.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	watchA.stop()
	watchB.stop()
	if n := a.metric(publishFailed); n <= failedA {
		t.Fatalf("%s: A publish_failed %v, was %v before the master died", round, n, failedA)
	}
	if n := b.metric(publishFailed); n <= failedB {
		t.Fatalf("%s: B publish_failed %v, was %v before the master died", round, n, failedB)
	}

	sn.WaitMaster(t, next, 90*time.Second)
	for _, n := range []*node{a, b} {
		n.waitState("ok", 60*time.Second)
		if up := n.metric("socket_server_cluster_redis_up"); up != 1 {
			t.Fatalf("%s: redis_up %v after the failover", round, up)
		}
	}
	// A node says ok once its subscription is back and Redis answers its commands: from
	// then on every room message reaches every member, counted.
	exchange(t, a, b, everyone, round+"-after")
	return during
}
