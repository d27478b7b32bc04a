package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtserver/rtserver/core/auth"
	"github.com/rtserver/rtserver/core/config"
)

// refusalCode is the data.code of a CONNECT_ERROR frame ("44{...}").
func refusalCode(t *testing.T, reply string) string {
	t.Helper()
	if !strings.HasPrefix(reply, "44") {
		t.Fatalf("not a connect_error: %q", reply)
	}
	i := strings.Index(reply, `"code":"`)
	if i < 0 {
		t.Fatalf("connect_error without code: %q", reply)
	}
	rest := reply[i+len(`"code":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func TestConnectionRatePerIP(t *testing.T) {
	e := startServer(t, func(c *config.Config) { c.RateLimit.WSConnectionsPerMinute = 3 })
	for i := 0; i < 3; i++ {
		e.raw(t, "rate")
	}
	_, reply := e.rawAuth(t, `{"token":"`+token(t, "rate")+`"}`)
	if code := refusalCode(t, reply); code != "RATE_LIMITED" || !strings.Contains(reply, `"retryAfter":`) {
		t.Fatalf("4th connection in a minute: %q", reply)
	}
	// The official-style client sees it as connect_error with data.code.
	c := e.dial(token(t, "rate"), transportSets["websocket"])
	if d := errorData(t, c.next("connect_error")[0]); d["code"] != "RATE_LIMITED" {
		t.Fatalf("Go client: %v", d)
	}
}

func TestConnectionCaps(t *testing.T) {
	e := startServer(t, func(c *config.Config) {
		c.SocketIO.MaxConnectionsPerIP = 2
		c.SocketIO.MaxConnections = 3
	})
	a := e.raw(t, "cap")
	e.raw(t, "cap")
	_, reply := e.rawAuth(t, `{"token":"`+token(t, "cap")+`"}`)
	if code := refusalCode(t, reply); code != "TOO_MANY_CONNECTIONS_PER_IP" {
		t.Fatalf("third from one IP: %q", reply)
	}
	// A slot frees when a socket leaves.
	a.close()
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.Hub().Stats().Connections > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	e.raw(t, "cap")
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
		dial := func(xff string) string {
			u := "ws" + strings.TrimPrefix(e.url, "http") + "/socket.io/?EIO=4&transport=websocket"
			h := http.Header{}
			h.Set("X-Forwarded-For", xff)
			ws, _, err := websocket.DefaultDialer.Dial(u, h)
			if err != nil {
				t.Fatal(err)
			}
			c := &rawClient{t: t, ws: ws}
			t.Cleanup(c.close)
			c.read()
			c.send(`40{"token":"` + token(t, "xff") + `"}`)
			return c.read()
		}
		first := dial("203.0.113.1")
		second := dial("203.0.113.2")
		if !strings.HasPrefix(first, `40{"sid"`) {
			t.Fatalf("first: %q", first)
		}
		if trusted != strings.HasPrefix(second, `40{"sid"`) {
			t.Fatalf("trusted=%v: second client from another forwarded address: %q", trusted, second)
		}
	}
}
