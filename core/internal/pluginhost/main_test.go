package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rtserver/rtserver/core/internal/dispatch"
)

// bins holds the plugin binaries built once for the whole package.
var bins = map[string]string{}

const helperEnv = "PLUGINHOST_TEST_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		runHelper(dir)
		return
	}
	tmp, err := os.MkdirTemp("", "pluginhost-bins-")
	if err != nil {
		panic(err)
	}
	code := 1
	if err := buildAll(tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

// buildAll builds the example plugins (echo in three versions) and the test
// plugin, two at a time.
func buildAll(dir string) error {
	root, err := filepath.Abs("../../..")
	if err != nil {
		return err
	}
	type build struct{ key, pkg, version string }
	builds := []build{
		{"echo1", "./examples/echo", "v1"},
		{"echo2", "./examples/echo", "v2"},
		{"echo3", "./examples/echo", "v3"},
		{"chat", "./examples/chat", "dev"},
		{"testplugin", "./core/internal/pluginhost/testdata/testplugin", "dev"},
		{"badsig", "./core/internal/pluginhost/testdata/badsig", "dev"},
		{"hello", "./examples/hello", "dev"},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(builds))
	sem := make(chan struct{}, 2)
	for i, b := range builds {
		out := filepath.Join(dir, b.key)
		bins[b.key] = out
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+b.version, "-o", out, b.pkg)
			cmd.Dir = root
			if o, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("build %s: %v\n%s", b.key, err, o)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// runHelper is the child process of TestSIGKILLLeavesNoPlugin and
// TestGroupSignalIsANormalShutdown: it starts a Host on dir, prints its plugins'
// pids and its private copies' folder, and waits to be killed, or to be stopped by
// SIGTERM or SIGINT, when it closes the Host (logging to stderr).
func runHelper(dir string) {
	// Listening before READY: a signal sent as soon as READY is read must find the
	// handler, or the default action kills the process.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	h, err := New(Options{Dir: dir}, nil)
	if err == nil {
		err = h.Start(context.Background())
	}
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	<-h.Ready()
	for _, p := range h.Plugins() {
		if p.State != StateRunning {
			fmt.Println("ERR", p.Name, p.State, p.Error)
			os.Exit(1)
		}
		fmt.Println("PID", p.PID)
	}
	fmt.Println("DIR", h.copies)
	fmt.Println("READY")
	<-sig // SIGTERM or SIGINT: a normal shutdown
	if err := h.Close(); err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println("CLOSED")
	os.Exit(0)
}

// recorder is a dispatch.Host that remembers what plugins asked of it.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *recorder) EmitToUser(_ context.Context, user, event string, data json.RawMessage) (int, error) {
	r.add("user %s %s %s", user, event, data)
	return 1, nil
}

func (r *recorder) EmitToRoom(_ context.Context, room, event string, data json.RawMessage, except string) (int, error) {
	r.add("room %s %s except=%s %s", room, event, except, data)
	return 2, nil
}

func (r *recorder) Broadcast(_ context.Context, event string, data json.RawMessage) (int, error) {
	r.add("all %s %s", event, data)
	return 3, nil
}

// JoinRoom refuses the socket "gone" and the room "bad" with the core's codes, and the
// room "broken" with an error without a code.
func (r *recorder) JoinRoom(_ context.Context, socket, room string) error {
	r.add("join %s %s", socket, room)
	switch {
	case socket == "gone":
		return &dispatch.Error{Code: dispatch.CodeUnknownSocket, Message: "unknown socket"}
	case room == "bad":
		return fmt.Errorf("checking: %w", &dispatch.Error{Code: dispatch.CodeInvalidRoom, Message: "Room name is reserved"})
	case room == "broken":
		return errors.New("something else")
	}
	return nil
}

func (r *recorder) LeaveRoom(_ context.Context, socket, room string) error {
	r.add("leave %s %s", socket, room)
	return nil
}

func (r *recorder) DisconnectSocket(_ context.Context, socket string) error {
	r.add("disconnect %s", socket)
	return nil
}

// install places the binary src in dir as name by atomic rename, the way a
// deployment should.
func install(t testing.TB, dir, name, src string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

type env struct {
	h    *Host
	dir  string
	core *recorder
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv starts a Host over a fresh plugin dir holding files (name -> bins key),
// with short polling and backoff. Cleanup closes it and checks that no plugin
// process it ever reported survives.
// tune, if any, adjusts the Host's tunables before Start. It returns once the
// plugins are loaded (Ready).
func newEnv(t testing.TB, o Options, files map[string]string, tune ...func(*Host)) (*env, error) {
	t.Helper()
	e, err := startEnv(t, o, files, tune...)
	if err == nil {
		<-e.h.Ready()
	}
	return e, err
}

// startEnv is newEnv returning as soon as Start does, plugins maybe still loading.
func startEnv(t testing.TB, o Options, files map[string]string, tune ...func(*Host)) (*env, error) {
	t.Helper()
	e := &env{dir: t.TempDir(), core: &recorder{}, logs: &syncBuffer{}}
	for name, key := range files {
		install(t, e.dir, name, bins[key])
	}
	o.Dir = e.dir
	if o.Logger == nil {
		o.Logger = hclog.New(&hclog.LoggerOptions{Name: "plugins", Level: hclog.Debug, Output: e.logs})
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 5 * time.Second
	}
	h, err := New(o, e.core)
	if err != nil {
		t.Fatal(err)
	}
	h.pollEvery = 20 * time.Millisecond
	h.backoffMin = 20 * time.Millisecond
	h.backoffMax = 200 * time.Millisecond
	for _, f := range tune {
		f(h)
	}
	e.h = h
	pids := &pidSet{}
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() { // remember every pid we see, to check none survives
		defer close(watchDone)
		for {
			pids.addFrom(h)
			select {
			case <-stopWatch:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		close(stopWatch)
		<-watchDone
		pids.addFrom(h)
		if err := h.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		for _, pid := range pids.list() {
			if !waitGone(pid, 5*time.Second) {
				t.Errorf("plugin process %d survived Close", pid)
			}
		}
		if t.Failed() {
			t.Logf("host log:\n%s", e.logs.String())
		}
	})
	err = h.Start(context.Background())
	pids.addFrom(h)
	return e, err
}

func mustEnv(t testing.TB, o Options, files map[string]string, tune ...func(*Host)) *env {
	t.Helper()
	e, err := newEnv(t, o, files, tune...)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return e
}

type pidSet struct {
	mu   sync.Mutex
	pids map[int]bool
}

func (p *pidSet) addFrom(h *Host) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pids == nil {
		p.pids = map[int]bool{}
	}
	for _, pi := range h.Plugins() {
		if pi.PID > 0 {
			p.pids[pi.PID] = true
		}
	}
}

func (p *pidSet) list() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for pid := range p.pids {
		out = append(out, pid)
	}
	return out
}

// gone reports whether pid no longer runs (a zombie no one reaps counts as gone).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !gone(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func (e *env) info(t testing.TB, name string) PluginInfo {
	t.Helper()
	for _, p := range e.h.Plugins() {
		if p.Name == name {
			return p
		}
	}
	return PluginInfo{}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func req(kind dispatch.Kind, name string, payload any) *dispatch.Request {
	b, _ := json.Marshal(payload)
	return &dispatch.Request{Kind: kind, Name: name, RequestID: "r1", MessageID: "m1",
		SocketID: "s1", UserID: "u1", Rooms: []string{"lobby"}, Payload: b}
}

func testEvent(data any) *dispatch.Request {
	return req(dispatch.KindEvent, "t", map[string]any{"type": "t", "data": data})
}

func decode(t testing.TB, r *dispatch.Reply) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Data, &m); err != nil {
		t.Fatalf("reply %s: %v", r.Data, err)
	}
	return m
}

func codeOf(err error) string { return dispatch.CodeOf(err, "") }

func goroutinesSettle(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+5 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// sha256Of hashes a file.
func sha256Of(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// metricValue is the value of the counter or gauge name with exactly these
// labels, given as "name=value".
func metricValue(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(labels, ",")
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(got)
			w := strings.Split(want, ",")
			slices.Sort(w)
			if !slices.Equal(got, w) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// metricCount is the total number of observations of histogram name.
func metricCount(t testing.TB, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}
