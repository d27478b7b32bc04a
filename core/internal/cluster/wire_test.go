package cluster

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"
)

// TestBroadcastLayout: a broadcast is the MessagePack encoding of
// [uid, {type: 2, data: [event, arg], nsp: "/"}, {rooms, except, flags: {}}], as
// @socket.io/redis-adapter publishes it. The expected bytes are written out by hand from
// that shape and the MessagePack format.
func TestBroadcastLayout(t *testing.T) {
	got, err := encodeBroadcast("abc", []string{"r1"}, []string{"x"}, "news",
		json.RawMessage(`{"n":1,"f":1.5,"big":300,"neg":-1,"ok":true,"s":"é","l":[null],"e":1e3}`), "", false)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	add := func(h string) {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		want.Write(b)
	}
	add("93")                             // array of 3
	add("a3616263")                       // "abc": the node's uid
	add("83")                             // the packet, a map of 3
	add("a474797065" + "02")              // type: 2 (EVENT)
	add("a464617461" + "92")              // data: an array of 2
	add("a46e657773")                     // "news"
	add("88")                             // the argument: a map of 8, keys sorted
	add("a3626967" + "cd012c")            // big: 300 (uint 16)
	add("a165" + "cd03e8")                // e: 1e3 is the integer 1000
	add("a166" + "cb3ff8000000000000")    // f: 1.5 (float 64)
	add("a16c" + "91c0")                  // l: [null]
	add("a16e" + "01")                    // n: 1 (positive fixint)
	add("a36e6567" + "ff")                // neg: -1 (negative fixint)
	add("a26f6b" + "c3")                  // ok: true
	add("a173" + "a2c3a9")                // s: "é" (2 bytes of UTF-8)
	add("a36e7370" + "a12f")              // nsp: "/"
	add("83")                             // the options, a map of 3
	add("a5726f6f6d73" + "91" + "a27231") // rooms: ["r1"]
	add("a6657863657074" + "91" + "a178") // except: ["x"]
	add("a5666c616773" + "80")            // flags: {}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("encoding\n got %x\nwant %x", got, want.Bytes())
	}
}

func TestBroadcastChannel(t *testing.T) {
	for _, tc := range []struct {
		rooms []string
		want  string
	}{
		{nil, "socket.io#/#"},
		{[]string{"r"}, "socket.io#/#r#"},
		{[]string{"a", "b"}, "socket.io#/#"},
	} {
		if got := broadcastChannel("socket.io", tc.rooms); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.rooms, got, tc.want)
		}
	}
}

// TestDecodeBroadcast reads what a Node node or the emitter sends: several arguments, a
// buffer, an omitted nsp; and ignores other namespaces and non-events.
func TestDecodeBroadcast(t *testing.T) {
	var msg bytes.Buffer
	add := func(h string) {
		b, _ := hex.DecodeString(h)
		msg.Write(b)
	}
	add("93" + "a7656d6974746572")                          // ["emitter",
	add("82" + "a474797065" + "02")                         // {type: 2,
	add("a464617461" + "93" + "a26576" + "07" + "c40201ff") // data: ["ev", 7, <buffer 01 ff>]},
	add("83" + "a5726f6f6d73" + "92" + "a161" + "a162")     // {rooms: ["a", "b"],
	add("a5666c616773" + "80")                              // flags: {},
	add("a6657863657074" + "90")                            // except: []}]
	b, err := decodeBroadcast(msg.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if b.uid != "emitter" || b.event != "ev" || !reflect.DeepEqual(b.rooms, []string{"a", "b"}) || b.except != nil {
		t.Fatalf("decoded %+v", b)
	}
	if len(b.args) != 2 || !reflect.DeepEqual(b.args[1], []byte{1, 0xff}) {
		t.Fatalf("args %#v", b.args)
	}
	if n, ok := toInt(b.args[0]); !ok || n != 7 {
		t.Fatalf("first arg %#v", b.args[0])
	}

	// Round trip of our own encoding.
	own, err := encodeBroadcast("me", nil, []string{"s1"}, "hello", json.RawMessage(`"x"`), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = decodeBroadcast(own); err != nil || b.uid != "me" || b.event != "hello" ||
		b.rooms != nil || !reflect.DeepEqual(b.except, []string{"s1"}) || !reflect.DeepEqual(b.args, []any{"x"}) {
		t.Fatalf("round trip %+v, %v", b, err)
	}

	// Another namespace: nothing to deliver.
	msg.Reset()
	add("93" + "a7656d6974746572" + "83" + "a474797065" + "02" + "a464617461" + "91" + "a26576" + "a36e7370" + "a42f616263" + "80")
	if _, err := decodeBroadcast(msg.Bytes()); err != errIgnored {
		t.Fatalf("namespace /abc: %v", err)
	}
	if _, err := decodeBroadcast([]byte{0xc1}); err == nil || err == errIgnored {
		t.Fatalf("garbage: %v", err)
	}
}
