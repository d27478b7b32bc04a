package socketio

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkInboundAckLayer measures this package alone in the direction of the load tool's
// ack scenario: a client's EVENT with an ack id decoded and dispatched, and the handler's
// ACK encoded and handed to the transport (one that only counts).
func BenchmarkInboundAckLayer(b *testing.B) {
	srv := NewServer(Options{Logger: testLogger()})
	b.Cleanup(func() { _ = srv.Close(context.Background()) })
	srv.OnConnection(func(s *Socket) {
		s.On("ping", func(s *Socket, _ Args, ack Ack) {
			if ack != nil {
				_ = ack()
			}
		})
	})
	var sent atomic.Int64
	so := newSocket(srv, &countingConn{sent: &sent})
	so.connect(nil)
	base := sent.Load()
	var msg []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg = append(msg[:0], "2"...)
		msg = strconv.AppendUint(msg, uint64(i+1), 10)
		msg = append(msg, `["ping",{"timestamp":1764300000000}]`...)
		so.cl.onMessage(msg, false)
	}
	b.StopTimer()
	if got := sent.Load() - base; got != int64(b.N) {
		b.Fatalf("acks %d of %d", got, b.N)
	}
}
