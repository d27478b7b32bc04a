package server_test

import (
	"fmt"
	"testing"
)

// TestClusterRoomTraffic: a node hears only the rooms it has members in. Three nodes, one
// member each in a room of its own; room messages to each room are sent through another
// node. Each node's socket_server_cluster_messages_total{result="received"} grows by the
// messages for its own room only: with the pattern subscription of the classic adapter,
// every node would receive every message (N-1 receipts per message instead of 1).
func TestClusterRoomTraffic(t *testing.T) {
	const n, perRoom = 3, 5
	nodes, _, _ := startCluster(t, n)
	clients := make([]*rawClient, n)
	for i, e := range nodes {
		clients[i] = member(t, e, fmt.Sprintf("u%d", i), fmt.Sprintf("room%d", i))
	}
	received := func() []float64 {
		out := make([]float64, n)
		for i, e := range nodes {
			out[i] = scrapeMetrics(t, e)[`socket_server_cluster_messages_total{result="received"}`]
		}
		return out
	}
	before := received()
	for k := 0; k < perRoom; k++ {
		for i := range nodes {
			via := nodes[(i+1)%n] // not the member's node
			st, body, _ := via.api("POST", "/api/room", map[string]any{"room": fmt.Sprintf("room%d", i), "event": "m", "data": k})
			if st != 200 || body["recipients"] != 1.0 || body["partial"] != nil {
				t.Fatalf("room%d via node %d: %d %v", i, (i+1)%n, st, body)
			}
		}
	}
	// Each member reads its messages in order: once the last has arrived, its node has
	// received everything published before it (Redis delivers in publish order).
	for i, c := range clients {
		for k := 0; k < perRoom; k++ {
			if f, want := c.nextEvent(), fmt.Sprintf(`42["m",%d]`, k); f != want {
				t.Fatalf("member of room%d: got %s, want %s", i, f, want)
			}
		}
	}
	after := received()
	total := 0.0
	for i := range nodes {
		got := after[i] - before[i]
		total += got
		if got != perRoom {
			t.Errorf("node %d received %v messages, want %d (its own room's only)", i, got, perRoom)
		}
	}
	t.Logf("nodes=%d rooms=%d messages=%d: received %v in all (pattern subscription: %d)",
		n, n, n*perRoom, total, n*perRoom*(n-1))
}
