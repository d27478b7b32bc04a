package engineio_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtserver/rtserver/core/internal/engineio"
)

// event is what the recording handler saw.
type event struct {
	kind   string // open, message, close
	sid    string
	data   string
	binary bool
	reason string
}

// recorder is a Handler that records every call and checks that calls for one session
// never overlap.
type recorder struct {
	events chan event
	mu     sync.Mutex
	busy   map[string]bool
	t      testing.TB
	// onMessage, when set, runs inside OnMessage (after recording).
	onMessage func(c *engineio.Conn, data []byte, binary bool)
	onOpen    func(c *engineio.Conn)
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{events: make(chan event, 100000), busy: map[string]bool{}, t: t}
}

func (r *recorder) enter(sid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy[sid] {
		r.t.Errorf("concurrent handler calls for session %s", sid)
	}
	r.busy[sid] = true
}

func (r *recorder) leave(sid string) {
	r.mu.Lock()
	r.busy[sid] = false
	r.mu.Unlock()
}

func (r *recorder) OnOpen(c *engineio.Conn) {
	r.enter(c.ID())
	defer r.leave(c.ID())
	if r.onOpen != nil {
		r.onOpen(c)
	}
	r.events <- event{kind: "open", sid: c.ID()}
}

func (r *recorder) OnMessage(c *engineio.Conn, data []byte, binary bool) {
	r.enter(c.ID())
	defer r.leave(c.ID())
	r.events <- event{kind: "message", sid: c.ID(), data: string(data), binary: binary}
	if r.onMessage != nil {
		r.onMessage(c, data, binary)
	}
}

func (r *recorder) OnClose(c *engineio.Conn, reason string) {
	r.enter(c.ID())
	defer r.leave(c.ID())
	r.events <- event{kind: "close", sid: c.ID(), reason: reason}
}

// next returns the next event of kind, skipping others, or fails after a timeout.
func (r *recorder) next(t testing.TB, kind string) event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-r.events:
			if e.kind == kind {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event within 5s", kind)
		}
	}
}

// env is a running Engine.IO server behind HTTPServer on 127.0.0.1:0.
type env struct {
	t     testing.TB
	eio   *engineio.Server
	rec   *recorder
	http  *engineio.HTTPServer
	base  string // http://127.0.0.1:port/socket.io/
	addr  string
	conns sync.Map // sid -> *engineio.Conn, filled by OnOpen
}

func startEnv(t testing.TB, o engineio.Options) *env {
	t.Helper()
	e := &env{t: t, rec: newRecorder(t)}
	e.rec.onOpen = func(c *engineio.Conn) { e.conns.Store(c.ID(), c) }
	e.eio = engineio.NewServer(o, e.rec)
	mux := http.NewServeMux()
	mux.Handle(e.eio.Options().Path, e.eio)
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	e.http = startHTTP(t, mux)
	e.addr = e.http.Addr().String()
	e.base = "http://" + e.addr + e.eio.Options().Path
	t.Cleanup(func() {
		e.eio.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.http.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

// conn returns the session's Conn, waiting for its OnOpen if needed.
func (e *env) conn(sid string) *engineio.Conn {
	e.t.Helper()
	var v any
	waitFor(e.t, "OnOpen of "+sid, func() bool {
		var ok bool
		v, ok = e.conns.Load(sid)
		return ok
	})
	return v.(*engineio.Conn)
}

var client = &http.Client{Timeout: 10 * time.Second}

func (e *env) url(q string) string { return e.base + "?" + q }

// do sends a request and returns status, body and headers.
func (e *env) do(method, query, body string, hdr ...string) (int, string, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url(query), rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.StatusCode, string(b), res.Header
}

type handshake struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

func parseOpen(t testing.TB, body string) handshake {
	t.Helper()
	if !strings.HasPrefix(body, "0{") {
		t.Fatalf("not an open packet: %q", body)
	}
	var h handshake
	if err := json.Unmarshal([]byte(body[1:]), &h); err != nil {
		t.Fatalf("handshake json %q: %v", body, err)
	}
	return h
}

// openPolling performs a polling handshake and waits for OnOpen.
func (e *env) openPolling() string {
	e.t.Helper()
	st, body, _ := e.do("GET", "EIO=4&transport=polling", "")
	if st != 200 {
		e.t.Fatalf("handshake status %d %q", st, body)
	}
	h := parseOpen(e.t, body)
	e.rec.next(e.t, "open")
	return h.SID
}

func (e *env) poll(sid string) string {
	e.t.Helper()
	st, body, _ := e.do("GET", "EIO=4&transport=polling&sid="+sid, "")
	if st != 200 {
		e.t.Fatalf("poll status %d %q", st, body)
	}
	return body
}

func (e *env) post(sid, payload string) (int, string) {
	e.t.Helper()
	st, body, _ := e.do("POST", "EIO=4&transport=polling&sid="+sid, payload, "Content-Type", "text/plain;charset=UTF-8")
	return st, body
}

// dialWS opens a websocket (with sid for an upgrade, or a direct handshake).
func (e *env) dialWS(sid string) *websocket.Conn {
	e.t.Helper()
	u := url.URL{Scheme: "ws", Host: e.addr, Path: e.eio.Options().Path, RawQuery: "EIO=4&transport=websocket"}
	if sid != "" {
		u.RawQuery += "&sid=" + sid
	}
	ws, _, err := websocket.DefaultDialer.Dial(u.String(), nil)
	if err != nil {
		e.t.Fatalf("dial %s: %v", u.String(), err)
	}
	e.t.Cleanup(func() { _ = ws.Close() })
	return ws
}

func readWS(t testing.TB, ws *websocket.Conn) (int, string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("ws read: %v", err)
	}
	return mt, string(b)
}

// readWSSkipPings reads the next non-ping frame, answering pings.
func readWSSkipPings(t testing.TB, ws *websocket.Conn) (int, string) {
	t.Helper()
	for {
		mt, s := readWS(t, ws)
		if mt == websocket.TextMessage && s == "2" {
			_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
			continue
		}
		return mt, s
	}
}

func writeWS(t testing.TB, ws *websocket.Conn, mt int, s string) {
	t.Helper()
	if err := ws.WriteMessage(mt, []byte(s)); err != nil {
		t.Fatalf("ws write: %v", err)
	}
}

// waitFor polls cond until it holds or fails after 5s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !waitUntil(5*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// waitUntil polls cond every 10ms for up to d and reports whether it held.
func waitUntil(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// checkGoroutines fails if goroutines stay above base+slack.
func checkGoroutines(t testing.TB, base, slack int) {
	t.Helper()
	var n int
	for i := 0; i < 300; i++ {
		n = runtime.NumGoroutine()
		if n <= base+slack {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	t.Fatalf("goroutines: %d, baseline %d\n%s", n, base, fmt.Sprint(string(buf)))
}

// startHTTP serves h with the engine's HTTP server on a free port of 127.0.0.1; each
// configure function may set the server's fields first. Stopping it is the caller's
// business.
func startHTTP(t testing.TB, h http.Handler, configure ...func(*engineio.HTTPServer)) *engineio.HTTPServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := engineio.NewHTTPServer(ln, h)
	for _, f := range configure {
		f(srv)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	return srv
}

// serveEngine serves eio alone and closes both at the end of the test; it returns the
// websocket URL of the endpoint.
func serveEngine(t testing.TB, eio *engineio.Server) string {
	t.Helper()
	srv := startHTTP(t, eio)
	t.Cleanup(func() {
		eio.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "ws://" + srv.Addr().String() + eio.Options().Path + "?EIO=4&transport=websocket"
}
