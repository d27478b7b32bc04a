package socketio

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// writesConn is a transport that keeps Queue's frames until Flush or the next Send, as a
// websocket session does, and records each write as the packets it carried.
type writesConn struct {
	fakeSession
	mu      sync.Mutex
	pending []string
	writes  [][]string
}

// fakeSession is the part of a test transport that describes the session.
type fakeSession struct{}

func (fakeSession) ID() string                    { return "fake" }
func (fakeSession) Transport() string             { return engineio.TransportWebsocket }
func (fakeSession) RemoteAddr() string            { return "127.0.0.1:1" }
func (fakeSession) Handshake() engineio.Handshake { return engineio.Handshake{} }
func (fakeSession) Close(string)                  {}

func (c *writesConn) Queue(m ...*engineio.Message) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := len(c.pending) == 0
	for _, msg := range m {
		c.pending = append(c.pending, string(msg.Data()))
	}
	return first, nil
}

func (c *writesConn) Send(m ...*engineio.Message) error {
	_, _ = c.Queue(m...)
	c.Flush()
	return nil
}

func (c *writesConn) SendOne(m *engineio.Message) error { return c.Send(m) }

func (c *writesConn) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) > 0 {
		c.writes = append(c.writes, c.pending)
		c.pending = nil
	}
}

// TestConnectReplySharesTheWelcomesWrite: the CONNECT reply and what OnConnection emits
// leave in one write, with recovery on and off, and the reply comes first.
func TestConnectReplySharesTheWelcomesWrite(t *testing.T) {
	for _, recovery := range []bool{false, true} {
		o := Options{Logger: testLogger()}
		if recovery {
			o.Recovery = &RecoveryOptions{}
		}
		srv := NewServer(o)
		srv.OnConnection(func(s *Socket) {
			if err := s.Emit("welcome", map[string]string{"id": s.ID()}); err != nil {
				t.Error(err)
			}
		})
		conn := &writesConn{}
		so := newSocket(srv, conn)
		so.connect(nil)
		_ = srv.Close(context.Background())
		if len(conn.writes) != 1 || len(conn.writes[0]) != 2 {
			t.Fatalf("recovery %v: writes %q, want one with the reply and the welcome", recovery, conn.writes)
		}
		w := conn.writes[0]
		if !strings.HasPrefix(w[0], "0{") || !strings.Contains(w[1], `"welcome"`) {
			t.Errorf("recovery %v: write %q", recovery, w)
		}
	}
}
