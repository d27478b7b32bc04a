package server_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/config"
)

// rawHTTP sends req as written on a new TCP connection to hostport and returns the
// answer's status, JSON body and headers; when the answer closes the connection it
// checks that the server does close it.
func rawHTTP(t *testing.T, hostport, req string) (int, map[string]any, http.Header) {
	t.Helper()
	nc, err := net.Dial("tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	go func() { _, _ = io.WriteString(nc, req) }()
	br := bufio.NewReader(nc)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to %.40q: %v", req, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("answer %d to %.40q is not JSON: %q", res.StatusCode, req, b)
	}
	if res.Close {
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, br)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after the answer to %.40q", req)
		}
	}
	return res.StatusCode, body, res.Header
}

// TestHTTPLimitsOnBothListeners: the Socket.IO listener and the API's own listener
// refuse the same requests with the API's JSON error body, and close idle connections
// after server.idle_timeout.
func TestHTTPLimitsOnBothListeners(t *testing.T) {
	e := startServer(t, func(c *config.Config) {
		c.API.Listen = "127.0.0.1:0"
		c.Server.IdleTimeout = time.Second
	})
	bigHead := "GET /health HTTP/1.1\r\nHost: x\r\nX-Fill: " + strings.Repeat("a", 20<<10) + "\r\n\r\n"
	cases := []struct {
		name, req string
		status    int
		code      string
	}{
		{"unknown method", "BREW /api/push HTTP/1.1\r\nHost: x\r\n\r\n", 405, "METHOD_NOT_ALLOWED"},
		{"headers over max_header_bytes", bigHead, 431, "INVALID_REQUEST"},
		{"body over api.max_body_bytes", "POST /api/push HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n{", 413, "PAYLOAD_TOO_LARGE"},
		{"duplicate Content-Length", "POST /api/push HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400, "INVALID_REQUEST"},
	}
	for name, addr := range map[string]string{"main": e.srv.Addr().String(), "api": e.srv.APIAddr().String()} {
		for _, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				st, body, hdr := rawHTTP(t, addr, tc.req)
				if st != tc.status || body["code"] != tc.code || body["success"] != false || body["error"] == "" {
					t.Fatalf("got %d %v, want %d %s", st, body, tc.status, tc.code)
				}
				if id, _ := body["requestId"].(string); id == "" || hdr.Get("X-Request-Id") != id {
					t.Errorf("requestId %v, X-Request-Id %q", body["requestId"], hdr.Get("X-Request-Id"))
				}
			})
		}
		t.Run(name+"/idle", func(t *testing.T) {
			t.Parallel()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.Copy(io.Discard, nc)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("idle connection still open after 5s")
			}
		})
	}
	// Both still serve.
	for _, u := range []string{e.url, e.apiURL} {
		res, err := http.Get(u + "/health")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s/health: %d", u, res.StatusCode)
		}
	}
}
