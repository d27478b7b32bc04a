package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtserver/rtserver/core/internal/conformance"
)

// A raw-protocol client of the conformance server, speaking exactly what the official
// test suites send (their test-suite.js), so that every byte is checked.

type suite struct {
	t    *testing.T
	addr string
}

// start serves the conformance server on 127.0.0.1:0 for the test and checks at the end
// that it leaves no goroutine behind.
func start(t *testing.T) *suite {
	t.Helper()
	base := runtime.NumGoroutine()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := conformance.Start(ln, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		waitGoroutines(t, base)
	})
	return &suite{t: t, addr: ln.Addr().String()}
}

// waitGoroutines fails when the goroutine count does not come back near base (timers of
// the ws library's closes and idle workers take a moment).
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base+4 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// do sends an HTTP request to path?query and returns status and body.
func (s *suite) do(method, path, query, body string) (int, string) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+s.addr+path+"?"+query, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s?%s: %v", method, path, query, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// openPolling opens a polling session at path and returns its sid.
func (s *suite) openPolling(path string) string {
	s.t.Helper()
	st, body := s.do("GET", path, "EIO=4&transport=polling", "")
	if st != 200 {
		s.t.Fatalf("handshake %d %q", st, body)
	}
	return openPacket(s.t, body).SID
}

// poll is a GET of a polling session; post a POST.
func (s *suite) poll(path, sid string) (int, string) {
	s.t.Helper()
	return s.do("GET", path, "EIO=4&transport=polling&sid="+sid, "")
}

func (s *suite) post(path, sid, body string) (int, string) {
	s.t.Helper()
	return s.do("POST", path, "EIO=4&transport=polling&sid="+sid, body)
}

// pollAsync starts a GET and returns its status and body once answered.
func (s *suite) pollAsync(path, sid string) <-chan [2]string {
	ch := make(chan [2]string, 1)
	go func() {
		res, err := httpClient.Get("http://" + s.addr + path + "?EIO=4&transport=polling&sid=" + sid)
		if err != nil {
			ch <- [2]string{"error", err.Error()}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		ch <- [2]string{http.StatusText(res.StatusCode), string(b)}
	}()
	return ch
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: nothing within 5s", what)
	}
	var zero T
	return zero
}

type handshake struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// openPacket checks an open packet has exactly the suites' keys and returns it.
func openPacket(t *testing.T, s string) handshake {
	t.Helper()
	if !strings.HasPrefix(s, "0{") {
		t.Fatalf("not an open packet: %q", s)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s[1:]), &keys); err != nil || len(keys) != 5 {
		t.Fatalf("open packet %q: %v", s, err)
	}
	var h handshake
	if err := json.Unmarshal([]byte(s[1:]), &h); err != nil || h.SID == "" {
		t.Fatalf("open packet %q: %v", s, err)
	}
	if h.PingInterval != 300 || h.PingTimeout != 200 || h.MaxPayload != 1000000 {
		t.Errorf("open packet %q: want pingInterval 300, pingTimeout 200, maxPayload 1000000", s)
	}
	return h
}

// ws is a raw websocket; reads do not answer pings unless asked (the suites never do).
type ws struct {
	t *testing.T
	c *websocket.Conn
}

func (s *suite) dial(path, query string) (*ws, *http.Response, error) {
	c, res, err := websocket.DefaultDialer.Dial("ws://"+s.addr+path+"?"+query, nil)
	if err != nil {
		return nil, res, err
	}
	s.t.Cleanup(func() { _ = c.Close() })
	return &ws{t: s.t, c: c}, res, nil
}

// open dials a websocket session at path (sid empty) or an upgrade of sid.
func (s *suite) open(path, sid string) *ws {
	s.t.Helper()
	q := "EIO=4&transport=websocket"
	if sid != "" {
		q += "&sid=" + sid
	}
	w, res, err := s.dial(path, q)
	if err != nil {
		s.t.Fatalf("dial %s?%s: %v %v", path, q, err, res)
	}
	return w
}

func (w *ws) send(s string) {
	w.t.Helper()
	if err := w.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		w.t.Fatal(err)
	}
}

func (w *ws) sendBinary(b []byte) {
	w.t.Helper()
	if err := w.c.WriteMessage(websocket.BinaryMessage, b); err != nil {
		w.t.Fatal(err)
	}
}

// read returns the next frame's payload, failing on an error.
func (w *ws) read() string {
	w.t.Helper()
	s, err := w.readErr()
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return s
}

func (w *ws) readErr() (string, error) {
	_ = w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := w.c.ReadMessage()
	return string(b), err
}

// readSkipPings is read with pings skipped, as the suites' waitForPackets does (and
// answered, so the session stays).
func (w *ws) readSkipPings() string {
	w.t.Helper()
	for {
		s := w.read()
		if s != "2" {
			return s
		}
		w.send("3")
	}
}

// closed reads until the server ends the connection and returns how: a close frame's
// code, or -1 when the connection was cut without one.
func (w *ws) closed() int {
	w.t.Helper()
	for {
		_, err := w.readErr()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		var ne net.Error
		switch {
		case errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure:
			return ce.Code
		case errors.As(err, &ne) && ne.Timeout():
			w.t.Fatal("connection still open")
		}
		return -1
	}
}

// closedQuietly reads until the server ends the connection; nothing but pings and the
// engine's close packet may come first.
func (w *ws) closedQuietly(after string) {
	w.t.Helper()
	for {
		m, err := w.readErr()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			w.t.Fatalf("%s: connection still open", after)
		}
		if err != nil {
			return
		}
		if m != "2" && m != "1" {
			w.t.Errorf("%s: answered %q, want a close", after, m)
		}
	}
}

// connectIO opens a Socket.IO connection to "/" on a websocket, as the suites'
// initSocketIOConnection: handshake, CONNECT, its reply and the "auth" packet.
func (s *suite) connectIO() *ws {
	s.t.Helper()
	w := s.open("/socket.io/", "")
	openPacket(s.t, w.read())
	w.send("40")
	if m := w.read(); !strings.HasPrefix(m, `40{"sid":"`) {
		s.t.Fatalf("CONNECT reply %q", m)
	}
	if m := w.read(); m != `42["auth",{}]` {
		s.t.Fatalf("auth packet %q", m)
	}
	return w
}
