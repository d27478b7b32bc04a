package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/redistest"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// TestRecoverySaveAfterScriptFlush: Save runs its script by sha without asking Redis
// first; a Redis that forgot the script (SCRIPT FLUSH, as after a restart) still gets
// every write of the pipeline, applied once the script is loaded again.
func TestRecoverySaveAfterScriptFlush(t *testing.T) {
	priv := redistest.StartPrivate(t)
	s, err := NewRecoveryStore(RecoveryOptions{RedisURL: "redis://" + priv.Addr() + "/0", KeyPrefix: "flush"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	save := func(pid, owner, data string) {
		t.Helper()
		w := socketio.SessionWrite{Kind: socketio.WriteCreate, PID: pid, Owner: owner, Data: []byte(data), TTL: time.Minute}
		u := socketio.SessionWrite{Kind: socketio.WriteUpdate, PID: pid, Owner: owner, Data: []byte(data + "!"), TTL: time.Minute}
		if err := s.Save(ctx, []socketio.SessionWrite{w, u}); err != nil {
			t.Fatal(err)
		}
	}
	take := func(pid, want string) {
		t.Helper()
		got, err := s.Take(ctx, pid)
		if err != nil || string(got) != want {
			t.Fatalf("Take(%s) = %q, %v; want %q", pid, got, err, want)
		}
	}
	save("a", "o1", "one") // the first save finds no script either
	take("a", "one!")
	if err := s.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	save("b", "o2", "two")
	take("b", "two!")
	save("c", "o3", "three") // loaded: one pass
	take("c", "three!")
}
