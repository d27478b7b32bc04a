package socketio

import (
	"encoding/json"
	"testing"
)

// mayNamePID says false only where encoding/json finds no pid.
func FuzzMayNamePID(f *testing.F) {
	for _, s := range []string{
		`{"token":"x"}`, `{"pid":"a","offset":"b"}`, `{"PID":"a"}`, `{"pId":"a"}`,
		`{"p\u0069d":"a"}`, `{"pıd":"a"}`, `{"token":"pid"}`, `{}`, `null`, `{"pi":"d"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, auth []byte) {
		if mayNamePID(auth) {
			return
		}
		var a struct {
			PID string `json:"pid"`
		}
		if json.Unmarshal(auth, &a) == nil && a.PID != "" {
			t.Fatalf("mayNamePID(%q) = false, encoding/json reads pid %q", auth, a.PID)
		}
	})
}

func TestMayNamePID(t *testing.T) {
	for s, want := range map[string]bool{
		`{"token":"x"}`: false, `{"attempt":2,"delay":300}`: false, `{"pid":"a"}`: true,
		`{"PID":"a"}`: true, `{"p\u0069d":"a"}`: true, `{"pıd":"a"}`: true, `{"x":"Pid"}`: true,
	} {
		if got := mayNamePID([]byte(s)); got != want {
			t.Errorf("mayNamePID(%s) = %v, want %v", s, got, want)
		}
	}
}
