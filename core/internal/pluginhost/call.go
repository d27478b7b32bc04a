package pluginhost

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rtserver/rtserver/core/internal/dispatch"
	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
)

// Dispatch routes req to its plugin and waits for the outcome: it is DispatchAsync and a
// wait. Errors are *dispatch.Error: NO_HANDLER (no route), PLUGIN_UNAVAILABLE (not
// running, crashed, closed, or ctx cancelled), PLUGIN_TIMEOUT, or the plugin's own code
// (PLUGIN_ERROR for uncoded failures and panics).
func (h *Host) Dispatch(ctx context.Context, req *dispatch.Request) (*dispatch.Reply, error) {
	w := waits.Get().(chan outcome)
	h.dispatch(ctx, req, nil, w)
	o := <-w
	waits.Put(w)
	return o.rep, o.err
}

// waits holds the channels Dispatch waits on: the outcome is the last thing sent there,
// and Dispatch takes it, so the channel is empty and unused again when it goes back.
var waits = sync.Pool{New: func() any { return make(chan outcome, 1) }}

type outcome struct {
	rep *dispatch.Reply
	err error
}

// DispatchAsync routes req to its plugin; done gets the outcome exactly once, and must
// not block. The plugin's deadline is its own timeout (PluginConfig.Timeout, else
// Options.DefaultTimeout) from now; ctx ends the call early: when it is cancelled (its
// client went away) the call fails with PLUGIN_UNAVAILABLE, the plugin's handler is
// cancelled and the call's slot under the in-flight bound is given back at once.
//
// done runs on the plugin stream's receive goroutine, a context's goroutine, or this one
// when the outcome is known at once. DispatchAsync itself never blocks: a call that has
// to wait for a slot or for room in the send queue waits on a goroutine of its own.
func (h *Host) DispatchAsync(ctx context.Context, req *dispatch.Request, done func(*dispatch.Reply, error)) {
	h.dispatch(ctx, req, done, nil)
}

// dispatch is the one call path: the outcome goes to done, or (Dispatch) to ch.
func (h *Host) dispatch(ctx context.Context, req *dispatch.Request, done func(*dispatch.Reply, error), ch chan<- outcome) {
	s, lim, err := h.route(ctx, req)
	if err != nil {
		if done != nil {
			done(nil, err)
		} else {
			ch <- outcome{nil, err}
		}
		return
	}
	c := &call{h: h, s: s, req: req, lim: lim, start: time.Now(), done: done, ch: ch}
	if err := checkPayload(req); err != nil {
		c.complete(nil, err)
		return
	}
	if lim.err() != nil { // the client is already gone
		c.complete(nil, limitErr(s.name, lim))
		return
	}
	if !c.tryStart() {
		go c.startWaiting()
	}
}

// route finds req's plugin slot and the limits of the call: ctx and the plugin's timeout.
func (h *Host) route(ctx context.Context, req *dispatch.Request) (*slot, limits, error) {
	if h.closed.Load() {
		return nil, limits{}, dispatch.Errorf(dispatch.CodePluginUnavailable, "plugin host is closed")
	}
	s := h.routes.Load().lookup(req.Kind, req.Name)
	if s == nil {
		select {
		case <-h.ready:
		default:
			return nil, limits{}, dispatch.Errorf(dispatch.CodePluginUnavailable, "plugins are still loading")
		}
		return nil, limits{}, dispatch.Errorf(dispatch.CodeNoHandler, "no handler for %s %q", req.Kind, req.Name)
	}
	return s, limits{caller: ctx, own: s.deadlines.Get(s.timeout)}, nil
}

// call is one request to a plugin, from its slot under the in-flight bound to its
// outcome, which complete delivers once.
type call struct {
	h     *Host
	s     *slot
	p     *proc // set once the call holds a slot of p's
	req   *dispatch.Request
	lim   limits
	start time.Time
	id    uint64
	// The outcome goes to done, or when it is nil to ch.
	done func(*dispatch.Reply, error)
	ch   chan<- outcome
}

