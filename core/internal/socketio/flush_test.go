package socketio

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBroadcastOrder: broadcasts to a room (queued to every recipient, written by the
// flusher, several sharing a write) and direct emits to each socket, all at once from
// several goroutines: every socket gets every event, and each sender's events in the
// order it sent them.
func TestBroadcastOrder(t *testing.T) {
	for _, rec := range []bool{false, true} {
		for _, inline := range []bool{false, true} {
			t.Run(fmt.Sprintf("recovery=%v,inline=%v", rec, inline), func(t *testing.T) {
				o := Options{NonBlockingHandlers: inline}
				if rec {
					o.Recovery = &RecoveryOptions{}
				}
				testBroadcastOrder(t, o)
			})
		}
	}
}

func testBroadcastOrder(t *testing.T, o Options) {
	const (
		clients      = 24 // over bulkFlush: room broadcasts go through the flusher
		broadcasters = 4
		perSender    = 300
	)
	base := runtime.NumGoroutine()
	srv, url := startServer(t, o, func(s *Server) {
		s.OnConnection(func(so *Socket) { so.Join("room") })
	})
	raws := make([]*rawWS, clients)
	ids := make([]string, clients)
	for i := range raws {
		raws[i] = dialRaw(t, url)
		ids[i] = raws[i].connect("")
	}
	eventually(t, "every socket in the room", func() bool { return srv.RoomSize("room") == clients })

	var wg sync.WaitGroup
	for w := range broadcasters {
		wg.Go(func() {
			for i := range perSender {
				if n, err := srv.EmitTo([]string{"room"}, nil, "b", w, i); err != nil || n != clients {
					t.Errorf("EmitTo: %d, %v", n, err)
					return
				}
			}
		})
	}
	wg.Go(func() { // direct emits, one socket at a time, interleaved with the broadcasts
		for i := range perSender {
			for _, id := range ids {
				if so := srv.Socket(id); so == nil || so.Emit("d", i) != nil {
					t.Errorf("Emit to %s failed", id)
					return
				}
			}
		}
	})

	errs := make(chan error, clients)
	for _, r := range raws {
		go func() { errs <- readOrdered(r, broadcasters, perSender, perSender, nil) }()
	}
	wg.Wait()
	for range raws {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for _, r := range raws {
		_ = r.ws.Close()
	}
	eventually(t, "sockets gone", func() bool { return srv.SocketCount() == 0 })
	waitGoroutines(t, base, 20) // the flusher does not outlive its work
}

// readOrdered reads until it has perSender "b" events from each broadcaster and direct
// "d" events, checking that each sender's sequence arrives in order.
func readOrdered(r *rawWS, broadcasters, perSender, direct int, progress *atomic.Int64) error {
	next := make([]int, broadcasters)
	nextD := 0
	want := broadcasters*perSender + direct
	for got := 0; got < want; got++ {
		if progress != nil {
			progress.Store(int64(got))
		}
		m, _, err := r.next()
		if err != nil {
			return fmt.Errorf("after %d of %d events: %w", got, want, err)
		}
		if !strings.HasPrefix(m, "42[") {
			return fmt.Errorf("unexpected %q", m)
		}
		var ev []json.RawMessage
		if err := json.Unmarshal([]byte(m[2:]), &ev); err != nil {
			return fmt.Errorf("%q: %v", m, err)
		}
		var name string
		_ = json.Unmarshal(ev[0], &name)
		switch name {
		case "b":
			var w, i int
			_ = json.Unmarshal(ev[1], &w)
			_ = json.Unmarshal(ev[2], &i)
			if w < 0 || w >= broadcasters || i != next[w] {
				return fmt.Errorf("broadcaster %d: got %d, want %d", w, i, next[w])
			}
			next[w]++
		case "d":
			var i int
			_ = json.Unmarshal(ev[1], &i)
			if i != nextD {
				return fmt.Errorf("direct: got %d, want %d", i, nextD)
			}
			nextD++
		default:
			return fmt.Errorf("unexpected event %q", m)
		}
	}
	return nil
}

// TestBroadcastSlowReader: a socket that stops reading is disconnected for "buffer full"
// once what the broadcasts queued for it passes MaxOutboundBytes; the others get every
// event, in order.
func TestBroadcastSlowReader(t *testing.T) {
	const clients, events = 12, 4000
	closed := make(chan string, clients)
	srv, url := startServer(t, Options{MaxOutboundBytes: 64 << 10}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			so.Join("room")
			so.OnDisconnect(func(so *Socket, reason string) { closed <- reason })
		})
	})
	raws := make([]*rawWS, clients)
	for i := range raws {
		raws[i] = dialRaw(t, url)
		raws[i].connect("")
	}
	eventually(t, "every socket in the room", func() bool { return srv.RoomSize("room") == clients })
	errs := make(chan error, clients)
	progress := make([]atomic.Int64, clients)
	for k, r := range raws[1:] { // raws[0] never reads
		go func() { errs <- readOrdered(r, 1, events, 0, &progress[k+1]) }()
	}
	// 16 MB per socket in all, more than the kernel buffers; the readers are never more
	// than a few events (well under MaxOutboundBytes) behind.
	pad := strings.Repeat("x", 4096)
	for i := range events {
		for k := 1; k < clients; k++ {
			for progress[k].Load() < int64(i-8) {
				time.Sleep(50 * time.Microsecond)
			}
		}
		if _, err := srv.EmitTo([]string{"room"}, nil, "b", 0, i, pad); err != nil {
			t.Fatal(err)
		}
	}
	for range raws[1:] {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if reason := recv(t, closed, "the slow reader's disconnect"); reason != "transport error" && !strings.Contains(reason, "buffer") {
		t.Errorf("slow reader closed with %q", reason)
	}
	if n := srv.RoomSize("room"); n != clients-1 {
		t.Errorf("room has %d sockets, want %d", n, clients-1)
	}
}
