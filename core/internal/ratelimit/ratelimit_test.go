package ratelimit

import (
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// fakeClock drives a Limiter's time by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func withClock(l *Limiter) *fakeClock {
	c := &fakeClock{}
	l.now = c.ns.Load
	return c
}

func TestBurstThenSustainedRate(t *testing.T) {
	l := New(3, 3*time.Second, 100)
	clk := withClock(l)

	for i, wantRemaining := range []int{2, 1, 0} {
		r := l.Allow("a")
		if !r.Allowed || r.Remaining != wantRemaining || r.Limit != 3 {
			t.Fatalf("event %d: %+v", i, r)
		}
	}
	r := l.Allow("a")
	if r.Allowed || r.Remaining != 0 || r.RetryAfter != time.Second {
		t.Fatalf("4th event: %+v", r)
	}
	if want := l.base.Add(3 * time.Second); !r.Reset.Equal(want) {
		t.Fatalf("reset = %v, want %v", r.Reset, want)
	}
	// Refused events are not counted: after RetryAfter exactly one more is allowed.
	clk.advance(999 * time.Millisecond)
	if l.Allow("a").Allowed {
		t.Fatal("allowed before RetryAfter")
	}
	clk.advance(time.Millisecond)
	if r := l.Allow("a"); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("after RetryAfter: %+v", r)
	}
	if l.Allow("a").Allowed {
		t.Fatal("second event after one interval allowed")
	}
	// Other keys are independent.
	if !l.Allow("b").Allowed {
		t.Fatal("key b refused")
	}
	// After a whole window of silence the full burst is back.
	clk.advance(3 * time.Second)
	for i := range 3 {
		if !l.Allow("a").Allowed {
			t.Fatalf("burst after idle: event %d refused", i)
		}
	}
}

// TestGCRABound checks the promise GCRA makes, whatever the pattern of events: in any
// stretch of time d at most limit + d/(window/limit) events are allowed (a burst of limit,
// then the sustained rate), and so at most 2*limit-1 in any window-long stretch.
func TestGCRABound(t *testing.T) {
	const limit, window = 7, time.Minute
	interval := int64(window) / limit
	l := New(limit, window, 10)
	clk := withClock(l)
	var allowedAt []int64
	step := []time.Duration{0, time.Millisecond, 3 * time.Second, 17 * time.Second, 100 * time.Millisecond}
	for i := range 5000 {
		clk.advance(step[i%len(step)])
		if l.Allow("k").Allowed {
			allowedAt = append(allowedAt, clk.ns.Load())
		}
	}
	for i := range allowedAt {
		for j := i; j < len(allowedAt); j++ {
			d := allowedAt[j] - allowedAt[i]
			if n := int64(j - i + 1); n > limit+d/interval {
				t.Fatalf("%d events within %v", n, time.Duration(d))
			}
			if d < int64(window) && j-i+1 > 2*limit-1 {
				t.Fatalf("%d events within one window", j-i+1)
			}
		}
	}
	// Over the whole run the rate is the configured one, not less.
	total := time.Duration(allowedAt[len(allowedAt)-1] - allowedAt[0])
	if want := int(total/window)*limit - limit; len(allowedAt) < want {
		t.Fatalf("%d events allowed over %v, want at least %d", len(allowedAt), total, want)
	}
}

func TestNilLimiter(t *testing.T) {
	var l *Limiter
	if New(0, time.Minute, 10) != nil || New(-1, time.Minute, 10) != nil || New(5, 0, 10) != nil {
		t.Fatal("New with limit <= 0 or window <= 0 is not nil")
	}
	for range 1000 {
		if r := l.Allow("x"); !r.Allowed {
			t.Fatal("nil limiter refused")
		}
	}
	l.Forget("x")
	if l.Len() != 0 || l.Limit() != 0 {
		t.Fatal("nil limiter has state")
	}
	if n := testing.AllocsPerRun(100, func() { l.Allow("x") }); n != 0 {
		t.Fatalf("nil limiter allocates %v", n)
	}
}

