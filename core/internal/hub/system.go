package hub

import (
	"bytes"
	"encoding/json"

	"github.com/rtserver/rtserver/core/internal/metrics"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// System events: what the server tells a client of its connection (system:welcome, and
// after a reconnection system:state_recovered, system:state_recovery_failed and
// system:reconnect_status), and the client's ping.

type serverInfo struct {
	Version     string `json:"version"`
	Environment string `json:"environment"`
}

type welcome struct {
	Message    string     `json:"message"`
	SocketID   string     `json:"socketId"`
	Timestamp  string     `json:"timestamp"`
	ServerInfo serverInfo `json:"serverInfo"`
}

const welcomeMessage = "Welcome to the Socket.IO server"

// welcomeText is system:welcome's JSON around the two fields that differ between sockets,
// encoded once: the welcome goes out on every connect.
type welcomeText struct{ head, mid, tail []byte }

func newWelcomeText(info serverInfo) welcomeText {
	// A marker for each varying field, cut out of encoding/json's own output so that the
	// constant parts are exactly what it writes.
	const idMark, timeMark = "\x00socketId\x00", "\x00timestamp\x00"
	const idText, timeText = `"\u0000socketId\u0000"`, `"\u0000timestamp\u0000"`
	b, err := json.Marshal(welcome{Message: welcomeMessage, SocketID: idMark, Timestamp: timeMark, ServerInfo: info})
	if err != nil {
		panic(err) // strings only
	}
	idAt, timeAt := bytes.Index(b, []byte(idText)), bytes.Index(b, []byte(timeText))
	return welcomeText{head: b[:idAt], mid: b[idAt+len(idText) : timeAt], tail: b[timeAt+len(timeText):]}
}

// welcomeArg is one socket's welcome.
type welcomeArg struct {
	text          *welcomeText
	socketID, now string
}

func (w welcomeArg) AppendJSON(dst []byte) []byte {
	dst = append(dst, w.text.head...)
	dst = socketio.AppendJSONString(dst, w.socketID)
	dst = append(dst, w.text.mid...)
	dst = socketio.AppendJSONString(dst, w.now)
	return append(dst, w.text.tail...)
}

func (w welcomeArg) JSONLen() int {
	return len(w.text.head) + len(w.text.mid) + len(w.text.tail) + len(w.socketID) + len(w.now) + 4
}

// MarshalJSON serves those who encode the argument again (the admin UI's event feed).
func (w welcomeArg) MarshalJSON() ([]byte, error) { return w.AppendJSON(nil), nil }

// welcome greets an accepted socket, then tells a reconnected one how it came back.
func (h *Hub) welcome(s *socketio.Socket, ss *session, now string) {
	h.emit(s, "system:welcome", welcomeArg{text: &h.welcomeText, socketID: s.ID(), now: now})
	h.announceReconnect(s, ss, now)
}

type recovered struct {
	UserID    string `json:"userId"`
	Timestamp string `json:"timestamp"`
}

type recoveryFailed struct {
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
}

type reconnectStatus struct {
	Attempt   int    `json:"attempt"`
	Delay     int    `json:"delay"`
	Timestamp string `json:"timestamp"`
}

// announceReconnect tells a reconnected client how it came back: its state recovered, or
// not although it asked, and the reconnection attempt it reported. A first connection
// gets none of these.
func (h *Hub) announceReconnect(s *socketio.Socket, ss *session, now string) {
	var r Reconnect
	if ss.start != nil {
		r = ss.start.reconnect
	}
	// Counted before the event goes out, so a client that reads /metrics on receipt
	// sees its own outcome.
	switch {
	case s.Recovered():
		h.countRecovery(metrics.RecoveryRecovered)
		h.emit(s, "system:state_recovered", recovered{UserID: ss.userID, Timestamp: now})
	case r.AskedRecovery:
		h.countRecovery(metrics.RecoveryFailed)
		h.emit(s, "system:state_recovery_failed", recoveryFailed{Message: "Failed to recover connection state", Timestamp: now})
	}
	if r.Attempt > 0 {
		h.emit(s, "system:reconnect_status", reconnectStatus{Attempt: r.Attempt, Delay: max(r.Delay, 0), Timestamp: now})
		if h.m != nil {
			h.m.Reconnects.Inc()
		}
	}
}

func (h *Hub) countRecovery(result string) {
	if h.m != nil {
		h.m.Recovery.WithLabelValues(result).Inc()
	}
}

func (h *Hub) onPing(s *socketio.Socket, _ *session, event string, arg json.RawMessage, ack socketio.Ack) {
	if ack != nil {
		_ = ack()
	}
}
