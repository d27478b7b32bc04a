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
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/engineio"
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
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		nc, br := rawWS(b, e.addr)
		conns = append(conns, nc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := readFrame(br); err != nil {
					return
				}
				received.Add(1)
			}
		}()
	}
	b.Cleanup(func() {
		for _, nc := range conns {
			nc.Close()
		}
		wg.Wait()
	})
	waitFor(b, "sessions", func() bool { return e.eio.Count() == n })
	sessions := make([]*engineio.Conn, 0, n)
	e.conns.Range(func(_, v any) bool {
		sessions = append(sessions, v.(*engineio.Conn))
		return true
	})
	payload := []byte(`42["news",{"title":"hello","body":"a typical small event payload"}]`)
	b.ReportAllocs()
	b.ResetTimer()
	var sendTime time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		msg := engineio.NewMessage(payload, false)
		for _, c := range sessions {
			_ = c.Send(msg)
		}
		sendTime += time.Since(start)
		// Let the clients keep up so the kernel buffers do not fill.
		want := int64(i+1) * n
		for received.Load() < want {
			runtime.Gosched()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(sendTime.Nanoseconds())/float64(b.N*n), "ns/delivery")
}

// BenchmarkIdleWebsocketHeap reports the Go heap held per idle websocket session
// (server side plus a bare client net.Conn), after a GC. Run with -benchtime=1x.
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
	b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/n, "stack-bytes/conn")
	for _, nc := range conns {
		nc.Close()
	}
}
