package socketio

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// stopSweeps stops r's timer: the test runs the sweeps itself, each starting an epoch.
func stopSweeps(r *recovery) (advance func(sweeps uint64)) {
	r.mu.Lock()
	r.sweep.Stop()
	r.mu.Unlock()
	return func(sweeps uint64) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for range sweeps {
			r.sweepOnceLocked()
		}
	}
}

// TestRecoveryLogAge: entries older than maxAge leave the log at the sweep and their
// slots are cleared; a session whose missed packets are within the age gets every one
// of them back, also when the entries right after its offset (for other sockets) aged
// out; and a replay renews the age of what it replayed, so a session that drops again
// before reading it can still get it.
func TestRecoveryLogAge(t *testing.T) {
	srv, url := startServer(t, Options{Recovery: &RecoveryOptions{}}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			if !so.Recovered() {
				so.Join("r")
			}
		})
	})
	rec := srv.rec
	advance := stopSweeps(rec)
	// The defaults: maxAge 3m15s, a sweep every 30 s; an entry is dropped by the 8th
	// sweep after it was logged, 3m30s to 4m later.
	if rec.every != 30*time.Second || rec.span != 8 {
		t.Fatalf("sweep every %s, span %d", rec.every, rec.span)
	}
	span := rec.span
	entries := func() int {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		// Every slot outside the live entries is cleared: nothing dropped stays reachable.
		for i := rec.n; i < len(rec.ring); i++ {
			if e := rec.ring[(rec.start+i)%len(rec.ring)]; e.chunk != nil || e.room[0] != "" || e.more != nil {
				t.Fatalf("slot %d of a dropped entry still holds %q", i, e.text())
			}
		}
		return rec.n
	}
	drop := func(r *rawWS, id string) {
		_ = r.ws.UnderlyingConn().Close()
		eventually(t, "socket gone", func() bool { return srv.Socket(id) == nil })
	}
	// replayed reads n events and returns their payloads.
	replayed := func(r *rawWS, n int) []string {
		var out []string
		for range n {
			m := r.readText()
			if !strings.HasPrefix(m, "42") {
				t.Fatalf("event %q", m)
			}
			out = append(out, strings.Split(m, `"`)[3])
		}
		return out
	}

	r1 := dialRaw(t, url)
	id, pid := r1.connectPID("")
	eventually(t, "joined r", func() bool { return slices.Contains(srv.RoomMembers("r"), id) })
	_, _ = srv.EmitTo([]string{"r"}, nil, "n", "a")
	off := r1.nextOffset()
	_, _ = srv.EmitTo([]string{"other"}, nil, "n", "x") // not for r1
	drop(r1, id)

	// One sweep short of the span an entry stays; the next sweep drops it.
	advance(span - 1)
	_, _ = srv.EmitTo([]string{"r"}, nil, "n", "b")
	if n := entries(); n != 3 {
		t.Fatalf("%d entries a sweep before their span, want 3", n)
	}
	advance(1)
	_, _ = srv.EmitTo([]string{"r"}, nil, "n", "c")
	if n := entries(); n != 2 {
		t.Fatalf("%d entries past their span, want 2 (b, c)", n)
	}

	// Recovered from "a" although "a" and "x" after it left the log: b and c come back.
	advance(1)
	r2 := dialRaw(t, url)
	if sid, _ := r2.connectPID(mustJSON(t, map[string]string{"pid": pid, "offset": off})); sid != id {
		t.Fatal("not recovered after older entries aged out")
	}
	if got := replayed(r2, 2); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("replayed %v, want [b c]", got)
	}
	drop(r2, id)

	// "b" and "c" were logged a span ago or more but replayed less than a span ago:
	// they are kept, and a session back from the same offset gets them again.
	advance(span - 1)
	_, _ = srv.EmitTo([]string{"r"}, nil, "n", "d")
	if n := entries(); n != 3 {
		t.Fatalf("%d entries after a replay renewed them, want 3", n)
	}
	r3 := dialRaw(t, url)
	if sid, _ := r3.connectPID(mustJSON(t, map[string]string{"pid": pid, "offset": off})); sid != id {
		t.Fatal("not recovered a second time")
	}
	if got := replayed(r3, 3); !slices.Equal(got, []string{"b", "c", "d"}) {
		t.Fatalf("replayed %v, want [b c d]", got)
	}

	// The sweeps drop what aged and free the emptied ring.
	advance(span + 1)
	rec.mu.Lock()
	n, ring, bytes := rec.n, rec.ring, rec.bytes
	rec.mu.Unlock()
	if n != 0 || ring != nil || bytes != 0 {
		t.Fatalf("after the sweep: %d entries, ring of %d, %d bytes", n, len(ring), bytes)
	}
	// A connected socket's offset is still good with nothing left to replay.
	_, _ = srv.EmitTo([]string{"r"}, nil, "n", "e")
	if v := r3.nextOffset(); v == "" {
		t.Fatal("no offset after the sweep")
	}
}

// TestRecoveryShrinks: the sweep halves a ring at most a quarter full, so a burst does
// not keep its size after its entries aged out one by one.
func TestRecoveryShrinks(t *testing.T) {
	srv := NewServer(Options{Logger: testLogger(), Recovery: &RecoveryOptions{}})
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	rec := srv.rec
	advance := stopSweeps(rec)
	for range 1000 {
		_, _ = srv.EmitTo([]string{"nobody"}, nil, "burst", 1)
	}
	advance(rec.span - 1)
	for range 10 {
		_, _ = srv.EmitTo([]string{"nobody"}, nil, "later", 1)
	}
	size := func() (int, int) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.n, len(rec.ring)
	}
	if n, l := size(); n != 1010 || l != 1024 {
		t.Fatalf("before the burst aged: %d entries in a ring of %d, want 1010 in 1024", n, l)
	}
	advance(1)
	if n, l := size(); n != 10 || l != 512 {
		t.Fatalf("after the burst aged: %d entries in a ring of %d, want 10 in 512", n, l)
	}
	advance(4)
	if n, l := size(); n != 10 || l != 32 {
		t.Fatalf("after four more sweeps: %d entries in a ring of %d, want 10 in 32", n, l)
	}
	advance(rec.span)
	if n, l := size(); n != 0 || l != 0 {
		t.Fatalf("after every entry aged: %d entries in a ring of %d", n, l)
	}
}

// TestRecoverySweepStops: Close stops the periodic sweep; a sweep that fires after it
// does nothing and arms no timer.
func TestRecoverySweepStops(t *testing.T) {
	srv := NewServer(Options{Logger: testLogger(), Recovery: &RecoveryOptions{}})
	if srv.rec.sweep == nil {
		t.Fatal("no sweep armed")
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.rec.tick()
	srv.rec.mu.Lock()
	defer srv.rec.mu.Unlock()
	if srv.rec.sweep != nil || srv.rec.ring != nil {
		t.Fatal("sweep still armed after Close")
	}
}
