package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Raw protocol tests: a hand-driven websocket or polling peer, so that malformed and
// unusual packet sequences can be sent exactly.

type rawWS struct {
	t  testing.TB
	ws *websocket.Conn
}

func dialRaw(t testing.TB, base string) *rawWS {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(base, "http", "ws", 1)+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	r := &rawWS{t: t, ws: ws}
	if m := r.readText(); !strings.HasPrefix(m, "0{") {
		t.Fatalf("handshake %q", m)
	}
	return r
}

func (r *rawWS) send(s string) {
	r.t.Helper()
	if err := r.ws.WriteMessage(websocket.TextMessage, []byte("4"+s)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawWS) sendBinary(b []byte) {
	r.t.Helper()
	if err := r.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		r.t.Fatal(err)
	}
}

// next returns the next engine.io message (pings answered), or an error when closed.
func (r *rawWS) next() (string, bool, error) {
	for {
		_ = r.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, b, err := r.ws.ReadMessage()
		if err != nil {
			return "", false, err
		}
		if typ == websocket.BinaryMessage {
			return string(b), true, nil
		}
		if string(b) == "2" {
			_ = r.ws.WriteMessage(websocket.TextMessage, []byte("3"))
			continue
		}
		return string(b), false, nil
	}
}

func (r *rawWS) readText() string {
	r.t.Helper()
	m, bin, err := r.next()
	if err != nil || bin {
		r.t.Fatalf("read: %q binary=%v err=%v", m, bin, err)
	}
	return m
}

// connect sends CONNECT and returns the socket id.
func (r *rawWS) connect(auth string) string {
	r.t.Helper()
	r.send("0" + auth)
	m := r.readText()
	if !strings.HasPrefix(m, "40{") {
		r.t.Fatalf("CONNECT reply %q", m)
	}
	var h struct{ SID string }
	if err := json.Unmarshal([]byte(m[2:]), &h); err != nil || h.SID == "" {
		r.t.Fatalf("CONNECT reply %q: %v", m, err)
	}
	return h.SID
}

// expectClosed reads until the server ends the connection, failing on anything but an
// engine close, and when it is still open after the read deadline.
func (r *rawWS) expectClosed() {
	r.t.Helper()
	for {
		m, _, err := r.next()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatal("connection still open")
		}
		if err != nil {
			return
		}
		if m != "1" && m != "41" {
			r.t.Fatalf("unexpected %q before close", m)
		}
	}
}

func echoServer(t testing.TB, o Options) (*Server, string) {
	return startServer(t, o, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			so.OnAny(func(so *Socket, event string, args Args, ack Ack) {
				out := args.Values()
				if ack != nil {
					_ = ack(out...)
					return
				}
				_ = so.Emit(event+":back", out...)
			})
		})
	})
}

