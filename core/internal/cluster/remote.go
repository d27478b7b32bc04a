package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/rtserver/rtserver/core/internal/hub"
)

// Join puts a socket in rooms, on whichever node holds it: this node's sockets directly,
// another's through a REMOTE_JOIN request naming the socket. hub.ErrUnknownSocket when
// every other node said it has no such socket, or when the request timeout passed
// without an answer from the node that holds it.
func (a *Adapter) Join(socketID string, rooms ...string) error {
	err := a.Adapter.Join(socketID, rooms...)
	if !errors.Is(err, hub.ErrUnknownSocket) {
		return err
	}
	return a.remoteSocket(reqRemoteJoin, socketID, rooms)
}

// Leave takes a socket out of rooms on whichever node holds it, as Join. A Node.js node
// leaves one room per request, so there is one request per room.
func (a *Adapter) Leave(socketID string, rooms ...string) error {
	err := a.Adapter.Leave(socketID, rooms...)
	if !errors.Is(err, hub.ErrUnknownSocket) {
		return err
	}
	for _, r := range rooms {
		if err := a.remoteSocket(reqRemoteLeave, socketID, []string{r}); err != nil {
			return err
		}
	}
	return nil
}

// Disconnect closes a socket's connection on whichever node holds it, as Join.
func (a *Adapter) Disconnect(socketID string) error {
	err := a.Adapter.Disconnect(socketID)
	if !errors.Is(err, hub.ErrUnknownSocket) {
		return err
	}
	return a.remoteSocket(reqRemoteDisconn, socketID, nil)
}

// remoteSocket asks the other nodes to apply typ to the socket they hold.
func (a *Adapter) remoteSocket(typ int, socketID string, rooms []string) error {
	if !validID(socketID) || a.down.Load() {
		return hub.ErrUnknownSocket
	}
	others, err := a.others()
	if err != nil || others == 0 {
		return hub.ErrUnknownSocket
	}
	req := &wireRequest{Type: typ, SID: socketID, Nack: true}
	if typ == reqRemoteDisconn {
		req.Close = true
	} else {
		req.Room = roomValue(rooms)
	}
	found := func(answers []*wireResponse) bool {
		return slices.ContainsFunc(answers, func(r *wireResponse) bool { return !r.UnknownSocket })
	}
	answers, _, err := a.ask(a.reqChannel(), req, nil, others, found)
	if err != nil {
		a.log.Warn("request to the cluster failed", "type", typ, "error", err)
		return hub.ErrUnknownSocket
	}
	if !found(answers) {
		return hub.ErrUnknownSocket
	}
	return nil
}

// SocketRooms lists a socket's rooms, asking the other nodes (REMOTE_FETCH) when this node
// does not hold it.
func (a *Adapter) SocketRooms(socketID string) ([]string, error) {
	rooms, err := a.Adapter.SocketRooms(socketID)
	if !errors.Is(err, hub.ErrUnknownSocket) {
		return rooms, err
	}
	if !validID(socketID) || a.down.Load() {
		return nil, hub.ErrUnknownSocket
	}
	others, err := a.others()
	if err != nil || others == 0 {
		return nil, hub.ErrUnknownSocket
	}
	idList, _ := json.Marshal([]string{socketID})
	req := &wireRequest{Type: reqRemoteFetch, Opts: &wireOpts{Rooms: idList, Except: json.RawMessage("[]")}}
	var found []string
	has := func(answers []*wireResponse) bool {
		for _, r := range answers {
			var list []struct {
				ID    string `json:"id"`
				Rooms []any  `json:"rooms"`
			}
			if json.Unmarshal(r.Sockets, &list) != nil {
				continue
			}
			for _, s := range list {
				if s.ID == socketID {
					found = jsonRoomValues(s.Rooms)
					return true
				}
			}
		}
		return false
	}
	answers, _, err := a.ask(a.reqChannel(), req, nil, others, has)
	if err != nil || !has(answers) {
		return nil, hub.ErrUnknownSocket
	}
	return found, nil
}

