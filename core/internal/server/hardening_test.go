package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtserver/rtserver/core/internal/config"
)

// TestPrivateRoomTakeover: a socket's id is never joinable by another client, connected
// or kept for recovery, so an intruder never receives the owner's events after the owner
// recovers.
func TestPrivateRoomTakeover(t *testing.T) {
	e := startServer(t, nil)
	owner, reply := e.rawAuth(t, `{"token":"`+token(t, "owner")+`"}`)
	m := connectReply(t, reply)
	owner.expect("system:welcome")
	owner.send(`42["register",{"userId":"owner"}]`)
	offset := lastString(t, owner.expect("register:ack"))

	intruder := e.raw(t, "intruder")
	intruder.send(`42["register",{"userId":"intruder"}]`)
	intruder.expect("register:ack")
	join := `42["room:join",{"room":"` + m["sid"] + `"}]`
	intruder.send(join)
	if f := intruder.expect("error"); !strings.Contains(f, "INVALID_ROOM") {
		t.Fatalf("joining a connected socket's id: %q", f)
	}

	owner.close()
	eventuallyT(t, "owner's socket gone", func() bool {
		_, st, _ := e.api("GET", "/api/status", nil)
		return st["connections"] == float64(1)
	})
	intruder.send(join)
	if f := intruder.expect("error"); !strings.Contains(f, "INVALID_ROOM") {
		t.Fatalf("joining a kept session's id: %q", f)
	}

	back, reply := e.rawAuth(t, `{"token":"`+token(t, "owner")+`","pid":"`+m["pid"]+`","offset":"`+offset+`"}`)
	if connectReply(t, reply)["sid"] != m["sid"] {
		t.Fatalf("not recovered: %q", reply)
	}
	back.expect("system:state_recovered")
	if st, body, _ := e.api("POST", "/api/push", map[string]any{"userId": "owner", "event": "private", "data": map[string]string{"secret": "s3"}}); st != 200 || body["delivered"] != true {
		t.Fatalf("push: %d %v", st, body)
	}
	back.expect("private")
	// The intruder's next event is the marker, not the owner's push.
	if st, _, _ := e.api("POST", "/api/push", map[string]any{"userId": "intruder", "event": "marker"}); st != 200 {
		t.Fatal("push marker")
	}
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("no marker")
		}
		f := intruder.read()
		if strings.Contains(f, "s3") {
			t.Fatalf("the intruder received the owner's event: %q", f)
		}
		if strings.HasPrefix(f, `42["marker"`) {
			break
		}
	}
}

