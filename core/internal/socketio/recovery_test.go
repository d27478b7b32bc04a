package socketio

import (
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRawRecovery walks the connection state recovery data path with a raw client: the
// CONNECT reply carries pid, events carry an offset, and a reconnect with {pid, offset}
// gets the same id, rooms and data back plus the missed packets in order.
func TestRawRecovery(t *testing.T) {
	accepted := make(chan *Socket, 8)
	srv, url := startServer(t, Options{Recovery: &RecoveryOptions{MaxPackets: 3}}, func(s *Server) {
		s.OnConnection(func(so *Socket) {
			if !so.Recovered() {
				so.Join("r")
				so.SetSession("v")
			}
			accepted <- so
		})
	})
	type hello struct{ SID, PID string }
	connect := func(r *rawWS, auth string) hello {
		t.Helper()
		r.send("0" + auth)
		m := r.readText()
		var h hello
		if !strings.HasPrefix(m, "40{") || json.Unmarshal([]byte(m[2:]), &h) != nil || h.SID == "" || h.PID == "" {
			t.Fatalf("CONNECT reply %q", m)
		}
		return h
	}
	event := func(r *rawWS) (string, string) {
		t.Helper()
		m := r.readText()
		var args []string
		if !strings.HasPrefix(m, "42[") || json.Unmarshal([]byte(m[2:]), &args) != nil || len(args) != 3 {
			t.Fatalf("event %q", m)
		}
		return args[1], args[2] // payload, offset
	}

	r1 := dialRaw(t, url)
	h1 := connect(r1, "")
	first := recv(t, accepted, "first connection")
	if _, err := srv.EmitTo([]string{"r"}, nil, "news", "a"); err != nil {
		t.Fatal(err)
	}
	v, offset := event(r1)
	if v != "a" || offset == "" {
		t.Fatalf("event a: %q %q", v, offset)
	}
	// Socket.Emit carries an offset too.
	_ = first.Emit("news", "direct")
	if v, off := event(r1); v != "direct" || off == offset {
		t.Fatalf("direct: %q %q", v, off)
	}
	offset2 := offset // resume from "a": "direct" is missed as well

	// The transport drops without a DISCONNECT: the session is kept.
	_ = r1.ws.UnderlyingConn().Close()
	eventually(t, "socket gone", func() bool { return srv.SocketCount() == 0 })
	_, _ = srv.EmitTo([]string{"r"}, nil, "news", "b")
	_, _ = srv.EmitTo([]string{"other"}, nil, "news", "not for us")
	_, _ = srv.EmitTo(nil, []string{"r"}, "news", "excluded")
	_, _ = srv.EmitTo(nil, nil, "news", "c")

	r2 := dialRaw(t, url)
	auth, _ := json.Marshal(map[string]string{"pid": h1.PID, "offset": offset2})
	h2 := connect(r2, string(auth))
	if h2.SID != h1.SID || h2.PID != h1.PID {
		t.Errorf("recovered ids %+v, want %+v", h2, h1)
	}
	for _, want := range []string{"direct", "b", "c"} {
		if v, _ := event(r2); v != want {
			t.Errorf("replayed %q, want %q", v, want)
		}
	}
	so := recv(t, accepted, "recovered connection")
	if !so.Recovered() || so.ID() != h1.SID || so.Session() != "v" || !slices.Contains(so.Rooms(), "r") {
		t.Errorf("recovered=%v id=%s k=%v rooms=%v", so.Recovered(), so.ID(), so.Session(), so.Rooms())
	}
	// Live again: new emits arrive after the replay.
	_, _ = srv.EmitTo([]string{"r"}, nil, "news", "d")
	if v, _ := event(r2); v != "d" {
		t.Errorf("after recovery got %q", v)
	}

	// A pid can be used once; an unknown offset or too many missed packets is not
	// recovered: a fresh session with a new id.
	_ = r2.ws.UnderlyingConn().Close()
	eventually(t, "socket gone", func() bool { return srv.SocketCount() == 0 })
	for i := range 4 { // MaxPackets is 3
		_, _ = srv.EmitTo([]string{"r"}, nil, "news", i)
	}
	r3 := dialRaw(t, url)
	auth, _ = json.Marshal(map[string]string{"pid": h1.PID, "offset": offset2})
	h3 := connect(r3, string(auth))
	if h3.SID == h1.SID || h3.PID == h1.PID {
		t.Errorf("recovered despite too many missed packets: %+v", h3)
	}
	if so := recv(t, accepted, "fresh connection"); so.Recovered() {
		t.Error("Recovered() on a fresh session")
	}

	// A deliberate disconnect is not recoverable.
	so3 := srv.Socket(h3.SID)
	_, _ = srv.EmitTo([]string{h3.SID}, nil, "news", "x")
	_, off3 := event(r3)
	so3.Disconnect()
	eventually(t, "socket gone", func() bool { return srv.SocketCount() == 0 })
	r4 := dialRaw(t, url)
	auth, _ = json.Marshal(map[string]string{"pid": h3.PID, "offset": off3})
	if h4 := connect(r4, string(auth)); h4.SID == h3.SID {
		t.Error("recovered after a server disconnect")
	}
}

// TestRecoveryReservesID: while a session is kept for recovery, no other socket can join
// the room named by its id, and a socket that joined it in the moment between the owner's
// session being taken and the owner being accepted is evicted: the recovered owner's
// events reach only the owner.
func TestRecoveryReservesID(t *testing.T) {
	var intruder atomic.Pointer[Socket]
	var joinDuringRecovery atomic.Pointer[string]
	srv, url := startServer(t, Options{Recovery: &RecoveryOptions{}}, func(s *Server) {
		s.Use(func(so *Socket, auth json.RawMessage) error {
			if id := joinDuringRecovery.Load(); id != nil && so.ID() == *id {
				intruder.Load().Join(*id)
			}
			return nil
		})
	})

	owner := dialRaw(t, url)
	id, pid := owner.connectPID("")
	other := dialRaw(t, url)
	otherID, _ := other.connectPID("")
	eventually(t, "both connected", func() bool { return srv.SocketCount() == 2 })
	in := srv.Socket(otherID)
	intruder.Store(in)
	_ = srv.Socket(id).Emit("hello", 1)
	off := owner.nextOffset()

	// Connected: reserved.
	if !srv.Reserved(id) {
		t.Fatal("a connected socket's id is not reserved")
	}
	// Dropped and kept for recovery: still reserved, and Join ignores it.
	_ = owner.ws.UnderlyingConn().Close()
	eventually(t, "owner gone", func() bool { return srv.Socket(id) == nil })
	if !srv.Reserved(id) {
		t.Fatal("a kept session's id is not reserved")
	}
	in.Join(id)
	if slices.Contains(in.Rooms(), id) || srv.RoomSize(id) != 0 {
		t.Fatalf("another socket joined a kept session's id: rooms %v", in.Rooms())
	}
	if srv.Reserved("lobby") {
		t.Fatal("an ordinary room is reserved")
	}

	// The owner comes back; a middleware makes the other socket join the id in the gap
	// between the session being taken and the owner being accepted.
	joinDuringRecovery.Store(&id)
	back := dialRaw(t, url)
	auth, _ := json.Marshal(map[string]string{"pid": pid, "offset": off})
	if sid, _ := back.connectPID(string(auth)); sid != id {
		t.Fatalf("not recovered: %s, want %s", sid, id)
	}
	if slices.Contains(in.Rooms(), id) {
		t.Fatalf("the other socket is still in the recovered id's room: %v", in.Rooms())
	}
	_ = srv.Socket(id).Emit("private", "secret")
	if m := back.readText(); !strings.Contains(m, "secret") {
		t.Fatalf("owner got %q", m)
	}
	_, _ = srv.EmitTo([]string{otherID}, nil, "marker")
	if m := other.readText(); !strings.Contains(m, "marker") {
		t.Fatalf("the other socket got %q before the marker: the owner's event leaked", m)
	}
}

// TestRecoveryLogBytesBound: the log keeps at most MaxTotalBytes; a session whose missed
// packets were dropped to stay under it is not recovered, one whose were kept is.
func TestRecoveryLogBytesBound(t *testing.T) {
	srv, url := startServer(t, Options{Recovery: &RecoveryOptions{MaxTotalBytes: 64 << 10}}, func(s *Server) {
		s.OnConnection(func(so *Socket) { so.Join("r") })
	})
	drop := func(r *rawWS, id string) {
		_ = r.ws.UnderlyingConn().Close()
		eventually(t, "socket gone", func() bool { return srv.Socket(id) == nil })
	}
	logBytes := func() int {
		srv.rec.mu.Lock()
		defer srv.rec.mu.Unlock()
		return srv.rec.bytes
	}

	// Missed: 10 KB in all, well under the bound: recovered.
	r1 := dialRaw(t, url)
	id, pid := r1.connectPID("")
	// The CONNECT reply can arrive before the connection handler has joined "r".
	eventually(t, "joined r", func() bool { return slices.Contains(srv.RoomMembers("r"), id) })
	_, _ = srv.EmitTo([]string{"r"}, nil, "n", 0)
	off := r1.nextOffset()
	drop(r1, id)
	for range 10 {
		_, _ = srv.EmitTo([]string{"r"}, nil, "n", strings.Repeat("a", 1000))
	}
	r2 := dialRaw(t, url)
	if sid, _ := r2.connectPID(mustJSON(t, map[string]string{"pid": pid, "offset": off})); sid != id {
		t.Fatal("not recovered with 10 KB missed")
	}
	for range 10 {
		off = r2.nextOffset()
	}

	// Missed: 100 KB, more than the 64 KB the log keeps: not recovered, and the log
	// stays under its bound.
	drop(r2, id)
	for range 100 {
		_, _ = srv.EmitTo([]string{"r"}, nil, "n", strings.Repeat("b", 1000))
		if b := logBytes(); b > 64<<10 {
			t.Fatalf("log keeps %d bytes, bound 65536", b)
		}
	}
	r3 := dialRaw(t, url)
	if sid, _ := r3.connectPID(mustJSON(t, map[string]string{"pid": pid, "offset": off})); sid == id {
		t.Fatal("recovered although the missed packets left the log")
	}

	// A packet larger than the whole budget is not kept, and the log is emptied.
	_, _ = srv.EmitTo([]string{"nobody"}, nil, "huge", strings.Repeat("c", 70<<10))
	if b := logBytes(); b != 0 {
		t.Fatalf("log keeps %d bytes after an oversized packet", b)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRecoveryReplayWithinOutboundCap: a replay is queued before the client reads, so one
// larger than half of MaxOutboundBytes is refused (a fresh session) instead of closing the
// session for "buffer full" on every attempt.
func TestRecoveryReplayWithinOutboundCap(t *testing.T) {
	srv, url := startServer(t, Options{MaxOutboundBytes: 64 << 10, Recovery: &RecoveryOptions{}}, func(s *Server) {
		s.OnConnection(func(so *Socket) { so.Join("r") })
	})
	for _, tc := range []struct {
		missed    int
		recovered bool
	}{{20 << 10, true}, {40 << 10, false}} {
		r := dialRaw(t, url)
		sid, pid := r.connectPID("")
		eventually(t, "joined r", func() bool { return slices.Contains(srv.RoomMembers("r"), sid) })
		_, _ = srv.EmitTo([]string{"r"}, nil, "n", 0)
		off := r.nextOffset()
		_ = r.ws.UnderlyingConn().Close()
		eventually(t, "socket gone", func() bool { return srv.Socket(sid) == nil })
		for range tc.missed / 1000 {
			_, _ = srv.EmitTo([]string{"r"}, nil, "n", strings.Repeat("a", 1000))
		}
		r2 := dialRaw(t, url)
		r2.send("0" + mustJSON(t, map[string]string{"pid": pid, "offset": off}))
		m := r2.readText()
		if got := strings.Contains(m, sid); got != tc.recovered {
			t.Errorf("missed %d bytes: recovered %v, want %v", tc.missed, got, tc.recovered)
		}
		_ = r2.ws.Close()
	}
}

// connectPID sends CONNECT with auth and returns the socket id and private session id.
func (r *rawWS) connectPID(auth string) (sid, pid string) {
	r.t.Helper()
	r.send("0" + auth)
	m := r.readText()
	var h struct{ SID, PID string }
	if !strings.HasPrefix(m, "40{") || json.Unmarshal([]byte(m[2:]), &h) != nil {
		r.t.Fatalf("CONNECT reply %q", m)
	}
	return h.SID, h.PID
}

// nextOffset reads the next EVENT and returns its recovery offset (its last argument).
func (r *rawWS) nextOffset() string {
	r.t.Helper()
	m := r.readText()
	var args []any
	if !strings.HasPrefix(m, "42") || json.Unmarshal([]byte(m[2:]), &args) != nil || len(args) < 2 {
		r.t.Fatalf("event %q", m)
	}
	off, _ := args[len(args)-1].(string)
	return off
}
