package pluginhost

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rtserver/rtserver/core/internal/dispatch"
	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// writeScript installs an executable shell script as dir/name by atomic rename.
func writeScript(t testing.TB, dir, name, body string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// groupMembers lists the live (not zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // state ppid pgrp ...
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// sleepers lists live processes running exactly "sleep arg".
func sleepers(arg string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || string(b) != "sleep\x00"+arg+"\x00" || gone(pid) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

func killSleepers(arg string) {
	for _, pid := range sleepers(arg) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// closeWithin closes e's Host, failing the test if that takes longer than d (a hang,
// not a speed check: d is far above what a close takes).
func closeWithin(t *testing.T, e *env, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- e.h.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(d):
		t.Fatalf("Close still waiting after %v", d)
	}
}

// A plugin whose child process outlives it (a script that starts a sleep, which keeps
// the plugin's stdout and stderr open) must not hold up a restart, a reload or Close,
// and leaves no process behind: the plugin runs in a process group of its own, which
// is killed when the plugin process ends.
func TestForkingPluginNeverStallsTheHost(t *testing.T) {
	t.Cleanup(func() { killSleepers("613") })
	e := mustEnv(t, Options{}, nil)
	ctx := context.Background()
	script := "sleep 613 &\nexec " + bins["testplugin"] + "\n"
	writeScript(t, e.dir, "forker", script)
	var pid int
	waitFor(t, 10*time.Second, "forker loaded", func() bool {
		r, err := e.h.Dispatch(ctx, testEvent(nil))
		if err == nil {
			pid = int(decode(t, r)["pid"].(float64))
		}
		return err == nil
	})
	waitFor(t, 5*time.Second, "the plugin and its sleep in one group", func() bool { return len(groupMembers(pid)) == 2 })

	// A crash: the restart goes through and the crashed plugin's sleep dies with it.
	if _, err := e.h.Dispatch(ctx, testEvent(map[string]any{"exit": 1})); codeOf(err) != dispatch.CodePluginUnavailable {
		t.Fatalf("crash: %v", err)
	}
	var pid2 int
	waitFor(t, 10*time.Second, "restart", func() bool {
		r, err := e.h.Dispatch(ctx, testEvent(nil))
		if err == nil {
			pid2 = int(decode(t, r)["pid"].(float64))
		}
		return err == nil && pid2 != pid
	})
	waitFor(t, 10*time.Second, "crashed plugin's group gone", func() bool { return len(groupMembers(pid)) == 0 })

	// A reload: the old process and its sleep are stopped.
	writeScript(t, e.dir, "forker", script+"# v2\n")
	var pid3 int
	waitFor(t, 10*time.Second, "reload", func() bool {
		r, err := e.h.Dispatch(ctx, testEvent(nil))
		if err == nil {
			pid3 = int(decode(t, r)["pid"].(float64))
		}
		return err == nil && pid3 != pid2
	})
	waitFor(t, 10*time.Second, "replaced plugin's group gone", func() bool { return len(groupMembers(pid2)) == 0 })
	waitFor(t, 5*time.Second, "new plugin's sleep", func() bool { return len(groupMembers(pid3)) == 2 })

	closeWithin(t, e, 20*time.Second)
	waitFor(t, 5*time.Second, "last group gone", func() bool { return len(groupMembers(pid3)) == 0 })
	if s := sleepers("613"); len(s) != 0 {
		t.Fatalf("sleeps left: %v", s)
	}
}

// A file that is not a plugin and starts a child that keeps its pipes open is refused
// after the start-up bound, without holding up anything: Start returns at once, other
// plugins load and serve, and nothing of it is left running.
func TestNonPluginScriptIsRefusedWithoutStalling(t *testing.T) {
	t.Cleanup(func() { killSleepers("614"); killSleepers("615") })
	dir := t.TempDir()
	writeScript(t, dir, "aaa-not-a-plugin", "sleep 614\n") // loaded first: names in order
	install(t, dir, "echo", bins["echo1"])
	e, err := startEnv(t, Options{}, nil, func(h *Host) {
		h.checkWait = time.Second
		h.o.Dir = dir
	})
	if err != nil {
		t.Fatal(err)
	}
	e.dir = dir
	// Loading: requests get PLUGIN_UNAVAILABLE, as for a plugin that is restarting.
	select {
	case <-e.h.Ready():
		t.Fatal("ready before the stuck script was refused")
	default:
	}
	if _, err := e.h.Dispatch(context.Background(), testEvent(nil)); codeOf(err) != dispatch.CodePluginUnavailable {
		t.Fatalf("while loading: %v", err)
	}
	select {
	case <-e.h.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("initial load stalled")
	}
	if p := e.info(t, "aaa-not-a-plugin"); p.State != StateFailed || !strings.Contains(p.Error, "start") {
		t.Fatalf("info %+v", p)
	}
	waitFor(t, 5*time.Second, "the script's sleep gone", func() bool { return len(sleepers("614")) == 0 })
	if _, err := e.h.Dispatch(context.Background(), testEvent(nil)); err != nil {
		t.Fatalf("echo: %v", err)
	}
	// The same at run time: the watcher goes on (a new plugin still loads).
	writeScript(t, dir, "zzz-not-a-plugin", "sleep 615\n")
	waitFor(t, 20*time.Second, "second script refused", func() bool { return e.info(t, "zzz-not-a-plugin").State == StateFailed })
	waitFor(t, 5*time.Second, "its sleep gone", func() bool { return len(sleepers("615")) == 0 })
	install(t, dir, "chat", bins["chat"])
	waitFor(t, 10*time.Second, "chat loaded after it", func() bool { return e.info(t, "chat").State == StateRunning })
}

// Close while a plugin is still starting ends that start at once.
func TestCloseWhileLoading(t *testing.T) {
	t.Cleanup(func() { killSleepers("616") })
	e, err := startEnv(t, Options{}, nil, func(h *Host) { h.checkWait = time.Minute })
	if err != nil {
		t.Fatal(err)
	}
	// Start has returned; the watcher's first scan picks the script up.
	writeScript(t, e.dir, "stuck", "sleep 616\n")
	waitFor(t, 10*time.Second, "the script started", func() bool { return len(sleepers("616")) == 1 })
	closeWithin(t, e, 15*time.Second)
	waitFor(t, 5*time.Second, "its sleep gone", func() bool { return len(sleepers("616")) == 0 })
}

// A plain error's text and a panic's value stay in the server's log, with the request
// id; the client gets PLUGIN_ERROR and a fixed message. A code the plugin chose comes
// through with its message unless it is not a valid code. Codes as metric labels are
// bounded per plugin.
func TestPluginErrorsDoNotLeak(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := mustEnv(t, Options{Registerer: reg}, map[string]string{"testplugin": "testplugin"})
	ctx := context.Background()
	call := func(id string, data map[string]any) *dispatch.Error {
		t.Helper()
		r := testEvent(data)
		r.RequestID = id
		_, err := e.h.Dispatch(ctx, r)
		var de *dispatch.Error
		if !errors.As(err, &de) {
			t.Fatalf("%s: err %v", id, err)
		}
		return de
	}
	generic := func(id string, de *dispatch.Error, detail string) {
		t.Helper()
		if de.Code != dispatch.CodePluginError || de.Message != wire.GenericMessage {
			t.Fatalf("%s: client would see %+v", id, de)
		}
		waitFor(t, 5*time.Second, "the detail logged with the request id", func() bool {
			for _, l := range strings.Split(e.logs.String(), "\n") {
				if strings.Contains(l, "request_id="+id+" ") && strings.Contains(l, detail) {
					return true
				}
			}
			return false
		})
	}
	generic("req-plain", call("req-plain", map[string]any{"fail": "open /etc/app/secret.key: permission denied"}), "/etc/app/secret.key")
	generic("req-panic", call("req-panic", map[string]any{"panic": "index out of range at /srv/app/x.go"}), "/srv/app/x.go")
	generic("req-lower", call("req-lower", map[string]any{"error": "bad_code"}), "asked to fail")
	generic("req-forged", call("req-forged", map[string]any{"error": "X\n2026 [ERROR] forged"}), "asked to fail")
	if de := call("req-coded", map[string]any{"error": "MY_CODE"}); de.Code != "MY_CODE" || de.Message != "asked to fail" {
		t.Fatalf("chosen code: %+v", de)
	}
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.HasPrefix(l, "2026 [ERROR] forged") {
			t.Fatalf("forged log line: %q", l)
		}
	}

	// Labels: the plugin's first maxCodeLabels codes, then OTHER.
	for i := 1; i < maxCodeLabels+8; i++ { // MY_CODE was the first
		call("req-c", map[string]any{"error": fmt.Sprintf("C_%d", i)})
	}
	if v := metricValue(t, reg, "socket_server_plugin_calls_total", "plugin=testplugin", "kind=event", "code=OTHER"); v != 8 {
		t.Fatalf("calls_total{OTHER} = %v", v)
	}
	if v := metricValue(t, reg, "socket_server_plugin_calls_total", "plugin=testplugin", "kind=event", "code=C_31"); v != 1 {
		t.Fatalf("calls_total{C_31} = %v", v)
	}
	if v := metricValue(t, reg, "socket_server_plugin_calls_total", "plugin=testplugin", "kind=event", "code=PLUGIN_ERROR"); v != 4 {
		t.Fatalf("calls_total{PLUGIN_ERROR} = %v", v)
	}
	// A code once counted under its name keeps it.
	call("req-again", map[string]any{"error": "MY_CODE"})
	if v := metricValue(t, reg, "socket_server_plugin_calls_total", "plugin=testplugin", "kind=event", "code=MY_CODE"); v != 2 {
		t.Fatalf("calls_total{MY_CODE} = %v", v)
	}
}

// Files of the plugin folder that are not loaded are logged once, with the reason, and
// listed by Plugins as skipped; a name that could forge a log line is never written raw.
func TestSkippedFilesListedAndLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "README.md"), []byte("hi"), 0o644))
	must(os.Symlink(bins["testplugin"], filepath.Join(dir, "linked")))
	bin, err := os.ReadFile(bins["testplugin"])
	must(err)
	must(os.WriteFile(filepath.Join(dir, "bad\n2026 [ERROR] forged"), bin, 0o755))
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, ".hidden"), bin, 0o755))
	install(t, dir, "echo", bins["echo1"])
	e := mustEnv(t, Options{}, nil, func(h *Host) { h.o.Dir = dir })
	e.dir = dir
	if p := e.info(t, "echo"); p.State != StateRunning {
		t.Fatalf("echo %+v", p)
	}
	time.Sleep(10 * e.h.pollEvery) // several scans

	want := map[string]string{
		"README.md":                "not executable",
		"linked":                   "symbolic link",
		`bad\n2026 [ERROR] forged`: "name not accepted",
		"sub":                      "directory",
	}
	got := map[string]PluginInfo{}
	for _, p := range e.h.Plugins() {
		got[p.Name] = p
	}
	for name, why := range want {
		p, ok := got[name]
		if !ok || p.State != StateSkipped || !strings.Contains(p.Error, why) || p.PID != 0 {
			t.Fatalf("%q: %+v (all: %+v)", name, p, got)
		}
	}
	if len(got) != len(want)+1 {
		t.Fatalf("plugins %+v", got)
	}
	if b, _ := json.Marshal(e.h.Plugins()); strings.Contains(string(b), "\n") {
		t.Fatalf("JSON %s", b)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "not loading a file of the plugin dir"); n != len(want) {
		t.Fatalf("%d skip lines, want %d:\n%s", n, len(want), logs)
	}
	for _, l := range strings.Split(logs, "\n") {
		if strings.HasPrefix(l, "2026 [ERROR] forged") {
			t.Fatalf("forged log line: %q", l)
		}
	}
	// Made executable, README.md is loaded (and fails: it is no plugin), no longer skipped.
	must(os.Chmod(filepath.Join(dir, "README.md"), 0o755))
	waitFor(t, 20*time.Second, "README.md tried", func() bool { return e.info(t, "README.md").State == StateFailed })
}

