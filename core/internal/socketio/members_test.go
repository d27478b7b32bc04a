package socketio

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// memberKeys is what a routing handler asks of its event's first argument.
var memberKeys = map[string][]string{"client:event": {"type", "content", "action"}}

// The members picked up while the packet is validated are those that decoding the first
// argument into a map would give: same matching after unescaping, last duplicate wins.
func TestEventMembers(t *testing.T) {
	tests := []struct {
		frame  string
		object bool
		want   [3]string // "" for absent
	}{
		{`2["client:event",{"type":"a","content":{"x":[1]}}]`, true, [3]string{`"a"`, `{"x":[1]}`, ""}},
		{`2["client:event",{"type":"a","type":"b"}]`, true, [3]string{`"b"`, "", ""}},
		{`2["client:event",{"\u0074ype":"esc"}]`, true, [3]string{`"esc"`, "", ""}},
		{`2["client:event",{"TYPE":"a","nested":{"type":"no"}}]`, true, [3]string{"", "", ""}},
		{`2["client:event", { "action" : null } ,{"type":"second arg"}]`, true, [3]string{"", "", "null"}},
		{`2["client:event",[{"type":"a"}]]`, false, [3]string{"", "", ""}},
		{`2["client:event","type"]`, false, [3]string{"", "", ""}},
		{`21["client:event",{}]`, true, [3]string{"", "", ""}},
	}
	for _, tt := range tests {
		p, err := decodePacket([]byte(tt.frame), memberKeys)
		if err != nil {
			t.Fatalf("%s: %v", tt.frame, err)
		}
		m := p.Members
		if !m.Scanned || m.Object != tt.object {
			t.Fatalf("%s: scanned %v object %v", tt.frame, m.Scanned, m.Object)
		}
		for k, want := range tt.want {
			if string(m.Values[k]) != want {
				t.Errorf("%s: member %d = %q, want %q", tt.frame, k, m.Values[k], want)
			}
		}
	}
	// Events not named, and events without arguments, are not scanned.
	for _, frame := range []string{`2["other",{"type":"a"}]`, `2["client:event"]`} {
		p, err := decodePacket([]byte(frame), memberKeys)
		if err != nil {
			t.Fatal(err)
		}
		if m := p.Members; m.Scanned || m.Object || m.Values[0] != nil {
			t.Errorf("%s: members %+v", frame, p.Members)
		}
	}
}

// The errors are those of the pass without members: a bad name is told only for an
// array that is valid JSON, as before.
func TestEventMembersErrors(t *testing.T) {
	for frame, want := range map[string]string{
		`2["client:event",{"type":}]`:   "invalid EVENT payload",
		`2["connect",{"type":"a"}]`:     "invalid event name",
		`2[{"type":"a"},{"type":"a"}]`:  "invalid event name",
		`2[true,{"type":"a"}`:           "invalid EVENT payload",
		`2["client:event",{"type":"a"}`: "invalid EVENT payload",
	} {
		_, err := decodePacket([]byte(frame), memberKeys)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("%s: error %v, want %q", frame, err, want)
		}
	}
}

// FuzzEventMembers checks the combined pass (validation, depth, members of the first
// argument) against encoding/json on the same argument.
func FuzzEventMembers(f *testing.F) {
	for _, s := range []string{`{"type":"a","content":1}`, `{"type":"a","type":"b"}`, `{"\u0074ype":1}`,
		`{"a":{"type":2}}`, `[1]`, `"x"`, `{"type":}`, `{"action":"x",}`, `{}`} {
		f.Add([]byte(s))
	}
	keys := memberKeys["client:event"]
	f.Fuzz(func(t *testing.T, arg []byte) {
		frame := append([]byte(`2["client:event",`), arg...)
		frame = append(frame, ']')
		p, err := decodePacket(frame, memberKeys)
		valid := json.Valid(arg) && len(bytes.TrimSpace(arg)) > 0
		if (err == nil) != valid {
			// A comma inside arg can make it two valid arguments; the array decides.
			var all []json.RawMessage
			if (err == nil) != (json.Unmarshal(frame[1:], &all) == nil) {
				t.Fatalf("%s: err %v, json valid %v", frame, err, valid)
			}
			return
		}
		if err != nil {
			return
		}
		first := p.Args[0]
		if p.Depth != nestingOfAll(p.Args) {
			t.Fatalf("%s: depth %d, want %d", frame, p.Depth, nestingOfAll(p.Args))
		}
		var ref map[string]json.RawMessage
		isObject := json.Unmarshal(first, &ref) == nil && bytes.TrimSpace(first)[0] == '{'
		if !p.Members.Scanned || p.Members.Object != isObject {
			t.Fatalf("%s: members %+v, object %v", frame, p.Members, isObject)
		}
		for k, key := range keys {
			want, ok := ref[key]
			if got := p.Members.Values[k]; ok != (got != nil) || !bytes.Equal(got, want) {
				t.Fatalf("%s: member %q = %q, want %q", frame, key, got, want)
			}
		}
	})
}

func nestingOfAll(args []json.RawMessage) int {
	d := 0
	for _, a := range args {
		d = max(d, nesting(a))
	}
	return d
}

// BenchmarkInboundRequest compares reading a client:* request's routing members in the
// pass that validates the packet with reading them in a second pass (wire.Members) over
// the first argument, as the hub did before.
func BenchmarkInboundRequest(b *testing.B) {
	frame := []byte(`2["client:event",{"type":"chat.message","content":{"text":"hello there","to":["a","b"],"meta":{"n":1,"tags":["x","y","z"]}},"data":{"k":"v"}}]`)
	keys := memberKeys["client:event"]
	b.Run("two-pass", func(b *testing.B) {
		b.ReportAllocs()
		var out [3]json.RawMessage
		for i := 0; i < b.N; i++ {
			p, err := decodePacket(frame, nil)
			if err != nil || !wire.Members(p.Args[0], keys, out[:]) || out[0] == nil {
				b.Fatal("decode")
			}
		}
	})
	b.Run("one-pass", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p, err := decodePacket(frame, memberKeys)
			if err != nil || !p.Members.Object || p.Members.Values[0] == nil {
				b.Fatal("decode")
			}
		}
	})
}
