package hub

import (
	"encoding/json"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/rtserver/rtserver/core/internal/coded"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// Rooms: `room:join` and `room:leave {room}` from the client, and joins a plugin makes for
// a socket, are checked alike (the name, the per-socket limit, another socket's private
// room) and made through the Adapter.

type roomReq struct {
	Room *string `json:"room"`
}

type roomAck struct {
	Success bool   `json:"success"`
	Room    string `json:"room"`
}

func (h *Hub) parseRoom(s *socketio.Socket, event string, arg json.RawMessage) (string, bool) {
	var req roomReq
	if !isObject(arg) || json.Unmarshal(arg, &req) != nil || req.Room == nil {
		h.sendError(s, event, "Invalid room data: expected {\"room\": string}", CodeInvalidRoom)
		return "", false
	}
	if err := h.checkRoomName(*req.Room); err != nil {
		h.sendError(s, event, err.Message, err.Code)
		return "", false
	}
	return *req.Room, true
}

func (h *Hub) onRoomJoin(s *socketio.Socket, _ *session, event string, arg json.RawMessage, ack socketio.Ack) {
	room, ok := h.parseRoom(s, event, arg)
	if !ok {
		return
	}
	if err := h.checkRoom(s.ID(), room); err != nil {
		h.sendCodedError(s, event, err)
		return
	}
	if err := h.fan.Join(s.ID(), room); err != nil {
		return // the socket is gone
	}
	h.reply(s, "room:join:ack", ack, roomAck{Success: true, Room: room})
}

func (h *Hub) onRoomLeave(s *socketio.Socket, _ *session, event string, arg json.RawMessage, ack socketio.Ack) {
	room, ok := h.parseRoom(s, event, arg)
	if !ok {
		return
	}
	if err := h.fan.Leave(s.ID(), room); err != nil {
		return // the socket is gone
	}
	h.reply(s, "room:leave:ack", ack, roomAck{Success: true, Room: room})
}

// checkRoomName validates a room name a client or plugin chose: a non-blank string of
// printable characters within the length limit.
func (h *Hub) checkRoomName(room string) *codedError {
	if isBlank(room) {
		return coded.New(CodeInvalidRoom, "Room name must be a non-empty string")
	}
	if len(room) > h.opts.MaxRoomNameLen {
		return coded.New(CodeInvalidRoom, "Room name is too long")
	}
	if !utf8.ValidString(room) {
		return coded.New(CodeInvalidRoom, "Room name must be valid UTF-8")
	}
	for _, r := range room {
		if unicode.IsControl(r) {
			return coded.New(CodeInvalidRoom, "Room name must not contain control characters")
		}
	}
	return nil
}

// checkRoom validates a join of a socket to room: the name, the per-socket room limit, and
// that the room is not another socket's private room. An unknown socket is
// ErrUnknownSocket.
func (h *Hub) checkRoom(socketID, room string) error {
	if err := h.checkRoomName(room); err != nil {
		return err
	}
	if room != socketID && h.fan.Reserved(room) {
		return coded.New(CodeInvalidRoom, "Room name is reserved")
	}
	all, err := h.fan.SocketRooms(socketID)
	if err != nil {
		return err
	}
	if len(clientRooms(socketID, all)) >= h.opts.MaxRoomsPerSocket && !slices.Contains(all, room) {
		return coded.New(CodeRoomLimit, "Too many rooms for this socket")
	}
	return nil
}

// clientRooms lists the rooms of all that a socket joined itself (not its own id room nor
// its user room).
func clientRooms(socketID string, all []string) []string {
	out := make([]string, 0, len(all))
	for _, r := range all {
		if r == socketID || len(r) > 0 && r[0] == 0 {
			continue
		}
		out = append(out, r)
	}
	return out
}