func TestRawProtocol(t *testing.T) {
	srv, url := echoServer(t, Options{})

	t.Run("event and ack", func(t *testing.T) {
		r := dialRaw(t, url)
		r.connect("")
		r.send(`2["message",1,"2",{"3":[true]}]`)
		if m := r.readText(); m != `42["message:back",1,"2",{"3":[true]}]` {
			t.Errorf("got %q", m)
		}
		r.send(`212["message","x"]`)
		if m := r.readText(); m != `4312["x"]` {
			t.Errorf("got %q", m)
		}
		r.send(`27["message"]`)
		if m := r.readText(); m != `437[]` {
			t.Errorf("got %q", m)
		}
	})
	t.Run("binary", func(t *testing.T) {
		r := dialRaw(t, url)
		r.connect("")
		r.send(`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
		r.sendBinary([]byte{1, 2, 3})
		r.sendBinary([]byte{4, 5, 6})
		if m := r.readText(); m != `452-["message:back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]` {
			t.Errorf("got %q", m)
		}
		for _, want := range [][]byte{{1, 2, 3}, {4, 5, 6}} {
			m, bin, err := r.next()
			if err != nil || !bin || !bytes.Equal([]byte(m), want) {
				t.Errorf("attachment %v %v %v, want %v", []byte(m), bin, err, want)
			}
		}
		// BINARY_EVENT with zero attachments is complete at once.
		r.send(`50-3["message"]`)
		if m := r.readText(); m != `433[]` {
			t.Errorf("got %q", m)
		}
	})
	t.Run("auth payload", func(t *testing.T) {
		r := dialRaw(t, url)
		r.connect(`{"token":"123"}`)
	})
	t.Run("invalid namespace", func(t *testing.T) {
		r := dialRaw(t, url)
		r.send("0/random")
		if m := r.readText(); m != `44/random,{"message":"Invalid namespace"}` {
			t.Errorf("got %q", m)
		}
		// The session stays usable for the main namespace.
		r.connect("")
	})
	t.Run("duplicate connect ignored", func(t *testing.T) {
		r := dialRaw(t, url)
		r.connect("")
		r.send("0")
		r.send(`2["message","after"]`)
		if m := r.readText(); m != `42["message:back","after"]` {
			t.Errorf("got %q", m)
		}
	})
	t.Run("client disconnect", func(t *testing.T) {
		// Only the namespace leaves (TestRawClientDisconnectKeepsSession).
		r := dialRaw(t, url)
		id := r.connect("")
		r.send("1")
		eventually(t, "socket removed", func() bool { return srv.Socket(id) == nil })
		r.connect("")
	})

	malformed := []struct {
		name string
		seq  []string // "B:" prefix: binary frame
	}{
		{"garbage", []string{"abc"}},
		{"bad json", []string{`2["a"`}},
		{"empty event", []string{`2[]`}},
		{"reserved event", []string{"0", `2["disconnect"]`}},
		{"ack without id", []string{`3[]`}},
		{"bad type", []string{`9`}},
		{"event before connect", []string{`2["a"]`}},
		{"connect error from client", []string{"0", `4{"message":"x"}`}},
		{"unexpected binary", []string{"0", "B:\x01"}},
		{"text while awaiting attachments", []string{"0", `51-["a",{"_placeholder":true,"num":0}]`, `2["a"]`}},
		{"huge attachment count", []string{"0", `51001-["a"]`}},
		{"connect with array", []string{"0[1]"}},
	}
	for _, tt := range malformed {
		t.Run("malformed "+tt.name, func(t *testing.T) {
			r := dialRaw(t, url)
			for i, s := range tt.seq {
				if b, ok := strings.CutPrefix(s, "B:"); ok {
					r.sendBinary([]byte(b))
					continue
				}
				r.send(s)
				if s == "0" && i < len(tt.seq)-1 {
					if m := r.readText(); !strings.HasPrefix(m, "40{") {
						t.Fatalf("CONNECT reply %q", m)
					}
				}
			}
			r.expectClosed()
		})
	}
	// The server kept working through all of the above.
	r := dialRaw(t, url)
	r.connect("")
	r.send(`2["still","ok"]`)
	if m := r.readText(); m != `42["still:back","ok"]` {
		t.Errorf("got %q", m)
	}
	eventually(t, "only the last socket left", func() bool { return srv.SocketCount() == 1 })
}

func TestRawConnectTimeout(t *testing.T) {
	_, url := startServer(t, Options{ConnectTimeout: 100 * time.Millisecond}, nil)
	r := dialRaw(t, url)
	start := time.Now()
	r.expectClosed()
	if time.Since(start) > 5*time.Second {
		t.Errorf("closed after %v", time.Since(start))
	}
}

func TestRawMiddlewareOrderAndRefusal(t *testing.T) {
	var order []string
	var mu sync.Mutex
	_, url := startServer(t, Options{}, func(s *Server) {
		s.Use(func(so *Socket, auth json.RawMessage) error {
			mu.Lock()
			order = append(order, "a")
			mu.Unlock()
			if auth == nil {
				return fmt.Errorf("auth required")
			}
			return nil
		})
		s.Use(func(so *Socket, auth json.RawMessage) error {
			mu.Lock()
			order = append(order, "b")
			mu.Unlock()
			if string(auth) == `{"boom":1}` {
				panic("middleware bug")
			}
			return nil
		})
	})
	r := dialRaw(t, url)
	r.send("0")
	if m := r.readText(); m != `44{"message":"auth required"}` {
		t.Errorf("got %q", m)
	}
	r.send(`0{"boom":1}`)
	if m := r.readText(); m != `44{"message":"internal error"}` {
		t.Errorf("got %q", m)
	}
	r.connect(`{"ok":1}`)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, "") != "aabab" {
		t.Errorf("order %v", order)
	}
}

func TestRawHandlerPanicKeepsServer(t *testing.T) {
	_, url := startServer(t, Options{}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			so.On("boom", func(*Socket, Args, Ack) { panic("handler bug") })
			so.On("ping", func(_ *Socket, _ Args, ack Ack) { _ = ack() })
		})
	})
	r := dialRaw(t, url)
	r.connect("")
	r.send(`2["boom"]`)
	r.send(`21["ping"]`)
	if m := r.readText(); m != `431[]` {
		t.Errorf("got %q", m)
	}
}

