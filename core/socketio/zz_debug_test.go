package socketio

import (
	"time"
	zlog "github.com/zishang520/socket.io/v3/pkg/log"
	"io"
	"net/http"
	"strings"
	"testing"
	"encoding/json"
)

func TestZZPolling(t *testing.T) {
	_, url := startServer(t, Options{}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			so.On("echo", func(so *Socket, args Args, ack Ack) { t.Log("got echo"); so.Emit("echo:reply", args.Raw[0]) })
		})
	})
	get := func(q string) string {
		r, err := http.Get(url + "/socket.io/?EIO=4&transport=polling" + q)
		if err != nil { t.Fatal(err) }
		b, _ := io.ReadAll(r.Body); r.Body.Close()
		t.Logf("GET %s -> %d %q", q, r.StatusCode, b)
		return string(b)
	}
	post := func(q, body string) {
		r, err := http.Post(url + "/socket.io/?EIO=4&transport=polling" + q, "text/plain", strings.NewReader(body))
		if err != nil { t.Fatal(err) }
		b, _ := io.ReadAll(r.Body); r.Body.Close()
		t.Logf("POST %q -> %d %q", body, r.StatusCode, b)
	}
	hs := get("")
	var h struct{ Sid string }
	json.Unmarshal([]byte(hs[1:]), &h)
	q := "&sid=" + h.Sid
	post(q, "40")
	get(q)
	post(q, `42["echo","x"]`)
	get(q)
}

func TestZZClientPolling(t *testing.T) {
	zlog.DEBUG.Store(true)
	defer func() { zlog.DEBUG.Store(false) }()
	_, url := startServer(t, Options{}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			so.On("echo", func(so *Socket, args Args, ack Ack) { t.Log("got echo"); so.Emit("echo:reply", args.Raw[0]) })
		})
	})
	c := connectClient(t, url, transportModes[1], clientOpts{})
	replies := make(chan []any, 1)
	c.On("echo:reply", func(a ...any) { replies <- a })
	_ = c.Emit("echo", "x")
	recv(t, replies, "reply")
}

func TestZZPollingConcurrent(t *testing.T) {
	_, url := startServer(t, Options{}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			so.On("echo", func(so *Socket, args Args, ack Ack) { t.Log("got echo"); so.Emit("echo:reply", args.Raw[0]) })
		})
	})
	get := func(q string) string {
		r, err := http.Get(url + "/socket.io/?EIO=4&transport=polling" + q)
		if err != nil { t.Error(err); return "" }
		b, _ := io.ReadAll(r.Body); r.Body.Close()
		t.Logf("GET %s -> %d %q", q, r.StatusCode, b)
		return string(b)
	}
	post := func(q, body string) {
		r, err := http.Post(url + "/socket.io/?EIO=4&transport=polling" + q, "text/plain", strings.NewReader(body))
		if err != nil { t.Fatal(err) }
		b, _ := io.ReadAll(r.Body); r.Body.Close()
		t.Logf("POST %q -> %d %q", body, r.StatusCode, b)
	}
	hs := get("")
	var h struct{ Sid string }
	json.Unmarshal([]byte(hs[1:]), &h)
	q := "&sid=" + h.Sid
	post(q, "40")
	get(q)
	done := make(chan string)
	go func() { done <- get(q) }()
	time.Sleep(100*time.Millisecond)
	post(q, `42["echo","x"]`)
	<-done
}
