package socketio

import (
	"bytes"
	"encoding/json"
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
