package pluginhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rtserver/rtserver/core/internal/dispatch"
)

func TestRoutesAllKindsThroughEcho(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := mustEnv(t, Options{Registerer: reg}, map[string]string{"echo": "echo1"})
	cases := []struct {
		kind    dispatch.Kind
		name    string
		payload map[string]any
	}{
		{dispatch.KindEvent, "greet", map[string]any{"type": "greet", "data": map[string]any{"x": 1.0}}},
		{dispatch.KindMessage, "note", map[string]any{"type": "note", "content": "hi"}},
		{dispatch.KindAction, "doit", map[string]any{"action": "doit", "params": map[string]any{"a": "b"}}},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			r, err := e.h.Dispatch(context.Background(), req(c.kind, c.name, c.payload))
			if err != nil {
				t.Fatal(err)
			}
			m := decode(t, r)
			if m["kind"] != c.kind.String() || m["name"] != c.name || m["version"] != "v1" || m["userId"] != "u1" || m["socketId"] != "s1" {
				t.Fatalf("reply %v", m)
			}
			echo, _ := m["echo"].(map[string]any)
			for k, v := range c.payload {
				if _, ok := v.(map[string]any); !ok && echo[k] != v {
					t.Fatalf("echo %v lacks %s=%v", echo, k, v)
				}
			}
		})
	}
	for _, k := range []string{"event", "message", "action"} {
		if v := metricValue(t, reg, "socket_server_plugin_calls_total", "plugin=echo", "kind="+k, "code=OK"); v != 1 {
			t.Fatalf("calls_total{echo,%s,OK} = %v", k, v)
		}
	}
	if n := metricCount(t, reg, "socket_server_plugin_call_duration_seconds"); n != 3 {
		t.Fatalf("duration samples %d", n)
	}
	info := e.info(t, "echo")
	if info.State != StateRunning || info.Version != "v1" || len(info.SHA256) != 64 || info.PID == 0 ||
		len(info.Routes.Events) != 1 || info.Routes.Events[0] != "*" {
		t.Fatalf("info %+v", info)
	}
}

func TestLargePayloadsInOneBatch(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"echo": "echo1"})
	big := strings.Repeat("x", 1<<20)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ { // together well over gRPC's default 4 MB message limit
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.h.Dispatch(context.Background(), req(dispatch.KindEvent, "big", map[string]any{"type": "big", "data": big}))
			if err == nil && len(r.Data) < 1<<20 {
				err = errors.New("short reply")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if p := e.info(t, "echo"); p.Restarts != 0 {
		t.Fatalf("plugin restarted: %+v", p)
	}
}

func TestNoHandler(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"testplugin": "testplugin"})
	_, err := e.h.Dispatch(context.Background(), req(dispatch.KindEvent, "nope", map[string]any{"type": "nope"}))
	if codeOf(err) != dispatch.CodeNoHandler {
		t.Fatalf("err %v", err)
	}
	// Routed to the plugin, but it has no message handler at all.
	e2 := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "testplugin", Messages: []string{"m"}}}}, map[string]string{"testplugin": "testplugin"})
	_, err = e2.h.Dispatch(context.Background(), req(dispatch.KindMessage, "m", map[string]any{"type": "m"}))
	if codeOf(err) != dispatch.CodeNoHandler {
		t.Fatalf("err %v", err)
	}
}

func TestConfigOverridesRoutes(t *testing.T) {
	e := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "echo", Events: []string{"only"}, Actions: []string{}}}},
		map[string]string{"echo": "echo1"})
	ctx := context.Background()
	if _, err := e.h.Dispatch(ctx, req(dispatch.KindEvent, "only", map[string]any{"type": "only"})); err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.Dispatch(ctx, req(dispatch.KindEvent, "other", map[string]any{"type": "other"})); codeOf(err) != dispatch.CodeNoHandler {
		t.Fatalf("event other: %v", err)
	}
	if _, err := e.h.Dispatch(ctx, req(dispatch.KindAction, "a", map[string]any{"action": "a"})); codeOf(err) != dispatch.CodeNoHandler {
		t.Fatalf("action: %v", err)
	}
	if _, err := e.h.Dispatch(ctx, req(dispatch.KindMessage, "m", map[string]any{"type": "m"})); err != nil {
		t.Fatalf("message (described wildcard kept): %v", err)
	}
}

