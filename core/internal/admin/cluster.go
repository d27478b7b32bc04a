package admin

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/rtserver/rtserver/core/internal/ratelimit"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// Cluster is what the Admin needs of the cluster (cluster.AdminLink): a channel between
// the nodes' admins, the socket ids of the other nodes, and a session store every node
// reads.
type Cluster interface {
	Start(ctx context.Context) error
	Close() error
	// Publish sends a message to the other nodes' admins.
	Publish(body json.RawMessage) error
	// Ask sends a request to the other nodes' admins and returns their answers within
	// the cluster's request timeout; complete is false when some did not answer.
	Ask(body json.RawMessage) (answers []json.RawMessage, complete bool, err error)
	// SocketIDs lists the other nodes' sockets in any of rooms (all without rooms).
	SocketIDs(rooms []string) (ids []string, complete bool, err error)
	SaveSession(hash [32]byte, ttl time.Duration) error
	SessionExists(hash [32]byte) (bool, error)
}

// SharedLimiter is a rate limit counted across the cluster (cluster.RateLimiter); on
// error the node decides alone.
type SharedLimiter interface {
	Allow(id string) (ratelimit.Result, error)
}

// FailuresPerMinute is the failed logins allowed per client IP and minute.
func (a *Admin) FailuresPerMinute() int { return a.o.FailuresPerMinute }

// ShareFailures counts failed logins across the cluster with l, so that a stranger trying
// passwords gets no more attempts by spreading them over the nodes. Call it before the
// server takes connections.
func (a *Admin) ShareFailures(l SharedLimiter) { a.sharedFailures = l }

// failed counts a failed login of ip: on this node, and across the cluster while this
// node's count allows it; when Redis does not answer this node's count stands.
func (a *Admin) failed(ip string) ratelimit.Result {
	r := a.failures.Allow(ip)
	if !r.Allowed || a.sharedFailures == nil {
		return r
	}
	if sr, err := a.sharedFailures.Allow(ip); err == nil {
		return sr
	}
	return r
}

// Between nodes, in a cluster: every node reports its figures to the others while admins
// watch on any node, and its socket events while admins watch on another node. A node
// whose admins watch says so with each of its figures (watching); the others then report
// to it for leaseRounds stats intervals, renewed by each of its figures, so a node that
// dies without a word stops being reported to soon after.
const (
	leaseRounds = 3
	// pubQueue bounds the events waiting to be published; beyond it they are dropped
	// (the UI then misses some events, the server never waits for Redis).
	pubQueue = 4096
	// pubBatch bounds the events in one message.
	pubBatch = 256
	// maxSocketsAnswer bounds the bytes of this node's sockets sent to another node.
	maxSocketsAnswer = 8 << 20
)

// clusterMessage is a message between the nodes' admins.
type clusterMessage struct {
	T        string            `json:"t"` // "stats", "events", "sockets" (a request)
	Watching bool              `json:"watching,omitempty"`
	Stats    json.RawMessage   `json:"stats,omitempty"`
	Events   []json.RawMessage `json:"events,omitempty"`
}

// clusterEvent is one event of the main namespace as the admins receive it.
type clusterEvent struct {
	Event string            `json:"ev"`
	Args  []json.RawMessage `json:"args"`
}

// Link joins the Admin to the other nodes of a cluster, where it reports as serverID
// (unless empty); call it before Start, and only once.
func (a *Admin) Link(c Cluster, serverID string) {
	a.link = c
	if serverID != "" {
		a.o.ServerID = serverID
	}
	a.pubQ = make(chan json.RawMessage, pubQueue)
	a.pubStop = make(chan struct{})
}

// Start subscribes the link to the other nodes (nothing on a single node).
func (a *Admin) Start(ctx context.Context) error {
	if a.link == nil {
		return nil
	}
	if err := a.link.Start(ctx); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("admin: started after Close")
	}
	a.bg.Add(1)
	go a.publisher()
	return nil
}

// Close stops the stats loop and the link; the admin sockets are closed with the server's.
func (a *Admin) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	if a.stop != nil {
		close(a.stop)
		a.stop = nil
	}
	a.mu.Unlock()
	if a.link != nil {
		close(a.pubStop)
	}
	a.bg.Wait()
	if a.link != nil {
		return a.link.Close()
	}
	return nil
}

// remoteWatching reports whether another node's admins watch this node.
// The hooks ask it on every event: without a lease (0) it reads no clock.
func (a *Admin) remoteWatching() bool {
	u := a.remoteUntil.Load()
	return u != 0 && time.Now().UnixNano() < u
}

// endLease clears a lease that ran out, unless a new one replaced it meanwhile.
func (a *Admin) endLease() {
	if u := a.remoteUntil.Load(); u != 0 && time.Now().UnixNano() >= u {
		a.remoteUntil.CompareAndSwap(u, 0)
	}
}

// watched reports whether anyone watches, here or on another node.
func (a *Admin) watched() bool {
	return a.watching.Load() > 0 || a.remoteWatching()
}

