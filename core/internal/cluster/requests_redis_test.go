package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

// unknownLocal is a node with one socket ("mine") that answers ErrUnknownSocket for others.
type unknownLocal struct{ localOnly }

func (u *unknownLocal) Join(id string, _ ...string) error {
	if id == "mine" {
		return nil
	}
	return hub.ErrUnknownSocket
}

// TestCountAndAskLeaveNothing: two adapters count a broadcast together (this node's 1 and
// the other's 2), ask about a socket neither holds (unknown once the other said so), and
// leave no goroutine once closed.
func TestCountAndAskLeaveNothing(t *testing.T) {
	addr := redistest.Addr(t)
	base := runtime.NumGoroutine()
	prefix := redistest.Prefix(t, "rt-unit-req")
	mk := func(reached int) *Adapter {
		local := &unknownLocal{localOnly{sent: make(chan string, 8)}}
		a, err := New(local, func(_, _ []string, _ string, _ ...any) (int, error) { return reached, nil },
			Options{RedisURL: "redis://" + addr + "/0", KeyPrefix: prefix, RequestTimeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, b := mk(0), mk(2)

	local, remote, partial, err := a.BroadcastCount(hub.Target{Rooms: []string{"r"}}, "ev", json.RawMessage(`1`))
	if err != nil || local != 1 || remote != 2 || partial {
		t.Fatalf("count: local %d remote %d partial %v err %v", local, remote, partial, err)
	}
	if err := a.Join("nobody", "r"); !errors.Is(err, hub.ErrUnknownSocket) {
		t.Fatalf("join of an unknown socket: %v", err)
	}
	// The other node's "unknown" ended the wait, not the timeout.
	var m dto.Metric
	if err := a.m.requests.WithLabelValues("timed_out").Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 0 {
		t.Fatalf("%v requests timed out", n)
	}
	for _, x := range []*Adapter{a, b} {
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
	}
	waitGoroutines(t, base)
}
