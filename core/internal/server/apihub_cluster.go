package server

import (
	"encoding/json"

	"github.com/rtserver/rtserver/core/internal/httpapi"
	"github.com/rtserver/rtserver/core/internal/hub"
)

// The HTTP API counts emits and connections across the cluster when the node is in one.

func (h apiHub) PushToUserCounted(userID, event string, data json.RawMessage) httpapi.Count {
	return apiCount(h.Hub.PushToUserCounted(userID, event, data))
}

func (h apiHub) BroadcastCounted(event string, data json.RawMessage) httpapi.Count {
	return apiCount(h.Hub.BroadcastCounted(event, data))
}

func (h apiHub) EmitToRoomCounted(room, event string, data json.RawMessage) httpapi.Count {
	return apiCount(h.Hub.EmitToRoomCounted(room, event, data))
}

func apiCount(c hub.Count) httpapi.Count { return httpapi.Count{N: c.N, Partial: c.Partial} }

// ClusterStats asks the other nodes for their counts; ok is false on a single node.
func (h apiHub) ClusterStats() (httpapi.ClusterStats, bool) {
	if h.cluster == nil {
		return httpapi.ClusterStats{}, false
	}
	st, err := h.cluster.ClusterStats()
	if err != nil {
		return httpapi.ClusterStats{}, false
	}
	return httpapi.ClusterStats{Nodes: st.Nodes, Connections: st.Connections, Rooms: st.Rooms, Partial: st.Partial}, true
}