// publishStats sends this node's figures to the other nodes.
func (a *Admin) publishStats(st serverStats, watching bool) {
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	msg, _ := json.Marshal(clusterMessage{T: "stats", Watching: watching, Stats: b})
	if err := a.link.Publish(msg); err != nil {
		a.log.Debug("admin figures not published to the cluster", "error", err)
	}
}

// publishEvent queues an event for the other nodes' admins. The arguments are encoded
// here: they may be buffers the caller reuses.
func (a *Admin) publishEvent(event string, args []any) {
	raw := make([]json.RawMessage, len(args))
	for i, v := range args {
		b, err := json.Marshal(v)
		if err != nil {
			return
		}
		raw[i] = b
	}
	b, err := json.Marshal(clusterEvent{Event: event, Args: raw})
	if err != nil {
		return
	}
	select {
	case a.pubQ <- b:
	default:
		a.log.Debug("admin event not published: queue full", "event", event)
	}
}

// publisher sends the queued events, as many as are waiting in one message.
func (a *Admin) publisher() {
	defer a.bg.Done()
	for {
		var first json.RawMessage
		select {
		case <-a.pubStop:
			return
		case first = <-a.pubQ:
		}
		batch := []json.RawMessage{first}
	drain:
		for len(batch) < pubBatch {
			select {
			case m := <-a.pubQ:
				batch = append(batch, m)
			default:
				break drain
			}
		}
		msg, err := json.Marshal(clusterMessage{T: "events", Events: batch})
		if err != nil {
			continue
		}
		if err := a.link.Publish(msg); err != nil {
			a.log.Debug("admin events not published to the cluster", "events", len(batch), "error", err)
		}
	}
}

// AdminMessage receives another node's figures or events. It runs on the link's receive
// loop: emitting to a socket only queues.
func (a *Admin) AdminMessage(from string, body json.RawMessage) {
	var m clusterMessage
	if json.Unmarshal(body, &m) != nil {
		return
	}
	switch m.T {
	case "stats":
		if m.Watching {
			until := time.Now().Add(leaseRounds * a.o.StatsInterval).UnixNano()
			was := a.remoteWatching()
			a.remoteUntil.Store(until)
			// Every time, not only for a new lease: the loop may have seen the old one
			// run out just before this renewal.
			a.mu.Lock()
			a.ensureLoopLocked()
			a.mu.Unlock()
			if !was {
				a.kickLoop() // report to the new watcher now
			}
		}
		if len(m.Stats) > 0 && a.watching.Load() > 0 {
			a.emitLocal("server_stats", m.Stats)
		}
	case "events":
		if a.watching.Load() == 0 || a.o.Production {
			return
		}
		for _, raw := range m.Events {
			var ev clusterEvent
			if json.Unmarshal(raw, &ev) != nil || !knownEvents[ev.Event] {
				continue
			}
			args := make([]any, len(ev.Args))
			for i, v := range ev.Args {
				args[i] = v
			}
			a.emitLocal(ev.Event, args...)
		}
	}
}

// knownEvents are the events another node may have this node emit to its admins.
var knownEvents = map[string]bool{
	"socket_connected": true, "socket_updated": true, "socket_disconnected": true,
	"room_joined": true, "room_left": true, "event_received": true, "event_sent": true,
}

// AdminRequest answers another node's request: this node's sockets, as all_sockets lists
// them.
func (a *Admin) AdminRequest(from string, body json.RawMessage) (json.RawMessage, error) {
	var m clusterMessage
	if json.Unmarshal(body, &m) != nil || m.T != "sockets" {
		return nil, errors.New("admin: unknown request")
	}
	if a.o.Production {
		return json.RawMessage("[]"), nil
	}
	out := make([]json.RawMessage, 0)
	size := 0
	for _, so := range a.o.IO.Sockets() {
		b, err := json.Marshal(a.serialize(so))
		if err != nil {
			continue
		}
		if size += len(b) + 1; size > maxSocketsAnswer {
			a.log.Warn("admin: too many sockets to list for another node; the list is cut")
			break
		}
		out = append(out, b)
	}
	return json.Marshal(out)
}

// clusterSockets emits all_sockets to an admin socket: this node's and the other nodes'
// sockets. The other nodes are asked off the CONNECT's goroutine; those that do not
// answer within the request timeout are left out.
func (a *Admin) clusterSockets(s *socketio.Socket) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.bg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.bg.Done()
		req, _ := json.Marshal(clusterMessage{T: "sockets"})
		answers, complete, err := a.link.Ask(req)
		if err != nil || !complete {
			a.log.Warn("admin: some nodes' sockets are missing from the list", "error", err)
		}
		// This node's last: the UI replaces its list with this one, so a socket that
		// connected here while the others answered is in it.
		all := make([]any, 0)
		for _, so := range a.allSockets() {
			all = append(all, so)
		}
		for _, ans := range answers {
			var list []json.RawMessage
			if json.Unmarshal(ans, &list) != nil {
				continue
			}
			for _, so := range list {
				all = append(all, so)
			}
		}
		_ = s.Emit("all_sockets", all)
	}()
}
