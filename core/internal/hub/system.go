package hub

import (
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

// welcome greets an accepted socket, then tells a reconnected one how it came back.
func (h *Hub) welcome(s *socketio.Socket, ss *session, now string) {
	h.emit(s, "system:welcome", welcome{
		Message:    "Welcome to the Socket.IO server",
		SocketID:   s.ID(),
		Timestamp:  now,
		ServerInfo: serverInfo{Version: h.opts.Version, Environment: h.opts.Environment},
	})
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
