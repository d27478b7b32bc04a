package pluginhost

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/dispatch"
)

// The two ways to call: Dispatch, and DispatchAsync with a wait.
var callPaths = []struct {
	name string
	call func(t testing.TB, h *Host, ctx context.Context, r *dispatch.Request) (*dispatch.Reply, error)
}{
	{"Dispatch", func(_ testing.TB, h *Host, ctx context.Context, r *dispatch.Request) (*dispatch.Reply, error) {
		return h.Dispatch(ctx, r)
	}},
	{"DispatchAsync", dispatchAsync},
}

// socketContext is what the hub hands the dispatcher: no deadline, cancelled when the
// socket disconnects.
func socketContext(t testing.TB) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, cancel
}

// TestPluginTimeoutOverridesDefaultBothWays: the plugin's own timeout is its deadline,
// whether above or below plugins.default_timeout, on both call paths; the handler sees it.
func TestPluginTimeoutOverridesDefaultBothWays(t *testing.T) {
	t.Run("above", func(t *testing.T) {
		e := mustEnv(t, Options{DefaultTimeout: 150 * time.Millisecond,
			Plugins: []PluginConfig{{Name: "testplugin", Timeout: 3 * time.Second}}},
			map[string]string{"testplugin": "testplugin"})
		ctx, _ := socketContext(t)
		for _, p := range callPaths {
			r, err := p.call(t, e.h, ctx, testEvent(map[string]any{"sleep_ms": 600}))
			if err != nil {
				t.Fatalf("%s: a 600ms handler under a 3s plugin timeout (default 150ms): %v", p.name, err)
			}
			if left := decode(t, r)["left_ms"].(float64); left <= 1000 || left > 3000 {
				t.Fatalf("%s: the handler saw %vms left, want the plugin's 3s", p.name, left)
			}
		}
	})
	t.Run("below", func(t *testing.T) {
		e := mustEnv(t, Options{DefaultTimeout: 10 * time.Second,
			Plugins: []PluginConfig{{Name: "testplugin", Timeout: 200 * time.Millisecond}}},
			map[string]string{"testplugin": "testplugin"})
		ctx, _ := socketContext(t)
		for _, p := range callPaths {
			if _, err := p.call(t, e.h, ctx, testEvent(map[string]any{"sleep_ms": 3000})); codeOf(err) != dispatch.CodePluginTimeout {
				t.Fatalf("%s: a 3s handler under a 200ms plugin timeout (default 10s): %v", p.name, err)
			}
			r, err := p.call(t, e.h, ctx, testEvent(nil))
			if err != nil {
				t.Fatal(err)
			}
			if left := decode(t, r)["left_ms"].(float64); left <= 0 || left > 200 {
				t.Fatalf("%s: the handler saw %vms left, want the plugin's 200ms", p.name, left)
			}
		}
	})
	t.Run("default", func(t *testing.T) {
		e := mustEnv(t, Options{DefaultTimeout: 200 * time.Millisecond}, map[string]string{"testplugin": "testplugin"})
		ctx, _ := socketContext(t)
		for _, p := range callPaths {
			if _, err := p.call(t, e.h, ctx, testEvent(map[string]any{"sleep_ms": 3000})); codeOf(err) != dispatch.CodePluginTimeout {
				t.Fatalf("%s: a 3s handler under a 200ms default timeout: %v", p.name, err)
			}
		}
	})
}

// TestGoneClientCancelsPluginCall: when the request's context is cancelled (its socket
// disconnected), the call ends with PLUGIN_UNAVAILABLE on both paths, the plugin's
// handler sees its context cancelled, and the call's slot under max_in_flight is free
// again by the time the caller hears of it.
func TestGoneClientCancelsPluginCall(t *testing.T) {
	e := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "testplugin", MaxInFlight: 1, Timeout: 30 * time.Second}}},
		map[string]string{"testplugin": "testplugin"})
	for _, p := range callPaths {
		t.Run(p.name, func(t *testing.T) {
			mark := filepath.Join(t.TempDir(), "mark")
			ctx, cancel := socketContext(t)
			type result struct{ err error }
			out := make(chan result, 1)
			go func() {
				_, err := p.call(t, e.h, ctx, testEvent(map[string]any{"sleep_ms": 20000, "mark": mark}))
				out <- result{err}
			}()
			waitFor(t, 10*time.Second, "the handler to start", func() bool {
				b, _ := os.ReadFile(mark)
				return string(b) == "started"
			})
			cancel()
			var res result
			select {
			case res = <-out:
			case <-time.After(10 * time.Second):
				t.Fatal("the call did not end when its context was cancelled")
			}
			if codeOf(res.err) != dispatch.CodePluginUnavailable {
				t.Fatalf("cancelled call: %v", res.err)
			}
			if n := e.h.slots["testplugin"].cur.Load().inFlight(); n != 0 {
				t.Fatalf("%d calls still hold a slot after the cancelled one ended", n)
			}
			waitFor(t, 10*time.Second, "the plugin's handler to be cancelled", func() bool {
				b, _ := os.ReadFile(mark)
				return string(b) == context.Canceled.Error()
			})
			// The one slot is free: a call now runs at once, well within its deadline.
			quick, qcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer qcancel()
			if _, err := p.call(t, e.h, quick, testEvent(nil)); err != nil {
				t.Fatalf("call after the cancelled one: %v", err)
			}
		})
	}
}

