package hub

import (
	"context"
	"sync"
	"time"
)

// dispatchContexts hands out the contexts of client:* requests. A context of its own per
// request (context.WithTimeout and its cancel) cost about 6% of the server's CPU per
// plugin round trip; requests that start within the same short window share one whose
// deadline is theirs rounded up by at most 1% of the timeout (and at most 10 ms). The
// shared context is never cancelled early: its timer ends it at the deadline, so at most
// about a hundred are alive at once.
var dispatchContexts deadlineCache

type deadlineCache struct {
	mu  sync.Mutex
	at  time.Time
	ctx context.Context
}

// get returns a context whose deadline lies between timeout and timeout plus a small
// slack from now.
func (d *deadlineCache) get(timeout time.Duration) context.Context {
	slack := min(timeout/100, 10*time.Millisecond)
	want := time.Now().Add(timeout)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx != nil && !d.at.Before(want) && d.at.Sub(want) <= slack {
		return d.ctx
	}
	d.at = want.Add(slack)
	// The cancel func is dropped on purpose: the context is shared, and its timer
	// releases it at the deadline.
	ctx, cancel := context.WithDeadline(context.Background(), d.at)
	_ = cancel
	d.ctx = ctx
	return ctx
}
