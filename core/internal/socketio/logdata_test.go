package socketio

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
)

// The log keeps a packet's text without the spare room of the buffer it was encoded in,
// and the same bytes.
func TestLogDataKeepsOnlyTheText(t *testing.T) {
	type greeting struct {
		Message string `json:"message"`
		ID      string `json:"socketId"`
		At      string `json:"timestamp"`
	}
	event := "system:welcome"
	enc, err := encodePacket(PacketEvent, 0, false, &event, []any{greeting{
		Message: "Welcome to the Socket.IO server", ID: "abcdefghijklmnopqrst", At: "2026-11-28T09:00:00.000Z",
	}}, "offset-1")
	if err != nil {
		t.Fatal(err)
	}
	d := enc.logData()
	if !bytes.Equal(d, enc.data()) {
		t.Fatalf("logged %q, encoded %q", d, enc.data())
	}
	if cap(d) != len(d) {
		t.Fatalf("logged text of %d bytes keeps %d", len(d), cap(d))
	}

	// A packet whose buffer was sized right is logged as it is, without a copy.
	raw := json.RawMessage(`{"text":"hello"}`)
	enc, err = encodePacket(PacketEvent, 0, false, &event, []any{raw}, "offset-2")
	if err != nil {
		t.Fatal(err)
	}
	if d := enc.logData(); &d[0] != &enc.data()[0] {
		t.Fatal("a tightly sized packet was copied")
	}
}

// The in-memory log keeps each packet without its trailing offset and rebuilds it for a
// replay: what a recovered session gets is the packet as it was first sent, whichever
// way the entry was kept (one room, several, exceptions, attachments, a long text).
func TestRecoveryReplayRebuildsLoggedPackets(t *testing.T) {
	srv, _ := startServer(t, Options{Recovery: &RecoveryOptions{}}, nil)
	r := srv.rec
	long := string(bytes.Repeat([]byte("x"), 2*logChunkLimit))
	sends := []struct {
		rooms, except []string
		args          []any
	}{
		{[]string{"r"}, nil, []any{"one room"}},
		{nil, nil, []any{"everyone"}},
		{[]string{"r", "s"}, nil, []any{"two rooms", 2}},
		{nil, []string{"other"}, []any{"but other"}},
		{[]string{"r"}, nil, []any{[]byte{1, 2, 3}}},
		{[]string{"r"}, nil, []any{long}},
		{[]string{"r"}, nil, nil},
	}
	first := r.seq + 1
	var want [][]byte
	for i, s := range sends {
		if _, err := srv.EmitTo(s.rooms, s.except, "news", s.args...); err != nil {
			t.Fatal(err)
		}
		event := "news"
		enc, err := encodePacket(PacketEvent, 0, false, &event, s.args, r.prefix+strconv.FormatUint(first+uint64(i), 36))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, enc.data())
		for _, a := range enc.atts {
			want = append(want, a)
		}
	}
	r.mu.Lock()
	got, ok := r.missedLocked(&savedSession{id: "me", rooms: []string{"r"}, offset: first - 1})
	r.mu.Unlock()
	if !ok || len(got) != len(want) {
		t.Fatalf("replay ok=%v of %d messages, want %d", ok, len(got), len(want))
	}
	for i, m := range got {
		if !bytes.Equal(m.Data(), want[i]) {
			t.Errorf("replayed %q, want %q", m.Data(), want[i])
		}
	}
}