// TestWaitingCallCancelled: a call waiting for a slot under max_in_flight ends when its
// context is cancelled, and the call holding the slot is not disturbed.
func TestWaitingCallCancelled(t *testing.T) {
	e := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "testplugin", MaxInFlight: 1, Timeout: 30 * time.Second}}},
		map[string]string{"testplugin": "testplugin"})
	mark := filepath.Join(t.TempDir(), "mark")
	first := make(chan error, 1)
	e.h.DispatchAsync(context.Background(), testEvent(map[string]any{"sleep_ms": 1500, "mark": mark}),
		func(_ *dispatch.Reply, err error) { first <- err })
	waitFor(t, 10*time.Second, "the first handler to start", func() bool {
		b, _ := os.ReadFile(mark)
		return string(b) == "started"
	})
	for _, p := range callPaths {
		ctx, cancel := socketContext(t)
		go func() {
			time.Sleep(50 * time.Millisecond)
			cancel()
		}()
		if _, err := p.call(t, e.h, ctx, testEvent(nil)); codeOf(err) != dispatch.CodePluginUnavailable {
			t.Fatalf("%s: waiting call cancelled: %v", p.name, err)
		}
	}
	if err := <-first; err != nil {
		t.Fatalf("the call holding the slot: %v", err)
	}
}

// TestWrongHandlerSignatureRefused: a plugin whose OnEvent takes a *sdk.Event compiles;
// the SDK refuses to serve it, and the host marks it failed with the SDK's reason.
func TestWrongHandlerSignatureRefused(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"badsig": "badsig"})
	p := e.info(t, "badsig")
	for _, want := range []string{"the plugin exited", `routes events ["t"]`, "OnEvent", "*sdk.Event", "sdk.Event) (sdk.Reply, error)"} {
		if !strings.Contains(p.Error, want) {
			t.Fatalf("error %q lacks %q", p.Error, want)
		}
	}
	if p.State != StateFailed || p.PID != 0 {
		t.Fatalf("info %+v", p)
	}
	if _, err := e.h.Dispatch(context.Background(), testEvent(nil)); codeOf(err) != dispatch.CodeNoHandler {
		t.Fatalf("err %v", err)
	}
}

// TestHostCallErrorsAreTyped: the core's refusals of a plugin's host calls reach the
// plugin as values it tests with errors.Is, with the core's message.
func TestHostCallErrorsAreTyped(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"testplugin": "testplugin"})
	cases := []struct {
		socket, room string
		want         map[string]any
	}{
		{"s1", "ok", map[string]any{"ok": true, "unknown_socket": false, "invalid_room": false}},
		{"gone", "ok", map[string]any{"ok": false, "unknown_socket": true, "invalid_room": false,
			"code": dispatch.CodeUnknownSocket, "message": "unknown socket"}},
		{"s1", "bad", map[string]any{"ok": false, "unknown_socket": false, "invalid_room": true,
			"code": dispatch.CodeInvalidRoom, "message": "Room name is reserved"}},
		{"s1", "broken", map[string]any{"ok": false, "unknown_socket": false, "invalid_room": false}},
	}
	for _, c := range cases {
		r, err := e.h.Dispatch(context.Background(), testEvent(map[string]any{"join": map[string]any{"socket": c.socket, "room": c.room}}))
		if err != nil {
			t.Fatal(err)
		}
		got := decode(t, r)
		for k, v := range c.want {
			if got[k] != v {
				t.Fatalf("join %s %s: %s = %v, want %v (reply %v)", c.socket, c.room, k, got[k], v, got)
			}
		}
		if _, coded := c.want["code"]; !coded && got["code"] != nil {
			t.Fatalf("join %s %s: unexpected code %v", c.socket, c.room, got["code"])
		}
	}
}

// TestHostUsableAfterHandlerReturns: a goroutine that keeps the Host past its handler
// reaches the core with a context of its own; with the handler's ended context its call
// fails with context.Canceled, not an opaque error.
func TestHostUsableAfterHandlerReturns(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"testplugin": "testplugin"})
	if _, err := e.h.Dispatch(context.Background(), testEvent(map[string]any{"later": "r7"})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the goroutine's report", func() bool {
		for _, c := range e.core.all() {
			if strings.HasPrefix(c, "room r7-result ") {
				return true
			}
		}
		return false
	})
	var result string
	for _, c := range e.core.all() {
		if strings.HasPrefix(c, "room r7-result ") {
			result = c
		}
	}
	if !strings.Contains(result, `"ended_is_canceled":true`) || !strings.Contains(result, `"own_ok":true`) {
		t.Fatalf("host calls after the handler returned: %s (all: %q)", result, e.core.all())
	}
}

// TestHelloFromTheReadme: the README's plugin runs.
func TestHelloFromTheReadme(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"hello": "hello"})
	r, err := e.h.Dispatch(context.Background(), req(dispatch.KindEvent, "hello", map[string]any{"type": "hello"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(t, r)["hello"]; got != "u1" {
		t.Fatalf("reply %s", r.Data)
	}
}
