package cluster

import (
	"context"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

// localOnly is the part of hub.Adapter a broadcast reaches on this node.
type localOnly struct {
	hub.Adapter
	sent chan string
}

func (l *localOnly) Broadcast(_ hub.Target, event string, _ json.RawMessage) (int, error) {
	l.sent <- event
	return 1, nil
}

// TestStartCloseLeavesNothing: an adapter that joined Redis and published leaves no
// goroutine behind once closed, and a second Close is harmless.
func TestStartCloseLeavesNothing(t *testing.T) {
	addr := redistest.Addr(t)
	base := runtime.NumGoroutine()
	local := &localOnly{sent: make(chan string, 1)}
	got := make(chan string, 1)
	a, err := New(local, func(_, _ []string, event string, _ ...any) (int, error) {
		got <- event
		return 1, nil
	}, Options{RedisURL: "redis://" + addr + "/0", KeyPrefix: redistest.Prefix(t, "rt-unit")})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Broadcast(hub.Target{}, "ev", json.RawMessage(`1`)); err != nil || n != 1 {
		t.Fatalf("broadcast: %d %v", n, err)
	}
	if ev := <-local.sent; ev != "ev" {
		t.Fatalf("local %q", ev)
	}
	// Its own message comes back from Redis and is dropped: nothing is delivered twice.
	select {
	case ev := <-got:
		t.Fatalf("own broadcast delivered again: %q", ev)
	case <-time.After(200 * time.Millisecond):
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	waitGoroutines(t, base)
}

// waitGoroutines waits until no more goroutines run than base, and fails with all their
// stacks when some stay.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines %d > %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
