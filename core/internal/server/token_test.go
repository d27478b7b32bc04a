package server

import (
	"encoding/json"
	"testing"
)

// onlyToken reads what encoding/json reads, or leaves the text to it.
func FuzzOnlyToken(f *testing.F) {
	for _, s := range []string{
		`{"token":"abc.def.ghi"}`, ` { "token" : "x" } `, `{"token":"x","pid":"y"}`, `{"Token":"x"}`,
		`{"token":"a\"b"}`, `{"token":"x"}x`, `{"token":"x"`, `{"token":7}`, "{\"token\":\"\xff\"}",
		"\u00a0{\"token\":\"x\"}", `{"token":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		tok, ok := onlyToken(raw)
		if !ok {
			return
		}
		var p authPayload
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("onlyToken(%q) = %q, encoding/json refuses the text: %v", raw, tok, err)
		}
		if p.Token == nil || *p.Token != tok || p.PID != "" || p.Attempt != 0 || p.Delay != 0 {
			t.Fatalf("onlyToken(%q) = %q, encoding/json reads %+v", raw, tok, p)
		}
	})
}
