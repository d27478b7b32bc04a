package socketio

import (
	"fmt"
	"testing"
	"unsafe"
)

func TestEventNameInterned(t *testing.T) {
	var tbl nameTable
	tbl.addKeys(map[string]EventHandler{"ping": nil, `a\nb`: nil, "connect": nil})
	names := tbl.load()
	tests := []struct {
		frame    string
		want     string
		interned bool
		bad      bool
	}{
		{`2["ping",1]`, "ping", true, false},
		{`2[ "ping" ]`, "ping", true, false},
		{`2["pin\u0067"]`, "ping", false, false},
		{`2["other"]`, "other", false, false},
		// The literal's bytes equal a registered name, but its text is a, newline, b.
		{`2["a\nb"]`, "a\nb", false, false},
		{`2["connect"]`, "", false, true}, // reserved, even when registered
	}
	for _, tt := range tests {
		p, err := decodePacketNames([]byte(tt.frame), nil, names)
		if tt.bad {
			if err == nil {
				t.Errorf("%s: accepted", tt.frame)
			}
			continue
		}
		if err != nil || p.Event != tt.want {
			t.Errorf("%s: event %q err %v, want %q", tt.frame, p.Event, err, tt.want)
			continue
		}
		reg, ok := names[tt.want]
		same := ok && unsafe.StringData(reg) == unsafe.StringData(p.Event)
		if same != tt.interned {
			t.Errorf("%s: interned %v, want %v", tt.frame, same, tt.interned)
		}
	}
}

func TestNameTableBounded(t *testing.T) {
	var tbl nameTable
	for i := range maxInternedNames + 10 {
		tbl.add(fmt.Sprint("ev", i))
	}
	tbl.addKeys(map[string]EventHandler{"late": nil})
	if n := len(tbl.load()); n != maxInternedNames {
		t.Fatalf("%d names, want %d", n, maxInternedNames)
	}
	if p, err := decodePacketNames([]byte(`2["late"]`), nil, tbl.load()); err != nil || p.Event != "late" {
		t.Fatalf("event %q err %v", p.Event, err)
	}
}
