//go:build unix

package engineio

import "testing"

// TestFenceHandsOutNumbersOnce: a number is fenced from its second connection on, and
// every number once a connection went to nbio unseen.
func TestFenceHandsOutNumbersOnce(t *testing.T) {
	var f acceptFence
	for _, n := range []int{7, 300, 64, 63, 0} {
		if f.handOut(n) {
			t.Errorf("fd %d: fenced on its first connection", n)
		}
	}
	for _, n := range []int{7, 300, 64, 63, 0} {
		if !f.handOut(n) {
			t.Errorf("fd %d: not fenced on its second connection", n)
		}
	}
	if !f.handOut(-1) {
		t.Error("a negative number is not fenced")
	}
	f.allReused = true
	if !f.handOut(5000) {
		t.Error("a new number is not fenced once a connection went unseen")
	}
}

func TestWebsocketRequestLine(t *testing.T) {
	for line, want := range map[string]bool{
		"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1":         true,
		"GET /socket.io/?EIO=4&transport=websocket&sid=abc HTTP/1.1": true,
		"GET /socket.io/?transport=websocket&EIO=4 HTTP/1.1":         true,
		"GET /socket.io/?EIO=4&transport=polling HTTP/1.1":           false,
		"GET /socket.io/?EIO=4&transport=websocketx HTTP/1.1":        false,
		"GET /socket.io/?EIO=4&xtransport=websocket HTTP/1.1":        false,
		"POST /socket.io/?EIO=4&transport=websocket HTTP/1.1":        false,
		"GET /api/?transport=websocket HTTP/1.1":                     false,
		"GET /socket.io/ HTTP/1.1":                                   false,
		"GET /socket.io/?EIO=4 HTTP/1.1 transport=websocket":         false,
		"GET /socket.io/socket.io.js?transport=websocket HTTP/1.1":   false,
		"GET /socket.io?EIO=4&transport=websocket HTTP/1.1":          true,
		"GET /socket.iox?EIO=4&transport=websocket HTTP/1.1":         false,
		"": false,
	} {
		if got := WebsocketRequestLine([]byte(line), "/socket.io/"); got != want {
			t.Errorf("%q: %v, want %v", line, got, want)
		}
	}
}