// BroadcastCount is Broadcast that also counts the sockets reached on the other nodes. The
// broadcast is the classic message every node (and a Node.js node) delivers as a plain
// broadcast; it carries one extra option, countRequestId, which nodes of this product
// answer with a BROADCAST_CLIENT_COUNT response on this node's response channel. It waits
// for the nodes of this product only (markChannel tells them apart). partial is true when
// one of them did not answer within the request timeout, when the cluster has Node.js
// nodes (they never count), or when Redis is unreachable: n then counts the nodes that
// answered.
func (a *Adapter) BroadcastCount(to hub.Target, event string, data json.RawMessage) (n, remote int, partial bool, err error) {
	if a.down.Load() {
		n, err = a.Broadcast(to, event, data)
		return n, 0, true, err
	}
	all, others, err := a.nodeCounts()
	if err != nil {
		n, err = a.Broadcast(to, event, data)
		return n, 0, true, err
	}
	foreign := all > others // Node.js nodes: reached, not counted
	channel := a.allChannel()
	if a.rooms != nil && len(to.Rooms) == 1 {
		// A broadcast to one room goes on the room's channel, which only the nodes with
		// a member there hear (rooms.go): those are the answers to wait for.
		channel = broadcastChannel(a.prefix, to.Rooms)
		if others, err = a.roomNodes(channel); err != nil {
			n, err = a.Broadcast(to, event, data)
			return n, 0, true, err
		}
	}
	if others == 0 {
		n, err = a.Broadcast(to, event, data)
		return n, 0, foreign, err
	}
	id := newRequestID()
	msg, err := encodeBroadcast(a.uid, to.Rooms, to.Except, event, data, id, a.rec != nil)
	if err != nil {
		return 0, 0, false, err
	}
	// Without shared recovery the local delivery comes first, as in Broadcast. With it, the
	// broadcast is appended to the recovery log and published in one script, and delivered
	// here with the offset Redis gave it (broadcastLogged), before the answers are awaited.
	var pub publishFunc
	delivered, logged := false, false
	if a.rec == nil {
		n, err = a.Adapter.Broadcast(to, event, data)
		if err != nil {
			return n, 0, false, err
		}
		delivered = true
	} else {
		pub = func(ctx context.Context, channel string, msg []byte) error {
			off, err := a.rec.store.appendPublish(ctx, channel, msg, to.Rooms, to.Except, event, data)
			if err != nil {
				return err
			}
			delivered, logged = true, true
			n, err = a.rec.deliverAt(off, to.Rooms, to.Except, event, data)
			return err
		}
	}
	sum := func(answers []*wireResponse) int {
		t := 0
		for _, r := range answers {
			if r.ClientCount != nil && *r.ClientCount > 0 {
				t += min(*r.ClientCount, maxClientCount)
			}
		}
		return t
	}
	start := time.Now()
	answers, complete, err := a.askVia(pub, channel, &wireRequest{RequestID: id}, msg, others, nil)
	if err != nil && logged {
		return n, 0, true, err // published and logged; delivering here failed
	}
	if err != nil {
		if !delivered {
			n, _ = a.Adapter.Broadcast(to, event, data)
		}
		a.failedSince(start)
		a.m.messages.WithLabelValues("publish_failed").Inc()
		a.log.Warn("broadcast not published to the cluster", "event", event, "error", err)
		return n, 0, true, nil
	}
	a.published()
	a.m.messages.WithLabelValues("published").Inc()
	return n, sum(answers), !complete || foreign, nil
}

// maxClientCount bounds one node's answer, so a forged one cannot overflow the sum.
const maxClientCount = 1 << 30

// Stats are the cluster's counts for /api/status.
type Stats struct {
	Nodes       int  // subscribers of the request channel, this node included
	Connections int  // sockets on every node that answered
	Rooms       int  // rooms with a member on any node that answered, sockets' id rooms and internal rooms excluded
	Partial     bool // some node did not answer within the request timeout
}

