package socketio

import (
	"strconv"
	"testing"

	"github.com/gorilla/websocket"
)

// BenchmarkInboundAckWire is BenchmarkInboundAckLayer over the real transport: a
// websocket peer in this process sends 42N["ping",{..}] and reads the 43N[] reply before
// the next, so the figures include engineio's read and write paths (and the peer's own
// allocations, which are the same before and after a server change).
func BenchmarkInboundAckWire(b *testing.B) {
	_, url := startServer(b, Options{}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			so.On("ping", func(_ *Socket, _ Args, ack Ack) {
				if ack != nil {
					_ = ack()
				}
			})
		})
	})
	r := dialRaw(b, url)
	r.connect("")
	var msg []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg = append(msg[:0], "42"...)
		msg = strconv.AppendUint(msg, uint64(i+1), 10)
		msg = append(msg, `["ping",{"timestamp":1764300000000}]`...)
		if err := r.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
		got := r.readText()
		if want := "43" + strconv.Itoa(i+1) + "[]"; got != want {
			b.Fatalf("reply %q, want %q", got, want)
		}
	}
}
