package engineio_test

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// rawWS opens a websocket with a bare TCP connection (no client library, no goroutine):
// it sends the upgrade request, reads the 101 response and the open packet frame.
func rawWS(tb testing.TB, addr string) (net.Conn, *bufio.Reader) {
	tb.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	fmt.Fprintf(nc, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		addr, base64.StdEncoding.EncodeToString(key[:]))
	br := bufio.NewReaderSize(nc, 4096)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 101 {
		tb.Fatalf("upgrade: %v %v", err, res)
	}
	if _, err := readFrame(br); err != nil { // open packet
		tb.Fatal(err)
	}
	return nc, br
}

// readFrame reads one unmasked server frame and returns its payload.
func readFrame(br *bufio.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, err
		}
		n = int(b[0])<<8 | int(b[1])
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, err
		}
		n = 0
		for _, x := range b {
			n = n<<8 | int(x)
		}
	}
	p := make([]byte, n)
	_, err := io.ReadFull(br, p)
	return p, err
}

// BenchmarkBroadcast1000 sends one Message to 1,000 websocket sessions per op. The send
// loop is where the server spends its CPU for a delivery (the frame is built once and
// written with one non-blocking write per session); ns/delivery is that loop's time
// divided by deliveries. Clients drain in the same process.
func BenchmarkBroadcast1000(b *testing.B) {
	const n = 1000
	e := startEnv(b, engineio.Options{PingInterval: time.Hour})
	var received atomic.Int64
	var wg sync.WaitGroup
	// Readers wait at the gate while the send loop runs, so that the loop's time is the
	// server's work alone (2 cores would otherwise be shared with 1,000 readers).
	var gate sync.RWMutex
	gate.Lock()
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		nc, br := rawWS(b, e.addr)
		conns = append(conns, nc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// Wait while the benchmark holds the gate (between rounds).
				gate.RLock()
				gate.RUnlock() //lint:ignore SA2001 the empty section is a barrier

				if _, err := readFrame(br); err != nil {
					return
				}
				received.Add(1)
			}
		}()
	}
	b.Cleanup(func() {
		gate.Unlock()
		for _, nc := range conns {
			nc.Close()
		}
		wg.Wait()
	})
	var sessions []*engineio.Conn
	waitFor(b, "OnOpen of every session", func() bool {
		sessions = sessions[:0]
		e.conns.Range(func(_, v any) bool {
			sessions = append(sessions, v.(*engineio.Conn))
			return true
		})
		return len(sessions) == n
	})
	payload := []byte(`42["news",{"title":"hello","body":"a typical small event payload"}]`)
	// The send loop runs on one locked OS thread whose own CPU time (user+system) is read
	// around it: the server's cost per delivery, whatever else the machine is doing.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	var sendTime, sendCPU time.Duration
	for i := 0; i < b.N; i++ {
		cpu0 := threadCPU()
		start := time.Now()
		msg := engineio.NewMessage(payload, false)
		for _, c := range sessions {
			_ = c.Send(msg)
		}
		sendTime += time.Since(start)
		sendCPU += threadCPU() - cpu0
		gate.Unlock()
		// Let the clients keep up so the kernel buffers do not fill.
		want := int64(i+1) * n
		for spins := 0; received.Load() < want; spins++ {
			if spins > 1e7 {
				b.Fatalf("op %d: received %d want %d; sessions %d", i, received.Load(), want, e.eio.Count())
			}
			runtime.Gosched()
		}
		gate.Lock()
	}
	b.StopTimer()
	b.ReportMetric(float64(sendTime.Nanoseconds())/float64(b.N*n), "wall-ns/delivery")
	b.ReportMetric(float64(sendCPU.Nanoseconds())/float64(b.N*n), "cpu-ns/delivery")
}

// threadCPU returns the calling OS thread's CPU time (user+system).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleWebsocketHeap reports the Go heap held per idle websocket session
// (server side plus a bare client net.Conn), after a GC. b.N is ignored.
func BenchmarkIdleWebsocketHeap(b *testing.B) {
	const n = 2000
	e := startEnv(b, engineio.Options{})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		nc, _ := rawWS(b, e.addr)
		conns = append(conns, nc)
	}
	waitFor(b, "sessions", func() bool { return e.eio.Count() == n })
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "heap-bytes/conn")
	for _, nc := range conns {
		nc.Close()
	}
	// Let the sessions end so that a following run starts from a clean heap.
	waitFor(b, "sessions to close", func() bool { return e.eio.Count() == 0 })
}
