package pluginhost

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtserver/rtserver/core/internal/dispatch"
)

// dispatchAsync calls DispatchAsync and waits for its single outcome, failing the test if
// done is called more than once.
func dispatchAsync(t testing.TB, h *Host, ctx context.Context, r *dispatch.Request) (*dispatch.Reply, error) {
	t.Helper()
	type out struct {
		rep *dispatch.Reply
		err error
	}
	ch := make(chan out, 2)
	var calls atomic.Int32
	h.DispatchAsync(ctx, r, func(rep *dispatch.Reply, err error) {
		if calls.Add(1) > 1 {
			t.Errorf("done called again: %v %v", rep, err)
		}
		ch <- out{rep, err}
	})
	select {
	case o := <-ch:
		time.Sleep(time.Millisecond) // a second call would show here
		if len(ch) > 0 {
			t.Error("done called twice")
		}
		return o.rep, o.err
	case <-time.After(20 * time.Second):
		t.Fatal("done never called")
		return nil, nil
	}
}

// TestAsyncOutcomes: the asynchronous path gives the same answers as Dispatch: a reply,
// NO_HANDLER, a coded plugin error, a panic, PLUGIN_TIMEOUT at the plugin's deadline and
// at the caller's, PLUGIN_UNAVAILABLE when the plugin exits mid-call, and the plugin is
// back afterwards; metrics count the calls.
func TestAsyncOutcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := mustEnv(t, Options{Registerer: reg, Plugins: []PluginConfig{{Name: "testplugin", Timeout: 300 * time.Millisecond}}},
		map[string]string{"testplugin": "testplugin"})
	ctx := context.Background()

	if r, err := dispatchAsync(t, e.h, ctx, testEvent(map[string]any{"x": 1})); err != nil || decode(t, r)["pid"] == nil {
		t.Fatalf("reply %v, %v", r, err)
	}
	if _, err := dispatchAsync(t, e.h, ctx, req(dispatch.KindEvent, "nope", map[string]any{"type": "nope"})); codeOf(err) != dispatch.CodeNoHandler {
		t.Fatalf("no handler: %v", err)
	}
	if _, err := dispatchAsync(t, e.h, ctx, testEvent(map[string]any{"error": "MY_CODE"})); codeOf(err) != "MY_CODE" {
		t.Fatalf("coded error: %v", err)
	}
	if _, err := dispatchAsync(t, e.h, ctx, testEvent(map[string]any{"panic": "boom"})); codeOf(err) != dispatch.CodePluginError {
		t.Fatalf("panic: %v", err)
	}
	start := time.Now()
	if _, err := dispatchAsync(t, e.h, ctx, testEvent(map[string]any{"sleep_ms": 5000})); codeOf(err) != dispatch.CodePluginTimeout {
		t.Fatalf("plugin deadline: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := dispatchAsync(t, e.h, short, testEvent(map[string]any{"sleep_ms": 1000})); codeOf(err) != dispatch.CodePluginTimeout {
		t.Fatalf("caller deadline: %v", err)
	}
	if _, err := dispatchAsync(t, e.h, ctx, testEvent(map[string]any{"exit": 3})); codeOf(err) != dispatch.CodePluginUnavailable {
		t.Fatalf("exit mid-call: %v", err)
	}
	waitFor(t, 10*time.Second, "restart", func() bool {
		_, err := dispatchAsync(t, e.h, ctx, testEvent(nil))
		return err == nil
	})
	if v := metricValue(t, reg, "socket_server_plugin_calls_total", "plugin=testplugin", "kind=event", "code="+dispatch.CodePluginTimeout); v != 2 {
		t.Errorf("timeouts counted %v, want 2", v)
	}
	if v := metricValue(t, reg, "socket_server_plugin_in_flight", "plugin=testplugin"); v != 0 {
		t.Errorf("in flight %v after every call ended", v)
	}
}

