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

	"github.com/rtserver/rtserver/core/internal/engineio"
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

// waitLimit bounds the waits of recv and eventually. It is generous: the race detector
// and a machine busy with other test packages make a step that takes milliseconds alone
// take seconds; a failure says what it waited for and how long.
const waitLimit = 20 * time.Second

// recv returns the next value of ch, failing the test after waitLimit.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
	}
	var zero T
	return zero
}

// recvMatch receives from ch until a value satisfies match, failing the test after
// waitLimit. The tests that drive the zishang520 client skip with it what the clients
// abandoned by the connect retry (see connectClient) may still have caused on the server.
func recvMatch[T any](t testing.TB, ch <-chan T, what string, match func(T) bool) T {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case v := <-ch:
			if match(v) {
				return v
			}
			t.Logf("waiting for %s: skipped one that did not match", what)
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
		}
	}
}

// eventually polls cond until it holds, failing the test after waitLimit.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !within(waitLimit, cond) {
		t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
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
