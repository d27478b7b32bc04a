package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtserver/rtserver/core/internal/config"
)

// pluginEnv starts a server whose plugin folder holds the named example plugins.
func pluginEnv(t *testing.T, names ...string) (*env, string) {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		buildPlugin(t, n, dir, "")
	}
	e := startServer(t, func(c *config.Config) { c.Plugins.Dir = dir })
	return e, dir
}

func TestEchoPluginRoutesAllThreeKinds(t *testing.T) {
	e, _ := pluginEnv(t, "echo")
	for name, tr := range transportSets {
		t.Run(name, func(t *testing.T) {
			e := e.with(t) // the subtest fails and cleans up its own clients
			c := e.connect("echo-user", tr)
			c.emit("client:event", map[string]any{"type": "greet", "data": map[string]any{"hello": "world"}})
			r := c.nextObj("server:response")
			data, _ := r["data"].(map[string]any)
			if r["success"] != true || r["requestId"] == "" || data["kind"] != "event" || data["name"] != "greet" || data["userId"] != "echo-user" {
				t.Fatalf("server:response %v", r)
			}
			echo, _ := data["echo"].(map[string]any)
			if inner, _ := echo["data"].(map[string]any); inner["hello"] != "world" {
				t.Fatalf("echo payload %v", echo)
			}

			c.emit("client:message", map[string]any{"content": "hi", "type": "text", "metadata": map[string]any{"k": 1}})
			m := c.nextObj("message:ack")
			if m["success"] != true || m["requestId"] == "" || m["messageId"] == "" || m["messageId"] == nil {
				t.Fatalf("message:ack %v", m)
			}

			c.emit("client:action", map[string]any{"action": "compute", "params": map[string]any{"x": 2}})
			a := c.nextObj("action:result")
			result, _ := a["result"].(map[string]any)
			if a["success"] != true || result["kind"] != "action" || result["name"] != "compute" {
				t.Fatalf("action:result %v", a)
			}

			// The same request with an ack callback is answered there too.
			args := c.emitAck("client:event", map[string]any{"type": "acked"})
			c.nextObj("server:response")
			if len(args) != 1 {
				t.Fatalf("ack args %v", args)
			}
		})
	}
}

func TestChatPluginTwoClientsOneRoom(t *testing.T) {
	e, _ := pluginEnv(t, "chat")
	alice := e.connect("alice", transportSets["websocket"])
	bob := e.connect("bob", transportSets["polling"])
	for _, c := range []*client{alice, bob} {
		c.emit("room:join", map[string]any{"room": "general"})
		c.nextObj("room:join:ack")
	}
	alice.emit("client:message", map[string]any{"content": "hello bob", "type": "chat"})
	ack := alice.nextObj("message:ack")
	if ack["success"] != true {
		t.Fatalf("message:ack %v", ack)
	}
	for _, c := range []*client{alice, bob} {
		m := c.nextObj("chat:message")
		if m["content"] != "hello bob" || m["userId"] != "alice" || m["room"] != "general" {
			t.Fatalf("chat:message %v", m)
		}
	}

	bob.emit("client:event", map[string]any{"type": "typing", "data": map[string]any{"room": "general", "typing": true}})
	if r := bob.nextObj("server:response"); r["success"] != true {
		t.Fatalf("typing response %v", r)
	}
	if ty := alice.nextObj("chat:typing"); ty["userId"] != "bob" {
		t.Fatalf("chat:typing %v", ty)
	}
	bob.none("chat:typing", 200*time.Millisecond)

	bob.emit("client:action", map[string]any{"action": "history", "params": map[string]any{"room": "general", "limit": 10}})
	h := bob.nextObj("action:result")
	result, _ := h["result"].(map[string]any)
	msgs, _ := result["messages"].([]any)
	if h["success"] != true || len(msgs) != 1 {
		t.Fatalf("history %v", h)
	}
	// A socket outside the room gets a coded refusal from the plugin.
	carol := e.connect("carol", transportSets["websocket"])
	carol.emit("client:action", map[string]any{"action": "history", "params": map[string]any{"room": "general"}})
	if r := carol.nextObj("action:result"); r["success"] != false || r["code"] != "NOT_IN_ROOM" {
		t.Fatalf("history outside the room: %v", r)
	}
}

