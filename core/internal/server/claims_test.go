package server_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/coded"
	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/httpapi"
)

// connectCode sends CONNECT with tok over a raw websocket and returns the connect_error
// code, or "" when the server accepted the connection.
func (e *env) connectCode(t *testing.T, tok string) string {
	t.Helper()
	auth, _ := json.Marshal(map[string]string{"token": tok})
	_, reply := e.rawAuth(t, string(auth))
	if strings.HasPrefix(reply, `40{"sid"`) {
		return ""
	}
	var ce struct {
		Message string `json:"message"`
		Data    struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"data"`
	}
	if !strings.HasPrefix(reply, "44") || json.Unmarshal([]byte(reply[2:]), &ce) != nil || ce.Data.Message == "" {
		t.Fatalf("connect reply %q", reply)
	}
	return ce.Data.Code
}

// Tokens whose userId or time claims break the rules are refused at CONNECT.
func TestTokenClaimRulesAtConnect(t *testing.T) {
	e := startServer(t, nil)
	now := time.Now().Unix()
	claims := func(extra map[string]any) map[string]any {
		c := map[string]any{"userId": "u", "iat": now, "exp": now + 600}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	cases := []struct {
		name   string
		claims map[string]any
		code   string
	}{
		{"userId at the limit", claims(map[string]any{"userId": strings.Repeat("u", auth.MaxUserIDLength)}), ""},
		{"userId with accents", claims(map[string]any{"userId": "José"}), ""},
		{"userId over the limit", claims(map[string]any{"userId": strings.Repeat("u", auth.MaxUserIDLength+1)}), coded.TokenInvalid},
		{"userId with a newline", claims(map[string]any{"userId": "u\nadmin"}), coded.TokenInvalid},
		{"userId with NUL", claims(map[string]any{"userId": "u\x00"}), coded.TokenInvalid},
		{"userId with a bidi override", claims(map[string]any{"userId": "u\u202e"}), coded.TokenInvalid},
		{"userId with U+FFFD", claims(map[string]any{"userId": "u\ufffd"}), coded.TokenInvalid},
		{"blank userId", claims(map[string]any{"userId": "   "}), coded.TokenMissingClaim},
		{"exp a numeric string", claims(map[string]any{"exp": "9999999999"}), coded.TokenMalformed},
		{"exp an object", claims(map[string]any{"exp": map[string]any{"$date": now + 600}}), coded.TokenMalformed},
		{"exp an array", claims(map[string]any{"exp": []any{now + 600}}), coded.TokenMalformed},
		{"exp past year 9999", claims(map[string]any{"exp": 1e19}), coded.TokenMalformed},
		{"iat a numeric string", claims(map[string]any{"iat": "0"}), coded.TokenMalformed},
		{"nbf a numeric string", claims(map[string]any{"nbf": "0"}), coded.TokenMalformed},
		{"token over the length limit", claims(map[string]any{"pad": strings.Repeat("p", auth.MaxTokenLength)}), coded.TokenMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.with(t).connectCode(t, signHS256(tc.claims, testSecret)); got != tc.code {
				t.Fatalf("code = %q, want %q", got, tc.code)
			}
		})
	}
	// The server still serves after the refusals.
	e.raw(t, "after")
}

// register checks its userId with the same rule, and says which part failed.
func TestRegisterUserIDRule(t *testing.T) {
	e := startServer(t, nil)
	c := e.raw(t, "alice")
	for _, tc := range []struct{ userID, want string }{
		{"alice\u0000", "printable"},
		{strings.Repeat("a", auth.MaxUserIDLength+1), "at most"},
		{"ali\u202ece", "printable"},
	} {
		b, _ := json.Marshal([]any{"register", map[string]string{"userId": tc.userID}})
		c.send("42" + string(b))
		ack := c.expect("register:ack")
		if !strings.Contains(ack, `"success":false`) || !strings.Contains(ack, tc.want) {
			t.Fatalf("register %q: %s", tc.userID, ack)
		}
	}
	c.send(`42["register",{"userId":"alice"}]`)
	if ack := c.expect("register:ack"); !strings.Contains(ack, `"success":true`) {
		t.Fatalf("register alice: %s", ack)
	}
}

// The HTTP API takes the socket side's configured name limits and the userId rule.
func TestAPINameLimitsFromConfig(t *testing.T) {
	if config.MaxAPIKeyLength != httpapi.MaxAPIKeyLength {
		t.Fatalf("config.MaxAPIKeyLength %d != httpapi.MaxAPIKeyLength %d", config.MaxAPIKeyLength, httpapi.MaxAPIKeyLength)
	}
	e := startServer(t, func(c *config.Config) {
		c.SocketIO.MaxEventNameLength = 16
		c.SocketIO.MaxRoomNameLength = 24
	})
	room := strings.Repeat("r", 24)
	c := e.raw(t, "alice")
	c.send(`42["register",{"userId":"alice"}]`)
	c.expect("register:ack")
	c.send(`42["room:join",{"room":"` + room + `"}]`)
	if ack := c.expect("room:join:ack"); !strings.Contains(ack, `"success":true`) {
		t.Fatalf("join: %s", ack)
	}

	ev := strings.Repeat("e", 16)
	for _, tc := range []struct {
		path string
		body map[string]any
	}{
		{"/api/push", map[string]any{"userId": "alice", "event": ev + "x"}},
		{"/api/broadcast", map[string]any{"event": ev + "x"}},
		{"/api/room", map[string]any{"room": room, "event": ev + "x"}},
		{"/api/room", map[string]any{"room": room + "r", "event": ev}},
		{"/api/room", map[string]any{"room": "a\tb", "event": ev}},
		{"/api/broadcast", map[string]any{"event": "disconnecting"}},
		{"/api/push", map[string]any{"userId": strings.Repeat("a", auth.MaxUserIDLength+1), "event": ev}},
		{"/api/push", map[string]any{"userId": "alice\n", "event": ev}},
		{"/api/notification", map[string]any{"userId": "alice\u0007", "title": "t", "message": "m", "type": "info"}},
	} {
		status, body, _ := e.api("POST", tc.path, tc.body)
		if status != 400 || body["code"] != httpapi.CodeInvalidRequest {
			t.Fatalf("%s %v: %d %v", tc.path, tc.body, status, body)
		}
	}

	status, body, _ := e.api("POST", "/api/push", map[string]any{"userId": "alice", "event": ev, "data": 1})
	if status != 200 || body["delivered"] != true {
		t.Fatalf("push at the limits: %d %v", status, body)
	}
	c.expect(ev)
	status, body, _ = e.api("POST", "/api/room", map[string]any{"room": room, "event": ev, "data": 2})
	if status != 200 || body["recipients"] != float64(1) {
		t.Fatalf("room at the limits: %d %v", status, body)
	}
	c.expect(ev)
}