func TestTimeoutThenFine(t *testing.T) {
	e := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "testplugin", Timeout: 300 * time.Millisecond}}},
		map[string]string{"testplugin": "testplugin"})
	ctx := context.Background()
	start := time.Now()
	_, err := e.h.Dispatch(ctx, testEvent(map[string]any{"sleep_ms": 5000}))
	if codeOf(err) != dispatch.CodePluginTimeout {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	r, err := e.h.Dispatch(ctx, testEvent(map[string]any{}))
	if err != nil {
		t.Fatal(err)
	}
	left := decode(t, r)["left_ms"].(float64)
	if left <= 0 || left > 300 {
		t.Fatalf("plugin saw %vms left, want (0,300]", left)
	}
	// The caller's own, shorter deadline wins over the plugin's timeout.
	ctx2, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := e.h.Dispatch(ctx2, testEvent(map[string]any{"sleep_ms": 1000})); codeOf(err) != dispatch.CodePluginTimeout {
		t.Fatalf("err %v", err)
	}
}

func TestPanicBecomesPluginError(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"testplugin": "testplugin"})
	ctx := context.Background()
	pid := e.info(t, "testplugin").PID
	_, err := e.h.Dispatch(ctx, testEvent(map[string]any{"panic": "boom"}))
	if codeOf(err) != dispatch.CodePluginError || strings.Contains(err.Error(), "boom") {
		t.Fatalf("err %v", err) // the panic's value stays in the log
	}
	_, err = e.h.Dispatch(ctx, testEvent(map[string]any{"error": "MY_CODE"}))
	if codeOf(err) != "MY_CODE" {
		t.Fatalf("coded error: %v", err)
	}
	if _, err := e.h.Dispatch(ctx, testEvent(nil)); err != nil {
		t.Fatal(err)
	}
	if p := e.info(t, "testplugin"); p.PID != pid || p.Restarts != 0 {
		t.Fatalf("plugin restarted after a panic: %+v", p)
	}
	waitFor(t, 5*time.Second, "panic logged under the plugin's name", func() bool {
		return strings.Contains(e.logs.String(), "plugins.testplugin: handler panicked")
	})
}

func TestCrashMidRequestThenRestart(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := mustEnv(t, Options{Registerer: reg}, map[string]string{"testplugin": "testplugin"})
	ctx := context.Background()
	pid := e.info(t, "testplugin").PID
	_, err := e.h.Dispatch(ctx, testEvent(map[string]any{"exit": 3}))
	if codeOf(err) != dispatch.CodePluginUnavailable {
		t.Fatalf("err %v", err)
	}
	var r *dispatch.Reply
	waitFor(t, 5*time.Second, "restart", func() bool {
		r, err = e.h.Dispatch(ctx, testEvent(nil))
		return err == nil
	})
	if got := int(decode(t, r)["pid"].(float64)); got == pid {
		t.Fatalf("same pid %d after a crash", pid)
	}
	if p := e.info(t, "testplugin"); p.Restarts != 1 || p.State != StateRunning {
		t.Fatalf("info %+v", p)
	}
	if v := metricValue(t, reg, "socket_server_plugin_restarts_total", "plugin=testplugin"); v != 1 {
		t.Fatalf("restarts_total %v", v)
	}
	if v := metricValue(t, reg, "socket_server_plugin_calls_total", "plugin=testplugin", "kind=event", "code="+dispatch.CodePluginUnavailable); v < 1 {
		t.Fatalf("calls_total unavailable %v", v)
	}
	if !waitGone(pid, 5*time.Second) {
		t.Fatalf("crashed pid %d still there", pid)
	}
	// The plugin's own log line arrived under its name.
	if !strings.Contains(e.logs.String(), "plugins.testplugin: exiting as asked") {
		t.Fatalf("plugin log line missing:\n%s", e.logs.String())
	}
}

