package cluster

import (
	"testing"
	"time"
)

// TestStaleFailureLeavesUp: a call that began before Redis was seen answering again and
// failed afterwards does not mark the node down; one that began after does.
func TestStaleFailureLeavesUp(t *testing.T) {
	a, err := New(&localOnly{sent: make(chan string, 1)}, nil, Options{RedisURL: "redis://127.0.0.1:1/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.setDown(true)
	begun := time.Now()
	// Ordering only: the recovery must be seen strictly after the call began.
	time.Sleep(time.Millisecond)
	a.setDown(false) // the subscription is back, and commands are answered
	a.failedSince(begun)
	if !a.Up() {
		t.Fatal("a failure older than the recovery marked the node down")
	}
	a.MarkDown(begun)
	if !a.Up() {
		t.Fatal("a heartbeat older than the recovery marked the node down")
	}
	a.failedSince(time.Now())
	if a.Up() {
		t.Fatal("a failure after the recovery left the node up")
	}
}
