package hub

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// viaMap is what the request path did before scanRequest: decode into a map.
func viaMap(raw []byte) (map[string]json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if !isObject(raw) || json.Unmarshal(raw, &obj) != nil {
		return nil, false
	}
	return obj, true
}

var requestSamples = []string{
	``, `null`, `42`, `"type"`, `[1,2]`, `{}`, ` { } `, `{"type":"x"}`,
	`{"type":"x","data":{"a":[1,{"b":"}"}],"c":"\"{"}}`,
	`{"TYPE":"x"}`, `{"Type":"x","type":"y"}`, `{"type":"a","type":"b"}`,
	`{"t\u0079pe":"esc"}`, `{"type":"a\"b"}`, `{"type":"\u00e9t\u00e9"}`,
	`{"type":" "}`, `{"type":""}`, `{"type":null}`, `{"type":1}`, `{"type":true}`,
	`{"type":{"x":1}}`, `{"type":["x"]}`, `{"content":"hi","type":null}`,
	`{"content":"hi"}`, `{"content":5,"type":"t"}`, `{"action":"go","params":{}}`,
	`{"action" : "go" , "params" : [ ] }`, "{\n\t\"type\":\r\n\"x\"\n}",
	`{"a":-1.5e3,"type":"n","b":false,"c":null}`, `{"type":"x\/y"}`,
	"{\"type\":\"caf\xc3\xa9\"}", `{"type":"emoji \ud83d\ude00"}`,
}

// TestScanRequestMatchesMap: for every sample, the routing members and the accept/refuse
// decision are exactly what decoding into a map gave.
func TestScanRequestMatchesMap(t *testing.T) {
	for _, s := range requestSamples {
		raw := []byte(s)
		obj, okMap := viaMap(raw)
		f, ok := scanRequest(raw)
		if ok != okMap {
			t.Errorf("%q: scan ok=%v, map ok=%v", s, ok, okMap)
			continue
		}
		if !ok {
			continue
		}
		for key, got := range map[string]json.RawMessage{"type": f.typ, "content": f.content, "action": f.action} {
			if want := obj[key]; !bytes.Equal(got, want) {
				t.Errorf("%q: %s = %q, map has %q", s, key, got, want)
			}
		}
		for kind, spec := range kinds {
			old := oldName(kind, obj)
			name, nameOK := spec.name(f)
			if name != old.name || nameOK != old.ok {
				t.Errorf("%q kind %v: name %q %v, before %q %v", s, kind, name, nameOK, old.name, old.ok)
			}
		}
	}
}

type nameResult struct {
	name string
	ok   bool
}

// oldName is the routing-name extraction before scanRequest, on the decoded map.
func oldName(kind interface{ String() string }, o map[string]json.RawMessage) nameResult {
	var n string
	var ok bool
	switch kind.String() {
	case "event":
		n, ok = requiredString(o, "type")
	case "message":
		if _, ok = requiredString(o, "content"); !ok {
			return nameResult{}
		}
		t, has := o["type"]
		if !has || string(t) == "null" {
			return nameResult{"", true}
		}
		n, ok = stringValue(t)
	case "action":
		n, ok = requiredString(o, "action")
	}
	return nameResult{n, ok}
}

func FuzzScanRequest(f *testing.F) {
	for _, s := range requestSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw := []byte(s)
		if !json.Valid(raw) {
			return // socketio hands handlers valid JSON only
		}
		obj, okMap := viaMap(raw)
		fields, ok := scanRequest(raw)
		if ok != okMap {
			t.Fatalf("%q: scan ok=%v, map ok=%v", s, ok, okMap)
		}
		if !ok {
			return
		}
		if !bytes.Equal(fields.typ, obj["type"]) || !bytes.Equal(fields.content, obj["content"]) || !bytes.Equal(fields.action, obj["action"]) {
			t.Fatalf("%q: fields differ from the map", s)
		}
		if v, ok := wire.String(fields.typ); fields.typ != nil {
			w, wok := stringValue(fields.typ)
			if v != w || ok != wok {
				t.Fatalf("%q: wire.String %q %v, stringValue %q %v", s, v, ok, w, wok)
			}
		}
	})
}

// TestAppendResponseMatchesMarshal: the appended success response is byte for byte what
// json.Marshal made of it, for plugin data as the SDK's json.Marshal produces it.
func TestAppendResponseMatchesMarshal(t *testing.T) {
	data := []json.RawMessage{nil, json.RawMessage(`{}`), json.RawMessage(`null`), json.RawMessage(`{"a":[1,"\u003cb\u003e"],"s":"é"}`), json.RawMessage(`"x"`), json.RawMessage(`[1,2]`)}
	for _, d := range data {
		for _, r := range []response{
			{Success: true, RequestID: "abc123-1", Data: d},
			{Success: true, RequestID: "abc123-2", MessageID: "abc123-3"},
			{Success: true, RequestID: "abc123-4", Result: d},
		} {
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendResponse(nil, &r); !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		}
	}
}

func BenchmarkRequestDecode(b *testing.B) {
	raw := []byte(`{"type":"bench","data":{"n":1,"text":"hello world"}}`)
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, _ := scanRequest(raw)
			_, _ = requiredField(f.typ)
		}
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			o, _ := viaMap(raw)
			_, _ = requiredString(o, "type")
		}
	})
}

func BenchmarkResponseEncode(b *testing.B) {
	r := response{Success: true, RequestID: "0123456789ab-1z", Data: json.RawMessage(`{"echo":{"type":"bench"},"n":1}`)}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = appendResponse(make([]byte, 0, 64+len(r.Data)), &r)
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(r)
		}
	})
}

// requiredString is the map-based decoding scanRequest replaced, kept as the oracle.
func requiredString(obj map[string]json.RawMessage, key string) (string, bool) {
	raw, ok := obj[key]
	if !ok {
		return "", false
	}
	v, ok := stringValue(raw)
	if !ok || isBlank(v) {
		return "", false
	}
	return v, true
}

// stringValue decodes a JSON string with encoding/json: the oracle for wire.String.
func stringValue(raw json.RawMessage) (string, bool) {
	var v string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, true
}
