package hub

import (
	"encoding/json"
	"testing"

	"github.com/rtserver/rtserver/core/internal/socketio"
)

// The welcome written from its pre-encoded parts is what encoding/json writes.
func TestWelcomeTextMatchesEncodingJSON(t *testing.T) {
	for _, info := range []serverInfo{
		{Version: "1.2.3", Environment: "production"},
		{Version: `dev "<&>" ü`, Environment: "a\\b\n\u2028"},
		{},
	} {
		text := newWelcomeText(info)
		arg := welcomeArg{text: &text, socketID: "AbC-12_x", now: "2026-11-28T14:00:00.000Z"}
		want, err := json.Marshal(welcome{Message: welcomeMessage, SocketID: arg.socketID, Timestamp: arg.now, ServerInfo: info})
		if err != nil {
			t.Fatal(err)
		}
		var _ socketio.JSONAppender = arg
		if got := arg.AppendJSON([]byte("x")); string(got) != "x"+string(want) {
			t.Errorf("AppendJSON %s, want %s", got[1:], want)
		}
		if arg.JSONLen() != len(want) {
			t.Errorf("JSONLen %d, want %d", arg.JSONLen(), len(want))
		}
		if got, _ := json.Marshal(arg); string(got) != string(want) {
			t.Errorf("json.Marshal %s, want %s", got, want)
		}
	}
}
