package engineio

import (
	"container/heap"
	"sync"
	"time"
)

// heartbeats fires the heartbeat deadlines of every session of a Server from one timer.
// A time.Timer per session cost about 250 bytes of live heap per idle connection; here a
// session costs its deadline, its place in the heap and a slot of the heap's slice.
// Deadlines are exact, as with a timer each: the shared timer is always armed for the
// earliest one, and each due session's onTimer runs on a goroutine of its own, as
// time.AfterFunc would run it, so a slow OnClose (ping timeout) delays no other session.
//
// mu is a leaf lock: taken under a Conn's mu, never the other way round, and nothing is
// called out under it.
type heartbeats struct {
	epoch time.Time   // deadlines are monotonic durations since epoch
	run   func(*Conn) // what a due deadline runs: (*Conn).onTimer

	mu    sync.Mutex
	due   hbHeap
	timer *time.Timer
	armed time.Duration // the deadline timer is set for; -1 when it is not set
}

func newHeartbeats() *heartbeats {
	return &heartbeats{epoch: time.Now(), run: (*Conn).onTimer, armed: -1}
}

func (h *heartbeats) now() time.Duration { return time.Since(h.epoch) }

// schedule sets c's heartbeat to fire d from now, replacing any deadline it had.
func (h *heartbeats) schedule(c *Conn, d time.Duration) {
	h.mu.Lock()
	c.hbAt = h.now() + d
	if c.hbIdx < 0 {
		heap.Push(&h.due, c)
	} else {
		heap.Fix(&h.due, int(c.hbIdx))
	}
	h.armLocked()
	h.mu.Unlock()
}

// stop cancels c's heartbeat, if it has one.
func (h *heartbeats) stop(c *Conn) {
	h.mu.Lock()
	if c.hbIdx >= 0 {
		heap.Remove(&h.due, int(c.hbIdx))
	}
	h.mu.Unlock()
}

// pending reports whether c has a deadline that has not fired.
func (h *heartbeats) pending(c *Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return c.hbIdx >= 0
}

// armLocked sets the timer for the earliest deadline unless it is set for one no later.
// A timer left set for a deadline that was cancelled fires for nothing and re-arms.
func (h *heartbeats) armLocked() {
	if len(h.due) == 0 {
		return
	}
	next := h.due[0].hbAt
	if h.armed >= 0 && h.armed <= next {
		return
	}
	h.armed = next
	d := next - h.now()
	if h.timer == nil {
		h.timer = time.AfterFunc(d, h.fire)
		return
	}
	h.timer.Reset(d)
}

// fire takes every session whose deadline has passed out of the heap and runs its onTimer.
func (h *heartbeats) fire() {
	h.mu.Lock()
	h.armed = -1
	now := h.now()
	var fired []*Conn
	for len(h.due) > 0 && h.due[0].hbAt <= now {
		fired = append(fired, heap.Pop(&h.due).(*Conn))
	}
	h.armLocked()
	h.mu.Unlock()
	for _, c := range fired {
		go h.run(c)
	}
}

// hbHeap is a min-heap of sessions on their deadline; each session knows its index.
type hbHeap []*Conn

func (q hbHeap) Len() int           { return len(q) }
func (q hbHeap) Less(i, j int) bool { return q[i].hbAt < q[j].hbAt }
func (q hbHeap) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].hbIdx = int32(i)
	q[j].hbIdx = int32(j)
}

func (q *hbHeap) Push(x any) {
	c := x.(*Conn)
	c.hbIdx = int32(len(*q))
	*q = append(*q, c)
}

func (q *hbHeap) Pop() any {
	old := *q
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	if n := len(*q); cap(*q) > 1024 && n < cap(*q)/4 {
		// Give back what a past peak of sessions left behind.
		*q = append(make(hbHeap, 0, 2*n), *q...)
	}
	c.hbIdx = -1
	return c
}