// TestRawPollingBinary drives the polling transport by hand: a binary event whose header
// and attachment arrive in separate POSTs, and a binary emit read back as base64.
func TestRawPollingBinary(t *testing.T) {
	_, url := echoServer(t, Options{})
	base := url + "/socket.io/?EIO=4&transport=polling"
	get := func(q string) string {
		t.Helper()
		res, err := http.Get(base + q)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	post := func(q, body string) {
		t.Helper()
		res, err := http.Post(base+q, "text/plain;charset=UTF-8", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("POST %q: %d", body, res.StatusCode)
		}
	}
	var h struct{ SID string }
	if err := json.Unmarshal([]byte(get("")[1:]), &h); err != nil {
		t.Fatal(err)
	}
	q := "&sid=" + h.SID
	post(q, "40")
	if m := get(q); !strings.HasPrefix(m, "40{") {
		t.Fatalf("connect reply %q", m)
	}
	post(q, `451-["up",{"_placeholder":true,"num":0}]`)
	post(q, "bAQID") // base64 of 01 02 03
	want := `451-["up:back",{"_placeholder":true,"num":0}]` + "\x1ebAQID"
	if m := get(q); m != want {
		t.Errorf("got %q, want %q", m, want)
	}
}

// TestRawConcurrentConnectEmit: many clients connect at once and emit the moment their
// CONNECT reply arrives; every one of them must be answered (none dropped), and the
// goroutine count comes back to its baseline after they leave.
func TestRawConcurrentConnectEmit(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			n := 5000
			if testing.Short() || inline {
				n = 2000
			}
			testConcurrentConnectEmit(t, n, Options{NonBlockingHandlers: inline})
		})
	}
}

// testConcurrentConnectEmit: n clients connect at once and emit as soon as CONNECT is
// acknowledged. With NonBlockingHandlers the emit may reach the poller while the upgrade
// request's job is still running: it must queue behind it, not overtake it.
func testConcurrentConnectEmit(t *testing.T, n int, o Options) {
	base := runtime.NumGoroutine()
	var handled atomic.Int64
	srv, url := startServer(t, o, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			so.On("hello", func(so *Socket, args Args, ack Ack) {
				handled.Add(1)
				_ = ack("hi")
			})
		})
	})
	dialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	wsURL := strings.Replace(url, "http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
	var failed atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200) // bounded dial concurrency: the test's own goroutines
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ws, _, err := dialer.Dial(wsURL, nil)
			if err != nil {
				fail(err)
				return
			}
			conns[i] = ws
			_ = ws.SetReadDeadline(time.Now().Add(60 * time.Second))
			if _, m, err := ws.ReadMessage(); err != nil || m[0] != '0' {
				fail(fmt.Errorf("handshake %q %v", m, err))
				return
			}
			if err := ws.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
				fail(err)
				return
			}
			if _, m, err := ws.ReadMessage(); err != nil || !bytes.HasPrefix(m, []byte("40{")) {
				fail(fmt.Errorf("connect %q %v", m, err))
				return
			}
			// Emit immediately after connect.
			if err := ws.WriteMessage(websocket.TextMessage, []byte(`421["hello"]`)); err != nil {
				fail(err)
				return
			}
			for {
				_, m, err := ws.ReadMessage()
				if err != nil {
					fail(fmt.Errorf("ack: %w", err))
					return
				}
				if string(m) == "2" {
					_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
					continue
				}
				if string(m) != `431["hi"]` {
					fail(fmt.Errorf("ack %q", m))
				}
				return
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d clients failed; first: %v", f, n, firstErr.Load())
	}
	if h := handled.Load(); h != int64(n) {
		t.Fatalf("handled %d of %d", h, n)
	}
	if c := srv.SocketCount(); c != n {
		t.Errorf("SocketCount %d, want %d", c, n)
	}
	for _, ws := range conns {
		_ = ws.Close()
	}
	eventually(t, "all sockets gone", func() bool { return srv.SocketCount() == 0 })
	// Server goroutines: nbio pollers and timers only; nothing per connection is left.
	waitGoroutines(t, base, 20)
}

