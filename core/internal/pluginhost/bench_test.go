package pluginhost

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/dispatch"
)

// benchCallers is the number of concurrent callers, as many clients would be.
const benchCallers = 100

// BenchmarkRoundTrip compares a round trip through the echo plugin process
// (stream, batching, a second process) with the same work done in process.
// Reported: calls/s and latency percentiles at 100 concurrent callers.
//
//	go test -run '^$' -bench RoundTrip -benchtime 200000x ./core/pluginhost/
func BenchmarkRoundTrip(b *testing.B) {
	b.Run("plugin=echo", func(b *testing.B) {
		e := mustEnv(b, Options{}, map[string]string{"echo": "echo1"})
		p := e.h.slots["echo"].cur.Load()
		b0, s0 := p.batches.Load(), p.sent.Load()
		hostCPU, plugCPU := selfCPU(), procCPU(p.pid)
		benchDispatch(b, e.h)
		if n := p.batches.Load() - b0; n > 0 {
			b.ReportMetric(float64(p.sent.Load()-s0)/float64(n), "calls/batch")
		}
		// CPU per call over both processes, which a busy machine does not distort
		// the way it distorts calls/s: 2 cores / this is the idle-machine ceiling.
		hc, pc := selfCPU()-hostCPU, procCPU(p.pid)-plugCPU
		cpu := hc + pc
		b.ReportMetric(float64(pc.Microseconds())/float64(b.N), "plugin-cpu-µs/call")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/call")
	})
	b.Run("in-process", func(b *testing.B) {
		c0 := selfCPU()
		benchDispatch(b, inProcessEcho{})
		b.ReportMetric(float64((selfCPU()-c0).Microseconds())/float64(b.N), "cpu-µs/call")
	})
}

// BenchmarkRoundTripPaced offers the target load instead of as much as
// possible: 100 callers together sending 40,000 calls/s through the echo plugin,
// each call timed from when it was due (so falling behind shows as latency).
// Reported: the rate achieved and latency percentiles.
//
//	go test -run '^$' -bench RoundTripPaced -benchtime 200000x ./core/pluginhost/
func BenchmarkRoundTripPaced(b *testing.B) {
	b.Run("plugin=echo", func(b *testing.B) {
		e := mustEnv(b, Options{}, map[string]string{"echo": "echo1"})
		benchPaced(b, e.h)
	})
	b.Run("in-process", func(b *testing.B) {
		benchPaced(b, inProcessEcho{})
	})
}

func benchPaced(b *testing.B, d dispatch.Dispatcher) {
	const rate = 40000.0
	r := req(dispatch.KindEvent, "bench", map[string]any{"type": "bench", "data": map[string]any{"n": 1, "text": "hello"}})
	ctx := context.Background()
	per := b.N / benchCallers
	if per == 0 {
		per = 1
	}
	interval := time.Duration(float64(time.Second) * benchCallers / rate)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		all = make([]time.Duration, 0, per*benchCallers)
	)
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < benchCallers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, per)
			due := start.Add(interval * time.Duration(c) / benchCallers) // spread the callers out
			for i := 0; i < per; i++ {
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				if _, err := d.Dispatch(ctx, r); err != nil {
					b.Error(err)
					return
				}
				local = append(local, time.Since(due))
				due = due.Add(interval)
			}
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(float64(len(all)-1)*p)].Microseconds()) }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(0.999), "p99.9-µs")
}

// inProcessEcho does what the echo plugin does, without leaving the process.
type inProcessEcho struct{}

func (inProcessEcho) Dispatch(_ context.Context, r *dispatch.Request) (*dispatch.Reply, error) {
	var w struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(r.Payload, &w); err != nil {
		return nil, err
	}
	b, err := json.Marshal(map[string]any{"echo": json.RawMessage(r.Payload), "version": "v1", "kind": "event",
		"name": w.Type, "userId": r.UserID, "socketId": r.SocketID})
	if err != nil {
		return nil, err
	}
	return &dispatch.Reply{Data: b}, nil
}

func benchDispatch(b *testing.B, d dispatch.Dispatcher) {
	r := req(dispatch.KindEvent, "bench", map[string]any{"type": "bench", "data": map[string]any{"n": 1, "text": "hello"}})
	ctx := context.Background()
	if _, err := d.Dispatch(ctx, r); err != nil {
		b.Fatal(err)
	}
	var (
		mu  sync.Mutex
		all = make([]time.Duration, 0, b.N)
	)
	b.SetParallelism((benchCallers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			if _, err := d.Dispatch(ctx, r); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		all = append(all, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(float64(len(all)-1)*p)].Microseconds()) }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is another process's user+system CPU time, from /proc (clock ticks
// of 10ms on Linux).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond
}
