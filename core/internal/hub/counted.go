package hub

import "encoding/json"

// Counter is an Adapter that can count a broadcast's recipients on every node (the
// cluster adapter). The HTTP API's emits use it; emits made for clients and plugins do
// not, so that they never wait for other nodes.
type Counter interface {
	// BroadcastCount is Broadcast, returning the sockets reached on this node and on the
	// others; partial is true when some node did not answer in time.
	BroadcastCount(to Target, event string, data json.RawMessage) (local, others int, partial bool, err error)
}

// Count is how many sockets a counted emit reached across the cluster.
type Count struct {
	N       int
	Partial bool // some node did not answer: N counts the nodes that did
}

// PushToUserCounted is PushToUser counting the user's sockets on every node.
func (h *Hub) PushToUserCounted(userID, event string, data json.RawMessage) Count {
	return h.broadcastCounted(Target{Rooms: []string{userRoom(userID)}}, event, data)
}

// BroadcastCounted is Broadcast counting the sockets on every node.
func (h *Hub) BroadcastCounted(event string, data json.RawMessage) Count {
	return h.broadcastCounted(Target{}, event, data)
}

// EmitToRoomCounted is EmitToRoom counting the room's sockets on every node.
func (h *Hub) EmitToRoomCounted(room, event string, data json.RawMessage) Count {
	return h.broadcastCounted(Target{Rooms: []string{room}}, event, data)
}

func (h *Hub) broadcastCounted(to Target, event string, data json.RawMessage) Count {
	c, ok := h.fan.(Counter)
	if !ok {
		return Count{N: h.broadcast(to, event, data)}
	}
	local, others, partial, err := c.BroadcastCount(to, event, rawOrNull(data))
	if err != nil {
		h.log.Warn("emit failed", "event", event, "rooms", len(to.Rooms), "error", err)
	}
	h.countSent(event, local)
	return Count{N: local + others, Partial: partial}
}
