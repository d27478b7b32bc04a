package socketio

import (
	"encoding/json"
	"slices"
	"strings"
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
				so.Set("k", "v")
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
	if !so.Recovered() || so.ID() != h1.SID || so.Get("k") != "v" || !slices.Contains(so.Rooms(), "r") {
		t.Errorf("recovered=%v id=%s k=%v rooms=%v", so.Recovered(), so.ID(), so.Get("k"), so.Rooms())
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
