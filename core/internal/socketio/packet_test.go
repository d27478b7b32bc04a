package socketio

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		in    string
		want  Packet
		args  []string
		isErr bool
	}{
		{in: "0", want: Packet{Type: PacketConnect, Namespace: "/"}},
		{in: `0{"token":"123"}`, want: Packet{Type: PacketConnect, Namespace: "/", Data: []byte(`{"token":"123"}`)}},
		{in: "0/admin,", want: Packet{Type: PacketConnect, Namespace: "/admin"}},
		{in: "0/random", want: Packet{Type: PacketConnect, Namespace: "/random"}},
		{in: `0/admin,{"a":1}`, want: Packet{Type: PacketConnect, Namespace: "/admin", Data: []byte(`{"a":1}`)}},
		{in: "1", want: Packet{Type: PacketDisconnect, Namespace: "/"}},
		{in: "1/admin,", want: Packet{Type: PacketDisconnect, Namespace: "/admin"}},
		{in: `2["foo"]`, want: Packet{Type: PacketEvent, Namespace: "/", Data: []byte(`["foo"]`), Event: "foo"}, args: []string{}},
		{in: `2/admin,["bar",1,{"a":[true]}]`, want: Packet{Type: PacketEvent, Namespace: "/admin", Data: []byte(`["bar",1,{"a":[true]}]`), Event: "bar"}, args: []string{"1", `{"a":[true]}`}},
		{in: `212["foo"]`, want: Packet{Type: PacketEvent, Namespace: "/", ID: 12, HasID: true, Data: []byte(`["foo"]`), Event: "foo"}, args: []string{}},
		{in: `2/admin,13["foo"]`, want: Packet{Type: PacketEvent, Namespace: "/admin", ID: 13, HasID: true, Data: []byte(`["foo"]`), Event: "foo"}, args: []string{}},
		{in: `312[]`, want: Packet{Type: PacketAck, Namespace: "/", ID: 12, HasID: true, Data: []byte(`[]`)}},
		{in: `3/admin,13["bar"]`, want: Packet{Type: PacketAck, Namespace: "/admin", ID: 13, HasID: true, Data: []byte(`["bar"]`)}, args: []string{`"bar"`}},
		{in: `4{"message":"Not authorized"}`, want: Packet{Type: PacketConnectError, Namespace: "/", Data: []byte(`{"message":"Not authorized"}`)}},
		{in: `51-["baz",{"_placeholder":true,"num":0}]`, want: Packet{Type: PacketBinaryEvent, Namespace: "/", Attachments: 1, Data: []byte(`["baz",{"_placeholder":true,"num":0}]`), Event: "baz"}, args: []string{`{"_placeholder":true,"num":0}`}},
		{in: `52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, want: Packet{Type: PacketBinaryEvent, Namespace: "/admin", Attachments: 2, Data: []byte(`["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), Event: "baz"}, args: []string{`{"_placeholder":true,"num":0}`, `{"_placeholder":true,"num":1}`}},
		{in: `51-14["foo",{"_placeholder":true,"num":0}]`, want: Packet{Type: PacketBinaryEvent, Namespace: "/", Attachments: 1, ID: 14, HasID: true, Data: []byte(`["foo",{"_placeholder":true,"num":0}]`), Event: "foo"}, args: []string{`{"_placeholder":true,"num":0}`}},
		{in: `61-15["bar",{"_placeholder":true,"num":0}]`, want: Packet{Type: PacketBinaryAck, Namespace: "/", Attachments: 1, ID: 15, HasID: true, Data: []byte(`["bar",{"_placeholder":true,"num":0}]`)}, args: []string{`"bar"`, `{"_placeholder":true,"num":0}`}},
		{in: `2[ "sp" , 1 ]`, want: Packet{Type: PacketEvent, Namespace: "/", Data: []byte(`[ "sp" , 1 ]`), Event: "sp"}, args: []string{"1"}},
		{in: `2["\u00e9\n"]`, want: Packet{Type: PacketEvent, Namespace: "/", Data: []byte(`["\u00e9\n"]`), Event: "é\n"}, args: []string{}},
		// malformed
		{in: "", isErr: true},
		{in: "7", isErr: true},
		{in: "abc", isErr: true},
		{in: "2", isErr: true},
		{in: "2[]", isErr: true},
		// A number is an event name too (the reference parser takes it); reserved names
		// are refused, as it does.
		{in: "2[1]", want: Packet{Type: PacketEvent, Namespace: "/", Data: []byte(`[1]`), Event: "1"}, args: []string{}},
		{in: `2[2.5,"x"]`, want: Packet{Type: PacketEvent, Namespace: "/", Data: []byte(`[2.5,"x"]`), Event: "2.5"}, args: []string{`"x"`}},
		{in: `2[-0]`, want: Packet{Type: PacketEvent, Namespace: "/", Data: []byte(`[-0]`), Event: "0"}, args: []string{}},
		{in: `2[1e400]`, isErr: true},
		{in: `2[true]`, isErr: true},
		{in: `2[null]`, isErr: true},
		{in: `2[["a"]]`, isErr: true},
		{in: `2["connect"]`, isErr: true},
		{in: `2["connect_error",1]`, isErr: true},
		{in: `2["disconnect"]`, isErr: true},
		{in: `2/admin,["disconnecting"]`, isErr: true},
		{in: `2["newListener"]`, isErr: true},
		{in: `51-["removeListener",{"_placeholder":true,"num":0}]`, isErr: true},
		{in: `2{"a":1}`, isErr: true},
		{in: `2["a"`, isErr: true},
		{in: `2["a"]x`, isErr: true},
		{in: `3[]`, isErr: true},
		{in: `312{}`, isErr: true},
		{in: `0"str"`, isErr: true},
		{in: `0[]`, isErr: true},
		{in: `01`, isErr: true},
		{in: `1{}`, isErr: true},
		{in: `5["a"]`, isErr: true},
		{in: `5-["a"]`, isErr: true},
		{in: `59999-["a"]`, isErr: true},
		{in: `2999999999999999999999["a"]`, isErr: true},
		{in: `2["a\x01"]`, isErr: true},
		{in: `2["a\q"]`, isErr: true},
		{in: `2["a",01]`, isErr: true},
		{in: `2["a",-]`, isErr: true},
		{in: `2["a",1.]`, isErr: true},
		{in: `2["a",tru]`, isErr: true},
		{in: `2["a",]`, isErr: true},
		{in: `4{bad`, isErr: true},
	}
	for _, tt := range tests {
		got, err := DecodePacket([]byte(tt.in))
		if tt.isErr {
			if err == nil || !errors.Is(err, ErrParse) {
				t.Errorf("DecodePacket(%q) error = %v, want ErrParse", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("DecodePacket(%q) error: %v", tt.in, err)
			continue
		}
		var args []string
		if got.Args != nil {
			args = []string{}
			for _, a := range got.Args {
				args = append(args, string(a))
			}
		}
		got.Args, got.Depth = nil, 0 // Depth: TestEventDepth
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DecodePacket(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if (tt.args != nil || args != nil) && !reflect.DeepEqual(args, tt.args) {
			if !(len(args) == 0 && len(tt.args) == 0) {
				t.Errorf("DecodePacket(%q) args = %q, want %q", tt.in, args, tt.args)
			}
		}
	}
}

type jsonMarshalerArg struct {
	A int    `json:"a"`
	B string `json:"b"`
}

func TestEncodePacket(t *testing.T) {
	ev := "ev"
	tests := []struct {
		name   string
		typ    PacketType
		id     uint64
		hasID  bool
		event  *string
		args   []any
		offset string
		want   string
		atts   [][]byte
	}{
		{name: "plain", typ: PacketEvent, event: &ev, args: []any{"x", 1, true, nil}, want: `2["ev","x",1,true,null]`},
		{name: "noargs", typ: PacketEvent, event: &ev, want: `2["ev"]`},
		{name: "ackid", typ: PacketEvent, id: 7, hasID: true, event: &ev, args: []any{json.RawMessage(`{"a":1}`)}, want: `27["ev",{"a":1}]`},
		{name: "ack empty", typ: PacketAck, id: 12, hasID: true, want: `312[]`},
		{name: "ack data", typ: PacketAck, id: 3, hasID: true, args: []any{"bar"}, want: `33["bar"]`},
		{name: "struct", typ: PacketEvent, event: &ev, args: []any{jsonMarshalerArg{1, "<"}}, want: `2["ev",{"a":1,"b":"\u003c"}]`},
		{name: "float", typ: PacketEvent, event: &ev, args: []any{1.5, int64(-3), uint(4)}, want: `2["ev",1.5,-3,4]`},
		{name: "offset", typ: PacketEvent, event: &ev, args: []any{"x"}, offset: "o-1", want: `2["ev","x","o-1"]`},
		{name: "escape", typ: PacketEvent, event: &ev, args: []any{"a\"b\\c\n\x01\u2028é\xff"}, want: `2["ev","a\"b\\c\n\u0001\u2028é\ufffd"]`},
		{name: "binary", typ: PacketEvent, event: &ev, args: []any{[]byte{1, 2}, "s"}, want: `51-["ev",{"_placeholder":true,"num":0},"s"]`, atts: [][]byte{{1, 2}}},
		{name: "binary nested", typ: PacketEvent, event: &ev, args: []any{map[string]any{"f": []byte{3}}, []any{1, []byte{4}}}, want: `52-["ev",{"f":{"_placeholder":true,"num":0}},[1,{"_placeholder":true,"num":1}]]`, atts: [][]byte{{3}, {4}}},
		{name: "binary ack", typ: PacketAck, id: 15, hasID: true, args: []any{"bar", []byte{1, 2, 3, 4}}, want: `61-15["bar",{"_placeholder":true,"num":0}]`, atts: [][]byte{{1, 2, 3, 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := encodePacket(tt.typ, tt.id, tt.hasID, tt.event, tt.args, tt.offset)
			got, atts := enc.data(), enc.atts
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if !reflect.DeepEqual(atts, tt.atts) {
				t.Errorf("attachments %v, want %v", atts, tt.atts)
			}
			if _, err := DecodePacket(got); err != nil {
				t.Errorf("own encoding does not decode: %v", err)
			}
		})
	}
	if _, err := encodePacket(PacketEvent, 0, false, &ev, []any{json.RawMessage(`{bad`)}, ""); err == nil {
		t.Error("invalid RawMessage accepted")
	}
	if _, err := encodePacket(PacketEvent, 0, false, &ev, []any{make(chan int)}, ""); err == nil {
		t.Error("unencodable argument accepted")
	}
}

func TestEncodeConnect(t *testing.T) {
	if got := string(encodeConnect("abc", "")); got != `0{"sid":"abc"}` {
		t.Errorf("got %s", got)
	}
	if got := string(encodeConnect("abc", "p")); got != `0{"sid":"abc","pid":"p"}` {
		t.Errorf("got %s", got)
	}
	b, _ := encodeConnectError("/random", "Invalid namespace", nil)
	if string(b) != `4/random,{"message":"Invalid namespace"}` {
		t.Errorf("got %s", b)
	}
	b, _ = encodeConnectError("/", "nope", map[string]any{"code": "UNAUTHORIZED"})
	if string(b) != `4{"message":"nope","data":{"code":"UNAUTHORIZED"}}` {
		t.Errorf("got %s", b)
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\", "\x00\x1f\x7f", "é€😀", "\xff\xfe", "\u2028\u2029", "</script>&"} {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, got, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(ref, &want)
		if back != want {
			t.Errorf("round trip %q = %q", s, back)
		}
	}
}

func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{"0", `0{"token":"x"}`, "0/admin,", "1", `2["a",1]`, `212["a"]`, `312[]`,
		`51-["a",{"_placeholder":true,"num":0}]`, `61-15["b"]`, `4{"message":"m"}`, `2["\ud83d\ude00"]`, `2[1e5,-0.5,{"a":[null]}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePacket(b)
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error does not wrap ErrParse: %v", err)
			}
			return
		}
		if p.Type > PacketBinaryAck {
			t.Fatalf("bad type %d", p.Type)
		}
		for _, a := range p.Args {
			if !json.Valid(a) {
				t.Fatalf("arg %q is not valid JSON", a)
			}
		}
		if p.Type == PacketEvent || p.Type == PacketBinaryEvent {
			var arr []json.RawMessage
			if err := json.Unmarshal(p.Data, &arr); err != nil || len(arr) != len(p.Args)+1 {
				t.Fatalf("payload %q: %v", p.Data, err)
			}
			var name string
			var num float64
			if err := json.Unmarshal(arr[0], &name); err != nil {
				if json.Unmarshal(arr[0], &num) != nil {
					t.Fatalf("event %q: %s is neither a string nor a number", p.Event, arr[0])
				}
			} else if utf8.ValidString(name) && name != p.Event {
				t.Fatalf("event %q vs %q", p.Event, name)
			}
		}
		// Re-encode what was decoded: it must decode to the same arguments.
		if p.Type == PacketEvent {
			args := make([]any, len(p.Args))
			for i, a := range p.Args {
				args[i] = a
			}
			enc, err := encodePacket(PacketEvent, p.ID, p.HasID, &p.Event, args, "")
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			out := enc.data()
			q, err := DecodePacket(out)
			if err != nil || len(q.Args) != len(p.Args) {
				t.Fatalf("re-decode %q: %v", out, err)
			}
		}
	})
}

func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{`[]`, `[1,"a",{"b":[true,false,null]}]`, ` [ 1 ] `, `[1,]`, `["\u12"]`, `[-0.0e+1]`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sp, err := splitArray(b, false, nil)
		args, depth := sp.elems, sp.depth
		var ref []json.RawMessage
		refErr := json.Unmarshal(b, &ref)
		if refErr == nil && ref == nil {
			// encoding/json takes a top-level null as an empty slice; a packet's payload
			// must be an array, so splitArray refuses it.
			refErr = errors.New("null is not an array")
		}
		if (err == nil) != (refErr == nil) {
			t.Fatalf("splitArray(%q) err=%v, encoding/json err=%v", b, err, refErr)
		}
		if err == nil && len(args) != len(ref) {
			t.Fatalf("splitArray(%q) = %d elements, encoding/json %d", b, len(args), len(ref))
		}
		if err == nil {
			want := 0
			for _, a := range ref {
				want = max(want, nesting(a))
			}
			if depth != want {
				t.Fatalf("splitArray(%q) depth %d, want %d", b, depth, want)
			}
		}
		if validJSON(b) != json.Valid(b) {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, validJSON(b), json.Valid(b))
		}
	})
}

// nesting is the deepest nesting of objects and arrays in the valid JSON raw.
func nesting(raw []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case inString && c == '\\':
			i++
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

func TestEventDepth(t *testing.T) {
	for data, want := range map[string]int{
		`["e"]`:                          0,
		`["e",1,"[{"]`:                   0,
		`["e",{}]`:                       1,
		`["e",{"a":[1,{"b":[]}]},[[1]]]`: 4,
		`["e",1,[[[["x"]]]]]`:            4,
	} {
		p, err := DecodePacket([]byte("2" + data))
		if err != nil || p.Depth != want {
			t.Errorf("%s: depth %d (%v), want %d", data, p.Depth, err, want)
		}
	}
}

// TestReplyAllocations: a packet with raw JSON arguments, made ready to send, costs its
// buffer, the Message and the slice holding it. The buffer is sized from the arguments
// and the websocket frame is built in place, so nothing is grown or copied.
func TestReplyAllocations(t *testing.T) {
	ev := "server:response"
	args := []any{json.RawMessage(`{"success":true,"requestId":"00000000000abc","data":{"type":"bench","n":12345}}`)}
	n := testing.AllocsPerRun(500, func() {
		enc, err := encodePacket(PacketEvent, 0, false, &ev, args, "Xy12ab-1z3")
		if err != nil {
			panic(err)
		}
		if msgs := enc.messages(); len(msgs) != 1 {
			panic("attachments")
		}
	})
	if n > 3 {
		t.Fatalf("%v allocations per packet, want at most 3 (buffer, Message, slice)", n)
	}
}

func TestValidPlaceholders(t *testing.T) {
	tests := []struct {
		args string
		n    int
		ok   bool
	}{
		{`[{"_placeholder":true,"num":0}]`, 1, true},
		{`[{"a":[1,{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]`, 2, true},
		{`[{"_placeholder":false,"num":9}]`, 1, true}, // not a placeholder
		{`["_placeholder"]`, 1, true},
		{`[{"_placeholder":true,"num":7}]`, 1, false},
		{`[{"_placeholder":true,"num":1}]`, 1, false},
		{`[{"_placeholder":true,"num":-1}]`, 1, false},
		{`[{"_placeholder":true,"num":0.5}]`, 1, false},
		{`[{"_placeholder":true,"num":"0"}]`, 1, false},
		{`[{"_placeholder":true}]`, 1, false},
		{`[[[{"x":{"_placeholder":true,"num":3}}]]]`, 2, false},
	}
	for _, tt := range tests {
		sp, err := splitArray([]byte(tt.args), false, nil)
		args := sp.elems
		if err != nil {
			t.Fatal(err)
		}
		if got := validPlaceholders(args, tt.n); got != tt.ok {
			t.Errorf("validPlaceholders(%s, %d) = %v", tt.args, tt.n, got)
		}
	}
}

func TestEncodeNamespace(t *testing.T) {
	ev := "auth"
	enc, err := encodeNspPacket(PacketEvent, "/custom", 0, false, &ev, []any{json.RawMessage(`{}`)}, "")
	if err != nil || string(enc.data()) != `2/custom,["auth",{}]` {
		t.Errorf("event: %q %v", enc.data(), err)
	}
	enc, err = encodeNspPacket(PacketAck, "/custom", 7, true, nil, []any{[]byte{1}}, "")
	if err != nil || string(enc.data()) != `61-/custom,7[{"_placeholder":true,"num":0}]` {
		t.Errorf("binary ack: %q %v", enc.data(), err)
	}
	if got := string(withNamespace(encodeConnect("abc", ""), "/custom")); got != `0/custom,{"sid":"abc"}` {
		t.Errorf("connect reply %q", got)
	}
	if got := string(withNamespace([]byte("1"), "/")); got != "1" {
		t.Errorf("disconnect %q", got)
	}
}
