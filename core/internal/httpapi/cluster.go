package httpapi

import "encoding/json"

// CountingHub is optional: a hub whose emits count the sockets reached on every node of a
// cluster, and say when some node did not answer in time. Without it the API counts with
// Hub's methods.
type CountingHub interface {
	PushToUserCounted(userID, event string, data json.RawMessage) Count
	BroadcastCounted(event string, data json.RawMessage) Count
	EmitToRoomCounted(room, event string, data json.RawMessage) Count
}

// Count is the sockets an emit reached; Partial when some node did not answer in time.
type Count struct {
	N       int
	Partial bool
}

// ClusterStatser is optional: the cluster's counts, shown as "cluster" by /api/status.
// ok is false on a single node.
type ClusterStatser interface {
	ClusterStats() (st ClusterStats, ok bool)
}

// ClusterStats are the cluster's counts.
type ClusterStats struct {
	Nodes       int  `json:"nodes"`
	Connections int  `json:"connections"`
	Rooms       int  `json:"rooms"`
	Partial     bool `json:"partial,omitempty"`
}

func (a *API) pushCounted(userID, event string, data json.RawMessage) Count {
	if c, ok := a.hub.(CountingHub); ok {
		return c.PushToUserCounted(userID, event, data)
	}
	return Count{N: a.hub.PushToUser(userID, event, data)}
}

func (a *API) broadcastCounted(event string, data json.RawMessage) Count {
	if c, ok := a.hub.(CountingHub); ok {
		return c.BroadcastCounted(event, data)
	}
	return Count{N: a.hub.Broadcast(event, data)}
}

func (a *API) roomCounted(room, event string, data json.RawMessage) Count {
	if c, ok := a.hub.(CountingHub); ok {
		return c.EmitToRoomCounted(room, event, data)
	}
	return Count{N: a.hub.EmitToRoom(room, event, data)}
}

func (a *API) clusterStats() *ClusterStats {
	if c, ok := a.hub.(ClusterStatser); ok {
		if st, ok := c.ClusterStats(); ok {
			return &st
		}
	}
	return nil
}
