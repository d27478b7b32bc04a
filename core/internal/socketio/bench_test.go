package socketio

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// The benchmarks measure the server's own CPU: the clients run in a child process (this
// test binary re-executed with SOCKETIO_BENCH_CLIENTS set), and the server process's
// user+system time (getrusage) is divided by the deliveries or round trips made.

func TestMain(m *testing.M) {
	if spec := os.Getenv("SOCKETIO_BENCH_CLIENTS"); spec != "" {
		os.Exit(runBenchClients(spec))
	}
	os.Exit(m.Run())
}

// runBenchClients connects n raw websocket clients to url and answers: pings, EVENTs
// asking for an ack (acked with "ok"), and "end" (echoed back as an event). It prints
// "ready" once all are connected and exits when stdin closes.
func runBenchClients(spec string) int {
	url, nStr, _ := strings.Cut(spec, ",")
	n, _ := strconv.Atoi(nStr)
	wsURL := strings.Replace(url, "http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, n)
	for i := range n {
		ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return 1
		}
		conns[i] = ws
		_, _, _ = ws.ReadMessage() // handshake
		_ = ws.WriteMessage(websocket.TextMessage, []byte("40"))
		if _, m, err := ws.ReadMessage(); err != nil || !bytes.HasPrefix(m, []byte("40")) {
			fmt.Fprintln(os.Stderr, "connect:", string(m), err)
			return 1
		}
		var mu sync.Mutex // gorilla allows one concurrent writer
		write := func(s string) {
			mu.Lock()
			_ = ws.WriteMessage(websocket.TextMessage, []byte(s))
			mu.Unlock()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, m, err := ws.ReadMessage()
				if err != nil {
					return
				}
				switch {
				case len(m) == 1 && m[0] == '2':
					write("3")
				case bytes.HasPrefix(m, []byte(`42["end"`)):
					write(`42["end"]`)
				case len(m) > 2 && m[0] == '4' && m[1] == '2' && m[2] >= '0' && m[2] <= '9':
					i := 2
					for i < len(m) && m[i] >= '0' && m[i] <= '9' {
						i++
					}
					write(`43` + string(m[2:i]) + `["ok"]`)
				}
			}
		}()
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	for _, ws := range conns {
		_ = ws.Close()
	}
	wg.Wait()
	return 0
}

// startBenchClients runs n clients in a child process and waits until they are connected.
func startBenchClients(b *testing.B, url string, n int) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SOCKETIO_BENCH_CLIENTS="+url+","+strconv.Itoa(n))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		b.Fatalf("bench clients: %q %v", line, err)
	}
}

// cpuSplit returns the process's user and system CPU time.
func cpuSplit() (user, sys time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// BenchmarkEmitRoom1000 encodes one event per op and delivers it to the 1,000 sockets of
// a room over real websockets. Reports server CPU per delivery.
func BenchmarkEmitRoom1000(b *testing.B) {
	const n = 1000
	var ends atomic.Int64
	srv, url := startServer(b, Options{}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			so.Join("bench")
			so.On("end", func(*Socket, Args, Ack) { ends.Add(1) })
		})
	})
	startBenchClients(b, url, n)
	eventually(b, "room filled", func() bool { return srv.RoomSize("bench") == n })
	payload := map[string]any{"type": "chat", "text": "hello everyone in the room", "n": 42}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	u0, s0 := cpuSplit()
	for i := 0; i < b.N; i++ {
		if got, err := srv.EmitTo([]string{"bench"}, nil, "news", payload); err != nil || got != n {
			b.Fatalf("reached %d: %v", got, err)
		}
		if i%64 == 63 {
			// Let the clients keep up so the outbound cap is never reached.
			waitEnds(b, srv, &ends, n)
		}
	}
	waitEnds(b, srv, &ends, n)
	u1, s1 := cpuSplit()
	b.StopTimer()
	d := float64(b.N * n)
	b.ReportMetric(float64((u1-u0+s1-s0).Nanoseconds())/d, "cpu-ns/delivery")
	b.ReportMetric(float64((u1-u0).Nanoseconds())/d, "user-ns/delivery")
}