// TestRawAttachmentBytesBounded: a packet announcing many attachments cannot make the
// server hold more than maxAttachmentFactor*MaxPayload bytes for it.
func TestRawAttachmentBytesBounded(t *testing.T) {
	_, url := echoServer(t, Options{MaxPayload: 100})
	r := dialRaw(t, url)
	r.connect("")
	r.send(`520-["a"]`)
	chunk := bytes.Repeat([]byte{7}, 95)
	for range maxAttachmentFactor + 1 {
		if err := r.ws.WriteMessage(websocket.BinaryMessage, chunk); err != nil {
			break // already closed
		}
	}
	r.expectClosed()
}

// TestOnDisconnectAfterClose: a handler added once the socket is gone runs at once.
func TestOnDisconnectAfterClose(t *testing.T) {
	accepted := make(chan *Socket, 1)
	_, url := startServer(t, Options{}, func(s *Server) {
		s.OnConnection(func(so *Socket) { accepted <- so })
	})
	r := dialRaw(t, url)
	r.connect("")
	so := recv(t, accepted, "connection")
	so.Disconnect()
	reasons := make(chan string, 1)
	so.OnDisconnect(func(_ *Socket, reason string) { reasons <- reason })
	if got := recv(t, reasons, "late OnDisconnect"); got != ReasonServerDisconnect {
		t.Errorf("reason %q", got)
	}
	if so.Emit("x") == nil {
		t.Error("Emit on a disconnected socket succeeded")
	}
}

// TestRawPreConnectLimits: before its CONNECT is accepted a session may send only a
// CONNECT of at most MaxConnectPayload bytes; anything it could make the server hold
// (attachments, binary, a large message) closes it at once, on both transports.
func TestRawPreConnectLimits(t *testing.T) {
	_, url := echoServer(t, Options{MaxConnectPayload: 512})
	big := `{"token":"` + strings.Repeat("a", 600) + `"}`
	cases := []struct {
		name string
		seq  []string // "B:" prefix: binary frame
	}{
		{"attachments announced", []string{`51-["a",{"_placeholder":true,"num":0}]`}},
		{"many attachments announced", []string{`51000-["a"]`}},
		{"binary", []string{"B:\x01\x02"}},
		{"connect over the limit", []string{"0" + big}},
		{"event over the limit", []string{`2["a","` + strings.Repeat("b", 600) + `"]`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, url)
			for _, s := range tc.seq {
				if b, ok := strings.CutPrefix(s, "B:"); ok {
					r.sendBinary([]byte(b))
					continue
				}
				r.send(s)
			}
			r.expectClosed()
		})
	}
	t.Run("polling connect over the limit", func(t *testing.T) {
		base := url + "/socket.io/?EIO=4&transport=polling"
		res, err := http.Get(base)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var h struct{ SID string }
		if err := json.Unmarshal(b[1:], &h); err != nil {
			t.Fatal(err)
		}
		res, err = http.Post(base+"&sid="+h.SID, "text/plain;charset=UTF-8", strings.NewReader("40"+big))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		res, err = http.Get(base + "&sid=" + h.SID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if string(b) != "1" {
			t.Fatalf("poll after an oversized CONNECT: %d %q, want the close packet", res.StatusCode, b)
		}
	})
	// A CONNECT within the limit is accepted, and afterwards MaxPayload applies.
	r := dialRaw(t, url)
	r.connect(`{"token":"` + strings.Repeat("a", 400) + `"}`)
	long := strings.Repeat("c", 2000)
	r.send(`2["long","` + long + `"]`)
	if m := r.readText(); m != `42["long:back","`+long+`"]` {
		t.Errorf("got %.60q", m)
	}
}

// TestRawPreConnectUnfinishedMessage: before CONNECT a websocket message left unfinished
// (fragments that never end) is cut once the session's pre-CONNECT byte allowance is
// passed, instead of being held until connect_timeout; after CONNECT the same message is
// taken whole.
func TestRawPreConnectUnfinishedMessage(t *testing.T) {
	_, url := echoServer(t, Options{MaxConnectPayload: 512})
	r := dialRaw(t, url)
	w, err := r.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	// gorilla sends a fragment each time its buffer fills; the message never ends.
	chunk := []byte(strings.Repeat("x", 4096))
	for range 16 {
		if _, err := w.Write(chunk); err != nil {
			break // already closed
		}
	}
	r.expectClosed()

	r = dialRaw(t, url)
	r.connect("")
	long := strings.Repeat("y", 64<<10)
	r.send(`2["long","` + long + `"]`)
	if m := r.readText(); m != `42["long:back","`+long+`"]` {
		t.Errorf("got %.60q", m)
	}
}
