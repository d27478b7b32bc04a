package engineio_test

// Cases where the reference server (engine.io 6.6) behaves in a way clients notice, checked
// through real sockets.

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtserver/rtserver/core/internal/engineio"
)

// dialRefused dials a websocket for sid, expects the handshake to complete (101) and the
// server to close it with a close frame right after.
func (e *env) dialRefused(sid string) {
	e.t.Helper()
	ws := e.dialWS(sid)
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		e.t.Fatalf("second websocket for %s: got %q, %v; want a close frame", sid, msg, err)
	}
}

// upgradeWS runs a polling session's upgrade to websocket to completion.
func (e *env) upgradeWS(sid string) *websocket.Conn {
	e.t.Helper()
	ws := e.dialWS(sid)
	writeWS(e.t, ws, websocket.TextMessage, "2probe")
	if _, s := readWS(e.t, ws); s != "3probe" {
		e.t.Fatalf("probe answer %q", s)
	}
	writeWS(e.t, ws, websocket.TextMessage, "5")
	c := e.conn(sid)
	waitFor(e.t, "upgrade", func() bool { return c.Transport() == engineio.TransportWebsocket })
	return ws
}

// A websocket opened for a session that is upgrading or upgraded is accepted and closed;
// the session carries on.
func TestSecondWebsocketClosedSessionKept(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	echo := func(c *engineio.Conn, data []byte, binary bool) {
		_ = c.Send(engineio.NewMessage(append([]byte(nil), data...), binary))
	}
	e.rec.onMessage = echo

	// After the upgrade.
	sid := e.openPolling()
	ws := e.upgradeWS(sid)
	e.dialRefused(sid)
	writeWS(t, ws, websocket.TextMessage, "4hello")
	if _, s := readWSSkipPings(t, ws); s != "4hello" {
		t.Fatalf("upgraded session after a second websocket: %q", s)
	}

	// During the upgrade: a second probe is closed, the first completes.
	sid = e.openPolling()
	probe := e.dialWS(sid)
	writeWS(t, probe, websocket.TextMessage, "2probe")
	if _, s := readWS(t, probe); s != "3probe" {
		t.Fatalf("probe answer %q", s)
	}
	e.dialRefused(sid)
	writeWS(t, probe, websocket.TextMessage, "5")
	writeWS(t, probe, websocket.TextMessage, "4during")
	if _, s := readWSSkipPings(t, probe); s != "4during" {
		t.Fatalf("upgrade after a second probe: %q", s)
	}

	// A websocket session is not upgraded either, and is left alone.
	direct := e.dialWS("")
	_, s := readWS(t, direct)
	sid = parseOpen(t, s).SID
	e.dialRefused(sid)
	writeWS(t, direct, websocket.TextMessage, "4direct")
	if _, s := readWSSkipPings(t, direct); s != "4direct" {
		t.Fatalf("websocket session after a second websocket: %q", s)
	}
	if n := e.eio.Count(); n != 3 {
		t.Errorf("%d sessions open, want 3", n)
	}
}

// pendingPoll starts a GET for sid and returns its body once answered.
func (e *env) pendingPoll(sid string) <-chan string {
	got := make(chan string, 1)
	go func() {
		res, err := client.Get(e.url("EIO=4&transport=polling&sid=" + sid))
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		got <- string(b)
	}()
	return got
}

func receive(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no answer within 5s", what)
		return ""
	}
}