// waitEnds emits "end" to the room and waits until every client echoed it: everything
// emitted before has then been read.
func waitEnds(b *testing.B, srv *Server, ends *atomic.Int64, n int) {
	ends.Store(0)
	_, _ = srv.EmitTo([]string{"bench"}, nil, "end")
	deadline := time.Now().Add(30 * time.Second)
	for ends.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d clients answered", ends.Load(), n)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// BenchmarkAckRoundTrip: server EmitWithAckFunc to a client that acks at once, 64 in
// flight over 64 sockets. Reports server CPU per round trip.
func BenchmarkAckRoundTrip(b *testing.B) {
	const n = 64
	var mu sync.Mutex
	var sockets []*Socket
	_, url := startServer(b, Options{}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			mu.Lock()
			sockets = append(sockets, so)
			mu.Unlock()
		})
	})
	startBenchClients(b, url, n)
	eventually(b, "all sockets", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sockets) == n
	})
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	done := func(Args, error) { <-sem; wg.Done() }
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	u0, s0 := cpuSplit()
	for i := 0; i < b.N; i++ {
		sem <- struct{}{}
		wg.Add(1)
		if err := sockets[i%n].EmitWithAckFunc("q", 10*time.Second, done, i); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	u1, s1 := cpuSplit()
	b.StopTimer()
	b.ReportMetric(float64((u1-u0+s1-s0).Nanoseconds())/float64(b.N), "cpu-ns/roundtrip")
	b.ReportMetric(float64((u1-u0).Nanoseconds())/float64(b.N), "user-ns/roundtrip")
}

// BenchmarkEmitRoom1000Layer measures this package alone: encode once, collect 1,000
// room members and hand the shared messages to each (a transport that only counts).
func BenchmarkEmitRoom1000Layer(b *testing.B) {
	srv := NewServer(Options{Logger: testLogger()})
	b.Cleanup(func() { _ = srv.Close(context.Background()) })
	var sent atomic.Int64
	for range 1000 {
		so := newSocket(srv, &countingConn{sent: &sent})
		so.connect(nil)
		so.Join("bench")
	}
	payload := map[string]any{"type": "chat", "text": "hello everyone in the room", "n": 42}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n, _ := srv.EmitTo([]string{"bench"}, nil, "news", payload); n != 1000 {
			b.Fatal(n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/delivery")
}

// countingConn is a transport that only counts what it is given.
type countingConn struct {
	fakeSession
	sent   *atomic.Int64
	closed atomic.Bool
}

func (c *countingConn) Close(string) { c.closed.Store(true) }
func (c *countingConn) Send(m ...*engineio.Message) error {
	if c.closed.Load() {
		return engineio.ErrClosed
	}
	c.sent.Add(int64(len(m)))
	return nil
}
func (c *countingConn) SendOne(m *engineio.Message) error          { return c.Send(m) }
func (c *countingConn) Queue(m ...*engineio.Message) (bool, error) { return false, c.Send(m...) }
func (c *countingConn) Flush()                                     {}

// BenchmarkAckRoundTripLayer measures this package alone: EmitWithAckFunc, then the
// client's ACK packet decoded and matched (a transport that only counts).
func BenchmarkAckRoundTripLayer(b *testing.B) {
	srv := NewServer(Options{Logger: testLogger()})
	b.Cleanup(func() { _ = srv.Close(context.Background()) })
	var sent atomic.Int64
	so := newSocket(srv, &countingConn{sent: &sent})
	so.connect(nil)
	var got int
	done := func(a Args, err error) { got += len(a.Raw) }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := so.EmitWithAckFunc("q", 10*time.Second, done, i); err != nil {
			b.Fatal(err)
		}
		so.cl.onMessage(append(strconv.AppendUint([]byte("3"), uint64(i+1), 10), `["ok"]`...), false)
	}
	b.StopTimer()
	if got != b.N {
		b.Fatalf("acks %d of %d", got, b.N)
	}
}
