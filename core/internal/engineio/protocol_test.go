package engineio_test

import (
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtserver/rtserver/core/internal/engineio"
)

func TestHandshakePolling(t *testing.T) {
	e := startEnv(t, engineio.Options{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond, MaxPayload: 5000})
	st, body, hdr := e.do("GET", "EIO=4&transport=polling&t=abc", "")
	if st != 200 {
		t.Fatalf("status %d", st)
	}
	if ct := hdr.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
		t.Errorf("content-type %q", ct)
	}
	h := parseOpen(t, body)
	if len(h.SID) != 20 || strings.ContainsAny(h.SID, "+/=") {
		t.Errorf("sid %q", h.SID)
	}
	if len(h.Upgrades) != 1 || h.Upgrades[0] != "websocket" {
		t.Errorf("upgrades %v", h.Upgrades)
	}
	if h.PingInterval != 300 || h.PingTimeout != 200 || h.MaxPayload != 5000 {
		t.Errorf("handshake %+v", h)
	}
	open := e.rec.next(t, "open")
	if open.sid != h.SID {
		t.Errorf("open sid %q want %q", open.sid, h.SID)
	}
	c := e.conn(h.SID)
	if c.Transport() != "polling" || c.Request().URL.Query().Get("t") != "abc" || !strings.HasPrefix(c.RemoteAddr(), "127.0.0.1:") {
		t.Errorf("conn transport %q query %v addr %q", c.Transport(), c.Request().URL.Query(), c.RemoteAddr())
	}
	if e.eio.Count() != 1 {
		t.Errorf("count %d", e.eio.Count())
	}
}

func TestHandshakeDefaults(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	_, body, _ := e.do("GET", "EIO=4&transport=polling", "")
	h := parseOpen(t, body)
	if h.PingInterval != 25000 || h.PingTimeout != 20000 || h.MaxPayload != 1000000 {
		t.Errorf("defaults %+v", h)
	}
	e2 := startEnv(t, engineio.Options{DisableUpgrades: true})
	_, body, _ = e2.do("GET", "EIO=4&transport=polling", "")
	if h := parseOpen(t, body); len(h.Upgrades) != 0 {
		t.Errorf("upgrades with DisableUpgrades: %v", h.Upgrades)
	}
}

func TestHandshakeWebsocket(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	ws := e.dialWS("")
	mt, s := readWS(t, ws)
	if mt != websocket.TextMessage {
		t.Fatalf("open frame type %d", mt)
	}
	h := parseOpen(t, s)
	if len(h.Upgrades) != 0 {
		t.Errorf("websocket upgrades %v", h.Upgrades)
	}
	e.rec.next(t, "open")
	c := e.conn(h.SID)
	if c.Transport() != "websocket" {
		t.Errorf("transport %q", c.Transport())
	}

	writeWS(t, ws, websocket.TextMessage, "4hello")
	writeWS(t, ws, websocket.BinaryMessage, "\x01\x02\x03")
	m := e.rec.next(t, "message")
	if m.data != "hello" || m.binary {
		t.Errorf("text message %+v", m)
	}
	m = e.rec.next(t, "message")
	if m.data != "\x01\x02\x03" || !m.binary {
		t.Errorf("binary message %+v", m)
	}

	if err := c.Send(engineio.NewMessage([]byte("hi"), false), engineio.NewMessage([]byte{0, 0xff}, true)); err != nil {
		t.Fatal(err)
	}
	if mt, s := readWS(t, ws); mt != websocket.TextMessage || s != "4hi" {
		t.Errorf("got %d %q", mt, s)
	}
	if mt, s := readWS(t, ws); mt != websocket.BinaryMessage || s != "\x00\xff" {
		t.Errorf("got %d %q", mt, s)
	}
}