// TestHotReloadUnderLoad replaces the echo binary five times by atomic rename while clients
// send requests in a loop: every request gets a successful reply, and replies move to the
// newest version.
func TestHotReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	buildPlugin(t, "echo", dir, "-X main.version=v0")
	builds := t.TempDir()
	versions := make([]string, 5)
	for i := range versions {
		versions[i] = fmt.Sprintf("v%d", i+1)
		vdir := filepath.Join(builds, versions[i])
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		buildPlugin(t, "echo", vdir, "-X main.version="+versions[i])
	}
	e := startServer(t, func(c *config.Config) { c.Plugins.Dir = dir })

	const clients = 8
	var sent, ok atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	failures := []string{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Raw protocol clients: a lost request is then the server's, not a client library's.
	for i := 0; i < clients; i++ {
		c := e.raw(t, fmt.Sprintf("load-%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				frame := fmt.Sprintf(`42["client:event",{"type":"load","data":{"n":%d}}]`, n)
				if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
					mu.Lock()
					failures = append(failures, "write: "+err.Error())
					mu.Unlock()
					return
				}
				r, err := awaitResponse(c, 10*time.Second)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, fmt.Sprintf("request %d: %v", n, err))
				case r.Success && r.Data.Echo.Data.N == n:
					ok.Add(1)
					seen[r.Data.Version]++
				default:
					failures = append(failures, fmt.Sprintf("request %d: %+v", n, r))
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	for _, v := range versions {
		time.Sleep(300 * time.Millisecond)
		tmp := filepath.Join(dir, ".echo.new")
		src, err := os.ReadFile(filepath.Join(builds, v, "echo"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(tmp, src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "echo")); err != nil {
			t.Fatal(err)
		}
		// Wait until the new version answers.
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			n := seen[v]
			mu.Unlock()
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("version %s never answered; seen %v", v, seen)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed: %v", len(failures), sent.Load(), failures[:min(5, len(failures))])
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests made it; the load was too light to mean anything", ok.Load())
	}
	t.Logf("%d requests, all answered; by version: %v", ok.Load(), seen)
}

// echoResponse is the part of server:response that the hot-reload test reads.
type echoResponse struct {
	Success bool   `json:"success"`
	Code    string `json:"code"`
	Error   string `json:"error"`
	Data    struct {
		Version string `json:"version"`
		Echo    struct {
			Data struct {
				N int `json:"n"`
			} `json:"data"`
		} `json:"echo"`
	} `json:"data"`
}

// awaitResponse reads frames (answering pings) until a server:response arrives.
func awaitResponse(c *rawClient, within time.Duration) (echoResponse, error) {
	var r echoResponse
	_ = c.ws.SetReadDeadline(time.Now().Add(within))
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return r, fmt.Errorf("no reply: %w", err)
		}
		if string(b) == "2" {
			if err := c.ws.WriteMessage(websocket.TextMessage, []byte("3")); err != nil {
				return r, err
			}
			continue
		}
		if !strings.HasPrefix(string(b), `42["server:response",`) {
			continue
		}
		var args []json.RawMessage
		if err := json.Unmarshal(b[2:], &args); err != nil || len(args) < 2 {
			return r, fmt.Errorf("bad frame %q", b)
		}
		return r, json.Unmarshal(args[1], &r)
	}
}

