package engineio_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// limitServer serves /health and /slow (answers after 700ms) with the HTTP server's
// limits set by configure; it returns the address.
func limitServer(t *testing.T, configure func(*engineio.HTTPServer)) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(700 * time.Millisecond)
		_, _ = io.WriteString(w, "late")
	})
	srv := startHTTP(t, mux, configure)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv.Addr().String()
}

// dialRaw opens a bare TCP connection to addr, closed at the end of the test.
func dialRaw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return nc, bufio.NewReader(nc)
}

// refusal reads an answer that must close the connection: its status, its JSON body
// and its headers; then it checks that the server does close.
func refusal(t *testing.T, nc net.Conn, br *bufio.Reader) (int, map[string]any, http.Header) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d is not JSON: %q %v", res.StatusCode, b, res.Header)
	}
	if !res.Close {
		t.Errorf("answer %d does not close the connection: %v", res.StatusCode, res.Header)
	}
	waitClosed(t, nc, br, 5*time.Second)
	return res.StatusCode, body, res.Header
}

// waitClosed reads (and drops) until the server closes the connection, failing after d.
func waitClosed(t *testing.T, nc net.Conn, br *bufio.Reader, d time.Duration) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s", d)
	}
}

// TestHeaderSizeLimit: a request head over MaxHeaderBytes (16 KiB by default) is
// answered 431 and the connection closed, however much more the peer sends; one under
// it is served.
func TestHeaderSizeLimit(t *testing.T) {
	addr := limitServer(t, func(*engineio.HTTPServer) {})

	nc, br := dialRaw(t, addr)
	_, _ = io.WriteString(nc, "GET /health HTTP/1.1\r\nHost: x\r\nX-Fill: "+strings.Repeat("a", 12<<10)+"\r\n\r\n")
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("12 KiB head: %v %v", err, res)
	}
	res.Body.Close()

	nc, br = dialRaw(t, addr)
	go func() {
		// One header line that never ends, as long as the server reads it.
		_, _ = io.WriteString(nc, "GET /health HTTP/1.1\r\nHost: x\r\nX-Fill: ")
		chunk := []byte(strings.Repeat("a", 64<<10))
		for i := 0; i < 1024; i++ {
			if _, err := nc.Write(chunk); err != nil {
				return
			}
		}
	}()
	st, body, _ := refusal(t, nc, br)
	if st != http.StatusRequestHeaderFieldsTooLarge || body["message"] == nil {
		t.Fatalf("oversized head: %d %v", st, body)
	}

	// Many small headers count too.
	nc, br = dialRaw(t, addr)
	_, _ = io.WriteString(nc, "GET /health HTTP/1.1\r\nHost: x\r\n"+strings.Repeat("X-A: b\r\n", 3000)+"\r\n")
	if st, _, _ := refusal(t, nc, br); st != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("3000 headers: %d", st)
	}
}

// TestSlowHeaderIsCut: a head trickled a byte at a time (slowloris) is cut once
// ReadHeaderTimeout has passed since its first byte, and so is a head that stops.
func TestSlowHeaderIsCut(t *testing.T) {
	addr := limitServer(t, func(s *engineio.HTTPServer) { s.ReadHeaderTimeout = 300 * time.Millisecond })

	nc, br := dialRaw(t, addr)
	_, _ = io.WriteString(nc, "GET /health HTTP/1.1\r\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			if _, err := nc.Write([]byte("X")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	waitClosed(t, nc, br, 4*time.Second)
	<-done

	nc, br = dialRaw(t, addr)
	_, _ = io.WriteString(nc, "GET /health HTTP/1.1\r\nHost: x\r\n")
	waitClosed(t, nc, br, 4*time.Second)
}

// TestIdleTimeout: a connection that sends nothing, or nothing after its last request,
// is closed after IdleTimeout; a handler that takes longer than ReadHeaderTimeout (a
// long poll) is not cut by it.
func TestIdleTimeout(t *testing.T) {
	addr := limitServer(t, func(s *engineio.HTTPServer) {
		s.ReadHeaderTimeout = 200 * time.Millisecond
		s.IdleTimeout = 1500 * time.Millisecond
	})

	nc, br := dialRaw(t, addr)
	waitClosed(t, nc, br, 4*time.Second)

	nc, br = dialRaw(t, addr)
	_, _ = io.WriteString(nc, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("slow handler cut: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "late" {
		t.Fatalf("slow handler: %d %q", res.StatusCode, b)
	}
	waitClosed(t, nc, br, 4*time.Second)
}

// TestRefusedRequestsAnswered: what the HTTP layer refuses before any handler (a body
// over MaxBodyBytes, an unknown method, ambiguous framing, a malformed head) gets a
// JSON answer with its status and a closed connection, not a silent close.
func TestRefusedRequestsAnswered(t *testing.T) {
	t.Parallel()
	addr := limitServer(t, func(s *engineio.HTTPServer) { s.MaxBodyBytes = 1024 })
	cases := []struct {
		name, req string
		status    int
	}{
		{"body over the limit", "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" + strings.Repeat("a", 4096), 413},
		{"announced body over the limit", "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nabc", 413},
		{"chunked body over the limit", "POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("200\r\n"+strings.Repeat("a", 512)+"\r\n", 4) + "0\r\n\r\n", 413},
		{"unknown method", "BREW /health HTTP/1.1\r\nHost: x\r\n\r\n", 405},
		{"duplicate Content-Length", "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
		{"Content-Length and chunked", "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
		{"malformed header", "GET /health HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400},
		{"bad Content-Length", "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3x\r\n\r\nabc", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nc, br := dialRaw(t, addr)
			_, _ = io.WriteString(nc, tc.req)
			st, body, hdr := refusal(t, nc, br)
			if st != tc.status || body["message"] == nil {
				t.Fatalf("got %d %v, want %d", st, body, tc.status)
			}
			if st == 405 && hdr.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	// The server still serves.
	nc, br := dialRaw(t, addr)
	_, _ = io.WriteString(nc, "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("after refusals: %v %v", err, res)
	}
	res.Body.Close()
}

// TestRefusalBody: the server's RefusalBody writes the answer's body and headers.
func TestRefusalBody(t *testing.T) {
	addr := limitServer(t, func(s *engineio.HTTPServer) {
		s.RefusalBody = func(status int, msg string) ([]byte, http.Header) {
			return []byte(`{"ok":false,"why":"` + msg + `"}`), http.Header{"X-Request-Id": {"r1"}}
		}
	})
	nc, br := dialRaw(t, addr)
	_, _ = io.WriteString(nc, "BREW / HTTP/1.1\r\n\r\n")
	st, body, hdr := refusal(t, nc, br)
	if st != 405 || body["why"] != "Method not allowed" || hdr.Get("X-Request-Id") != "r1" {
		t.Fatalf("%d %v %v", st, body, hdr)
	}
}
