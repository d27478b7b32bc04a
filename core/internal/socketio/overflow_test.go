package socketio

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOverflowDuringRecordedBroadcast: a socket that stops reading goes over
// MaxOutboundBytes while a broadcast is being recorded in the recovery log. Its close must
// not run on the broadcasting goroutine (the close persists the session into the same log):
// broadcasts keep returning, the slow socket is dropped, and new sockets still connect.
func TestOverflowDuringRecordedBroadcast(t *testing.T) {
	for _, direct := range []bool{false, true} {
		name := "room broadcast"
		if direct {
			name = "emit to the socket"
		}
		t.Run(name, func(t *testing.T) {
			srv, url := startServer(t, Options{
				MaxOutboundBytes: 64 << 10,
				Recovery:         &RecoveryOptions{},
			}, func(s *Server) {
				s.OnConnection(func(so *Socket) { so.Join("r") })
			})
			slow := dialRaw(t, url)
			id := slow.connect("")
			eventually(t, "slow socket connected", func() bool { return srv.Socket(id) != nil })
			so := srv.Socket(id)
			big := strings.Repeat("x", 100<<10)

			done := make(chan struct{})
			go func() {
				defer close(done)
				// The kernel's buffers take a few MB before the server's own queue grows.
				for i := 0; i < 400 && srv.Socket(id) != nil; i++ {
					if direct {
						_ = so.Emit("big", big)
					} else {
						_, _ = srv.EmitTo([]string{"r"}, nil, "big", big)
					}
				}
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("broadcasts blocked: the overflow close ran under the recovery log's lock")
			}
			eventually(t, "slow socket dropped", func() bool { return srv.Socket(id) == nil })

			// The server still accepts and serves sockets.
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := dialRaw(t, url)
				r.connect("")
			}()
			ok := make(chan struct{})
			go func() { wg.Wait(); close(ok) }()
			select {
			case <-ok:
			case <-time.After(15 * time.Second):
				t.Fatal("a new socket could not connect after the overflow")
			}
		})
	}
}
