package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

// TestStaleFailureLeavesUp: a call that began before Redis was seen answering again and
// failed afterwards does not mark the node down; one that began after does.
func TestStaleFailureLeavesUp(t *testing.T) {
	a, err := New(&localOnly{sent: make(chan string, 1)}, nil, Options{RedisURL: "redis://127.0.0.1:1/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.setDown(true)
	begun := time.Now()
	// Ordering only: the recovery must be seen strictly after the call began.
	time.Sleep(time.Millisecond)
	a.setDown(false) // the subscription is back, and commands are answered
	a.failedSince(begun)
	if !a.Up() {
		t.Fatal("a failure older than the recovery marked the node down")
	}
	a.MarkDown(begun)
	if !a.Up() {
		t.Fatal("a heartbeat older than the recovery marked the node down")
	}
	a.failedSince(time.Now())
	if a.Up() {
		t.Fatal("a failure after the recovery left the node up")
	}
}

// subscribeGate wraps the connections an adapter dials and, while shut, fails every
// write of a SUBSCRIBE or PSUBSCRIBE: the subscription cannot come back while the
// publishing connections work.
type subscribeGate struct {
	shut  atomic.Bool
	mu    sync.Mutex
	conns []*gatedConn
}

type gatedConn struct {
	net.Conn
	g   *subscribeGate
	sub atomic.Bool
}

func (g *subscribeGate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	gc := &gatedConn{Conn: c, g: g}
	g.mu.Lock()
	g.conns = append(g.conns, gc)
	g.mu.Unlock()
	return gc, nil
}

func (c *gatedConn) Write(b []byte) (int, error) {
	if bytes.Contains(bytes.ToLower(b), []byte("subscribe")) {
		c.sub.Store(true)
		if c.g.shut.Load() {
			c.Conn.Close()
			return 0, net.ErrClosed
		}
	}
	return c.Conn.Write(b)
}

// dropSubscriptions closes the connections that carried a subscription.
func (g *subscribeGate) dropSubscriptions() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, c := range g.conns {
		if c.sub.Load() {
			c.Conn.Close()
			n++
		}
	}
	return n
}

// TestPublishDoesNotMarkUpWithoutTheSubscription: after an outage the publishing client
// can reach Redis before the subscription is back; a publish that succeeds then must not
// mark the node up (it would receive nothing from the other nodes while saying it is in
// the cluster). It is up once the subscription is.
func TestPublishDoesNotMarkUpWithoutTheSubscription(t *testing.T) {
	addr := redistest.Addr(t)
	gate := &subscribeGate{}
	a, err := New(&localOnly{sent: make(chan string, 8)}, nil, Options{
		Redis:     &redis.UniversalOptions{Addrs: []string{addr}, Dialer: gate.dial},
		KeyPrefix: redistest.Prefix(t, "rt-updown"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !a.Up() {
		t.Fatal("not up after start")
	}
	gate.shut.Store(true)
	if gate.dropSubscriptions() == 0 {
		t.Fatal("no subscription connection seen")
	}
	a.setDown(true) // as a failed publish during the outage would
	for range 3 {
		a.lastProbe.Store(0) // let this broadcast try Redis now
		if _, err := a.Broadcast(hub.Target{}, "ev", json.RawMessage(`1`)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if a.Up() {
			t.Fatal("a publish marked the node up while its subscription was gone")
		}
	}
	gate.shut.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for !a.Up() {
		if time.Now().After(deadline) {
			t.Fatal("not up again once the subscription could come back")
		}
		a.lastProbe.Store(0)
		_, _ = a.Broadcast(hub.Target{}, "ev", json.RawMessage(`1`))
		time.Sleep(50 * time.Millisecond)
	}
}
