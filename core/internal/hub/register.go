package hub

import (
	"encoding/json"

	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// Registration: `register {userId}` puts a socket in its user's internal room, which the
// pushes to that user reach. The userId must be the token's. A user is counted while at
// least one of its sockets is registered (socket_server_registered_users).

// userRoomPrefix names the internal room that holds a user's registered sockets. It starts
// with a control character, which client room names may not contain, so no client can join
// another user's room.
const userRoomPrefix = "\x00user:"

func userRoom(userID string) string { return userRoomPrefix + userID }

type registerReq struct {
	UserID *string `json:"userId"`
}

type registerAck struct {
	Success bool   `json:"success"`
	UserID  string `json:"userId,omitempty"`
	Error   string `json:"error,omitempty"`
}

func (h *Hub) onRegister(s *socketio.Socket, ss *session, event string, arg json.RawMessage, ack socketio.Ack) {
	var req registerReq
	reply := func(r registerAck) { h.reply(s, "register:ack", ack, r) }
	if !isObject(arg) || json.Unmarshal(arg, &req) != nil {
		reply(registerAck{Error: "Invalid registration data: expected {\"userId\": string}"})
		return
	}
	if req.UserID == nil || *req.UserID == "" || isBlank(*req.UserID) {
		reply(registerAck{Error: "Missing userId"})
		return
	}
	if err := auth.CheckUserID(*req.UserID); err != nil {
		reply(registerAck{Error: err.Error()})
		return
	}
	if *req.UserID != ss.userID {
		reply(registerAck{Error: "userId does not match the authenticated user"})
		return
	}
	h.register(s, ss)
	reply(registerAck{Success: true, UserID: ss.userID})
}

// register puts s in its user's room and counts the user; a second register changes
// nothing.
func (h *Hub) register(s *socketio.Socket, ss *session) {
	ss.mu.Lock()
	already := ss.registered || ss.gone
	ss.registered = true
	ss.mu.Unlock()
	if already {
		return
	}
	if err := h.fan.Join(s.ID(), userRoom(ss.userID)); err != nil {
		return // gone meanwhile
	}
	h.countSession(ss)
}

// countSession counts a registered socket in its user, once, unless it is gone.
func (h *Hub) countSession(ss *session) {
	// Lock order: session.mu, then Hub.mu (countUser): the socket's count and its
	// disconnect's discount (uncountSession) happen in that order.
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.gone || ss.counted || !ss.registered {
		return
	}
	ss.counted = true
	h.countUser(ss.userID, 1)
}

// uncountSession takes a gone socket out of its user's count.
func (h *Hub) uncountSession(ss *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.counted {
		ss.counted = false
		h.countUser(ss.userID, -1)
	}
}

// countUser adds d to the registered sockets of a user.
func (h *Hub) countUser(userID string, d int) {
	h.mu.Lock()
	if h.users[userID] += d; h.users[userID] <= 0 {
		delete(h.users, userID)
	}
	n := len(h.users)
	h.mu.Unlock()
	if h.m != nil {
		h.m.RegisteredUsers.Set(float64(n))
	}
}

func (h *Hub) userCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.users)
}
