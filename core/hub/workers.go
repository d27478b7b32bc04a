package hub

import (
	"sync"
	"time"
)

// workerPool runs the sockets' request runners on goroutines it keeps for reuse: a fresh
// goroutine per burst of requests paid its stack growth every time; a parked worker
// already has a grown stack. (core/engineio keeps the same kind of pool for its jobs.)
//
// The pool is elastic: a job goes to an idle worker when there is one and to a new
// goroutine otherwise, so a request waiting on a slow plugin never delays another
// socket's. A worker idle for idleTimeout exits, so none is left once traffic stops.
type workerPool struct {
	idleTimeout time.Duration

	mu   sync.Mutex
	idle []*worker // a stack: the most recently parked worker is reused first
}

// worker is one pooled goroutine. work has room for one job so that handing a job to a
// parked worker never blocks the submitter.
type worker struct {
	work chan func()
}

// runners runs every hub's per-socket request queues.
var runners = &workerPool{idleTimeout: 2 * time.Second}

// submit runs f on an idle worker or on a new goroutine.
func (p *workerPool) submit(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.work <- f
		return
	}
	p.mu.Unlock()
	go p.loop(&worker{work: make(chan func(), 1)}, f)
}

// loop runs jobs until the worker has idled for idleTimeout (to twice that). The timer
// is not re-armed per job, which would cost more than the job hand-off itself: when it
// fires, a worker that ran a job since it was armed just re-arms it.
func (p *workerPool) loop(w *worker, f func()) {
	t := time.NewTimer(p.idleTimeout)
	defer t.Stop()
	used := true // a job ran since the timer was armed
	for {
		f()
		f = nil // let the job's closure be collected while parked
		p.park(w)
		if f = p.next(w, t, &used); f == nil {
			return
		}
	}
}

// next waits on the idle stack for w's next job; nil means exit.
func (p *workerPool) next(w *worker, t *time.Timer, used *bool) func() {
	for {
		select {
		case f := <-w.work:
			*used = true
			return f
		case <-t.C:
			if *used {
				*used = false
				t.Reset(p.idleTimeout)
				continue
			}
			if p.unpark(w) {
				return nil
			}
			// A submitter took this worker just as it timed out: its job is coming.
			return <-w.work
		}
	}
}

func (p *workerPool) park(w *worker) {
	p.mu.Lock()
	p.idle = append(p.idle, w)
	p.mu.Unlock()
}

// unpark removes a timed-out w from the idle stack; false if a submitter already took
// it. Timed-out workers sit near the bottom of the stack.
func (p *workerPool) unpark(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.idle {
		if x == w {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = nil
			p.idle = p.idle[:len(p.idle)-1]
			return true
		}
	}
	return false
}
