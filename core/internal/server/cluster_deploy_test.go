package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

// Nodes on a Redis Cluster and on a Sentinel-watched master, configured as a user would:
// a redis_cluster or a sentinel block instead of redis_url.

// startNodesOn runs n nodes under a key prefix of their own, reaching Redis as set says.
func startNodesOn(t *testing.T, n int, set func(*config.Cluster)) []*env {
	t.Helper()
	prefix := redistest.Prefix(t, "rt-test")
	nodes := make([]*env, n)
	for i := range nodes {
		nodes[i] = startServer(t, func(c *config.Config) {
			c.Cluster.RedisURL = ""
			c.Cluster.KeyPrefix = prefix
			set(&c.Cluster)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
	return nodes
}

// TestClusterOnRedisCluster: two nodes on a three-master Redis Cluster: a room message and
// a broadcast reach the other node's sockets with exact counts, and a client whose node
// shut down recovers on the other one with what it missed.
func TestClusterOnRedisCluster(t *testing.T) {
	addrs := redistest.StartCluster(t, 3)
	nodes := startNodesOn(t, 2, func(c *config.Cluster) {
		c.RedisCluster = &config.RedisCluster{Addrs: addrs[:1]}
	})
	a, b := nodes[0], nodes[1]
	bob := member(t, a, "bob")
	alice := recoverable(t, b, "alice", "lobby")

	st, body, _ := a.api("POST", "/api/room", map[string]any{"room": "lobby", "event": "r1", "data": 1})
	if st != 200 || body["recipients"] != 1.0 || body["partial"] != nil {
		t.Fatalf("room: %d %v", st, body)
	}
	alice.offset = lastString(t, alice.expect("r1"))
	st, body, _ = b.api("POST", "/api/broadcast", map[string]any{"event": "all"})
	if st != 200 || body["recipients"] != 2.0 || body["partial"] != nil {
		t.Fatalf("broadcast: %d %v", st, body)
	}
	if f := bob.nextEvent(); f != `42["all",null]` {
		t.Fatalf("bob got %s", f)
	}
	alice.offset = lastString(t, alice.expect("all"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	sendMissed(t, a, "alice")
	checkRecovered(t, a, alice, "alice")
}

// TestClusterOnSentinel: two nodes reach their master through a Sentinel; a room message
// crosses; after SENTINEL FAILOVER room messages cross again, counted, on the new master.
func TestClusterOnSentinel(t *testing.T) {
	sn := redistest.StartSentinel(t)
	nodes := startNodesOn(t, 2, func(c *config.Cluster) {
		c.Sentinel = &config.Sentinel{MasterName: sn.MasterName, Addrs: []string{sn.Addr}}
	})
	a, b := nodes[0], nodes[1]
	alice := member(t, b, "alice", "lobby")

	st, body, _ := a.api("POST", "/api/room", map[string]any{"room": "lobby", "event": "r1"})
	if st != 200 || body["recipients"] != 1.0 || body["partial"] != nil {
		t.Fatalf("room: %d %v", st, body)
	}
	if f := alice.nextEvent(); f != `42["r1",null]` {
		t.Fatalf("alice got %s", f)
	}

	sn.Failover(t)
	// Sends during the switch may fail (delivered on their own node only, and counted so);
	// once one is counted on the other node, it has crossed.
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		ev := fmt.Sprint("after", i)
		st, body, _ := a.api("POST", "/api/room", map[string]any{"room": "lobby", "event": ev})
		if st == 200 && body["recipients"] == 1.0 && body["partial"] == nil {
			alice.expect(ev)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room message crossed after the failover: %d %v", st, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