func TestCrashLoopFailsUntilNewBinary(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"testplugin": "testplugin"})
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		waitFor(t, 5*time.Second, "plugin up", func() bool {
			_, err := e.h.Dispatch(ctx, testEvent(nil))
			return err == nil
		})
		if _, err := e.h.Dispatch(ctx, testEvent(map[string]any{"exit": 1})); codeOf(err) != dispatch.CodePluginUnavailable {
			t.Fatalf("crash %d: %v", i, err)
		}
	}
	waitFor(t, 5*time.Second, "failed state", func() bool { return e.info(t, "testplugin").State == StateFailed })
	time.Sleep(300 * time.Millisecond) // longer than any backoff: it stays down
	if _, err := e.h.Dispatch(ctx, testEvent(nil)); codeOf(err) != dispatch.CodePluginUnavailable {
		t.Fatalf("while failed: %v", err)
	}
	if p := e.info(t, "testplugin"); p.State != StateFailed || p.Error == "" {
		t.Fatalf("info %+v", p)
	}
	// A new binary brings it back. (Same code, different bytes.)
	b, _ := os.ReadFile(bins["testplugin"])
	tmp := filepath.Join(e.dir, ".new")
	os.WriteFile(tmp, append(b, 0), 0o755)
	os.Rename(tmp, filepath.Join(e.dir, "testplugin"))
	waitFor(t, 10*time.Second, "reload", func() bool {
		_, err := e.h.Dispatch(ctx, testEvent(nil))
		return err == nil
	})
}

func TestHotReloadUnderLoad(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := mustEnv(t, Options{Registerer: reg}, map[string]string{"echo": "echo1"})
	ctx := context.Background()
	var (
		ok, failed atomic.Int64
		firstErr   atomic.Value
		latest     atomic.Value
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	latest.Store("v1")
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := e.h.Dispatch(ctx, req(dispatch.KindEvent, "x", map[string]any{"type": "x"}))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
				var m struct{ Version string }
				_ = jsonUnmarshal(r.Data, &m)
				latest.Store(m.Version)
			}
		}()
	}
	versions := []string{"echo2", "echo3", "echo2", "echo3", "echo2"}
	pids := []int{e.info(t, "echo").PID}
	for _, key := range versions {
		want := "v" + key[len(key)-1:]
		install(t, e.dir, "echo", bins[key])
		waitFor(t, 10*time.Second, "replies from "+want, func() bool {
			return latest.Load() == want && e.info(t, "echo").Version == want
		})
		pids = append(pids, e.info(t, "echo").PID)
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests ran", ok.Load())
	}
	for _, pid := range pids[:len(pids)-1] {
		if !waitGone(pid, 10*time.Second) {
			t.Fatalf("old plugin process %d still running", pid)
		}
	}
	if v := metricValue(t, reg, "socket_server_plugin_reloads_total", "plugin=echo"); v != 5 {
		t.Fatalf("reloads_total %v", v)
	}
	// Only the running version's private copy is left.
	waitFor(t, 10*time.Second, "old copies removed", func() bool {
		m, _ := filepath.Glob(filepath.Join(e.h.copies, "*", "echo"))
		return len(m) == 1
	})
	t.Logf("%d requests, 0 failed, over 5 reloads", ok.Load())
}