// TestServesWhilePluginsLoad: a file in the plugin folder that takes long to start (here
// one that never speaks the plugin protocol, and keeps a child holding its pipes) does not
// delay serving: /health and Socket.IO answer at once, a request meanwhile gets
// PLUGIN_UNAVAILABLE, /api/plugins lists what is skipped, and shutdown does not wait for
// the stuck start.
func TestServesWhilePluginsLoad(t *testing.T) {
	dir := t.TempDir()
	stuck := "#!/bin/sh\nsleep 617\n"
	if err := os.WriteFile(filepath.Join(dir, "stuck"), []byte(stuck), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startServing(t, func(c *config.Config) { c.Plugins.Dir = dir })
	select {
	case <-e.srv.PluginsReady():
		t.Fatal("plugins ready while one is stuck starting")
	default:
	}
	if code, body, _ := e.api("GET", "/health", nil); code != 200 || body["status"] != "ok" {
		t.Fatalf("health %d %v", code, body)
	}
	c := e.connect("early-user", transportSets["websocket"])
	c.emit("client:event", map[string]any{"type": "greet"})
	if r := c.nextObj("server:response"); r["success"] != false || r["code"] != "PLUGIN_UNAVAILABLE" {
		t.Fatalf("server:response while loading %v", r)
	}
	code, body, _ := e.api("GET", "/api/plugins", nil)
	list, _ := body["plugins"].([]any)
	if code != 200 || len(list) != 1 {
		t.Fatalf("plugins %d %v", code, body)
	}
	if p := list[0].(map[string]any); p["name"] != "notes.txt" || p["state"] != "skipped" || !strings.Contains(p["error"].(string), "not executable") {
		t.Fatalf("skipped entry %v", p)
	}
	// Shutdown (the cleanup) ends the stuck start; nothing of it is left running.
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(8 * time.Second): // under the plugin's 10s start-up bound
		t.Fatal("shutdown waited for a stuck plugin start")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.Command("pgrep", "-f", "^sleep 617$").Output()
		if len(strings.TrimSpace(string(out))) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stuck plugin's child survived: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testPluginEnv starts a server whose plugin folder holds pluginhost's test plugin (event
// and action "t", behaving as its data asks), with mutate applied to the config.
func testPluginEnv(t *testing.T, mutate func(*config.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	buildPlugin(t, "core/internal/pluginhost/testdata/testplugin", dir, "")
	return startServer(t, func(c *config.Config) {
		c.Plugins.Dir = dir
		if mutate != nil {
			mutate(c)
		}
	})
}

// A plugin's own timeout applies, above the default as well as below it: nothing between
// the socket and the plugin host cuts a call at the default.
func TestPluginTimeoutAboveDefault(t *testing.T) {
	e := testPluginEnv(t, func(c *config.Config) {
		c.Plugins.DefaultTimeout = time.Second
		c.Plugin = []config.Plugin{{Name: "testplugin", Timeout: 4 * time.Second, MaxInFlight: 8}}
	})
	c := e.raw(t, "slow-user")
	c.send(`42["client:event",{"type":"t","data":{"sleep_ms":2500}}]`)
	r := c.expect("server:response")
	if !strings.Contains(r, `"success":true`) {
		t.Fatalf("a 2.5 s call under a 4 s plugin timeout: %s", r)
	}

	// And the default still bounds a plugin without its own timeout.
	e = testPluginEnv(t, func(c *config.Config) { c.Plugins.DefaultTimeout = time.Second })
	c = e.raw(t, "slow-user")
	c.send(`42["client:event",{"type":"t","data":{"sleep_ms":2500}}]`)
	if r := c.expect("server:response"); !strings.Contains(r, `"code":"PLUGIN_TIMEOUT"`) {
		t.Fatalf("a 2.5 s call under a 1 s default: %s", r)
	}
}

// A socket that goes away cancels its calls: the plugin's handler sees its context end
// and stops working for a client that left. The test plugin, asked to sleep and then emit
// to a room, returns when its context ends, so the room hears nothing.
func TestDisconnectCancelsPluginCalls(t *testing.T) {
	e := testPluginEnv(t, func(c *config.Config) { c.Plugins.DefaultTimeout = 10 * time.Second })
	watcher := e.raw(t, "watcher")
	watcher.send(`42["room:join",{"room":"watch"}]`)
	watcher.expect("room:join:ack")

	for _, path := range []string{"async", "queued"} {
		leaver := e.raw(t, "leaver")
		if path == "queued" {
			// A second request waits behind the first in the socket's queue; both end.
			leaver.send(`42["client:action",{"action":"t","params":{"sleep_ms":1500,"emit":"watch"}}]`)
		}
		leaver.send(`42["client:event",{"type":"t","data":{"sleep_ms":1500,"emit":"watch"}}]`)
		time.Sleep(300 * time.Millisecond) // the call reaches the plugin
		leaver.close()
	}
	// Past the handlers' sleep: had they run to the end, their emits would be here.
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		_ = watcher.ws.SetReadDeadline(deadline)
		_, b, err := watcher.ws.ReadMessage()
		if err != nil {
			break
		}
		if f := string(b); f == "2" {
			watcher.send("3")
		} else if strings.Contains(f, "test:emit") {
			t.Fatalf("a plugin call of a gone socket ran to its end: %s", f)
		}
	}
}
