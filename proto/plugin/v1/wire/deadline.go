package wire

import (
	"context"
	"sync"
	"time"
)

// Deadlines hands out shared deadline contexts, on both sides of the wire: the core for
// each plugin's timeout, the SDK for the time left that each request carries. A context of
// its own per request (context.WithTimeout and its cancel: a timer, and a registration
// with the parent) cost several per cent of the CPU of a plugin round trip; requests that
// start within the same short window share one context whose deadline is theirs brought
// forward by at most 1% of the timeout (and at most 10 ms): never later than asked.
//
// The zero value is ready. The shared contexts are never cancelled early: each one's timer
// ends it at its deadline, so at most about a hundred are alive at once per Deadlines.
type Deadlines struct {
	mu  sync.Mutex
	at  time.Time
	ctx context.Context
}

// Get returns a context whose deadline lies between timeout minus a small slack and
// timeout from now. It is only ever done by its deadline.
func (d *Deadlines) Get(timeout time.Duration) context.Context {
	slack := min(timeout/100, 10*time.Millisecond)
	want := time.Now().Add(timeout)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx != nil && !d.at.After(want) && want.Sub(d.at) <= slack {
		return d.ctx
	}
	d.at = want
	// The cancel func is dropped on purpose: the context is shared, and its timer
	// releases it at the deadline.
	ctx, cancel := context.WithDeadline(context.Background(), d.at)
	_ = cancel
	d.ctx = ctx
	return ctx
}