func TestReloadDrainsCallsInFlight(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"testplugin": "testplugin"})
	ctx := context.Background()
	oldPID := e.info(t, "testplugin").PID
	type result struct {
		r   *dispatch.Reply
		err error
	}
	slow := make(chan result, 1)
	go func() {
		// Long enough to outlast the reload and the check below on a loaded machine (a
		// reload took 650 ms on one), well under the 5 s default timeout.
		r, err := e.h.Dispatch(ctx, testEvent(map[string]any{"sleep_ms": 3000}))
		slow <- result{r, err}
	}()
	time.Sleep(50 * time.Millisecond)
	// Same code, different bytes: a new binary.
	b, _ := os.ReadFile(bins["testplugin"])
	tmp := filepath.Join(e.dir, ".new")
	os.WriteFile(tmp, append(b, 1), 0o755)
	os.Rename(tmp, filepath.Join(e.dir, "testplugin"))
	waitFor(t, 10*time.Second, "new process serving", func() bool {
		r, err := e.h.Dispatch(ctx, testEvent(nil))
		return err == nil && int(decode(t, r)["pid"].(float64)) != oldPID
	})
	if gone(oldPID) {
		t.Fatal("old process stopped while a call was in flight")
	}
	res := <-slow
	if res.err != nil || int(decode(t, res.r)["pid"].(float64)) != oldPID {
		t.Fatalf("in-flight call: %v", res.err)
	}
	if !waitGone(oldPID, 5*time.Second) {
		t.Fatal("old process not stopped after draining")
	}
}

func TestNewAndRemovedBinary(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"testplugin": "testplugin"})
	ctx := context.Background()
	echoReq := req(dispatch.KindAction, "a", map[string]any{"action": "a"})
	if _, err := e.h.Dispatch(ctx, echoReq); codeOf(err) != dispatch.CodeNoHandler {
		t.Fatalf("before: %v", err)
	}
	install(t, e.dir, "echo", bins["echo1"])
	waitFor(t, 10*time.Second, "echo loaded", func() bool {
		_, err := e.h.Dispatch(ctx, echoReq)
		return err == nil
	})
	pid := e.info(t, "echo").PID
	if err := os.Remove(filepath.Join(e.dir, "echo")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "echo unloaded", func() bool {
		_, err := e.h.Dispatch(ctx, echoReq)
		return codeOf(err) == dispatch.CodeNoHandler && e.info(t, "echo").Name == ""
	})
	if !waitGone(pid, 5*time.Second) {
		t.Fatalf("removed plugin %d still running", pid)
	}
	if _, err := e.h.Dispatch(ctx, testEvent(nil)); err != nil {
		t.Fatalf("other plugin hurt: %v", err)
	}
}

func TestConflictingRoutes(t *testing.T) {
	// Loaded in name order: the second to claim the wildcard routes is refused.
	e0 := mustEnv(t, Options{}, map[string]string{"echo": "echo1", "echo-b": "echo2"})
	if p := e0.info(t, "echo"); p.State != StateRunning {
		t.Fatalf("echo %+v", p)
	}
	if p := e0.info(t, "echo-b"); p.State != StateFailed || !strings.Contains(p.Error, "conflicting") ||
		!strings.Contains(p.Error, "echo") || p.PID != 0 {
		t.Fatalf("echo-b %+v", p)
	}
	// A config override resolves it.
	e := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "echo-b", Events: []string{"b"}, Messages: []string{}, Actions: []string{}}}},
		map[string]string{"echo": "echo1", "echo-b": "echo2"})
	r, err := e.h.Dispatch(context.Background(), req(dispatch.KindEvent, "b", map[string]any{"type": "b"}))
	if err != nil || decode(t, r)["version"] != "v2" {
		t.Fatalf("exact route: %v", err)
	}
	r, err = e.h.Dispatch(context.Background(), req(dispatch.KindEvent, "c", map[string]any{"type": "c"}))
	if err != nil || decode(t, r)["version"] != "v1" {
		t.Fatalf("wildcard route: %v", err)
	}
}

func TestSHA256Pin(t *testing.T) {
	e := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "echo", SHA256: strings.Repeat("0", 64)}}},
		map[string]string{"echo": "echo1"})
	p := e.info(t, "echo")
	if p.State != StateFailed || !strings.Contains(p.Error, "pinned") || p.PID != 0 {
		t.Fatalf("info %+v", p)
	}
	if _, err := e.h.Dispatch(context.Background(), req(dispatch.KindEvent, "x", map[string]any{})); codeOf(err) != dispatch.CodeNoHandler {
		t.Fatalf("err %v", err)
	}
	// The right pin loads.
	e2 := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "echo", SHA256: sha256Of(t, bins["echo1"])}}},
		map[string]string{"echo": "echo1"})
	if _, err := e2.h.Dispatch(context.Background(), req(dispatch.KindEvent, "x", map[string]any{})); err != nil {
		t.Fatal(err)
	}
}

