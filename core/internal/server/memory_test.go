package server_test

import (
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/config"
)

// TestIdleRegisteredHeap holds n idle connections that are connected, welcomed and
// registered, and writes the live heap (every allocation sampled) to the file named by
// RTSERVER_HEAP_PROFILE when set: `go tool pprof -sample_index=inuse_space -top` over it,
// with the test client's frames (-ignore) left out, is the per-connection accounting in
// BENCHMARKS.md. The test itself checks that every register is acknowledged.
func TestIdleRegisteredHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("opens many connections")
	}
	n := 300
	if v, err := strconv.Atoi(os.Getenv("RTSERVER_HEAP_CONNS")); err == nil && v > 0 {
		n = v
	}
	out := os.Getenv("RTSERVER_HEAP_PROFILE")
	if out != "" {
		prev := runtime.MemProfileRate
		runtime.MemProfileRate = 1
		t.Cleanup(func() { runtime.MemProfileRate = prev })
	}
	// The raw clients read nothing while idle, so they answer no ping: heartbeats long
	// enough that no session times out while the others connect.
	e := startServer(t, func(c *config.Config) {
		c.SocketIO.PingInterval = 90 * time.Second
		c.SocketIO.PingTimeout = time.Minute
	})
	for i := range n {
		c := e.raw(t, "mem-"+strconv.Itoa(i))
		c.send(`42["register",{"userId":"mem-` + strconv.Itoa(i) + `"}]`)
		if ack := c.expect("register:ack"); !strings.Contains(ack, `"success":true`) {
			t.Fatalf("register %d: %s", i, ack)
		}
	}
	if out == "" {
		return
	}
	runtime.GC()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}