func TestErrors(t *testing.T) {
	e := startEnv(t, engineio.Options{AllowedOrigins: []string{"https://ok.example"}})
	wsSID := func() string {
		ws := e.dialWS("")
		_, s := readWS(t, ws)
		return parseOpen(t, s).SID
	}()
	pollSID := e.openPolling()
	cases := []struct {
		name, method, query string
		hdr                 []string
		status, code        int
		message             string
	}{
		{"no transport", "GET", "EIO=4", nil, 400, 0, "Transport unknown"},
		{"unknown transport", "GET", "EIO=4&transport=flash", nil, 400, 0, "Transport unknown"},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", nil, 400, 1, "Session ID unknown"},
		{"unknown sid post", "POST", "EIO=4&transport=polling&sid=nope", nil, 400, 1, "Session ID unknown"},
		{"handshake by POST", "POST", "EIO=4&transport=polling", nil, 400, 2, "Bad handshake method"},
		{"handshake by PUT", "PUT", "EIO=4&transport=polling", nil, 400, 2, "Bad handshake method"},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", nil, 400, 3, "Bad request"},
		{"polling on a websocket session", "GET", "EIO=4&transport=polling&sid=" + wsSID, nil, 400, 3, "Bad request"},
		{"forbidden origin", "GET", "EIO=4&transport=polling", []string{"Origin", "https://evil.example"}, 403, 4, "Forbidden"},
		{"EIO 3", "GET", "EIO=3&transport=polling", nil, 400, 5, "Unsupported protocol version"},
		{"no EIO", "GET", "transport=polling", nil, 400, 5, "Unsupported protocol version"},
		{"EIO 3 with sid", "GET", "EIO=3&transport=polling&sid=" + pollSID, nil, 400, 5, "Unsupported protocol version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body, hdr := e.do(tc.method, tc.query, "", tc.hdr...)
			if st != tc.status {
				t.Errorf("status %d want %d (%q)", st, tc.status, body)
			}
			want := `{"code":` + string(rune('0'+tc.code)) + `,"message":"` + tc.message + `"}`
			if body != want {
				t.Errorf("body %q want %q", body, want)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content-type %q", ct)
			}
		})
	}
	// The sessions the errors referred to are untouched.
	if e.eio.Count() != 2 {
		t.Errorf("count %d", e.eio.Count())
	}
}

func TestWebsocketUpgradeErrors(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	// An unknown sid is refused before the upgrade.
	_, res, err := websocket.DefaultDialer.Dial("ws://"+e.addr+"/socket.io/?EIO=4&transport=websocket&sid=nope", nil)
	if err == nil || res == nil || res.StatusCode != 400 {
		t.Fatalf("dial with unknown sid: err %v res %v", err, res)
	}
	// An upgrade of a websocket session is accepted and closed at once, as the reference
	// server does (TestSecondWebsocketClosedSessionKept); with upgrades off it is refused.
	e = startEnv(t, engineio.Options{DisableUpgrades: true})
	sid := e.openPolling()
	_, res, err = websocket.DefaultDialer.Dial("ws://"+e.addr+"/socket.io/?EIO=4&transport=websocket&sid="+sid, nil)
	if err == nil || res == nil || res.StatusCode != 400 {
		t.Fatalf("upgrade with upgrades off: err %v res %v", err, res)
	}
}