// TestNoHangUnderSlowReaders runs slow readers (sockets that stop reading), large
// broadcasts, room messages and notifications, and clients that drop and recover, all at
// once, and checks that /health answers throughout, every sender returns, and nothing is
// left running afterwards.
func TestNoHangUnderSlowReaders(t *testing.T) {
	base := runtime.NumGoroutine()
	e := startServer(t, func(c *config.Config) {
		c.SocketIO.MaxOutboundBytes = 256 << 10
		c.API.MaxBodyBytes = 1 << 20
	})
	run := 6 * time.Second
	if testing.Short() {
		run = 2 * time.Second
	}
	stop := make(chan struct{})
	time.AfterFunc(run, func() { close(stop) })
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	httpc := &http.Client{Timeout: 10 * time.Second}
	defer httpc.CloseIdleConnections()
	post := func(path string, body any) error {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", e.apiURL+path, bytes.NewReader(b))
		req.Header.Set("X-API-Key", testAPIKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := httpc.Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("%s: status %d", path, res.StatusCode)
		}
		return nil
	}
	wsURL := "ws" + strings.TrimPrefix(e.url, "http") + "/socket.io/?EIO=4&transport=websocket"
	// dialRegistered opens a websocket, connects as user, registers and joins "r"; the
	// caller owns the connection. It reads until the room ack.
	dialRegistered := func(user, auth string) (*websocket.Conn, string, error) {
		ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
		if err != nil {
			return nil, "", err
		}
		if auth == "" {
			auth = `{"token":"` + token(t, user) + `"}`
		}
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var connectReply string
		for _, f := range []string{"", "40" + auth, `42["register",{"userId":"` + user + `"}]`, `42["room:join",{"room":"r"}]`} {
			if f != "" {
				if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
					ws.Close()
					return nil, "", err
				}
			}
			want := map[string]string{"": "0{", "40" + auth: "40", `42["register",{"userId":"` + user + `"}]`: `42["register:ack"`, `42["room:join",{"room":"r"}]`: `42["room:join:ack"`}[f]
			for {
				_, b, err := ws.ReadMessage()
				if err != nil {
					ws.Close()
					return nil, "", err
				}
				if string(b) == "2" {
					_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
					continue
				}
				if strings.HasPrefix(string(b), want) {
					if want == "40" {
						connectReply = string(b)
					}
					break
				}
			}
		}
		return ws, connectReply, nil
	}

	var wg sync.WaitGroup
	var errs sync.Map
	fail := func(what string, err error) { errs.LoadOrStore(what, err) }

	// Slow readers: register, join, then never read again.
	for i := range 8 {
		ws, _, err := dialRegistered(fmt.Sprintf("slow%d", i), "")
		if err != nil {
			t.Fatalf("slow reader %d: %v", i, err)
		}
		defer ws.Close()
	}
	big := strings.Repeat("x", 100<<10)
	for i, path := range []string{"/api/broadcast", "/api/room", "/api/notification"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stopped(); n++ {
				var err error
				switch path {
				case "/api/broadcast":
					err = post(path, map[string]any{"event": "big", "data": map[string]any{"n": n, "pad": big}})
				case "/api/room":
					err = post(path, map[string]any{"room": "r", "event": "big", "data": map[string]any{"n": n, "pad": big}})
				default:
					err = post(path, map[string]any{"userId": fmt.Sprintf("slow%d", n%8), "title": "t", "message": big, "type": "info"})
				}
				if err != nil {
					fail(fmt.Sprintf("sender %d", i), err)
					return
				}
			}
		}()
	}
	// Churn: clients that drop without a goodbye and come back with recovery.
	var recovered, rounds, dropped atomic.Int64
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("churn%d", i)
			auth := ""
			for !stopped() {
				ws, reply, err := dialRegistered(user, auth)
				if err != nil {
					// Dropped while catching up (the senders outrun a client under the
					// race detector): that is the server defending itself. Start afresh.
					dropped.Add(1)
					auth = ""
					continue
				}
				rounds.Add(1)
				if auth != "" && strings.Contains(reply, `"sid"`) {
					recovered.Add(1)
				}
				// Read a little, remember the last offset, then drop.
				var pid, offset string
				var h struct{ PID string }
				if json.Unmarshal([]byte(strings.TrimPrefix(reply, "40")), &h) == nil {
					pid = h.PID
				}
				_ = ws.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				for {
					_, b, err := ws.ReadMessage()
					if err != nil {
						break
					}
					var args []any
					if strings.HasPrefix(string(b), "42") && json.Unmarshal(b[2:], &args) == nil && len(args) > 1 {
						if s, ok := args[len(args)-1].(string); ok {
							offset = s
						}
					}
				}
				ws.UnderlyingConn().Close()
				auth = ""
				if pid != "" && offset != "" {
					auth = `{"token":"` + token(t, user) + `","pid":"` + pid + `","offset":"` + offset + `"}`
				}
			}
		}()
	}
	// /health must answer throughout.
	var healthMiss atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		hc := &http.Client{Timeout: 5 * time.Second}
		defer hc.CloseIdleConnections()
		for !stopped() {
			res, err := hc.Get(e.url + "/health")
			if err != nil || res.StatusCode != 200 {
				healthMiss.Add(1)
				fail("health", fmt.Errorf("%v", err))
			}
			if res != nil {
				res.Body.Close()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(run + 30*time.Second):
		buf := make([]byte, 4<<20)
		t.Fatalf("senders or clients still blocked %v after the run ended\n%s", 30*time.Second, buf[:runtime.Stack(buf, true)])
	}
	errs.Range(func(k, v any) bool {
		t.Errorf("%v: %v", k, v)
		return true
	})
	if healthMiss.Load() > 0 {
		t.Errorf("/health missed %d times", healthMiss.Load())
	}
	t.Logf("churn: %d rounds, %d recovered, %d dropped while catching up", rounds.Load(), recovered.Load(), dropped.Load())
	if rounds.Load() == 0 {
		t.Error("no churning client ever connected")
	}
	// A new client is served at once, and the slow readers were dropped.
	c := e.raw(t, "after")
	c.close()
	t.Cleanup(func() { waitGoroutines(t, base) })
}

func eventuallyT(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPluginErrorsReachClientsGeneric: a plugin's plain error (with a file path in it) or
// panic reaches the client as PLUGIN_ERROR with a generic message; a code the plugin chose
// deliberately (sdk.Error) passes through with its message.
func TestPluginErrorsReachClientsGeneric(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "testplugin"), "./core/internal/pluginhost/testdata/testplugin")
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build testplugin: %v\n%s", err, out)
	}
	e := startServer(t, func(c *config.Config) { c.Plugins.Dir = dir })
	c := e.raw(t, "u1")
	c.send(`42["register",{"userId":"u1"}]`)
	c.expect("register:ack")
	for _, tc := range []struct{ data, code, leak string }{
		{`{"fail":"open /home/app/secrets.json: permission denied"}`, "PLUGIN_ERROR", "/home/app"},
		{`{"panic":"boom at /srv/plugin/main.go:42"}`, "PLUGIN_ERROR", "/srv/plugin"},
		{`{"error":"OUT_OF_STOCK"}`, "OUT_OF_STOCK", ""},
	} {
		c.send(`42["client:event",{"type":"t","data":` + tc.data + `}]`)
		f := c.expect("server:response")
		var args []json.RawMessage
		_ = json.Unmarshal([]byte(f[2:]), &args)
		var r struct {
			Success bool
			Code    string
			Error   string
		}
		if len(args) < 2 || json.Unmarshal(args[1], &r) != nil {
			t.Fatalf("server:response %q", f)
		}
		if r.Success || r.Code != tc.code || r.Error == "" {
			t.Errorf("%s: %q, want code %s", tc.data, f, tc.code)
		}
		if tc.leak != "" && strings.Contains(f, tc.leak) {
			t.Errorf("%s: the plugin's detail reached the client: %q", tc.data, f)
		}
	}
}