// TestAsyncBusyFallsBack: with the in-flight bound reached, DispatchAsync does not block
// its caller; the call waits on a goroutine of its own and then runs out of time, as
// Dispatch's would.
func TestAsyncBusyFallsBack(t *testing.T) {
	e := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "testplugin", MaxInFlight: 1, Timeout: 400 * time.Millisecond}}},
		map[string]string{"testplugin": "testplugin"})
	ctx := context.Background()
	first := make(chan error, 1)
	e.h.DispatchAsync(ctx, testEvent(map[string]any{"sleep_ms": 300}), func(_ *dispatch.Reply, err error) { first <- err })
	time.Sleep(50 * time.Millisecond)
	second := make(chan error, 1)
	t0 := time.Now()
	e.h.DispatchAsync(ctx, testEvent(map[string]any{"sleep_ms": 200}), func(_ *dispatch.Reply, err error) { second <- err })
	if d := time.Since(t0); d > 100*time.Millisecond {
		t.Errorf("DispatchAsync blocked for %v", d)
	}
	if err := <-second; codeOf(err) != dispatch.CodePluginTimeout {
		t.Fatalf("second call: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first call: %v", err)
	}
}

// TestAsyncManyConcurrent: many asynchronous calls at once (more than the send queue
// holds), each answered exactly once with a reply.
func TestAsyncManyConcurrent(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"testplugin": "testplugin"})
	const n = 5000
	var wg sync.WaitGroup
	var bad atomic.Int64
	for i := range n {
		wg.Add(1)
		var once atomic.Bool
		e.h.DispatchAsync(context.Background(), testEvent(map[string]any{"i": i}), func(r *dispatch.Reply, err error) {
			defer wg.Done()
			if !once.CompareAndSwap(false, true) {
				t.Errorf("call %d answered twice", i)
			}
			if err != nil {
				bad.Add(1)
				return
			}
			if decode(t, r)["pid"] == nil {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	if b := bad.Load(); b != 0 {
		t.Fatalf("%d of %d calls failed", b, n)
	}
}

// TestAsyncSharedContexts: calls sharing one caller context (as the hub's do) each end
// once, on their own terms: the quick ones with their reply, the slow ones with
// PLUGIN_TIMEOUT when that context ends, a call on a context that has already ended at
// once, and a cancelled one with PLUGIN_UNAVAILABLE. Nothing stays watched afterwards.
func TestAsyncSharedContexts(t *testing.T) {
	e := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "testplugin", Timeout: 10 * time.Second}}},
		map[string]string{"testplugin": "testplugin"})
	shared, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	const n = 40
	errs := make(chan error, n)
	for i := range n {
		payload := map[string]any{"i": i}
		if i%2 == 1 {
			payload["sleep_ms"] = 3000
		}
		e.h.DispatchAsync(shared, testEvent(payload), func(_ *dispatch.Reply, err error) { errs <- err })
	}
	ok, timedOut := 0, 0
	for range n {
		select {
		case err := <-errs:
			switch codeOf(err) {
			case "":
				ok++
			case dispatch.CodePluginTimeout:
				timedOut++
			default:
				t.Errorf("unexpected outcome %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d calls never ended", n-ok-timedOut)
		}
	}
	if ok != n/2 || timedOut != n/2 {
		t.Fatalf("%d replies and %d timeouts, want %d of each", ok, timedOut, n/2)
	}
	if _, err := dispatchAsync(t, e.h, shared, testEvent(nil)); codeOf(err) != dispatch.CodePluginTimeout {
		t.Fatalf("call on an ended context: %v", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		ccancel()
	}()
	if _, err := dispatchAsync(t, e.h, cctx, testEvent(map[string]any{"sleep_ms": 3000})); codeOf(err) != dispatch.CodePluginUnavailable {
		t.Fatalf("cancelled call: %v", err)
	}
	e.h.mu.Lock()
	p := e.h.slots["testplugin"].cur.Load()
	e.h.mu.Unlock()
	waitFor(t, 5*time.Second, "the watches to end", func() bool {
		p.pmu.Lock()
		defer p.pmu.Unlock()
		// The plugin's own deadline contexts (10 s) are still watched; the ended ones not.
		_, a := p.watched[shared.Done()]
		_, b := p.watched[cctx.Done()]
		return !a && !b
	})
}
