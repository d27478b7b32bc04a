package httpapi

import (
	"strings"
	"testing"

	"github.com/rtserver/rtserver/core/internal/auth"
)

// The names an API caller chooses obey the socket side's rules: event and room names
// within the configured lengths, printable, non-blank, valid UTF-8; user ids as tokens'.
func TestNameAndUserIDRules(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.MaxEventNameLength, o.MaxRoomNameLength = 16, 24
		o.MaxBodyBytes = 256 << 10
	})
	ev16, ev17 := strings.Repeat("e", 16), strings.Repeat("e", 17)
	room24, room25 := strings.Repeat("r", 24), strings.Repeat("r", 25)
	uidMax, uidLong := strings.Repeat("u", auth.MaxUserIDLength), strings.Repeat("u", auth.MaxUserIDLength+1)
	note := func(uid string) string {
		return `{"userId":"` + uid + `","title":"t","message":"m","type":"info"}`
	}

	refused := []struct{ name, path, body string }{
		{"event over the limit", "/api/push", `{"userId":"alice","event":"` + ev17 + `"}`},
		{"event of 100 KB", "/api/broadcast", `{"event":"` + strings.Repeat("e", 100<<10) + `"}`},
		{"blank event", "/api/broadcast", `{"event":"   "}`},
		{"event with a newline", "/api/broadcast", `{"event":"a\nb"}`},
		{"event with NUL", "/api/room", `{"room":"lobby","event":"a\u0000b"}`},
		{"event with DEL", "/api/push", `{"userId":"alice","event":"a\u007f"}`},
		{"event not UTF-8", "/api/broadcast", "{\"event\":\"a\xffb\"}"},
		{"data not UTF-8", "/api/broadcast", "{\"event\":\"e\",\"data\":\"\xc3\"}"},
		{"reserved connect", "/api/broadcast", `{"event":"connect"}`},
		{"reserved connect_error", "/api/room", `{"room":"lobby","event":"connect_error"}`},
		{"reserved disconnecting", "/api/push", `{"userId":"alice","event":"disconnecting"}`},
		{"reserved newListener", "/api/broadcast", `{"event":"newListener"}`},
		{"reserved removeListener", "/api/broadcast", `{"event":"removeListener"}`},
		{"room over the limit", "/api/room", `{"room":"` + room25 + `","event":"e"}`},
		{"blank room", "/api/room", `{"room":" \t ","event":"e"}`},
		{"room with a control character", "/api/room", `{"room":"lob\u0085by","event":"e"}`},
		{"room not UTF-8", "/api/room", "{\"room\":\"\xfe\",\"event\":\"e\"}"},
		{"userId over the limit", "/api/push", `{"userId":"` + uidLong + `","event":"e"}`},
		{"blank userId", "/api/push", `{"userId":"  ","event":"e"}`},
		{"userId with a control character", "/api/push", `{"userId":"al\u0000ice","event":"e"}`},
		{"userId with a bidi override", "/api/push", `{"userId":"al\u202eice","event":"e"}`},
		{"userId not UTF-8", "/api/push", "{\"userId\":\"al\xffice\",\"event\":\"e\"}"},
		{"userId with U+FFFD", "/api/push", `{"userId":"al\ufffdice","event":"e"}`},
		{"notification userId over the limit", "/api/notification", note(uidLong)},
		{"notification userId with a tab", "/api/notification", note(`a\tb`)},
		{"notification blank userId", "/api/notification", note(" ")},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "POST", tc.path, key(secretAll), []byte(tc.body))
			wantError(t, r, 400, CodeInvalidRequest)
			if msg := r.body["error"].(string); len(msg) > 100 {
				t.Fatalf("message echoes the input: %q", msg)
			}
		})
	}
	if n := e.hub.count(); n != 0 {
		t.Fatalf("hub received %d emits from refused requests", n)
	}

	accepted := []struct{ path, body string }{
		{"/api/push", `{"userId":"alice","event":"` + ev16 + `"}`},
		{"/api/push", `{"userId":"` + uidMax + `","event":"e"}`},
		{"/api/push", `{"userId":"José Müller","event":"chat:message"}`},
		{"/api/broadcast", `{"event":"news","data":"ü \ufffd"}`},
		{"/api/room", `{"room":"` + room24 + `","event":"e"}`},
		{"/api/room", `{"room":"salle à manger","event":"e"}`},
		{"/api/notification", note("alice@example.com")},
	}
	for _, tc := range accepted {
		if r := e.do(t, "POST", tc.path, key(secretAll), []byte(tc.body)); r.status != 200 {
			t.Fatalf("%s %s: %d %s", tc.path, tc.body, r.status, r.raw)
		}
	}
}

// Without configured limits the API uses the socket side's defaults (128 bytes).
func TestNameLimitDefaults(t *testing.T) {
	e := newEnv(t)
	at := strings.Repeat("n", defaultMaxNameLength)
	over := at + "n"
	wantError(t, e.do(t, "POST", "/api/broadcast", key(secretAll), []byte(`{"event":"`+over+`"}`)), 400, CodeInvalidRequest)
	wantError(t, e.do(t, "POST", "/api/room", key(secretAll), []byte(`{"room":"`+over+`","event":"e"}`)), 400, CodeInvalidRequest)
	if r := e.do(t, "POST", "/api/room", key(secretAll), []byte(`{"room":"`+at+`","event":"`+at+`"}`)); r.status != 200 {
		t.Fatalf("names at the limit: %d %s", r.status, r.raw)
	}
}
