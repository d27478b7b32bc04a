// Package workpool runs jobs on goroutines kept for reuse, for the hot paths that would
// otherwise start a goroutine per job (the network engine's handler jobs, the per-socket
// request runners).
package workpool

import (
	"sync"
	"time"
)

// Pool runs jobs on goroutines it keeps for reuse. A fresh goroutine per job costs
// its stack growth again and again (measured at about a fifth of the server's CPU on
// websocket traffic); a parked worker already has a grown stack.
//
// The pool is elastic: a job goes to an idle worker when there is one and to a new
// goroutine otherwise, so jobs never queue behind each other and a handler that blocks
// (a long-polling GET) cannot starve the rest. A worker idle for IdleTimeout exits.
type Pool struct {
	IdleTimeout time.Duration // how long an idle worker waits for a job before it exits
	// Guard, when set, runs each job (a method value: no allocation per job).
	Guard func(func())

	mu     sync.Mutex
	idle   []*worker // a stack: the most recently parked worker is reused first
	closed bool
	wg     sync.WaitGroup // every goroutine the pool started
}

// worker is one pooled goroutine. work has room for one job so that handing a job to a
// parked worker never blocks the submitter; a nil job tells the worker to exit.
type worker struct {
	work chan func()
}

// Submit runs f on an idle worker or on a new goroutine. After close it still runs f on
// a goroutine of its own (counted by Wait), as nothing may be dropped.
func (p *Pool) Submit(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.work <- f
		return
	}
	closed := p.closed
	p.wg.Add(1)
	p.mu.Unlock()
	if closed {
		go func() {
			defer p.wg.Done()
			p.call(f)
		}()
		return
	}
	go p.loop(&worker{work: make(chan func(), 1)}, f)
}

// loop runs jobs until the worker has idled for IdleTimeout (to twice that) or the pool
// closes. The timer is not re-armed per job, which would cost more than the job hand-off
// itself: when it fires, a worker that ran a job since it was armed just re-arms it.
func (p *Pool) loop(w *worker, f func()) {
	defer p.wg.Done()
	t := time.NewTimer(p.IdleTimeout)
	defer t.Stop()
	used := true // a job ran since the timer was armed
	for {
		p.call(f)
		f = nil // let the job's closure be collected while parked
		if !p.park(w) {
			return
		}
		f = p.next(w, t, &used)
		if f == nil {
			return
		}
	}
}

// next waits on the idle stack for w's next job; nil means exit.
func (p *Pool) next(w *worker, t *time.Timer, used *bool) func() {
	for {
		select {
		case f := <-w.work:
			*used = true
			return f
		case <-t.C:
			if *used {
				*used = false
				t.Reset(p.IdleTimeout)
				continue
			}
			if p.unpark(w) {
				return nil
			}
			// A submitter (or close) took this worker just as it timed out: its
			// job is coming.
			return <-w.work
		}
	}
}

func (p *Pool) call(f func()) {
	if p.Guard != nil {
		p.Guard(f)
		return
	}
	f()
}

// park puts w on the idle stack; false once the pool is closed.
func (p *Pool) park(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.idle = append(p.idle, w)
	return true
}

// unpark removes a timed-out w from the idle stack; false if a submitter (or close)
// already took it. Timed-out workers sit near the bottom of the stack.
func (p *Pool) unpark(w *worker) bool {
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

// Close tells idle workers to exit; busy ones exit when their job returns. Wait then
// waits for all of them.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for i, w := range p.idle {
		w.work <- nil
		p.idle[i] = nil
	}
	p.idle = nil
}

// Wait blocks until every goroutine the pool started has returned.
func (p *Pool) Wait() { p.wg.Wait() }