func TestEvictionBound(t *testing.T) {
	for _, maxKeys := range []int{1, 10, 100, 1000, 100000} {
		l := New(5, time.Minute, maxKeys)
		withClock(l) // frozen time: every key stays active, so only the bound can evict
		for i := range 3 * maxKeys {
			if !l.Allow(strconv.Itoa(i)).Allowed {
				t.Fatalf("maxKeys %d: new key %d refused", maxKeys, i)
			}
			if i%1000 != 0 && i < 3*maxKeys-1 {
				continue
			}
			if n := l.Len(); n > maxKeys {
				t.Fatalf("maxKeys %d: Len = %d after %d keys", maxKeys, n, i+1)
			}
		}
		if n := l.Len(); n < maxKeys*9/10 {
			t.Fatalf("maxKeys %d: Len = %d; capacity wasted", maxKeys, n)
		}
	}
}

func TestEvictionPrefersQuietKeys(t *testing.T) {
	l := New(10, time.Minute, 2)
	withClock(l)
	for range 10 {
		l.Allow("busy")
	}
	l.Allow("quiet")
	l.Allow("new") // the shard is full: "quiet" has the most allowance left and goes
	if r := l.Allow("busy"); r.Allowed {
		t.Fatalf("busy key was evicted: %+v", r)
	}
}

func TestIdleKeysAreSwept(t *testing.T) {
	l := New(10, time.Second, 1000)
	clk := withClock(l)
	for i := range 500 {
		l.Allow("k" + strconv.Itoa(i))
	}
	if l.Len() != 500 {
		t.Fatalf("Len = %d", l.Len())
	}
	// Once every key's allowance is full again, the next Allow in each shard sweeps it.
	clk.advance(2 * time.Second)
	for i := range l.shards {
		l.Allow(keyForShard(l, i))
	}
	if n := l.Len(); n != len(l.shards) {
		t.Fatalf("Len = %d after sweep, want %d (one fresh key per shard)", n, len(l.shards))
	}
	// An idle key is also reused in place when its shard is full.
	l2 := New(1, time.Second, 1)
	clk2 := withClock(l2)
	l2.Allow("a")
	clk2.advance(500 * time.Millisecond)
	if l2.Allow("a").Allowed {
		t.Fatal("second event within the window allowed")
	}
	clk2.advance(600 * time.Millisecond)
	l2.Allow("b")
	if l2.Len() != 1 {
		t.Fatalf("Len = %d", l2.Len())
	}
}

// keyForShard finds a key that hashes to shard i.
func keyForShard(l *Limiter, i int) string {
	for n := 0; ; n++ {
		k := "s" + strconv.Itoa(n)
		if l.shardIndex(k) == i {
			return k
		}
	}
}

func TestForget(t *testing.T) {
	l := New(1, time.Hour, 10)
	l.Allow("a")
	if l.Allow("a").Allowed {
		t.Fatal("limit not applied")
	}
	l.Forget("a")
	if !l.Allow("a").Allowed || l.Len() != 1 {
		t.Fatal("Forget did not reset the key")
	}
}

func TestKeyDoesNotPinCallerBuffer(t *testing.T) {
	l := New(5, time.Minute, 10)
	buf := []byte("abcdef-some-long-key")
	key := unsafe.String(&buf[0], 6)
	l.Allow(key)
	buf[0] = 'z' // the caller reuses its buffer
	if l.Allow("abcdef").Remaining != 3 {
		t.Fatal("stored key aliases the caller's buffer")
	}
}

func TestConcurrentAllow(t *testing.T) {
	const limit, workers, perWorker = 1000, 8, 500
	l := New(limit, time.Hour, 1000)
	base := runtime.NumGoroutine()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				if l.Allow("shared").Allowed {
					allowed.Add(1)
				}
				l.Allow("own-" + strconv.Itoa(w) + "-" + strconv.Itoa(i%50))
				if i%100 == 0 {
					l.Len()
					l.Forget("nobody")
				}
			}
		}()
	}
	wg.Wait()
	// Within an hour-long window exactly limit events of the shared key are allowed.
	if got := allowed.Load(); got != limit {
		t.Fatalf("allowed %d of %d, want exactly %d", got, workers*perWorker, limit)
	}
	// The workers have called Done but may not have exited yet: give them a moment.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Fatalf("goroutines %d > baseline %d: the limiter started some", n, base)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(1000, time.Minute, 100000)
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(keys[i%len(keys)])
		i++
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := New(1000, time.Minute, 100000)
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = "conn-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 7919
		for pb.Next() {
			l.Allow(keys[i%len(keys)])
			i++
		}
	})
}

func BenchmarkAllowNil(b *testing.B) {
	var l *Limiter
	b.ReportAllocs()
	for b.Loop() {
		l.Allow("x")
	}
}
