package socketio

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
)

// TestSocketMemory bounds this package's heap per idle connected socket (engineio's own
// per-session state comes on top).
func TestSocketMemory(t *testing.T) {
	const n = 10000
	srv := NewServer(Options{Logger: testLogger()})
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	var sent atomic.Int64
	conns := make([]countingConn, n)
	for i := range conns {
		conns[i].sent = &sent
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		so := newSocket(srv, &conns[i])
		so.connect(nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("heap per idle socket: %.0f bytes", per)
	if srv.SocketCount() != n {
		t.Fatalf("%d sockets", srv.SocketCount())
	}
	if per > 2048 {
		t.Errorf("heap per idle socket %.0f bytes, want <= 2048", per)
	}
}
