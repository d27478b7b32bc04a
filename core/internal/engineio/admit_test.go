package engineio_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// admitter admits up to max live sessions and counts what it hands out and gets back.
type admitter struct {
	mu       sync.Mutex
	max      int
	live     int
	released int
}

func (a *admitter) admit(r *http.Request) (func(), *engineio.Refusal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.URL.Query().Get("slow") != "" {
		return nil, &engineio.Refusal{Status: http.StatusTooManyRequests, Message: "slow down", RetryAfter: 1500 * time.Millisecond}
	}
	if a.live >= a.max {
		return nil, &engineio.Refusal{Status: http.StatusForbidden, Message: "full"}
	}
	a.live++
	// Not idempotent: a second call for one session shows in the counts.
	return func() {
		a.mu.Lock()
		a.live--
		a.released++
		a.mu.Unlock()
	}, nil
}

func (a *admitter) counts() (live, released int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.live, a.released
}

// TestAdmitHandshake: Options.Admit refuses handshakes on both transports with the
// Engine.IO error body before any session exists, and what it took is given back once
// when an admitted session closes.
func TestAdmitHandshake(t *testing.T) {
	a := &admitter{max: 2}
	e := startEnv(t, engineio.Options{Admit: a.admit})

	sid := e.openPolling()
	ws := e.dialWS("")
	readWS(t, ws)
	e.rec.next(t, "open")

	wantRefusal := func(st int, body string, status int, msg string) {
		t.Helper()
		var b struct {
			Code    *int   `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(body), &b); err != nil || st != status || b.Code == nil || *b.Code != 4 || b.Message != msg {
			t.Fatalf("refusal: %d %q, want %d {code:4, message:%q}", st, body, status, msg)
		}
	}
	st, body, _ := e.do("GET", "EIO=4&transport=polling", "")
	wantRefusal(st, body, 403, "full")
	u := url.URL{Scheme: "ws", Host: e.addr, Path: "/socket.io/", RawQuery: "EIO=4&transport=websocket"}
	_, res, err := websocket.DefaultDialer.Dial(u.String(), nil)
	if !errors.Is(err, websocket.ErrBadHandshake) || res == nil || res.StatusCode != 403 {
		t.Fatalf("websocket handshake over the limit: %v %v", err, res)
	}
	st, body, hdr := e.do("GET", "EIO=4&transport=polling&slow=1", "")
	wantRefusal(st, body, 429, "slow down")
	if hdr.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q, want 2", hdr.Get("Retry-After"))
	}
	if e.eio.Count() != 2 {
		t.Fatalf("%d sessions after refusals, want 2", e.eio.Count())
	}

	// A session that ends gives its place back, once.
	_ = ws.Close()
	e.rec.next(t, "close")
	waitFor(t, "release", func() bool { live, _ := a.counts(); return live == 1 })
	sid2 := e.openPolling()
	e.conn(sid).Close(engineio.ReasonForcedClose)
	e.conn(sid2).Close(engineio.ReasonForcedClose)
	waitFor(t, "every release", func() bool { live, rel := a.counts(); return live == 0 && rel == 3 })
	e.eio.Close()
	if live, rel := a.counts(); live != 0 || rel != 3 {
		t.Fatalf("live %d released %d after close, want 0 and 3", live, rel)
	}
}

// TestInboundLimit: a session's websocket may carry Options.InboundLimit bytes from the
// peer until LiftInboundLimit; past it the session closes with "parse error".
func TestInboundLimit(t *testing.T) {
	e := startEnv(t, engineio.Options{InboundLimit: 1000})
	big := "4" + strings.Repeat("a", 1500)

	ws := e.dialWS("")
	readWS(t, ws)
	e.rec.next(t, "open")
	writeWS(t, ws, websocket.TextMessage, "4small")
	if m := e.rec.next(t, "message"); m.data != "small" {
		t.Fatalf("message %q", m.data)
	}
	writeWS(t, ws, websocket.TextMessage, big)
	if c := e.rec.next(t, "close"); c.reason != engineio.ReasonParseError {
		t.Fatalf("close reason %q", c.reason)
	}

	ws = e.dialWS("")
	_, open := readWS(t, ws)
	sid := parseOpen(t, open).SID
	e.conn(sid).LiftInboundLimit()
	writeWS(t, ws, websocket.TextMessage, big)
	if m := e.rec.next(t, "message"); m.data != big[1:] {
		t.Fatalf("message of %d bytes after lifting", len(m.data))
	}
}
