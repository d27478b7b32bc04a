package workpool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWorkerPoolRunsEveryJob submits from many goroutines with an idle timeout short
// enough that workers keep timing out while jobs arrive (the hand-off race), then checks
// that every job ran, that workers were reused, and that close leaves no goroutine.
func TestWorkerPoolRunsEveryJob(t *testing.T) {
	base := runtime.NumGoroutine()
	for _, idle := range []time.Duration{time.Microsecond, 50 * time.Microsecond, time.Second} {
		p := &Pool{IdleTimeout: idle}
		var ran atomic.Int64
		const submitters, jobs = 8, 2000
		var wg sync.WaitGroup
		for i := 0; i < submitters; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < jobs; j++ {
					done := make(chan struct{})
					p.Submit(func() { ran.Add(1); close(done) })
					<-done
				}
			}()
		}
		wg.Wait()
		if got := ran.Load(); got != submitters*jobs {
			t.Fatalf("idle %v: %d jobs ran, want %d", idle, got, submitters*jobs)
		}
		p.Close()
		p.Wait()
		// A job submitted after close still runs.
		done := make(chan struct{})
		p.Submit(func() { close(done) })
		<-done
		p.Wait()
	}
	waitGoroutineCount(t, base+2)
}

func TestWorkerPoolReusesAndExpires(t *testing.T) {
	base := runtime.NumGoroutine()
	p := &Pool{IdleTimeout: 50 * time.Millisecond}
	t.Cleanup(func() { p.Close(); p.Wait() })
	for i := 0; i < 100; i++ {
		done := make(chan struct{})
		p.Submit(func() { close(done) })
		<-done
	}
	// One job at a time: one worker does them all.
	if n := runtime.NumGoroutine(); n > base+2 {
		t.Errorf("%d goroutines for sequential jobs, %d before", n, base)
	}
	waitGoroutineCount(t, base+0)
}

// TestWorkerPoolBlockingJobs: jobs that block do not hold up others (no queueing).
func TestWorkerPoolBlockingJobs(t *testing.T) {
	base := runtime.NumGoroutine()
	p := &Pool{IdleTimeout: time.Second}
	release := make(chan struct{})
	for i := 0; i < 100; i++ {
		p.Submit(func() { <-release })
	}
	done := make(chan struct{})
	p.Submit(func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a job waited behind blocked ones")
	}
	close(release)
	p.Close()
	p.Wait()
	waitGoroutineCount(t, base+0)
}

func BenchmarkWorkerPool(b *testing.B) {
	p := &Pool{IdleTimeout: time.Second}
	b.Cleanup(func() { p.Close(); p.Wait() })
	done := make(chan struct{})
	f := func() { done <- struct{}{} }
	b.ReportAllocs()
	for b.Loop() {
		p.Submit(f)
		<-done
	}
}

func BenchmarkGoroutinePerJob(b *testing.B) {
	done := make(chan struct{})
	f := func() { done <- struct{}{} }
	b.ReportAllocs()
	for b.Loop() {
		go f()
		<-done
	}
}

// waitGoroutineCount fails unless the goroutine count falls to max within a few seconds.
func waitGoroutineCount(t *testing.T, max int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > max {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want at most %d", runtime.NumGoroutine(), max)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deepJob grows its goroutine's stack as a handler does (nbio's parser, net/http's
// machinery, JSON encoding): a fresh goroutine pays for that growth every time.
//
//go:noinline
func deepJob(n int) byte {
	var pad [512]byte
	if n == 0 {
		return pad[0]
	}
	pad[n%512] = byte(n)
	return deepJob(n-1) + pad[n%512]
}

func BenchmarkWorkerPoolDeepStack(b *testing.B) {
	p := &Pool{IdleTimeout: time.Second}
	b.Cleanup(func() { p.Close(); p.Wait() })
	done := make(chan struct{})
	f := func() { deepJob(32); done <- struct{}{} }
	for b.Loop() {
		p.Submit(f)
		<-done
	}
}

func BenchmarkGoroutinePerJobDeepStack(b *testing.B) {
	done := make(chan struct{})
	f := func() { deepJob(32); done <- struct{}{} }
	for b.Loop() {
		go f()
		<-done
	}
}