func TestPollingFraming(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	sid := e.openPolling()
	c := e.conn(sid)
	bin := []byte{0, 1, 2, 250, 255}
	if err := c.Send(engineio.NewMessage([]byte("hello"), false), engineio.NewMessage(bin, true)); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(engineio.NewMessage([]byte("wörld"), false)); err != nil {
		t.Fatal(err)
	}
	got := e.poll(sid)
	want := "4hello\x1eb" + base64.StdEncoding.EncodeToString(bin) + "\x1e4wörld"
	if got != want {
		t.Errorf("payload %q want %q", got, want)
	}
	// A GET blocks until something is queued.
	done := make(chan string, 1)
	go func() {
		st, body, _ := e.do("GET", "EIO=4&transport=polling&sid="+sid, "")
		if st != 200 {
			body = "status " + body
		}
		done <- body
	}()
	select {
	case b := <-done:
		t.Fatalf("GET returned early: %q", b)
	case <-time.After(150 * time.Millisecond):
	}
	_ = c.Send(engineio.NewMessage([]byte("late"), false))
	select {
	case b := <-done:
		if b != "4late" {
			t.Errorf("blocked GET got %q", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked GET not woken")
	}
}

func TestPollingPost(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	sid := e.openPolling()
	st, body := e.post(sid, "4first\x1eb"+base64.StdEncoding.EncodeToString([]byte{9, 8, 7})+"\x1e4third\x1e6")
	if st != 200 || body != "ok" {
		t.Fatalf("post %d %q", st, body)
	}
	want := []event{{data: "first"}, {data: "\x09\x08\x07", binary: true}, {data: "third"}}
	for _, w := range want {
		m := e.rec.next(t, "message")
		if m.data != w.data || m.binary != w.binary {
			t.Errorf("message %+v want %+v", m, w)
		}
	}
	// A malformed payload closes the session with "parse error".
	st, _ = e.post(sid, "9bad")
	if st != 200 {
		t.Errorf("bad payload status %d", st)
	}
	if r := e.rec.next(t, "close").reason; r != "parse error" {
		t.Errorf("reason %q", r)
	}
}

func TestConcurrentGetClosesSession(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	sid := e.openPolling()
	first := make(chan string, 1)
	go func() {
		_, body, _ := e.do("GET", "EIO=4&transport=polling&sid="+sid, "")
		first <- body
	}()
	waitFor(t, "first GET to block", func() bool {
		time.Sleep(50 * time.Millisecond)
		return true
	})
	st, body, _ := e.do("GET", "EIO=4&transport=polling&sid="+sid, "")
	if st != 400 || !strings.Contains(body, `"code":3`) {
		t.Errorf("second GET %d %q", st, body)
	}
	select {
	case b := <-first:
		if b != "1" {
			t.Errorf("first GET got %q, want close packet", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first GET not released")
	}
	if r := e.rec.next(t, "close").reason; r != "transport error" {
		t.Errorf("reason %q", r)
	}
	if st, _, _ := e.do("GET", "EIO=4&transport=polling&sid="+sid, ""); st != 400 {
		t.Errorf("sid still routable: %d", st)
	}
}

// TestUpgrade follows engine.io-client: probe, pause polling, upgrade; every packet sent
// by the server before, during and after the upgrade arrives once, in order.
func TestUpgrade(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	sid := e.openPolling()
	c := e.conn(sid)
	send := func(s string) {
		t.Helper()
		if err := c.Send(engineio.NewMessage([]byte(s), false)); err != nil {
			t.Fatal(err)
		}
	}
	send("a")
	if got := e.poll(sid); got != "4a" {
		t.Fatalf("poll %q", got)
	}
	pending := make(chan string, 1)
	go func() {
		_, body, _ := e.do("GET", "EIO=4&transport=polling&sid="+sid, "")
		pending <- body
	}()
	time.Sleep(50 * time.Millisecond)

	ws := e.dialWS(sid)
	writeWS(t, ws, websocket.TextMessage, "2probe")
	if _, s := readWS(t, ws); s != "3probe" {
		t.Fatalf("probe answer %q", s)
	}
	select {
	case b := <-pending:
		if b != "6" {
			t.Fatalf("paused GET got %q, want noop", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pending GET not released by the probe")
	}
	// A GET while paused gets a noop too, but not at once: a client that keeps polling
	// (one that missed its pong) must not spin.
	start := time.Now()
	if _, b, _ := e.do("GET", "EIO=4&transport=polling&sid="+sid, ""); b != "6" {
		t.Fatalf("GET while paused got %q, want noop", b)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("GET while paused answered after %v, want the pause wait", d)
	}
	// Sent while the upgrade is in flight: queued, delivered on the websocket after "5".
	send("b")
	send("c")
	if c.Transport() != "polling" {
		t.Errorf("transport before upgrade %q", c.Transport())
	}
	writeWS(t, ws, websocket.TextMessage, "5")
	for _, want := range []string{"4b", "4c"} {
		if _, s := readWS(t, ws); s != want {
			t.Fatalf("after upgrade got %q want %q", s, want)
		}
	}
	waitFor(t, "transport websocket", func() bool { return c.Transport() == "websocket" })
	send("d")
	if _, s := readWS(t, ws); s != "4d" {
		t.Fatalf("got %q", s)
	}
	writeWS(t, ws, websocket.TextMessage, "4up")
	if m := e.rec.next(t, "message"); m.data != "up" {
		t.Errorf("message %+v", m)
	}
	// Polling is over for this session.
	if st, _, _ := e.do("GET", "EIO=4&transport=polling&sid="+sid, ""); st != 400 {
		t.Errorf("poll after upgrade: %d", st)
	}
}

// TestUpgradeNoLossUnderLoad sends continuously from another goroutine while the client
// upgrades, draining polling like the real client does.
func TestUpgradeNoLossUnderLoad(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	sid := e.openPolling()
	c := e.conn(sid)
	const total = 2000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < total; i++ {
			if err := c.Send(engineio.NewMessage([]byte(itoa(i)), false)); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var got []string
	collect := func(payload string) {
		for _, p := range strings.Split(payload, "\x1e") {
			if strings.HasPrefix(p, "4") {
				got = append(got, p[1:])
			}
		}
	}
	collect(e.poll(sid))
	ws := e.dialWS(sid)
	writeWS(t, ws, websocket.TextMessage, "2probe")
	if _, s := readWS(t, ws); s != "3probe" {
		t.Fatalf("probe answer %q", s)
	}
	// The client finishes its current poll cycle before upgrading.
	collect(e.poll(sid))
	writeWS(t, ws, websocket.TextMessage, "5")
	for len(got) < total {
		_, s := readWSSkipPings(t, ws)
		collect(s)
	}
	wg.Wait()
	for i, s := range got {
		if s != itoa(i) {
			t.Fatalf("message %d is %q", i, s)
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestProbeThenClientGivesUp(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	sid := e.openPolling()
	ws := e.dialWS(sid)
	writeWS(t, ws, websocket.TextMessage, "2probe")
	if _, s := readWS(t, ws); s != "3probe" {
		t.Fatalf("probe answer %q", s)
	}
	_ = ws.Close()
	c := e.conn(sid)
	// The session keeps polling.
	time.Sleep(100 * time.Millisecond)
	_ = c.Send(engineio.NewMessage([]byte("still"), false))
	if got := e.poll(sid); got != "4still" {
		t.Errorf("poll %q", got)
	}
	if c.Transport() != "polling" {
		t.Errorf("transport %q", c.Transport())
	}
}

func TestHeartbeatWebsocket(t *testing.T) {
	e := startEnv(t, engineio.Options{PingInterval: 50 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	ws := e.dialWS("")
	_, s := readWS(t, ws)
	sid := parseOpen(t, s).SID
	// Answering pings keeps the session for many intervals.
	end := time.Now().Add(400 * time.Millisecond)
	pings := 0
	for time.Now().Before(end) {
		if _, s := readWS(t, ws); s == "2" {
			pings++
			writeWS(t, ws, websocket.TextMessage, "3")
		}
	}
	if pings < 3 {
		t.Errorf("only %d pings in 400ms at 50ms interval", pings)
	}
	if e.eio.Count() != 1 {
		t.Fatalf("session closed while answering pings")
	}
	// Silence closes it with "ping timeout".
	start := time.Now()
	cl := e.rec.next(t, "close")
	if cl.reason != "ping timeout" || cl.sid != sid {
		t.Errorf("close %+v", cl)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ping timeout took %v", d)
	}
	if e.eio.Count() != 0 {
		t.Errorf("count %d", e.eio.Count())
	}
}

func TestHeartbeatPolling(t *testing.T) {
	e := startEnv(t, engineio.Options{PingInterval: 50 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	sid := e.openPolling()
	for i := 0; i < 3; i++ {
		if got := e.poll(sid); got != "2" {
			t.Fatalf("poll %d got %q, want ping", i, got)
		}
		if st, _ := e.post(sid, "3"); st != 200 {
			t.Fatalf("pong status %d", st)
		}
	}
	if r := e.rec.next(t, "close").reason; r != "ping timeout" {
		t.Errorf("reason %q", r)
	}
}

func TestMaxPayloadPolling(t *testing.T) {
	e := startEnv(t, engineio.Options{MaxPayload: 100})
	sid := e.openPolling()
	if st, _ := e.post(sid, "4"+strings.Repeat("x", 99)); st != 200 {
		t.Fatalf("payload at the limit: %d", st)
	}
	e.rec.next(t, "message")
	st, _ := e.post(sid, "4"+strings.Repeat("x", 100))
	if st != 413 {
		t.Errorf("status %d want 413", st)
	}
	if r := e.rec.next(t, "close").reason; r != "transport error" {
		t.Errorf("reason %q", r)
	}
}

func TestMaxPayloadWebsocket(t *testing.T) {
	e := startEnv(t, engineio.Options{MaxPayload: 100})
	ws := e.dialWS("")
	readWS(t, ws)
	writeWS(t, ws, websocket.TextMessage, "4"+strings.Repeat("x", 99))
	if m := e.rec.next(t, "message"); len(m.data) != 99 {
		t.Errorf("message len %d", len(m.data))
	}
	writeWS(t, ws, websocket.TextMessage, "4"+strings.Repeat("x", 200))
	if r := e.rec.next(t, "close").reason; r != "transport error" {
		t.Errorf("reason %q", r)
	}
}

func TestCORS(t *testing.T) {
	e := startEnv(t, engineio.Options{AllowedOrigins: []string{"https://app.example"}})
	st, _, hdr := e.do("GET", "EIO=4&transport=polling", "", "Origin", "https://app.example")
	if st != 200 || hdr.Get("Access-Control-Allow-Origin") != "https://app.example" || hdr.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("GET %d headers %v", st, hdr)
	}
	st, body, hdr := e.do("OPTIONS", "EIO=4&transport=polling", "", "Origin", "https://app.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
	if st != 204 || body != "" {
		t.Errorf("preflight %d %q", st, body)
	}
	if hdr.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(hdr.Get("Access-Control-Allow-Methods"), "POST") ||
		hdr.Get("Access-Control-Allow-Headers") != "content-type" {
		t.Errorf("preflight headers %v", hdr)
	}
	if st, _, _ := e.do("OPTIONS", "EIO=4&transport=polling", "", "Origin", "https://evil.example"); st != 403 {
		t.Errorf("preflight from a foreign origin: %d", st)
	}
	// No Origin (not a browser): served without CORS headers.
	st, _, hdr = e.do("GET", "EIO=4&transport=polling", "")
	if st != 200 || hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no origin: %d %v", st, hdr)
	}

	any := startEnv(t, engineio.Options{AllowedOrigins: []string{"*"}})
	if _, _, hdr := any.do("GET", "EIO=4&transport=polling", "", "Origin", "https://x.example"); hdr.Get("Access-Control-Allow-Origin") != "https://x.example" {
		t.Errorf("wildcard: %v", hdr)
	}
	none := startEnv(t, engineio.Options{})
	if st, _, hdr := none.do("GET", "EIO=4&transport=polling", "", "Origin", "https://x.example"); st != 200 || hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no CORS configured: %d %v", st, hdr)
	}
	// A websocket from a foreign origin is refused too (browsers do not apply CORS to it).
	_, res, err := websocket.DefaultDialer.Dial("ws://"+e.addr+"/socket.io/?EIO=4&transport=websocket",
		map[string][]string{"Origin": {"https://evil.example"}})
	if err == nil || res == nil || res.StatusCode != 403 {
		t.Errorf("foreign websocket: %v %v", err, res)
	}
}

func TestClientClose(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	sid := e.openPolling()
	pending := make(chan string, 1)
	go func() {
		_, body, _ := e.do("GET", "EIO=4&transport=polling&sid="+sid, "")
		pending <- body
	}()
	time.Sleep(50 * time.Millisecond)
	if st, body := e.post(sid, "1"); st != 200 || body != "ok" {
		t.Errorf("close post %d %q", st, body)
	}
	if r := e.rec.next(t, "close").reason; r != "transport close" {
		t.Errorf("reason %q", r)
	}
	select {
	case b := <-pending:
		if b != "6" {
			t.Errorf("pending GET got %q", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pending GET not released")
	}

	ws := e.dialWS("")
	readWS(t, ws)
	_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	if r := e.rec.next(t, "close").reason; r != "transport close" {
		t.Errorf("ws reason %q", r)
	}
}

func TestServerClose(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	// Websocket: the client gets "1" then a close frame.
	ws := e.dialWS("")
	_, s := readWS(t, ws)
	sid := parseOpen(t, s).SID
	e.rec.next(t, "open")
	c := e.conn(sid)
	_ = c.Send(engineio.NewMessage([]byte("bye"), false))
	c.Close("forced close")
	if _, s := readWS(t, ws); s != "4bye" {
		t.Errorf("got %q", s)
	}
	if _, s := readWS(t, ws); s != "1" {
		t.Errorf("got %q want close packet", s)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, 1000) {
		t.Errorf("want close frame 1000, got %v", err)
	}
	if r := e.rec.next(t, "close").reason; r != "forced close" {
		t.Errorf("reason %q", r)
	}
	if err := c.Send(engineio.NewMessage([]byte("x"), false)); err != engineio.ErrClosed {
		t.Errorf("send after close: %v", err)
	}

	// Polling without a pending GET: the next GET gets what was queued and the close packet.
	sid = e.openPolling()
	c = e.conn(sid)
	_ = c.Send(engineio.NewMessage([]byte("last"), false))
	c.Close("forced close")
	if r := e.rec.next(t, "close").reason; r != "forced close" {
		t.Errorf("reason %q", r)
	}
	if got := e.poll(sid); got != "4last\x1e1" {
		t.Errorf("final poll %q", got)
	}
	if st, _, _ := e.do("GET", "EIO=4&transport=polling&sid="+sid, ""); st != 400 {
		t.Errorf("sid still routable: %d", st)
	}
}

func TestCloseInsideHandler(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	e.rec.onMessage = func(c *engineio.Conn, data []byte, _ bool) {
		if string(data) == "quit" {
			c.Close("forced close")
		}
	}
	ws := e.dialWS("")
	readWS(t, ws)
	writeWS(t, ws, websocket.TextMessage, "4quit")
	writeWS(t, ws, websocket.TextMessage, "4after")
	e.rec.next(t, "message")
	cl := e.rec.next(t, "close")
	if cl.reason != "forced close" {
		t.Errorf("reason %q", cl.reason)
	}
	select {
	case ev := <-e.rec.events:
		t.Errorf("event after close: %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestServerShutdownClosesAll(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	ws := e.dialWS("")
	readWS(t, ws)
	// Each session's OnOpen must have run: a session closed before its OnOpen never gets
	// OnClose either, and the handshake is answered before OnOpen runs.
	e.rec.next(t, "open")
	e.openPolling()
	waitFor(t, "two sessions", func() bool { return e.eio.Count() == 2 })
	e.eio.Close()
	for i := 0; i < 2; i++ {
		if r := e.rec.next(t, "close").reason; r != "server shutting down" {
			t.Errorf("reason %q", r)
		}
	}
	if e.eio.Count() != 0 {
		t.Errorf("count %d", e.eio.Count())
	}
	if st, _, _ := e.do("GET", "EIO=4&transport=polling", ""); st != 503 {
		t.Errorf("handshake after Close: %d", st)
	}
}

func TestInboundOrderedNotConcurrent(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	e.rec.onMessage = func(*engineio.Conn, []byte, bool) { time.Sleep(10 * time.Microsecond) }
	const n = 2000
	ws := e.dialWS("")
	readWS(t, ws)
	e.rec.next(t, "open")
	for i := 0; i < n; i++ {
		writeWS(t, ws, websocket.TextMessage, "4"+itoa(i))
	}
	for i := 0; i < n; i++ {
		if m := e.rec.next(t, "message"); m.data != itoa(i) {
			t.Fatalf("message %d is %q", i, m.data)
		}
	}
}

func TestBufferFullWebsocket(t *testing.T) {
	e := startEnv(t, engineio.Options{MaxOutboundBytes: 64 << 10})
	ws := e.dialWS("") // never read after the handshake
	readWS(t, ws)
	ev := e.rec.next(t, "open")
	c := e.conn(ev.sid)
	msg := engineio.NewMessage(make([]byte, 4096), true)
	sent := 0
	for ; sent < 64<<20; sent += 4096 {
		if err := c.Send(msg); err != nil {
			break
		}
	}
	if sent >= 64<<20 {
		t.Fatal("64 MiB accepted for a peer that does not read")
	}
	if r := e.rec.next(t, "close").reason; r != "buffer full" {
		t.Errorf("reason %q", r)
	}
	t.Logf("closed after %d KiB handed over", sent>>10)
}

// TestQueueFlush: frames queued without a write leave in order on Flush, a Send writes
// what is queued before its own frame, first reports who owes the Flush, and a queue
// that passes MaxOutboundBytes closes the session.
func TestQueueFlush(t *testing.T) {
	e := startEnv(t, engineio.Options{MaxOutboundBytes: 64 << 10})
	ws := e.dialWS("")
	readWS(t, ws)
	c := e.conn(e.rec.next(t, "open").sid)
	for i, want := range []bool{true, false, false} {
		first, err := c.Queue(engineio.NewMessage([]byte(itoa(i)), false))
		if err != nil || first != want {
			t.Fatalf("Queue %d: first=%v err=%v, want first=%v", i, first, err, want)
		}
	}
	if err := c.Send(engineio.NewMessage([]byte("3"), false)); err != nil {
		t.Fatal(err)
	}
	if first, _ := c.Queue(engineio.NewMessage([]byte("4"), false)); !first {
		t.Error("Send left something queued")
	}
	c.Flush()
	c.Flush() // nothing left: no-op
	for i := range 5 {
		if _, m := readWSSkipPings(t, ws); m != "4"+itoa(i) {
			t.Fatalf("frame %d is %q", i, m)
		}
	}

	// Over the cap without a single write: closed for "buffer full".
	big := engineio.NewMessage(make([]byte, 4096), true)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = c.Queue(big)
	}
	if err != engineio.ErrClosed {
		t.Fatalf("Queue past the cap: %v", err)
	}
	if r := e.rec.next(t, "close").reason; r != "buffer full" {
		t.Errorf("reason %q", r)
	}
	if _, err := c.Queue(big); err != engineio.ErrClosed {
		t.Errorf("Queue after close: %v", err)
	}
	c.Flush() // closed: no-op
}

func TestBufferFullPolling(t *testing.T) {
	e := startEnv(t, engineio.Options{MaxOutboundBytes: 16 << 10})
	sid := e.openPolling()
	c := e.conn(sid)
	msg := engineio.NewMessage(make([]byte, 1024), false)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = c.Send(msg)
	}
	if err != engineio.ErrClosed {
		t.Fatalf("send: %v", err)
	}
	if r := e.rec.next(t, "close").reason; r != "buffer full" {
		t.Errorf("reason %q", r)
	}
}

func TestTransportsOption(t *testing.T) {
	wsOnly := startEnv(t, engineio.Options{Transports: []string{"websocket"}})
	if st, body, _ := wsOnly.do("GET", "EIO=4&transport=polling", ""); st != 400 || !strings.Contains(body, `"code":0`) {
		t.Errorf("polling on a websocket-only server: %d %q", st, body)
	}
	ws := wsOnly.dialWS("")
	_, s := readWS(t, ws)
	parseOpen(t, s)

	pollOnly := startEnv(t, engineio.Options{Transports: []string{"polling"}})
	_, body, _ := pollOnly.do("GET", "EIO=4&transport=polling", "")
	if h := parseOpen(t, body); len(h.Upgrades) != 0 {
		t.Errorf("polling-only server offers upgrades %v", h.Upgrades)
	}
	_, res, err := websocket.DefaultDialer.Dial("ws://"+pollOnly.addr+"/socket.io/?EIO=4&transport=websocket", nil)
	if err == nil || res == nil || res.StatusCode != 400 {
		t.Errorf("websocket on a polling-only server: %v %v", err, res)
	}
}

// TestInlineWebsocket: with InlineWebsocket, websocket messages are handled on the
// network poller (seen in the handler's stack), in order, including messages sent the
// moment the session opens, on a direct websocket and after an upgrade from polling;
// without it they never are.
func TestInlineWebsocket(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			e := startEnv(t, engineio.Options{InlineWebsocket: inline})
			var onPoller atomic.Int64
			e.rec.onMessage = func(*engineio.Conn, []byte, bool) {
				buf := make([]byte, 16<<10)
				if strings.Contains(string(buf[:runtime.Stack(buf, false)]), "nbio.(*poller)") {
					onPoller.Add(1)
				}
			}
			const n = 500
			send := func(ws *websocket.Conn) {
				for i := range n {
					writeWS(t, ws, websocket.TextMessage, "4"+itoa(i))
				}
				for i := range n {
					if m := e.rec.next(t, "message"); m.data != itoa(i) {
						t.Fatalf("message %d is %q", i, m.data)
					}
				}
			}
			ws := e.dialWS("") // direct websocket; the first messages go out with no wait
			send(ws)

			sid := e.openPolling() // polling, then the upgrade
			up := e.dialWS(sid)
			writeWS(t, up, websocket.TextMessage, "2probe")
			if _, m := readWSSkipPings(t, up); m != "3probe" {
				t.Fatalf("probe answer %q", m)
			}
			writeWS(t, up, websocket.TextMessage, "5")
			send(up)

			got := onPoller.Load()
			if inline && got < n { // the first ones may queue behind the upgrade request
				t.Errorf("%d of %d messages handled on the poller", got, 2*n)
			}
			if !inline && got != 0 {
				t.Errorf("%d messages handled on the poller without InlineWebsocket", got)
			}
		})
	}
}
