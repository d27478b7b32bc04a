package cluster

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtserver/rtserver/core/internal/redistest"
)

// newSharedNode is one node's adapter and stores under prefix, closed at cleanup.
func newSharedNode(t *testing.T, addr, prefix string) (*Adapter, *Shared) {
	t.Helper()
	a, err := New(&localOnly{sent: make(chan string, 16)}, func(_, _ []string, _ string, _ ...any) (int, error) { return 0, nil },
		Options{RedisURL: "redis://" + addr + "/0", KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := NewShared(a, SharedOptions{NodeTTL: 3 * time.Second})
	s.Start()
	t.Cleanup(func() {
		s.Close()
		_ = a.Close()
	})
	return a, s
}

// TestSharedStores: nonces, rates and per-IP counts are one across two nodes; a node's
// Close takes its counts out at once; nothing is left running.
func TestSharedStores(t *testing.T) {
	addr := redistest.Addr(t)
	base := runtime.NumGoroutine()
	prefix := redistest.Prefix(t, "rt-unit")
	t.Run("stores", func(t *testing.T) {
		_, s1 := newSharedNode(t, addr, prefix)
		a2, s2 := newSharedNode(t, addr, prefix)

		// A nonce is claimed once in the cluster, per key name, until it expires.
		exp := time.Now().Add(300 * time.Millisecond)
		for i, c := range []struct {
			s     *Shared
			key   string
			fresh bool
		}{{s1, "k", true}, {s2, "k", false}, {s1, "k", false}, {s2, "other", true}} {
			fresh, err := c.s.ClaimNonce(c.key, "nonce-1", exp)
			if err != nil || fresh != c.fresh {
				t.Fatalf("claim %d: fresh=%v err=%v, want %v", i, fresh, err, c.fresh)
			}
		}
		time.Sleep(time.Until(exp) + 50*time.Millisecond)
		if fresh, err := s2.ClaimNonce("k", "nonce-1", time.Now().Add(time.Second)); err != nil || !fresh {
			t.Fatalf("after expiry: %v %v", fresh, err)
		}

		// A rate of 3 a minute is spent on either node; the answer carries the headers'
		// figures.
		l1, l2 := s1.Limiter("test", 3, time.Minute), s2.Limiter("test", 3, time.Minute)
		for i, l := range []*RateLimiter{l1, l2, l1} {
			r, err := l.Allow("id")
			if err != nil || !r.Allowed || r.Limit != 3 || r.Remaining != 2-i {
				t.Fatalf("allow %d: %+v %v", i, r, err)
			}
		}
		r, err := l2.Allow("id")
		if err != nil || r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > 20*time.Second || !r.Reset.After(time.Now()) {
			t.Fatalf("fourth: %+v %v", r, err)
		}
		if r, err := l2.Allow("another"); err != nil || !r.Allowed {
			t.Fatalf("another id: %+v %v", r, err)
		}
		var none *RateLimiter
		if r, err := none.Allow("x"); err != nil || !r.Allowed {
			t.Fatalf("nil limiter: %+v %v", r, err)
		}

		// Two connections per IP across both nodes.
		for i, s := range []*Shared{s1, s2} {
			if ok, err := s.TakeConn("192.0.2.1", 2); err != nil || !ok {
				t.Fatalf("take %d: %v %v", i, ok, err)
			}
		}
		if ok, err := s1.TakeConn("192.0.2.1", 2); err != nil || ok {
			t.Fatalf("third: %v %v", ok, err)
		}
		if ok, err := s1.TakeConn("192.0.2.2", 2); err != nil || !ok {
			t.Fatalf("another IP: %v %v", ok, err)
		}
		// Node 2 closes: its connection stops counting at once.
		s2.Close()
		_ = a2.Close()
		if ok, err := s1.TakeConn("192.0.2.1", 2); err != nil || !ok {
			t.Fatalf("after node 2 closed: %v %v", ok, err)
		}
		// A release makes room again.
		s1.ReleaseConn("192.0.2.1")
		deadline := time.Now().Add(5 * time.Second)
		for {
			ok, err := s1.TakeConn("192.0.2.1", 2)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("release did not make room")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, _ := rc.Keys(ctx, prefix+"-*").Result()
	tagged, _ := rc.Keys(ctx, "{"+prefix+"}-*").Result()
	for _, k := range append(keys, tagged...) {
		// Nonces and rates expire by themselves; the per-node keys are gone with the nodes.
		if strings.Contains(k, "-conns#") {
			t.Errorf("left behind: %s", k)
		}
		rc.Del(ctx, k)
	}
	waitGoroutines(t, base)
}

// TestSharedRedisDown: with Redis unreachable every call says so at once, counting a
// fallback, and the node's own count of connections is kept for the rebuild.
func TestSharedRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	a, err := New(&localOnly{sent: make(chan string, 1)}, nil, Options{RedisURL: "redis://" + dead + "/0", KeyPrefix: "x", ConnectTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s := NewShared(a, SharedOptions{Timeout: 200 * time.Millisecond})
	defer s.Close()
	if _, err := s.ClaimNonce("k", "n", time.Now().Add(time.Minute)); err == nil {
		t.Fatal("claim without Redis: no error")
	}
	if _, err := s.Limiter("r", 1, time.Minute).Allow("id"); err == nil {
		t.Fatal("rate without Redis: no error")
	}
	if _, err := s.TakeConn("192.0.2.1", 1); err == nil {
		t.Fatal("take without Redis: no error")
	}
	s.mu.Lock()
	n, dirty := s.conns["192.0.2.1"], s.dirty
	s.mu.Unlock()
	if n != 1 || !dirty {
		t.Fatalf("own count %d dirty %v, want 1 true", n, dirty)
	}
	s.ReleaseConn("192.0.2.1")
	s.mu.Lock()
	n = s.conns["192.0.2.1"]
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("own count after release %d", n)
	}
}
