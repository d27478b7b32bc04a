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

	"github.com/rtserver/rtserver/core/dispatch"
	"github.com/rtserver/rtserver/core/metrics"
	"github.com/rtserver/rtserver/core/ratelimit"
	"github.com/rtserver/rtserver/core/socketio"
	"github.com/rtserver/rtserver/core/workpool"
)

// runners start the queued requests of every hub's sockets on reused goroutines, off the
// dispatcher's goroutine that answered the request before them; none stays once traffic
// stops.
var runners = &workpool.Pool{IdleTimeout: 2 * time.Second}

// userRoomPrefix names the internal room that holds a user's registered sockets. It starts
// with a control character, which client room names may not contain, so no client can join
// another user's room.
const userRoomPrefix = "\x00user:"

// Socket data keys.
const (
	keyUserID     = "userId"
	keyRegistered = "registered"
)

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

	dmu        sync.RWMutex
	dispatcher Dispatcher

	mu    sync.Mutex
	users map[string]int // userID -> registered sockets
}

var _ dispatch.Host = pluginHost{}

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

// UserID returns the authenticated user of a socket ("" when unknown).
func UserID(s *socketio.Socket) string {
	v, _ := s.Get(keyUserID).(string)
	return v
}

// SetUserID records the authenticated user of a socket; the auth middleware calls it.
func SetUserID(s *socketio.Socket, userID string) { s.Set(keyUserID, userID) }

func registered(s *socketio.Socket) bool {
	v, _ := s.Get(keyRegistered).(bool)
	return v
}

func userRoom(userID string) string { return userRoomPrefix + userID }

// register puts s in its user's room. It reports false when s was registered already.
func (h *Hub) register(s *socketio.Socket, userID string) bool {
	if registered(s) {
		return false
	}
	s.Set(keyRegistered, true)
	if err := h.fan.Join(s.ID(), userRoom(userID)); err != nil {
		s.Set(keyRegistered, false) // gone meanwhile: nothing to count
		return false
	}
	h.mu.Lock()
	h.users[userID]++
	n := len(h.users)
	h.mu.Unlock()
	h.gaugeUsers(n)
	return true
}

// unregister forgets a registered socket when it goes away.
func (h *Hub) unregister(s *socketio.Socket) {
	if !registered(s) {
		return
	}
	userID := UserID(s)
	h.mu.Lock()
	if h.users[userID]--; h.users[userID] <= 0 {
		delete(h.users, userID)
	}
	n := len(h.users)
	h.mu.Unlock()
	h.gaugeUsers(n)
}

// Restore re-counts a socket whose state came back through connection state recovery.
func (h *Hub) restore(s *socketio.Socket) {
	if !registered(s) {
		return
	}
	h.mu.Lock()
	h.users[UserID(s)]++
	n := len(h.users)
	h.mu.Unlock()
	h.gaugeUsers(n)
}

func (h *Hub) gaugeUsers(n int) {
	if h.m != nil {
		h.m.RegisteredUsers.Set(float64(n))
	}
}

func (h *Hub) userCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.users)
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

// PluginHost is the dispatch.Host that plugins call back into: emits checked like the
// HTTP API's, room joins checked like a client's.
func (h *Hub) PluginHost() dispatch.Host { return pluginHost{h} }

type pluginHost struct{ h *Hub }

func (p pluginHost) EmitToUser(_ context.Context, userID, event string, data json.RawMessage) (int, error) {
	if err := p.h.checkEventName(event); err != nil {
		return 0, err
	}
	return p.h.PushToUser(userID, event, data), nil
}

func (p pluginHost) EmitToRoom(_ context.Context, room, event string, data json.RawMessage, except string) (int, error) {
	if err := p.h.checkEventName(event); err != nil {
		return 0, err
	}
	return p.h.emitToRoom(room, event, data, except), nil
}

func (p pluginHost) Broadcast(_ context.Context, event string, data json.RawMessage) (int, error) {
	if err := p.h.checkEventName(event); err != nil {
		return 0, err
	}
	return p.h.Broadcast(event, data), nil
}

func (p pluginHost) JoinRoom(_ context.Context, socketID, room string) error {
	if err := p.h.checkRoom(socketID, room); err != nil {
		return err
	}
	return p.h.fan.Join(socketID, room)
}

func (p pluginHost) LeaveRoom(_ context.Context, socketID, room string) error {
	return p.h.fan.Leave(socketID, room)
}

func (p pluginHost) DisconnectSocket(_ context.Context, socketID string) error {
	return p.h.fan.Disconnect(socketID)
}

func rawOrNull(data json.RawMessage) json.RawMessage {
	if len(data) == 0 {
		return json.RawMessage("null")
	}
	return data
}