func TestChatFanOutThroughHostService(t *testing.T) {
	e := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "chat", Config: []byte(`{"history": 2}`)}}},
		map[string]string{"chat": "chat"})
	ctx := context.Background()
	send := func(content string) {
		r := req(dispatch.KindMessage, "chat", map[string]any{"type": "chat", "content": content})
		r.MessageID = "m-" + content
		if _, err := e.h.Dispatch(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	send("one")
	send("two")
	send("three")
	calls := e.core.all()
	if len(calls) != 3 || !strings.HasPrefix(calls[0], "room lobby chat:message except= ") || !strings.Contains(calls[0], `"content":"one"`) {
		t.Fatalf("host calls %q", calls)
	}
	r, err := e.h.Dispatch(ctx, req(dispatch.KindAction, "history", map[string]any{"action": "history", "params": map[string]any{"room": "lobby", "limit": 10}}))
	if err != nil {
		t.Fatal(err)
	}
	msgs := decode(t, r)["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["content"] != "two" || msgs[1].(map[string]any)["id"] != "m-three" {
		t.Fatalf("history %v", msgs)
	}
	_, err = e.h.Dispatch(ctx, req(dispatch.KindAction, "history", map[string]any{"action": "history", "params": map[string]any{"room": "elsewhere"}}))
	if codeOf(err) != "NOT_IN_ROOM" {
		t.Fatalf("history of a foreign room: %v", err)
	}
	if _, err := e.h.Dispatch(ctx, req(dispatch.KindEvent, "typing", map[string]any{"type": "typing", "data": map[string]any{"typing": true}})); err != nil {
		t.Fatal(err)
	}
	calls = e.core.all()
	if last := calls[len(calls)-1]; !strings.HasPrefix(last, "room lobby chat:typing except=s1 ") || !strings.Contains(last, `"userId":"u1"`) {
		t.Fatalf("typing relay %q", last)
	}
}

func TestPluginOutputReachesTheLog(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"testplugin": "testplugin"})
	if _, err := e.h.Dispatch(context.Background(), testEvent(map[string]any{"print": "hello-out"})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "stdout and stderr lines in the host log", func() bool {
		l := e.logs.String()
		return strings.Contains(l, "plugins.testplugin: stdout: hello-out: stream=stdout") &&
			strings.Contains(l, "plugins.testplugin: stderr: hello-out: stream=stderr")
	})
}

func TestConfigureErrorRefusesThePlugin(t *testing.T) {
	e := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "chat", Config: []byte(`{"history": "many"}`)}}},
		map[string]string{"chat": "chat"})
	p := e.info(t, "chat")
	if p.State != StateFailed || !strings.Contains(p.Error, "configure") || p.PID != 0 {
		t.Fatalf("info %+v", p)
	}
	if _, err := e.h.Dispatch(context.Background(), req(dispatch.KindMessage, "chat", map[string]any{"content": "x"})); codeOf(err) != dispatch.CodeNoHandler {
		t.Fatalf("err %v", err)
	}
}

func TestHostServiceCallsFromPlugin(t *testing.T) {
	e := mustEnv(t, Options{}, map[string]string{"testplugin": "testplugin"})
	r, err := e.h.Dispatch(context.Background(), testEvent(map[string]any{"emit": "room9"}))
	if err != nil {
		t.Fatal(err)
	}
	if decode(t, r)["emitted"] != 2.0 {
		t.Fatalf("reply %s", r.Data)
	}
	if c := e.core.all(); len(c) != 1 || !strings.HasPrefix(c[0], "room room9 test:emit except= ") {
		t.Fatalf("calls %q", c)
	}
}

