package engineio

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestHeartbeatsFireEachDeadlineOnce: of many sessions scheduled, rescheduled and stopped
// in any order, every one still scheduled fires exactly once, never before its deadline,
// and a stopped one never fires.
func TestHeartbeatsFireEachDeadlineOnce(t *testing.T) {
	h := newHeartbeats()
	var mu sync.Mutex
	fired := map[*Conn]int{}
	done := make(chan struct{}, 1000)
	h.run = func(c *Conn) {
		h.mu.Lock()
		early := h.now() < c.hbAt
		h.mu.Unlock()
		if early {
			t.Errorf("fired before its deadline")
		}
		mu.Lock()
		fired[c]++
		mu.Unlock()
		done <- struct{}{}
	}
	conns := make([]*Conn, 300)
	for i := range conns {
		conns[i] = &Conn{hbIdx: -1}
		// Far enough that none fires before the loop below changed them all.
		h.schedule(conns[i], time.Hour+time.Duration(rand.IntN(1000))*time.Millisecond)
	}
	stopped := map[*Conn]bool{}
	for i, c := range conns {
		if i%3 == 0 {
			h.stop(c)
			stopped[c] = true
			continue
		}
		h.schedule(c, time.Duration(rand.IntN(40))*time.Millisecond) // replaces the first
	}
	want := len(conns) - len(stopped)
	for range want {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d deadlines fired", len(fired), want)
		}
	}
	for _, c := range conns {
		if h.pending(c) {
			t.Errorf("a session still has a deadline after it fired")
		}
	}
	// Whatever was left to fire has had the time to.
	time.Sleep(60 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, c := range conns {
		if n := fired[c]; stopped[c] && n != 0 || !stopped[c] && n != 1 {
			t.Errorf("fired %d times (stopped %v)", n, stopped[c])
		}
	}
	if len(h.due) != 0 {
		t.Errorf("%d deadlines left", len(h.due))
	}
}
