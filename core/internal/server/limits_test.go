package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/config"
)

// handshake opens an Engine.IO session over transport without sending CONNECT, with
// the extra header pairs; it returns the answer's status and body. An opened websocket
// is closed at the end of the test, or by closeWS.
func (e *env) handshake(t testing.TB, transport string, hdr ...string) (status int, body string, h http.Header, closeWS func()) {
	t.Helper()
	q := "/socket.io/?EIO=4&transport=" + transport
	header := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		header.Set(hdr[i], hdr[i+1])
	}
	if transport == "websocket" {
		ws, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.url, "http")+q, header)
		if err != nil {
			if res == nil {
				t.Fatalf("websocket handshake: %v", err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			return res.StatusCode, string(b), res.Header, func() {}
		}
		t.Cleanup(func() { _ = ws.Close() })
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, open, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(open), "0{") {
			t.Fatalf("open packet %q: %v", open, err)
		}
		return res.StatusCode, "", res.Header, func() { _ = ws.Close() }
	}
	req, _ := http.NewRequest("GET", e.url+q, nil)
	req.Header = header
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(b), res.Header, func() {}
}

// wantRefusal checks a refused handshake: status and the API's error body
// {success:false, error, code[, retryAfter]}.
func wantRefusal(t testing.TB, status int, body string, wantStatus int, code string) {
	t.Helper()
	var b struct {
		Success    *bool  `json:"success"`
		Error      string `json:"error"`
		Code       string `json:"code"`
		RetryAfter *int   `json:"retryAfter"`
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil || status != wantStatus || b.Success == nil || *b.Success || b.Error == "" || b.Code != code {
		t.Fatalf("handshake answer %d %q, want %d {success:false, error, code:%s}", status, body, wantStatus, code)
	}
	if (code == "RATE_LIMITED") != (b.RetryAfter != nil && *b.RetryAfter >= 1) {
		t.Fatalf("handshake answer %q: retryAfter", body)
	}
}

func TestConnectionRatePerIP(t *testing.T) {
	e := startServer(t, func(c *config.Config) { c.RateLimit.WSConnectionsPerMinute = 3 })
	e.raw(t, "rate") // counted once, at its handshake
	if st, _, _, _ := e.handshake(t, "websocket"); st != 101 {
		t.Fatalf("2nd handshake: %d", st)
	}
	if st, _, _, _ := e.handshake(t, "polling"); st != 200 {
		t.Fatalf("3rd handshake: %d", st)
	}
	for _, tr := range []string{"polling", "websocket"} {
		st, body, h, _ := e.handshake(t, tr)
		wantRefusal(t, st, body, 429, "RATE_LIMITED")
		if n, err := strconv.Atoi(h.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("%s: Retry-After %q", tr, h.Get("Retry-After"))
		}
	}
}

// TestConnectionCaps: sessions count from their handshake, CONNECTed or not, towards
// max_connections_per_ip (403) and max_connections (503); a session that CONNECTs is
// not counted again, and a slot frees when a session leaves.
func TestConnectionCaps(t *testing.T) {
	e := startServer(t, func(c *config.Config) {
		c.SocketIO.MaxConnectionsPerIP = 2
		c.SocketIO.MaxConnections = 3
		c.Server.TrustedProxies = []string{"127.0.0.1"}
	})
	a := e.raw(t, "cap")
	e.raw(t, "cap")
	for _, tr := range []string{"polling", "websocket"} {
		st, body, _, _ := e.handshake(t, tr)
		wantRefusal(t, st, body, 403, "TOO_MANY_CONNECTIONS_PER_IP")
	}
	// Another address may still come, up to the total.
	if st, _, _, _ := e.handshake(t, "polling", "X-Forwarded-For", "203.0.113.7"); st != 200 {
		t.Fatalf("other address: %d", st)
	}
	st, body, _, _ := e.handshake(t, "polling", "X-Forwarded-For", "203.0.113.8")
	wantRefusal(t, st, body, 503, "TOO_MANY_CONNECTIONS")
	// A slot frees when a socket leaves.
	a.close()
	waitHandshake(t, e, "websocket")
}

// waitHandshake retries a handshake until it is admitted (a slot is given back when the
// server has seen its session close), for up to 5s.
func waitHandshake(t *testing.T, e *env, transport string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, body, _, _ := e.handshake(t, transport)
		if st == 101 || st == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused: %d %q", st, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnauthenticatedSessionsCounted: Engine.IO sessions that never CONNECT hold a place
// in the per-IP limit, so one address cannot open them without bound; the place is given
// back when such a session closes, by the client or at connect_timeout.
func TestUnauthenticatedSessionsCounted(t *testing.T) {
	e := startServer(t, func(c *config.Config) {
		c.SocketIO.MaxConnectionsPerIP = 2
		c.SocketIO.ConnectTimeout = 700 * time.Millisecond
	})
	_, _, _, closeWS := e.handshake(t, "websocket")
	if st, _, _, _ := e.handshake(t, "polling"); st != 200 {
		t.Fatalf("2nd handshake: %d", st)
	}
	st, body, _, _ := e.handshake(t, "websocket")
	wantRefusal(t, st, body, 403, "TOO_MANY_CONNECTIONS_PER_IP")

	closeWS() // the client leaves before CONNECT
	waitHandshake(t, e, "polling")
	st, body, _, _ = e.handshake(t, "polling")
	wantRefusal(t, st, body, 403, "TOO_MANY_CONNECTIONS_PER_IP")

	// Both pending sessions end at connect_timeout; then two sockets CONNECT, each
	// counted once, and a third handshake is refused.
	waitHandshake(t, e, "websocket")
	waitHandshake(t, e, "websocket")
	time.Sleep(time.Second) // the two above expire too
	e.raw(t, "u1")
	e.raw(t, "u2")
	st, body, _, _ = e.handshake(t, "polling")
	wantRefusal(t, st, body, 403, "TOO_MANY_CONNECTIONS_PER_IP")
}

func TestMessageRateAndFlood(t *testing.T) {
	e := startServer(t, func(c *config.Config) { c.RateLimit.WSMessagesPerMinute = 5 })
	c := e.raw(t, "flooder")
	for i := 0; i < 5; i++ {
		c.send(`42["room:join",{"room":"r"}]`)
		c.expect("room:join:ack")
	}
	c.send(`42["room:join",{"room":"r"}]`)
	f := c.expect("error")
	if !strings.Contains(f, `"code":"RATE_LIMITED"`) || !strings.Contains(f, `"retryAfter":`) || !strings.Contains(f, `"event":"room:join"`) {
		t.Fatalf("6th message: %s", f)
	}
	// Keep sending after being told: the server lets go of the connection.
	for i := 0; i < 200; i++ {
		if err := c.ws.WriteMessage(1, []byte(`42["ping",{}]`)); err != nil {
			break
		}
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			break // closed by the server
		}
		if string(b) == "41" {
			continue // DISCONNECT, the close follows
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.Hub().Stats().Connections > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.srv.Hub().Stats().Connections; n != 0 {
		t.Fatalf("flooding socket still connected (%d)", n)
	}
	// Other sockets are unaffected.
	other := e.raw(t, "calm")
	other.send(`42["room:join",{"room":"r"}]`)
	other.expect("room:join:ack")
}

func TestDisconnectOnTokenExpiry(t *testing.T) {
	e := startServer(t, func(c *config.Config) {
		c.Auth.DisconnectOnExpiry = true
		c.Auth.Leeway = 0
	})
	tok, err := auth.Mint([]byte(testSecret), "HS256", "expiring", 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c, reply := e.rawAuth(t, `{"token":"`+tok+`"}`)
	connectReply(t, reply)
	c.expect("system:welcome")
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	sawDisconnect := false
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			break
		}
		if string(b) == "41" {
			sawDisconnect = true
		}
		if string(b) == "2" {
			_ = c.ws.WriteMessage(1, []byte("3"))
		}
	}
	if !sawDisconnect {
		t.Fatal("no DISCONNECT when the token expired")
	}
}

// TestForwardedForFromTrustedProxy: behind a trusted proxy the per-IP connection rate
// counts the client address from X-Forwarded-For; from anyone else the header is ignored.
func TestForwardedForFromTrustedProxy(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		e := startServer(t, func(c *config.Config) {
			c.RateLimit.WSConnectionsPerMinute = 1
			if trusted {
				c.Server.TrustedProxies = []string{"127.0.0.1/32"}
			}
		})
		if st, _, _, _ := e.handshake(t, "websocket", "X-Forwarded-For", "203.0.113.1"); st != 101 {
			t.Fatalf("first: %d", st)
		}
		st, body, _, _ := e.handshake(t, "websocket", "X-Forwarded-For", "203.0.113.2")
		if trusted != (st == 101) {
			t.Fatalf("trusted=%v: second client from another forwarded address: %d %q", trusted, st, body)
		}
	}
}