func TestMaxInFlight(t *testing.T) {
	e := mustEnv(t, Options{Plugins: []PluginConfig{{Name: "testplugin", MaxInFlight: 1, Timeout: 400 * time.Millisecond}}},
		map[string]string{"testplugin": "testplugin"})
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, err := e.h.Dispatch(ctx, testEvent(map[string]any{"sleep_ms": 300}))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	// The one slot is taken for 300ms; this call waits, then runs out of time.
	_, err := e.h.Dispatch(ctx, testEvent(map[string]any{"sleep_ms": 200}))
	if codeOf(err) != dispatch.CodePluginTimeout {
		t.Fatalf("second call: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("first call: %v", err)
	}
}

func TestCloseStopsEverythingAndLeaksNothing(t *testing.T) {
	base := runtime.NumGoroutine()
	e, err := newEnv(t, Options{}, map[string]string{"echo": "echo1", "chat": "chat", "testplugin": "testplugin"})
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range e.h.Plugins() {
		pids = append(pids, p.PID)
	}
	if len(pids) != 3 {
		t.Fatalf("plugins %+v", e.h.Plugins())
	}
	// A crash and restart on the way must not leak anything either.
	if _, err := e.h.Dispatch(context.Background(), testEvent(map[string]any{"exit": 2})); codeOf(err) != dispatch.CodePluginUnavailable {
		t.Fatalf("crash: %v", err)
	}
	waitFor(t, 5*time.Second, "restart", func() bool {
		_, err := e.h.Dispatch(context.Background(), testEvent(nil))
		return err == nil
	})
	pids = append(pids, e.info(t, "testplugin").PID)
	copies := e.h.copies
	if err := e.h.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if !waitGone(pid, 5*time.Second) {
			t.Fatalf("pid %d survived Close", pid)
		}
	}
	if _, err := os.Stat(copies); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("private copies left: %v", err)
	}
	if _, err := e.h.Dispatch(context.Background(), testEvent(nil)); codeOf(err) != dispatch.CodePluginUnavailable {
		t.Fatalf("after close: %v", err)
	}
	goroutinesSettle(t, base)
}

func TestSIGKILLLeavesNoPlugin(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "echo", bins["echo1"])
	install(t, dir, "chat", bins["chat"])
	// A plugin with a child process: the child goes too.
	t.Cleanup(func() { killSleepers("618") })
	writeScript(t, dir, "forker", "sleep 618 &\nexec "+bins["testplugin"]+"\n")
	// Its own TMPDIR: a SIGKILLed host cannot remove its sockets.
	cmd, _, _, pids, copies := startHelper(t, dir, "TMPDIR="+t.TempDir())
	if len(pids) != 3 {
		t.Fatalf("pids %v", pids)
	}
	for _, pid := range pids {
		if gone(pid) {
			t.Fatalf("plugin %d not running before the kill", pid)
		}
	}
	waitFor(t, 5*time.Second, "the forker's sleep", func() bool { return len(sleepers("618")) == 1 })
	child := sleepers("618")[0]
	if filepath.Dir(filepath.Dir(copies)) != dir {
		t.Fatalf("private copies in %s, not in the plugin folder %s", copies, dir)
	}
	// A second host on the same folder leaves the live one's copies alone.
	b := mustEnv(t, Options{}, nil, func(h *Host) { h.o.Dir = dir })
	if _, err := os.Stat(copies); err != nil {
		t.Fatalf("a live host's copies were swept: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for _, pid := range pids {
		if !waitGone(pid, 5*time.Second) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("plugin %d outlived its SIGKILLed host", pid)
		}
	}
	if !waitGone(child, 5*time.Second) {
		t.Fatalf("the forker's child %d outlived its SIGKILLed host", child)
	}
	// The SIGKILLed host could not remove its copies: the next host to start does.
	if _, err := os.Stat(copies); err != nil {
		t.Fatalf("copies of the killed host: %v", err)
	}
	mustEnv(t, Options{}, nil, func(h *Host) { h.o.Dir = dir })
	if _, err := os.Stat(copies); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a killed host's copies were not swept: %v", err)
	}
	if _, err := os.Stat(copies + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a killed host's lock file was not swept: %v", err)
	}
	if _, err := os.Stat(b.h.copies); err != nil {
		t.Fatalf("a live host's copies were swept: %v", err)
	}
}