// ClusterStats counts the cluster's nodes, sockets and rooms with SOCKETS and ALL_ROOMS
// requests, which Node.js nodes answer too.
func (a *Adapter) ClusterStats() (Stats, error) {
	if a.io == nil {
		return Stats{}, errors.New("cluster: no local sockets to count")
	}
	ids := a.io.Select(nil, nil)
	st := Stats{Nodes: 1, Connections: len(ids)}
	sockets := make(map[string]struct{}, len(ids))
	for _, so := range ids {
		sockets[so.ID()] = struct{}{}
	}
	rooms := map[string]struct{}{}
	for _, r := range a.io.RoomNames() {
		rooms[r] = struct{}{}
	}
	others := 0
	if !a.down.Load() {
		var err error
		if others, err = a.others(); err != nil {
			st.Partial = true
		}
	} else {
		st.Partial = true
	}
	if others > 0 {
		st.Nodes += others
		type result struct {
			answers  []*wireResponse
			complete bool
			err      error
		}
		roomsDone := make(chan result, 1)
		go func() {
			ans, ok, err := a.ask(a.reqChannel(), &wireRequest{Type: reqAllRooms}, nil, others, nil)
			roomsDone <- result{ans, ok, err}
		}()
		sockAns, sockOK, sockErr := a.ask(a.reqChannel(), &wireRequest{Type: reqSockets, Rooms: json.RawMessage("[]")}, nil, others, nil)
		ra := <-roomsDone
		st.Partial = !sockOK || !ra.complete || sockErr != nil || ra.err != nil
		for _, r := range sockAns {
			var list []string
			if json.Unmarshal(r.Sockets, &list) == nil {
				st.Connections += len(list)
				for _, id := range list {
					sockets[id] = struct{}{}
				}
			}
		}
		for _, r := range ra.answers {
			list, err := jsonRooms(r.Rooms)
			if err != nil && len(r.Rooms) > 0 {
				// More than maxRequestRooms: read them all, it is an answer, not a request.
				var all []any
				_ = json.Unmarshal(r.Rooms, &all)
				list = jsonRoomValues(all)
			}
			for _, room := range list {
				rooms[room] = struct{}{}
			}
		}
	}
	for r := range rooms {
		if _, isSocket := sockets[r]; isSocket || strings.HasPrefix(r, "\x00") {
			continue
		}
		st.Rooms++
	}
	return st, nil
}

// Reserved reports whether room is a socket's own room on any node, so that no socket
// joins a room named after a socket of another node and hears what is sent to it. Only a
// name shaped like a socket id (20 URL-safe base64 characters, as both this product and
// socket.io make them) is asked about, with a SOCKETS request every node answers (Node.js
// nodes too). When a node does not answer in time, or Redis is unreachable, such a name
// counts as reserved: refusing a join of an odd room name is safer than letting a socket
// hear another's messages.
func (a *Adapter) Reserved(room string) bool {
	if a.Adapter.Reserved(room) {
		return true
	}
	if !looksLikeSocketID(room) {
		return false
	}
	if a.down.Load() {
		return true
	}
	others, err := a.others()
	if err != nil {
		return true
	}
	if others == 0 {
		return false
	}
	rooms, _ := json.Marshal([]string{room})
	isSocket := func(answers []*wireResponse) bool {
		for _, r := range answers {
			var ids []string
			if json.Unmarshal(r.Sockets, &ids) == nil && slices.Contains(ids, room) {
				return true
			}
		}
		return false
	}
	answers, complete, err := a.ask(a.reqChannel(), &wireRequest{Type: reqSockets, Rooms: rooms}, nil, others, isSocket)
	return err != nil || !complete || isSocket(answers)
}

// looksLikeSocketID reports whether s has the shape of a socket id.
func looksLikeSocketID(s string) bool {
	if len(s) != 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
