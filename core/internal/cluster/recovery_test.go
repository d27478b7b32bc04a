package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/redistest"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// testStore is a RecoveryStore on the test Redis under a key prefix of its own.
func testStore(t *testing.T, maxLen int) *RecoveryStore {
	t.Helper()
	addr := redistest.Addr(t)
	s, err := NewRecoveryStore(RecoveryOptions{
		RedisURL:  "redis://" + addr + "/0",
		KeyPrefix: redistest.Prefix(t, "rt-test"),
		MaxLen:    maxLen,
		StreamTTL: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		s.client.Del(ctx, s.stream)
		_ = s.Close()
	})
	return s
}

// TestRecoveryStoreTakeOnce: nodes racing to recover one pid: exactly one gets the record.
func TestRecoveryStoreTakeOnce(t *testing.T) {
	s := testStore(t, 100)
	ctx := context.Background()
	for round := 0; round < 20; round++ {
		pid := "pid" + string(rune('a'+round))
		w := socketio.SessionWrite{Kind: socketio.WriteCreate, PID: pid, Owner: "o1", Data: []byte(`{"id":"x"}`), TTL: time.Minute}
		if err := s.Save(ctx, []socketio.SessionWrite{w}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := s.Take(ctx, pid)
				if err != nil {
					t.Error(err)
				}
				if d != nil {
					mu.Lock()
					got++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if got != 1 {
			t.Fatalf("round %d: %d takers got the record", round, got)
		}
	}
}

// TestRecoveryStoreOwner: only the owning connection updates or deletes a record; a
// connection that takes it over (create) becomes the owner.
func TestRecoveryStoreOwner(t *testing.T) {
	s := testStore(t, 100)
	ctx := context.Background()
	save := func(kind socketio.WriteKind, owner, data string) {
		t.Helper()
		if err := s.Save(ctx, []socketio.SessionWrite{{Kind: kind, PID: "p", Owner: owner, Data: []byte(data), TTL: time.Minute}}); err != nil {
			t.Fatal(err)
		}
	}
	get := func() string { return s.client.HGet(ctx, s.sessions+"p", "d").Val() }
	t.Cleanup(func() { s.client.Del(ctx, s.sessions+"p") })

	save(socketio.WriteUpdate, "a", "1")
	if get() != "" {
		t.Fatal("an update created a record")
	}
	save(socketio.WriteCreate, "a", "1")
	save(socketio.WriteUpdate, "a", "2")
	save(socketio.WriteCreate, "b", "3") // recovered elsewhere
	save(socketio.WriteUpdate, "a", "4") // the stale connection closes late
	save(socketio.WriteDelete, "a", "")
	if get() != "3" {
		t.Fatalf("record %q, want the new owner's", get())
	}
	save(socketio.WriteDelete, "b", "")
	if get() != "" {
		t.Fatal("the owner's delete left the record")
	}
}

// TestRecoveryStoreLog: appended broadcasts are read back after an offset, in order; an
// offset whose successors were trimmed is unknown; the stream stays near MaxLen.
func TestRecoveryStoreLog(t *testing.T) {
	s := testStore(t, 100)
	ctx := context.Background()
	// With no stream, Last logs a marker: its offset is in the log, as any offset is.
	first, err := s.Last(ctx)
	if err != nil || !s.ValidOffset(first) {
		t.Fatalf("Last of no stream: %q %v", first, err)
	}
	if again, _ := s.Last(ctx); again != first {
		t.Fatalf("Last again: %q, want %q", again, first)
	}
	var offs []string
	for i := 0; i < 5; i++ {
		msg, err := encodeBroadcast("uid", []string{"r"}, nil, "ev", []byte(`{"i":1}`), "", true)
		if err != nil {
			t.Fatal(err)
		}
		off, err := s.appendPublish(ctx, "chan-"+s.stream, msg, []string{"r"}, nil, "ev", []byte(`{"i":1}`))
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
	}
	if pkts, known, err := s.After(ctx, first, 100); err != nil || !known || len(pkts) != 5 {
		t.Fatalf("After the marker: %v %v %d", known, err, len(pkts))
	}
	pkts, known, err := s.After(ctx, offs[1], 100)
	if err != nil || !known || len(pkts) != 3 || pkts[0].Offset != offs[2] || pkts[2].Rooms[0] != "r" || string(pkts[2].Data) != `{"i":1}` {
		t.Fatalf("After: %v %v %+v", known, err, pkts)
	}
	if last, _ := s.Last(ctx); last != offs[4] {
		t.Fatalf("Last %q, want %q", last, offs[4])
	}
	for i := 0; i < 500; i++ {
		msg, _ := encodeBroadcast("uid", nil, nil, "fill", []byte(`1`), "", true)
		if _, err := s.appendPublish(ctx, "chan-"+s.stream, msg, nil, nil, "fill", []byte(`1`)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.client.XLen(ctx, s.stream).Val(); n > 200 {
		t.Fatalf("stream length %d with MaxLen 100", n)
	}
	if _, known, err := s.After(ctx, offs[1], 1000); err != nil || known {
		t.Fatalf("a trimmed offset is known: %v %v", known, err)
	}
}

// TestLoggedBroadcastWire: the published message, with the offset Redis appended, decodes
// to the broadcast and its offset.
func TestLoggedBroadcastWire(t *testing.T) {
	msg, err := encodeBroadcast("uid", []string{"room"}, []string{"x"}, "ev", []byte(`[1,"a"]`), "", true)
	if err != nil {
		t.Fatal(err)
	}
	id := "1732760000000-12"
	msg = append(append(msg, 0xd9, byte(len(id))), id...)
	b, err := decodeBroadcast(msg)
	if err != nil {
		t.Fatal(err)
	}
	if b.offset != id || b.event != "ev" || b.rooms[0] != "room" || b.except[0] != "x" || len(b.args) != 1 {
		t.Fatalf("decoded %+v", b)
	}
}
