package wire

import (
	"bytes"
	"encoding/json"
	"testing"
)

var keys = []string{"type", "data", "é"}

// viaMap is what Members stands in for: decoding into a map.
func viaMap(raw []byte) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return nil, false
	}
	return m, true
}

func check(t *testing.T, raw []byte) {
	if !json.Valid(raw) {
		return // Members relies on valid JSON
	}
	var out [3]json.RawMessage
	ok := Members(raw, keys, out[:])
	m, mok := viaMap(raw)
	if ok != mok {
		t.Fatalf("%q: Members ok=%v, map decoding ok=%v", raw, ok, mok)
	}
	if !ok {
		return
	}
	for i, k := range keys {
		want, present := m[k]
		if present != (out[i] != nil) || present && !bytes.Equal(bytes.TrimSpace(want), out[i]) {
			t.Fatalf("%q: %s = %q (present %v), map has %q (present %v)", raw, k, out[i], out[i] != nil, want, present)
		}
	}
}

func TestMembers(t *testing.T) {
	for _, s := range []string{
		`{}`, ` { } `, `{"type":"a","data":{"x":[1,2,{"y":"}"}]}}`, `{"data":null,"type":"b"}`,
		`{"type":"a","type":"b"}`, `{"ty\u0070e":"esc"}`, `{"\u00e9":1}`, `{"TYPE":"case"}`,
		`{"a":"\"}","type":"after a tricky string"}`, `[1,2]`, `"str"`, `12`, `null`,
		`{"data":-1.5e3,"type":true}`, "{\n\"type\"\t:\r\"ws\"\n}",
	} {
		check(t, []byte(s))
	}
}

func TestString(t *testing.T) {
	for _, s := range []string{`"plain"`, `"with \"escape\""`, `"\u00e9t\u00e9"`, "\"bad utf8 \xff\"", `""`, `12`, `null`, `"`} {
		got, ok := String(json.RawMessage(s))
		var want string
		wok := len(s) > 0 && s[0] == '"' && json.Unmarshal([]byte(s), &want) == nil
		if ok != wok || got != want {
			t.Errorf("String(%q) = %q %v, json.Unmarshal gives %q %v", s, got, ok, want, wok)
		}
	}
}

func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{"type":"a","data":{"b":[1,"]"]}}`, `{"\u0074ype":1}`, `[]`, `{"a":{}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		check(t, raw)
		var out [3]json.RawMessage
		ok := Members(raw, keys, out[:])
		for i := range keys {
			if out[i] != nil && len(out[i]) == 0 {
				t.Fatalf("%q: %s present but empty", raw, keys[i])
			}
		}
		if ok && out[0] != nil && json.Valid(raw) {
			got, ok := String(out[0])
			var want string
			wok := out[0][0] == '"' && json.Unmarshal(out[0], &want) == nil
			if ok != wok || got != want {
				t.Fatalf("String(%q) = %q %v, want %q %v", out[0], got, ok, want, wok)
			}
		}
	})
}