// A session the server ends over a fault hands a pending GET the close packet, not a noop;
// the next GET finds no session.
func TestAbortAnswersPendingPollWithClose(t *testing.T) {
	e := startEnv(t, engineio.Options{PingInterval: 100 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	cases := []struct {
		name, reason string
		fault        func(sid string)
	}{
		{"ping timeout", engineio.ReasonPingTimeout, func(sid string) {
			// The ping was read and not answered: the GET waits until the timeout.
		}},
		{"parse error", engineio.ReasonParseError, func(sid string) {
			if st, _ := e.post(sid, "abc"); st != 200 {
				t.Errorf("bad payload: status %d", st)
			}
		}},
	}
	for _, tc := range cases {
		sid := e.openPolling()
		if got := e.poll(sid); got != "2" {
			t.Fatalf("%s: poll %q, want ping", tc.name, got)
		}
		pending := e.pendingPoll(sid)
		time.Sleep(20 * time.Millisecond) // let the GET arrive first
		tc.fault(sid)
		if got := receive(t, pending, tc.name); got != "1" {
			t.Errorf("%s: pending GET got %q, want the close packet", tc.name, got)
		}
		if cl := e.rec.next(t, "close"); cl.reason != tc.reason {
			t.Errorf("%s: reason %q", tc.name, cl.reason)
		}
		if st, _, _ := e.do("GET", "EIO=4&transport=polling&sid="+sid, ""); st != 400 {
			t.Errorf("%s: GET after the close: %d, want 400", tc.name, st)
		}
	}
	// The client's own close packet still ends a pending GET with a noop.
	sid := e.openPolling()
	pending := e.pendingPoll(sid)
	time.Sleep(20 * time.Millisecond)
	if st, _ := e.post(sid, "1"); st != 200 {
		t.Errorf("close packet: status %d", st)
	}
	if got := receive(t, pending, "client close"); got != "6" {
		t.Errorf("pending GET after the client's close got %q, want noop", got)
	}
}

// A POST arriving whole while another POST of the session is still being read is an
// overlap: 400, the session closes, and the late payload is not handled first.
func TestOverlappingPostClosesSession(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	sid := e.openPolling()
	nc, br := dialRaw(t, e.addr)
	body := "4first"
	head := func(sid string) string {
		return "POST /socket.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\n" +
			"Content-Type: text/plain\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n"
	}
	if _, err := io.WriteString(nc, head(sid)+body[:2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the head is read
	st, msg := e.post(sid, "4second")
	if st != 400 || !strings.Contains(msg, `"code":3`) {
		t.Errorf("overlapping POST: %d %q, want 400 Bad request", st, msg)
	}
	if cl := e.rec.next(t, "close"); cl.reason != engineio.ReasonTransportError {
		t.Errorf("close reason %q", cl.reason)
	}
	if _, err := io.WriteString(nc, body[2:]); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("first POST: %v", err)
	}
	_ = res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("first POST after the session closed: %d", res.StatusCode)
	}
	select {
	case ev := <-e.rec.events:
		if ev.kind == "message" {
			t.Errorf("a payload of a closed session was handled: %+v", ev)
		}
	default:
	}

	// One POST at a time, even when its body comes slowly, is fine.
	sid = e.openPolling()
	nc, br = dialRaw(t, e.addr)
	if _, err := io.WriteString(nc, head(sid)+body[:2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := io.WriteString(nc, body[2:]); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if res, err = http.ReadResponse(br, nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("slow POST: %v %v", res, err)
	}
	_ = res.Body.Close()
	if m := e.rec.next(t, "message"); m.data != "first" {
		t.Errorf("message %+v", m)
	}
	if st, _ := e.post(sid, "4next"); st != 200 {
		t.Errorf("next POST: %d", st)
	}
}

// A websocket session that times out is closed with a close frame, not cut.
func TestPingTimeoutSendsCloseFrame(t *testing.T) {
	e := startEnv(t, engineio.Options{PingInterval: 50 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	ws := e.dialWS("")
	readWS(t, ws) // open
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err == nil {
			if string(msg) != "2" {
				t.Fatalf("unexpected %q", msg)
			}
			continue // pings go unanswered
		}
		if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Fatalf("ping timeout ended the websocket with %v, want a close frame", err)
		}
		break
	}
	if cl := e.rec.next(t, "close"); cl.reason != engineio.ReasonPingTimeout {
		t.Errorf("reason %q", cl.reason)
	}
}
