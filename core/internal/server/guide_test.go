package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtserver/rtserver/core/internal/config"
)

// The plugin of docs/plugins.md, built from the guide's own text, runs in the server with
// the guide's config block: a client in the room rolls, gets the value, and the room sees
// the roll as a chat:message; a refused roll carries the guide's code.
func TestPluginGuideRunsInTheServer(t *testing.T) {
	root := moduleRoot(t)
	guide, err := os.ReadFile(filepath.Join(root, "docs", "plugins.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(guide), "<!-- file: main.go -->\n```go\n")
	if !ok {
		t.Fatal("docs/plugins.md has no main.go block")
	}
	src, _, _ := strings.Cut(rest, "```\n")
	// Inside the module (for the SDK import), under testdata (outside ./...).
	tmp := filepath.Join(root, "core", "internal", "server", "testdata")
	dir, err := os.MkdirTemp(tmp, "guide-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	plugins := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "dice"), "./"+filepath.Base(dir))
	build.Dir = tmp
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the guide's plugin: %v\n%s", err, out)
	}
	e := startServer(t, func(c *config.Config) {
		c.Plugins.Dir = plugins
		c.Plugin = []config.Plugin{{Name: "dice", Timeout: c.Plugins.DefaultTimeout,
			MaxInFlight: c.Plugins.MaxInFlight, Config: json.RawMessage(`{"max_sides": 20}`)}}
	})

	alice := e.connect("alice", transportSets["websocket"])
	alice.emit("room:join", map[string]any{"room": "lobby"})
	alice.nextObj("room:join:ack")
	alice.emit("client:action", map[string]any{"action": "roll", "params": map[string]any{"room": "lobby", "sides": 6}})
	r := alice.nextObj("action:result")
	res, _ := r["result"].(map[string]any)
	if v, _ := res["value"].(float64); r["success"] != true || v < 1 || v > 6 {
		t.Fatalf("action:result %v", r)
	}
	if m := alice.nextObj("chat:message"); m["userId"] != "dice" || !strings.HasPrefix(m["content"].(string), "alice rolled ") {
		t.Fatalf("chat:message %v", m)
	}
	alice.emit("client:action", map[string]any{"action": "roll", "params": map[string]any{"room": "lobby", "sides": 100}})
	if r := alice.nextObj("action:result"); r["success"] != false || r["code"] != "BAD_SIDES" {
		t.Fatalf("d100 with max_sides 20: %v", r)
	}
}
