package cluster

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func TestJSONRooms(t *testing.T) {
	got, err := jsonRooms(json.RawMessage(`["a", 1, 2.5, null, {}]`))
	if err != nil || !slices.Equal(got, []string{"a", "1", "2.5"}) {
		t.Fatalf("%q %v", got, err)
	}
	if got, err := jsonRooms(nil); err != nil || got != nil {
		t.Fatalf("absent: %q %v", got, err)
	}
	if _, err := jsonRooms(json.RawMessage(`"a"`)); err == nil {
		t.Fatal("a string is not a list")
	}
	many := "[" + strings.Repeat(`"r",`, maxRequestRooms) + `"r"]`
	if _, err := jsonRooms(json.RawMessage(many)); err == nil {
		t.Fatal("too many rooms accepted")
	}
	if got, err := jsonRoomOrRooms(json.RawMessage(`"one"`)); err != nil || !slices.Equal(got, []string{"one"}) {
		t.Fatalf("one room: %q %v", got, err)
	}
	if got, err := jsonRoomOrRooms(json.RawMessage(` ["a","b"]`)); err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("list: %q %v", got, err)
	}
	if string(roomValue([]string{"a"})) != `"a"` || string(roomValue([]string{"a", "b"})) != `["a","b"]` {
		t.Fatal("roomValue")
	}
}

// TestCountedBroadcastRoundTrip: the count option travels beside rooms, except and flags,
// and a broadcast without it has the adapter's three options only.
func TestCountedBroadcastRoundTrip(t *testing.T) {
	msg, err := encodeBroadcast("me", []string{"r"}, nil, "ev", json.RawMessage(`1`), "c1", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeBroadcast(msg)
	if err != nil || b.countID != "c1" || b.event != "ev" || !slices.Equal(b.rooms, []string{"r"}) {
		t.Fatalf("%+v %v", b, err)
	}
	var parts []any
	plain, _ := encodeBroadcast("me", nil, nil, "ev", json.RawMessage(`1`), "", false)
	if err := msgpack.Unmarshal(plain, &parts); err != nil {
		t.Fatal(err)
	}
	if opts := parts[2].(map[string]any); len(opts) != 3 {
		t.Fatalf("plain broadcast options %v", opts)
	}
}

// TestBroadcastRequest: a Node.js emitWithAck request (MessagePack) is read with its
// timeout; another namespace or type is ignored.
func TestBroadcastRequest(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r, err := decodeBroadcastRequest(enc(map[string]any{
		"uid": "n1", "requestId": "q1", "type": 7,
		"packet": map[string]any{"type": 2, "data": []any{"ask", 1}, "nsp": "/"},
		"opts":   map[string]any{"rooms": []any{"a"}, "except": []any{}, "flags": map[string]any{"timeout": 1500}},
	}))
	if err != nil || r.event != "ask" || r.timeout != 1500*time.Millisecond || !slices.Equal(r.rooms, []string{"a"}) {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := decodeBroadcastRequest(enc(map[string]any{"requestId": "q1", "type": 7,
		"packet": map[string]any{"type": 2, "data": []any{"ask"}, "nsp": "/admin"}})); err == nil {
		t.Fatal("another namespace accepted")
	}
	if _, err := decodeBroadcastRequest([]byte{0xc1}); err == nil {
		t.Fatal("garbage accepted")
	}
	ack, err := encodeAckResponse("q1", json.RawMessage(`{"ok":true}`))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(ack, &m); err != nil || m["requestId"] != "q1" || m["packet"].(map[string]any)["ok"] != true {
		t.Fatalf("%v %v", m, err)
	}
}