// tryStart sends the call if that needs no waiting; false means it must wait (the
// in-flight bound is reached or the send queue is full) and nothing was done.
func (c *call) tryStart() bool {
	// A process may start draining between our load and tryBegin (hot reload); the slot
	// then already points at its successor, so try again.
	for attempt := 0; attempt < 3; attempt++ {
		p := c.s.cur.Load()
		if p == nil {
			break
		}
		err := p.tryBegin()
		if errors.Is(err, errDraining) {
			continue
		}
		if err != nil {
			return false // errBusy
		}
		c.hold(p)
		if p.send(c, false) {
			return true
		}
		c.release()
		return false
	}
	c.complete(nil, c.unavailable())
	return true
}

// startWaiting sends the call, waiting within its limits for a slot and for room in the
// send queue.
func (c *call) startWaiting() {
	for attempt := 0; attempt < 3; attempt++ {
		p := c.s.cur.Load()
		if p == nil {
			break
		}
		err := p.begin(c.lim)
		if errors.Is(err, errDraining) {
			continue
		}
		if err != nil {
			c.complete(nil, err)
			return
		}
		c.hold(p)
		p.send(c, true)
		return
	}
	c.complete(nil, c.unavailable())
}

func (c *call) unavailable() error {
	c.h.mu.Lock()
	state := c.s.state
	c.h.mu.Unlock()
	return dispatch.Errorf(dispatch.CodePluginUnavailable, "plugin %s is not available (%s)", c.s.name, state)
}

// hold records the slot of p's that the call holds.
func (c *call) hold(p *proc) {
	c.p = p
	c.s.inFl.Inc()
}

// release gives the slot back.
func (c *call) release() {
	c.s.inFl.Dec()
	c.p.end()
	c.p = nil
}

// complete gives the slot back and delivers the outcome: the plugin's answer or err.
func (c *call) complete(resp *pluginv1.HandleResponse, err error) {
	if c.p != nil {
		c.release()
	}
	rep, err := c.h.finish(c.s, c.req, c.start, resp, err)
	if c.done != nil {
		c.done(rep, err)
	} else {
		c.ch <- outcome{rep, err}
	}
}

// replied completes a call with the plugin's answer; nil means the process ended.
func (c *call) replied(r *pluginv1.HandleResponse) {
	switch {
	case r == nil:
		c.complete(nil, dispatch.Errorf(dispatch.CodePluginUnavailable, "plugin %s exited during the call", c.s.name))
	case r.GetError() != nil && errors.Is(c.lim.err(), context.DeadlineExceeded):
		// A handler that gave up at its deadline may answer just before our own watch
		// fires: it is still a timeout, whatever the plugin called it.
		c.complete(nil, limitErr(c.s.name, c.lim))
	default:
		c.complete(r, nil)
	}
}

// expired completes a call taken from pending because one of its contexts ended first,
// and tells the plugin to cancel its handler.
func (c *call) expired() {
	select {
	case c.p.cancelq <- c.id:
	default: // the handler then runs to its own deadline
	}
	c.complete(nil, limitErr(c.s.name, c.lim))
}

// dependsOn reports whether the call ends with the context whose Done channel is done.
func (c *call) dependsOn(done <-chan struct{}) bool {
	return c.lim.own.Done() == done || c.lim.caller.Done() == done
}

// finish records a call's metrics and turns the plugin's answer into the reply.
func (h *Host) finish(s *slot, req *dispatch.Request, start time.Time, resp *pluginv1.HandleResponse, err error) (*dispatch.Reply, error) {
	if d, ok := s.dur[req.Kind]; ok {
		d.Observe(time.Since(start).Seconds())
	}
	if err == nil && resp.Error != nil {
		err = h.pluginError(s, req, resp.Error)
	}
	if err != nil {
		code := dispatch.CodeOf(err, dispatch.CodePluginError)
		h.m.calls.WithLabelValues(s.name, req.Kind.String(), s.labels.of(code)).Inc()
		return nil, err
	}
	if c, ok := s.okCalls[req.Kind]; ok {
		c.Inc()
	}
	return &dispatch.Reply{Data: resp.Data}, nil
}
