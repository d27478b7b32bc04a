package socketio

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/engineio"
)

// testLogger is quiet unless SOCKETIO_TEST_LOG is set.
func testLogger() hclog.Logger {
	if os.Getenv("SOCKETIO_TEST_LOG") != "" {
		return hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: os.Stderr})
	}
	return hclog.NewNullLogger()
}

// startServer serves a new Server on 127.0.0.1:0; setup runs before the listener opens.
// It returns the server and its base URL ("http://127.0.0.1:port").
func startServer(t testing.TB, o Options, setup func(*Server)) (*Server, string) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger()
	}
	srv := NewServer(o)
	if setup != nil {
		setup(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = srv
	if os.Getenv("SOCKETIO_TEST_HTTPLOG") != "" {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			fmt.Fprintf(os.Stderr, "HTTP %s %s %q\n", r.Method, r.URL, body)
			srv.ServeHTTP(w, r)
			fmt.Fprintf(os.Stderr, "HTTP done %s %s\n", r.Method, r.URL)
		})
	}
	hs := engineio.NewHTTPServer(ln, h)
	if err := hs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("server close: %v", err)
		}
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("http shutdown: %v", err)
		}
	})
	return srv, "http://" + ln.Addr().String()
}

func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// eventually polls cond until it holds or 10s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !within(10*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// within polls cond for up to d and reports whether it held.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// waitGoroutines waits for the goroutine count to come back near base.
func waitGoroutines(t testing.TB, base, slack int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base+slack {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d, baseline %d\n%s", n, base, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
