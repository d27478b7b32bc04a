package socketio

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// writesConn is a transport that models engineio.Conn's writes: Queue holds frames, Send
// writes what is held and its own frames in one write, Flush writes what is held. It
// records each write as the packets it carried.
type writesConn struct {
	mu      sync.Mutex
	pending []string
	writes  [][]string
}

func (c *writesConn) ID() string             { return "fake" }
func (c *writesConn) Transport() string      { return engineio.TransportWebsocket }
func (c *writesConn) RemoteAddr() string     { return "127.0.0.1:1" }
func (c *writesConn) Request() *http.Request { return nil }
func (c *writesConn) Close(string)           {}

func (c *writesConn) Queue(msgs ...*engineio.Message) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := len(c.pending) == 0
	for _, m := range msgs {
		c.pending = append(c.pending, string(m.Data()))
	}
	return first, nil
}

func (c *writesConn) Send(msgs ...*engineio.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.pending = append(c.pending, string(m.Data()))
	}
	c.writeLocked()
	return nil
}

func (c *writesConn) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeLocked()
}

func (c *writesConn) writeLocked() {
	if len(c.pending) > 0 {
		c.writes = append(c.writes, c.pending)
		c.pending = nil
	}
}

func (c *writesConn) done() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// TestConnectReplySharesWrite: the CONNECT reply and what OnConnection emits leave in one
// write, CONNECT first, with recovery on or off; without an emit the reply still leaves
// when the handler returns.
func TestConnectReplySharesWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  *RecoveryOptions
		emit bool
	}{
		{"plain", nil, true},
		{"recovery", &RecoveryOptions{}, true},
		{"no emit", nil, false},
		{"no emit, recovery", &RecoveryOptions{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := NewServer(Options{Logger: testLogger(), Recovery: tc.rec})
			t.Cleanup(func() { _ = srv.Close(context.Background()) })
			srv.OnConnection(func(s *Socket) {
				if tc.emit {
					if err := s.Emit("welcome", "hi"); err != nil {
						t.Error(err)
					}
				}
			})
			c := &writesConn{}
			so := newSocket(srv, c)
			so.connect(nil)
			w := c.done()
			want := 1
			if tc.emit {
				want = 2
			}
			if len(w) != 1 || len(w[0]) != want {
				t.Fatalf("writes %q; want one write of %d packets", w, want)
			}
			if !strings.HasPrefix(w[0][0], `0{"sid":`) {
				t.Fatalf("first packet %q; want the CONNECT reply", w[0][0])
			}
			if tc.emit && !strings.HasPrefix(w[0][1], `2["welcome","hi"`) {
				t.Fatalf("second packet %q; want the welcome", w[0][1])
			}
		})
	}
}

// TestConnectReplyBeforeHandlerReturns: a write by OnConnection carries the CONNECT reply
// at once, so a handler that then waits does not hold it back.
func TestConnectReplyBeforeHandlerReturns(t *testing.T) {
	srv := NewServer(Options{Logger: testLogger()})
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	c := &writesConn{}
	var during [][]string
	srv.OnConnection(func(s *Socket) {
		_ = s.Emit("first")
		during = c.done()
		_ = s.Emit("second")
	})
	newSocket(srv, c).connect(nil)
	if len(during) != 1 || len(during[0]) != 2 || !strings.HasPrefix(during[0][0], "0{") {
		t.Fatalf("writes during the handler %q; want CONNECT and the first emit", during)
	}
	if got := c.done(); len(got) != 2 {
		t.Fatalf("writes %q; want 2", got)
	}
}
