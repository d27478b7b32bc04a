package admin

import (
	"encoding/json"
	"testing"

	"github.com/rtserver/rtserver/core/internal/socketio"
)

// TestPayloadSizes: the bytes counted for an event are its name and arguments as they go
// on the wire, plus the packet's overhead.
func TestPayloadSizes(t *testing.T) {
	in := socketio.Args{Raw: []json.RawMessage{json.RawMessage(`{"room":"lobby"}`), json.RawMessage(`1`)},
		Attachments: [][]byte{make([]byte, 10)}}
	if got, want := argsSize("room:join", in), len("room:join")+packetOverhead+len(`{"room":"lobby"}`)+1+1+1+10; got != want {
		t.Fatalf("argsSize %d, want %d", got, want)
	}
	out := []any{json.RawMessage(`[1,2]`), "ab", nil, map[string]int{"a": 1}, []byte{1, 2, 3}}
	want := len("ev") + packetOverhead + (5 + 1) + (4 + 1) + (4 + 1) + (len(`{"a":1}`) + 1) + (3 + 1)
	if got := valuesSize("ev", out); got != want {
		t.Fatalf("valuesSize %d, want %d", got, want)
	}
}

// TestIssuedShape: only ids shaped as the ones handed out are looked up in the cluster.
func TestIssuedShape(t *testing.T) {
	for id, ok := range map[string]bool{
		"0123456789abcdef0123456789abcdef":  true,
		"0123456789ABCDEF0123456789abcdef":  false,
		"0123456789abcdef0123456789abcde":   false,
		"0123456789abcdef0123456789abcdef0": false,
		"0123456789abcdef0123456789abcdeg":  false,
		"":                                  false,
	} {
		if issuedShape(id) != ok {
			t.Errorf("issuedShape(%q) != %v", id, ok)
		}
	}
}
