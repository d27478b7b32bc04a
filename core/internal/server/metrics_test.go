package server_test

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtserver/rtserver/core/internal/config"
)

// scrapeMetrics reads /metrics over HTTP into series -> value, a series named as the text
// format prints it (name{labels}).
func scrapeMetrics(t *testing.T, e *env) map[string]float64 {
	t.Helper()
	res, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestEveryMetricMoves moves each socket_server_* series and reads the new value back from
// /metrics: a series that is registered but never set fails here.
func TestEveryMetricMoves(t *testing.T) {
	e := startServer(t, func(c *config.Config) {
		c.RateLimit.WSMessagesPerMinute = 10
		c.RateLimit.WSConnectionsPerMinute = 60
		c.RateLimit.HTTPRequestsPerMinute = 40
		c.RateLimit.HTTPFailedAuthPerMinute = 2
	})
	waitConnections := func(n int) {
		deadline := time.Now().Add(5 * time.Second)
		for e.srv.Hub().Stats().Connections != n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	badKey := func() {
		req, _ := http.NewRequest("GET", e.url+"/api/status", nil)
		req.Header.Set("X-API-Key", "wrong")
		e.do(req)
	}
	cases := []struct {
		series string
		act    func(t *testing.T)
		delta  float64
	}{
		{`socket_server_active_connections`, func(t *testing.T) { e.raw(t, "m-active") }, 1},
		{`socket_server_connections_total{authenticated="true",transport="websocket"}`, func(t *testing.T) {
			e.raw(t, "m-conn").close()
			waitConnections(0)
		}, 1},
		{`socket_server_connections_total{authenticated="false",transport="websocket"}`, func(t *testing.T) {
			e.rawAuth(t, `{"token":"not-a-jwt"}`)
		}, 1},
		{`socket_server_rooms`, func(t *testing.T) {
			c := e.raw(t, "m-rooms")
			c.send(`42["room:join",{"room":"m-room"}]`)
			c.expect("room:join:ack")
		}, 1},
		{`socket_server_registered_users`, func(t *testing.T) {
			c := e.raw(t, "m-user")
			c.send(`42["register",{"userId":"m-user"}]`)
			c.expect("register:ack")
		}, 1},
		{`socket_server_events_received_total{event="ping"}`, func(t *testing.T) {
			c := e.raw(t, "m-recv")
			c.send(`421["ping",{}]`)
			if f := c.read(); f != "431[]" {
				t.Fatalf("ping ack %q", f)
			}
		}, 1},
		{`socket_server_events_sent_total{event="system:welcome"}`, func(t *testing.T) { e.raw(t, "m-sent") }, 1},
		{`socket_server_http_requests_total{method="GET",route="/api/status",status="200"}`, func(t *testing.T) {
			e.with(t).api("GET", "/api/status", nil)
		}, 1},
		{`socket_server_http_request_duration_seconds_count{method="GET",route="/api/status"}`, func(t *testing.T) {
			e.with(t).api("GET", "/api/status", nil)
		}, 1},
		{`socket_server_rate_limited_total{kind="ws_message"}`, func(t *testing.T) {
			c := e.raw(t, "m-flood")
			for i := 0; i < 11; i++ {
				c.send(`42["ping",{}]`)
			}
			c.expect("error")
		}, 1},
		{`socket_server_rate_limited_total{kind="http_auth"}`, func(t *testing.T) {
			for i := 0; i < 3; i++ {
				badKey()
			}
		}, 1},
		{`socket_server_rate_limited_total{kind="http"}`, func(t *testing.T) {
			for i := 0; i < 50; i++ {
				if st, _, _ := e.with(t).api("GET", "/api/status", nil); st == http.StatusTooManyRequests {
					return
				}
			}
			t.Fatal("no 429 after 50 requests")
		}, 1},
		{`socket_server_reconnects_total`, func(t *testing.T) {
			c, _ := e.rawAuth(t, `{"token":"`+token(t, "m-again")+`","attempt":2,"delay":1000}`)
			c.expect("system:reconnect_status")
		}, 1},
		{`socket_server_recovery_total{result="failed"}`, func(t *testing.T) {
			c, _ := e.rawAuth(t, `{"token":"`+token(t, "m-lost")+`","pid":"no-such-session","offset":"x"}`)
			c.expect("system:state_recovery_failed")
		}, 1},
		{`socket_server_recovery_total{result="recovered"}`, func(t *testing.T) {
			tok := token(t, "m-back")
			c, reply := e.rawAuth(t, `{"token":"`+tok+`"}`)
			m := connectReply(t, reply)
			offset := lastString(t, c.expect("system:welcome"))
			n := e.srv.Hub().Stats().Connections
			c.close()
			waitConnections(n - 1)
			c, _ = e.rawAuth(t, `{"token":"`+tok+`","pid":"`+m["pid"]+`","offset":"`+offset+`"}`)
			c.expect("system:state_recovered")
		}, 1},
		{`socket_server_ws_errors_total{code="INVALID_ROOM"}`, func(t *testing.T) {
			c := e.raw(t, "m-err")
			c.send(`42["room:join",{"room":""}]`)
			c.expect("error")
		}, 1},
		// Last: it spends what is left of this minute's handshakes from 127.0.0.1.
		{`socket_server_rate_limited_total{kind="ws_connection"}`, func(t *testing.T) {
			u := "ws" + strings.TrimPrefix(e.url, "http") + "/socket.io/?EIO=4&transport=websocket"
			for i := 0; i < 100; i++ {
				ws, res, err := websocket.DefaultDialer.Dial(u, nil)
				if err == nil {
					ws.Close()
					continue
				}
				if res == nil || res.StatusCode != http.StatusTooManyRequests {
					t.Fatalf("dial: %v", err)
				}
				return
			}
			t.Fatal("no 429 after 100 handshakes")
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.series, func(t *testing.T) {
			before := scrapeMetrics(t, e)[tc.series]
			tc.act(t)
			// A series may move just after the client has seen the packet that moved it
			// (a counter is bumped once the write is queued): wait for it to move, then
			// check it moved by exactly delta.
			after, ok := scrapeMetrics(t, e)[tc.series]
			for deadline := time.Now().Add(5 * time.Second); (!ok || after-before < tc.delta) && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
				after, ok = scrapeMetrics(t, e)[tc.series]
			}
			if !ok || after-before != tc.delta {
				t.Fatalf("%s: %v -> %v (present %v), want +%v", tc.series, before, after, ok, tc.delta)
			}
		})
	}
}
