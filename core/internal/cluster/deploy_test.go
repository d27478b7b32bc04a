package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/redistest"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// Deployments other than one Redis server: a master that Sentinels watch, and a Redis
// Cluster, each made of real redis-server processes of the test's own (redistest).

// eventually retries cond every 50ms until it holds, failing with what after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deployNode is an adapter on opts with the events it received from other nodes.
type deployNode struct {
	*Adapter
	got chan string
}

func newDeployNode(t *testing.T, opts *redis.UniversalOptions, prefix string) *deployNode {
	t.Helper()
	n := &deployNode{got: make(chan string, 64)}
	a, err := New(&localOnly{sent: make(chan string, 64)}, func(_, _ []string, event string, _ ...any) (int, error) {
		n.got <- event
		return 1, nil
	}, Options{Redis: opts, KeyPrefix: prefix, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	n.Adapter = a
	return n
}

// crosses broadcasts event from n until to receives it: a publish or a subscription may
// still be on its way back after a failover.
func crosses(t *testing.T, from, to *deployNode, event string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, _ = from.Broadcast(hub.Target{}, event, json.RawMessage(`1`))
		select {
		case ev := <-to.got:
			if ev == event {
				return
			}
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("broadcast %q did not reach the other node within %s", event, timeout)
		}
	}
}

// TestSentinelDeployment: two nodes reach their master through a Sentinel; a broadcast
// and a cluster-wide count cross; after SENTINEL FAILOVER to the replica, broadcasts
// cross again on the new master.
func TestSentinelDeployment(t *testing.T) {
	sn := redistest.StartSentinel(t)
	if m := sn.CurrentMaster(t); m != sn.Master {
		t.Fatalf("master %q, want %s", m, sn.Master)
	}

	opts := &redis.UniversalOptions{MasterName: sn.MasterName, Addrs: []string{sn.Addr}}
	prefix := redistest.Prefix(t, "rt-sentinel")
	a, b := newDeployNode(t, opts, prefix), newDeployNode(t, opts, prefix)
	crosses(t, a, b, "before", 5*time.Second)
	crosses(t, b, a, "back", 5*time.Second)
	local, remote, partial, err := a.BroadcastCount(hub.Target{}, "counted", json.RawMessage(`1`))
	if err != nil || local != 1 || remote != 1 || partial {
		t.Fatalf("count: local %d remote %d partial %v err %v", local, remote, partial, err)
	}

	sn.Failover(t)
	crosses(t, a, b, "after", 15*time.Second)
	crosses(t, b, a, "after-back", 5*time.Second)
}

// TestRedisClusterDeployment: two nodes on a three-master Redis Cluster, given one seed
// address: a broadcast crosses, cluster-wide counts are complete, a nonce is refused on
// the other node, the per-IP limit and rate limits hold across nodes (scripts on keys of
// one slot), and the recovery log records a broadcast delivered under its offset.
func TestRedisClusterDeployment(t *testing.T) {
	addrs := redistest.StartCluster(t, 3)
	ctx := context.Background()

	opts := &redis.UniversalOptions{Addrs: addrs[:1], IsClusterMode: true}
	prefix := redistest.Prefix(t, "rt-rcluster")
	a, b := newDeployNode(t, opts, prefix), newDeployNode(t, opts, prefix)
	crosses(t, a, b, "hello", 5*time.Second)
	crosses(t, b, a, "back", 5*time.Second)
	// The count waits for as many answers as there are subscribers of the request channel,
	// summed over the cluster's nodes: complete, and long before the request timeout.
	start := time.Now()
	local, remote, partial, err := a.BroadcastCount(hub.Target{Rooms: []string{"r"}}, "counted", json.RawMessage(`1`))
	if err != nil || local != 1 || remote != 1 || partial || time.Since(start) > 4*time.Second {
		t.Fatalf("count: local %d remote %d partial %v err %v in %s", local, remote, partial, err, time.Since(start))
	}

	s1 := NewShared(a.Adapter, SharedOptions{NodeTTL: 3 * time.Second})
	s1.Start()
	defer s1.Close()
	s2 := NewShared(b.Adapter, SharedOptions{NodeTTL: 3 * time.Second})
	s2.Start()
	defer s2.Close()
	exp := time.Now().Add(time.Minute)
	if fresh, err := s1.ClaimNonce("k", "n1", exp); err != nil || !fresh {
		t.Fatalf("first claim: %v %v", fresh, err)
	}
	if fresh, err := s2.ClaimNonce("k", "n1", exp); err != nil || fresh {
		t.Fatalf("replay on the other node: fresh=%v err=%v", fresh, err)
	}
	l1, l2 := s1.Limiter("t", 2, time.Minute), s2.Limiter("t", 2, time.Minute)
	for i, l := range []*RateLimiter{l1, l2} {
		if r, err := l.Allow("id"); err != nil || !r.Allowed {
			t.Fatalf("allow %d: %+v %v", i, r, err)
		}
	}
	if r, err := l1.Allow("id"); err != nil || r.Allowed {
		t.Fatalf("third: %+v %v", r, err)
	}
	for i, c := range []struct {
		s    *Shared
		want bool
	}{{s1, true}, {s2, true}, {s1, false}, {s2, false}} {
		ok, err := c.s.TakeConn("10.0.0.1", 2)
		if err != nil || ok != c.want {
			t.Fatalf("take %d: %v %v, want %v", i, ok, err, c.want)
		}
	}
	// A release is sent in the background.
	s1.ReleaseConn("10.0.0.1")
	eventually(t, 5*time.Second, "a connection taken after a release", func() bool {
		ok, err := s2.TakeConn("10.0.0.1", 2)
		return err == nil && ok
	})

	store, err := NewRecoveryStore(RecoveryOptions{Redis: opts, KeyPrefix: prefix, MaxLen: 100, StreamTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	last, err := store.Last(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Sessions of many pids fall in many slots; one pipeline saves them all.
	var writes []socketio.SessionWrite
	for i := 0; i < 20; i++ {
		writes = append(writes, socketio.SessionWrite{Kind: socketio.WriteCreate, PID: fmt.Sprint("pid", i), Owner: "o", Data: []byte(`{}`), TTL: time.Minute})
	}
	if err := store.Save(ctx, writes); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if d, err := store.Take(ctx, fmt.Sprint("pid", i)); err != nil || string(d) != `{}` {
			t.Fatalf("take pid%d: %q %v", i, d, err)
		}
	}
	logged := newDeployNode(t, opts, prefix)
	at := make(chan string, 4)
	logged.EnableRecovery(store, func(offset string, _, _ []string, event string, _ ...any) (int, error) {
		at <- offset + " " + event
		return 1, nil
	})
	if _, err := logged.Broadcast(hub.Target{Rooms: []string{"r"}}, "logged", json.RawMessage(`2`)); err != nil {
		t.Fatal(err)
	}
	got := <-at
	offset, ev, _ := strings.Cut(got, " ")
	if ev != "logged" || !store.ValidOffset(offset) {
		t.Fatalf("delivered here as %q", got)
	}
	pkts, complete, err := store.After(ctx, last, 10)
	if err != nil || !complete || len(pkts) != 1 || pkts[0].Offset != offset || pkts[0].Event != "logged" {
		t.Fatalf("after %s: %+v complete=%v err=%v", last, pkts, complete, err)
	}
	select {
	case ev := <-a.got:
		if ev != "logged" {
			t.Fatalf("other node got %q", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the logged broadcast did not reach another node")
	}
}
