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
// (a long-polling GET) cannot starve the rest. A worker idle for IdleTimeout (to twice
// that) exits.
//
// A parked worker waits on its channel alone. Expiry is one timer per pool, not per
// worker: a select on a timer channel costs a timer-heap insertion and removal at every
// park, which showed as several per cent of the server's CPU on request traffic.
type Pool struct {
	IdleTimeout time.Duration // how long an idle worker waits for a job before it exits
	// Guard, when set, runs each job (a method value: no allocation per job).
	Guard func(func())

	mu       sync.Mutex
	idle     []*worker   // a stack: the most recently parked worker is reused first
	sweeper  *time.Timer // armed while workers are idle
	sweeping bool
	closed   bool
	wg       sync.WaitGroup // every goroutine the pool started
}

// worker is one pooled goroutine. work has room for one job so that handing a job to a
// parked worker never blocks the submitter; a nil job tells the worker to exit.
type worker struct {
	work   chan func()
	parked time.Time // when it joined the idle stack
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

// loop runs jobs until the sweeper or close tells the worker to exit.
func (p *Pool) loop(w *worker, f func()) {
	defer p.wg.Done()
	for {
		p.call(f)
		f = nil // let the job's closure be collected while parked
		if !p.park(w) {
			return
		}
		if f = <-w.work; f == nil {
			return
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

// park puts w on the idle stack and arms the sweeper; false once the pool is closed.
func (p *Pool) park(w *worker) bool {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	w.parked = now
	p.idle = append(p.idle, w)
	if !p.sweeping {
		p.sweeping = true
		if p.sweeper == nil {
			p.sweeper = time.AfterFunc(p.IdleTimeout, p.sweep)
		} else {
			p.sweeper.Reset(p.IdleTimeout)
		}
	}
	return true
}

// sweep tells the workers parked for IdleTimeout or longer to exit. They sit at the
// bottom of the stack (submitters take from the top), so the oldest come first. It
// re-arms itself while workers stay idle.
func (p *Pool) sweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.sweeping = false
		return
	}
	cutoff := time.Now().Add(-p.IdleTimeout)
	n := 0
	for n < len(p.idle) && !p.idle[n].parked.After(cutoff) {
		p.idle[n].work <- nil
		p.idle[n] = nil
		n++
	}
	if n > 0 {
		k := copy(p.idle, p.idle[n:])
		clear(p.idle[k:])
		p.idle = p.idle[:k]
	}
	if len(p.idle) == 0 {
		p.sweeping = false
		return
	}
	p.sweeper.Reset(p.IdleTimeout)
}

// Close tells idle workers to exit; busy ones exit when their job returns. Wait then
// waits for all of them.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.sweeper != nil {
		p.sweeper.Stop()
	}
	for i, w := range p.idle {
		w.work <- nil
		p.idle[i] = nil
	}
	p.idle = nil
}

// Wait blocks until every goroutine the pool started has returned.
func (p *Pool) Wait() { p.wg.Wait() }
