package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/redistest"
)

// TestClusterStoppedNode: with one of two nodes stopped (SIGSTOP: subscribed to Redis but
// answering nothing), the other's counts and status still answer, marked partial; once the
// node runs again they are complete.
func TestClusterStoppedNode(t *testing.T) {
	addr := redistest.Addr(t)
	cfg := writeConfig(t, `
environment = "test"
server {
  host = "127.0.0.1"
  port = 0
}
auth { jwt_secret = "s3cret-for-the-test" }
plugins { dir = "`+t.TempDir()+`" }
api {
  key "default" {
    secret = "api-key-for-the-test"
    scopes = ["*"]
  }
}
cluster {
  redis_url       = "redis://`+addr+`/0"
  key_prefix      = "`+redistest.Prefix(t, "rt-stop")+`"
  request_timeout = "400ms"
}
`)
	_, addrA, _ := start(t, cfg)
	cmdB, _, _ := start(t, cfg)
	t.Cleanup(func() { _ = cmdB.Process.Signal(syscall.SIGCONT) })

	call := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addrA+path, strings.NewReader(body))
		req.Header.Set("X-API-Key", "api-key-for-the-test")
		client := &http.Client{Timeout: 30 * time.Second} // "nothing hangs": far above the 400ms
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(res.Body).Decode(&m); err != nil || res.StatusCode != 200 {
			t.Fatalf("%s %s: %d %v", method, path, res.StatusCode, err)
		}
		return m
	}
	if m := call("POST", "/api/broadcast", `{"event":"x"}`); m["partial"] != nil {
		t.Fatalf("both nodes running: %v", m)
	}
	if err := cmdB.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if m := call("POST", "/api/broadcast", `{"event":"x"}`); m["partial"] != true || m["recipients"] != 0.0 {
		t.Fatalf("node B stopped: broadcast %v", m)
	}
	// A message to a room goes on the room's channel and waits only for the nodes with a
	// member in it: nobody is in "r", so the stopped node is not waited for and the
	// count (0) is complete.
	if m := call("POST", "/api/room", `{"room":"r","event":"x"}`); m["partial"] != nil || m["recipients"] != 0.0 {
		t.Fatalf("node B stopped: room %v", m)
	}
	st := call("GET", "/api/status", "")
	if cl, _ := st["cluster"].(map[string]any); cl["nodes"] != 2.0 || cl["partial"] != true {
		t.Fatalf("node B stopped: status %v", st)
	}
	if err := cmdB.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// B reads the requests it missed and answers late (ignored); new ones get complete answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := call("POST", "/api/broadcast", `{"event":"x"}`)
		if m["partial"] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node B running again, still partial: %v", m)
		}
	}
}
