package engineio_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rtserver/rtserver/core/internal/engineio"
)

func TestHTTPServerPlainHandler(t *testing.T) {
	srv := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Path", r.URL.Path)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(append([]byte("echo:"), body...))
	}))
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	res, err := client.Post("http://"+srv.Addr().String()+"/api/x", "text/plain", stringsReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 || string(b) != "echo:hi" || res.Header.Get("X-Path") != "/api/x" {
		t.Errorf("%d %q %v", res.StatusCode, b, res.Header)
	}
}

// TestManyPendingPolls parks more long-polling GETs than nbhttp's default handler pool
// (NumCPU*1024) and checks that other requests are still served, then that Shutdown
// releases them and leaves no goroutine behind.
func TestManyPendingPolls(t *testing.T) {
	base := runtime.NumGoroutine()
	n := runtime.NumCPU()*1024 + 200
	if n > 2500 {
		n = 2500
	}
	rec := newRecorder(t)
	eio := engineio.NewServer(engineio.Options{}, rec)
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", eio)
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := startHTTP(t, mux)
	shut := false
	t.Cleanup(func() {
		if !shut {
			eio.Close()
			_ = srv.Shutdown(context.Background())
		}
	})
	base0 := "http://" + srv.Addr().String() + "/socket.io/?EIO=4&transport=polling"
	tr := &http.Transport{MaxIdleConnsPerHost: n + 10, MaxConnsPerHost: 0}
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)

	sids := make([]string, n)
	for i := range sids {
		res, err := cl.Get(base0)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		sids[i] = parseOpen(t, string(b)).SID
	}
	var wg sync.WaitGroup
	results := make(chan string, n)
	for _, sid := range sids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := cl.Get(base0 + "&sid=" + sid)
			if err != nil {
				results <- "error: " + err.Error()
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			results <- string(b)
		}()
	}
	// Give the GETs time to park, then check the server still answers.
	time.Sleep(500 * time.Millisecond)
	res, err := client.Get("http://" + srv.Addr().String() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("health %q", b)
	}
	if len(results) != 0 {
		t.Fatalf("%d polls returned early", len(results))
	}
	eio.Close()
	wg.Wait()
	close(results)
	for r := range results {
		if r != "1" {
			t.Fatalf("parked GET got %q, want close packet", r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	shut = true
	tr.CloseIdleConnections()
	checkGoroutines(t, base, 10)
}

// TestShutdownReleasesPollsAndWebsockets: HTTPServer.Shutdown alone (without closing the
// Engine.IO server) ends parked GETs and websockets.
func TestShutdownReleasesPollsAndWebsockets(t *testing.T) {
	base := runtime.NumGoroutine()
	rec := newRecorder(t)
	eio := engineio.NewServer(engineio.Options{}, rec)
	srv := startHTTP(t, eio)
	addr := srv.Addr().String()
	res, err := client.Get("http://" + addr + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	sid := parseOpen(t, string(b)).SID
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err := client.Get("http://" + addr + "/socket.io/?EIO=4&transport=polling&sid=" + sid)
		if err == nil {
			_, _ = io.ReadAll(res.Body)
			res.Body.Close()
		}
	}()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	readWS(t, ws)
	time.Sleep(100 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("parked GET not released by Shutdown")
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Error("websocket still open after Shutdown")
	}
	ws.Close()
	// The websocket session ends with its connection; the polling one by heartbeat or Close.
	eio.Close()
	client.CloseIdleConnections()
	checkGoroutines(t, base, 10)
}

func TestNoGoroutinePerWebsocket(t *testing.T) {
	e := startEnv(t, engineio.Options{})
	before := runtime.NumGoroutine()
	const n = 200
	for i := 0; i < n; i++ {
		ws := e.dialWS("")
		readWS(t, ws)
	}
	waitFor(t, "sessions", func() bool { return e.eio.Count() == n })
	time.Sleep(100 * time.Millisecond)
	// The client side costs gorilla's goroutines only when reading; server side none.
	if d := runtime.NumGoroutine() - before; d > 20 {
		t.Errorf("%d goroutines for %d idle websockets", d, n)
	}
}

type stringsReaderT struct {
	s string
	i int
}

func (r *stringsReaderT) Read(p []byte) (int, error) {
	if r.i >= len(r.s) {
		return 0, io.EOF
	}
	n := copy(p, r.s[r.i:])
	r.i += n
	return n, nil
}

func stringsReader(s string) io.Reader { return &stringsReaderT{s: s} }

// TestInlineOnlyFirstRequest: with HTTPServer.Inline saying yes to everything, a
// connection's first request runs on the poller, but its next one is handed off: a
// handler that blocks there must not stop another connection from being served (one
// poller on a 2-core machine, so a blocked poller would stall every connection).
func TestInlineOnlyFirstRequest(t *testing.T) {
	release := make(chan struct{})
	var asked sync.WaitGroup
	asked.Add(1)
	srv := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			asked.Done()
			<-release
		}
		_, _ = w.Write([]byte("ok"))
	}), func(s *engineio.HTTPServer) {
		s.Inline = func([]byte) bool { return true }
	})
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	defer close(release)
	a, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ra := bufio.NewReader(a)
	get := func(c net.Conn, r *bufio.Reader, path string) {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	get(a, ra, "/first")
	_, _ = io.WriteString(a, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
	asked.Wait()
	for i := range 3 {
		b, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		get(b, bufio.NewReader(b), "/other-"+strconv.Itoa(i))
		b.Close()
	}
}