// startHelper runs the test binary as a Host on dir in a process group of its own (as
// a shell starts a command) and returns it with its plugins' pids and its private
// copies' folder once it is ready.
func startHelper(t *testing.T, dir string, env ...string) (*exec.Cmd, *bufio.Scanner, *syncBuffer, []int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), helperEnv+"="+dir), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var pids []int
	var copies string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if line == "READY" {
			return cmd, sc, stderr, pids, copies
		}
		if d, ok := strings.CutPrefix(line, "DIR "); ok {
			copies = d
		} else if p, ok := strings.CutPrefix(line, "PID "); ok {
			pid, _ := strconv.Atoi(p)
			pids = append(pids, pid)
		} else {
			t.Fatalf("helper: %s", line)
		}
	}
	t.Fatalf("helper ended early: %s", stderr.String())
	return nil, nil, nil, nil, ""
}

// SIGTERM to the whole process group (what a terminal's Ctrl-C does with SIGINT, or
// `kill -- -PGID`) is a normal shutdown: the plugins, in groups of their own, do not
// get it, the host stops them, and nothing is logged as a warning or an error.
func TestGroupSignalIsANormalShutdown(t *testing.T) {
	dir := t.TempDir()
	install(t, dir, "echo", bins["echo1"])
	install(t, dir, "chat", bins["chat"])
	cmd, sc, stderr, pids, copies := startHelper(t, dir)
	if len(pids) != 2 {
		t.Fatalf("pids %v", pids)
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	closed := false
	for sc.Scan() {
		closed = closed || sc.Text() == "CLOSED"
	}
	err := cmd.Wait()
	logs := stderr.String()
	if err != nil || !closed {
		t.Fatalf("helper: %v, closed %v\n%s", err, closed, logs)
	}
	for _, bad := range []string{"[WARN]", "[ERROR]", "restarting"} {
		if strings.Contains(logs, bad) {
			t.Fatalf("%s in a normal shutdown's log:\n%s", bad, logs)
		}
	}
	for _, pid := range pids {
		if !waitGone(pid, 5*time.Second) {
			t.Fatalf("plugin %d survived", pid)
		}
	}
	if _, err := os.Stat(copies); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("private copies left: %v", err)
	}
}
