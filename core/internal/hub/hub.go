// Package hub holds the product's view of who is connected: users, their sockets and the
// rooms they joined. It turns the protocol layer's sockets into users and rooms, answers
// the client's own events (register, room:join, room:leave, ping, client:*), and is what the
// HTTP API and plugins call to reach a user, a room or everyone.
package hub

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/internal/dispatch"
	"github.com/rtserver/rtserver/core/internal/metrics"
	"github.com/rtserver/rtserver/core/internal/ratelimit"
	"github.com/rtserver/rtserver/core/internal/socketio"
	"github.com/rtserver/rtserver/core/internal/workpool"
)

// runners start the queued requests of every hub's sockets on reused goroutines, off the
// dispatcher's goroutine that answered the request before them; none stays once traffic
// stops.
var runners = &workpool.Pool{IdleTimeout: 2 * time.Second}

// Options configures a Hub.
type Options struct {
	Version           string
	Environment       string
	MaxEventNameLen   int // 128
	MaxRoomNameLen    int // 128
	MaxRoomsPerSocket int // 50
	MaxJSONDepth      int // 32
	// MessagesPerMinute bounds the events one socket may send; 0 = no limit.
	MessagesPerMinute int
	// FloodDisconnectAfter disconnects a socket after this many refused events in a row.
	FloodDisconnectAfter int
	// MaxPending bounds the client:* requests one socket may have waiting; 64.
	MaxPending int
	Logger     hclog.Logger
}

func (o *Options) defaults() {
	if o.MaxEventNameLen <= 0 {
		o.MaxEventNameLen = 128
	}
	if o.MaxRoomNameLen <= 0 {
		o.MaxRoomNameLen = 128
	}
	if o.MaxRoomsPerSocket <= 0 {
		o.MaxRoomsPerSocket = 50
	}
	if o.MaxJSONDepth <= 0 {
		o.MaxJSONDepth = 32
	}
	if o.FloodDisconnectAfter <= 0 {
		o.FloodDisconnectAfter = 100
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 64
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
}

// Dispatcher answers client:event, client:message and client:action (the plugin host). It
// applies each handler's deadline, ends a request early when ctx ends (the socket left),
// and must not block: done gets the outcome exactly once, perhaps before DispatchAsync
// returns, and must not block either.
type Dispatcher interface {
	DispatchAsync(ctx context.Context, req *dispatch.Request, done func(*dispatch.Reply, error))
}

// noDispatcher answers every request NO_HANDLER, until SetDispatcher installs one.
type noDispatcher struct{}

func (noDispatcher) DispatchAsync(_ context.Context, req *dispatch.Request, done func(*dispatch.Reply, error)) {
	done(nil, dispatch.Errorf(dispatch.CodeNoHandler, "no handler for %s %q", req.Kind, req.Name))
}

// Hub is the registry of users, sockets and rooms on this node.
type Hub struct {
	opts    Options
	fan     Adapter
	m       *metrics.Metrics
	log     hclog.Logger
	ids     *idGen
	msgRate *ratelimit.Limiter
	table   map[string]socketio.EventHandler // shared by every socket (connection.go)
	// The method values HandleConnection gives every socket, made once: each evaluation
	// of h.onGone or h.onAny allocates a closure that the socket would keep.
	goneFn func(s *socketio.Socket, reason string)
	anyFn  func(s *socketio.Socket, event string, args socketio.Args, ack socketio.Ack)

	dmu        sync.RWMutex
	dispatcher Dispatcher

	mu    sync.Mutex
	users map[string]int // userID -> registered sockets

	welcomeText welcomeText
}

// New builds a Hub that reaches sockets through fan (NewMemoryAdapter on a single node).
// The caller installs HandleConnection as (or in) the socketio server's connection handler.
// m may be nil.
func New(o Options, fan Adapter, m *metrics.Metrics) *Hub {
	o.defaults()
	h := &Hub{
		opts:       o,
		fan:        fan,
		m:          m,
		log:        o.Logger,
		ids:        newIDGen(),
		dispatcher: noDispatcher{},
		users:      make(map[string]int),
	}
	h.table = h.handlerTable()
	h.goneFn, h.anyFn = h.onGone, h.onAny
	h.welcomeText = newWelcomeText(serverInfo{Version: o.Version, Environment: o.Environment})
	if o.MessagesPerMinute > 0 {
		h.msgRate = ratelimit.New(o.MessagesPerMinute, time.Minute, 1<<20)
	}
	if m != nil {
		m.CountRoomsWith(h.roomCount)
	}
	return h
}

// SetDispatcher installs the handler of client:event, client:message and client:action.
func (h *Hub) SetDispatcher(d Dispatcher) {
	if d == nil {
		d = noDispatcher{}
	}
	h.dmu.Lock()
	h.dispatcher = d
	h.dmu.Unlock()
}

func (h *Hub) currentDispatcher() Dispatcher {
	h.dmu.RLock()
	defer h.dmu.RUnlock()
	return h.dispatcher
}

// Stats are the hub's counts.
type Stats struct {
	Connections int // connected sockets
	Rooms       int // rooms clients joined: not the internal user rooms nor sockets' own rooms
	Users       int // registered users with at least one socket
}

// Stats counts connections, rooms and registered users.
func (h *Hub) Stats() Stats {
	users := h.userCount()
	return Stats{Connections: h.fan.SocketCount(), Rooms: h.roomsBeside(users), Users: users}
}

// roomCount is the number of rooms clients joined (socket_server_rooms).
func (h *Hub) roomCount() int { return h.roomsBeside(h.userCount()) }

// roomsBeside counts the rooms clients joined, given the number of users (each has one
// internal room).
func (h *Hub) roomsBeside(users int) int {
	return max(h.fan.RoomCount()-users, 0)
}

func (h *Hub) countSent(event string, n int) {
	if h.m != nil && n > 0 {
		h.m.CountSent(event, n)
	}
}

// PushToUser sends an event to every registered socket of a user.
func (h *Hub) PushToUser(userID, event string, data json.RawMessage) int {
	return h.broadcast(Target{Rooms: []string{userRoom(userID)}}, event, data)
}

// Broadcast sends an event to every connected socket.
func (h *Hub) Broadcast(event string, data json.RawMessage) int {
	return h.broadcast(Target{}, event, data)
}

// EmitToRoom sends an event to every socket in a room.
func (h *Hub) EmitToRoom(room, event string, data json.RawMessage) int {
	return h.emitToRoom(room, event, data, "")
}

func (h *Hub) emitToRoom(room, event string, data json.RawMessage, except string) int {
	to := Target{Rooms: []string{room}}
	if except != "" {
		to.Except = []string{except}
	}
	return h.broadcast(to, event, data)
}

func (h *Hub) broadcast(to Target, event string, data json.RawMessage) int {
	n, err := h.fan.Broadcast(to, event, rawOrNull(data))
	if err != nil {
		h.log.Warn("emit failed", "event", event, "rooms", len(to.Rooms), "error", err)
	}
	h.countSent(event, n)
	return n
}

func rawOrNull(data json.RawMessage) json.RawMessage {
	if len(data) == 0 {
		return json.RawMessage("null")
	}
	return data
}
