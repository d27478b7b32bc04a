// Package socketio is the Socket.IO v5 protocol on top of core/engineio: packets
// (CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK), the main
// namespace, connect middleware, acknowledgements in both directions, rooms and emits.
package socketio

// CONTRACT STUB: these signatures are what the rest of the core builds on. The
// implementation replaces the panics and may add to the API, but keeps these names and
// meanings.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Options configures a Server. Zero values take the defaults shown.
type Options struct {
	Path             string        // "/socket.io/"
	PingInterval     time.Duration // 25s
	PingTimeout      time.Duration // 20s
	MaxPayload       int           // 1_000_000 bytes
	Transports       []string      // {"polling", "websocket"}
	AllowedOrigins   []string      // CORS; empty: no CORS headers; "*": any
	ConnectTimeout   time.Duration // 45s: time allowed between handshake and CONNECT
	MaxOutboundBytes int           // per-socket queued bytes before it is disconnected; 1 MiB
	AckTimeout       time.Duration // default for EmitWithAck without a ctx deadline; 10s
	Logger           hclog.Logger
	// Recovery, when set, turns on connection state recovery (see recovery.go).
	Recovery *RecoveryOptions
}

// RecoveryOptions turns on connection state recovery: outbound EVENT packets carry an
// offset, CONNECT replies carry a private session id (pid), and a client that reconnects
// with {pid, offset} within MaxDisconnection gets its id, rooms, data and missed packets back.
type RecoveryOptions struct {
	MaxDisconnection time.Duration // 2m
	MaxPackets       int           // per session, missed packets kept
	MaxTotalPackets  int           // across all sessions
}

// ConnectError refuses a connection: the client gets CONNECT_ERROR {message, data}.
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }

// Middleware runs for every CONNECT before the socket is accepted. auth is the raw CONNECT
// payload (nil when absent). Returning an error refuses the connection: a *ConnectError is
// sent as is, any other error as {message: err.Error()}.
type Middleware func(s *Socket, auth json.RawMessage) error

// Args are the arguments of an EVENT or ACK as raw JSON, one per argument. For binary
// packets the placeholders ({"_placeholder":true,"num":N}) stay in Raw and the bytes are in
// Attachments.
type Args struct {
	Raw         []json.RawMessage
	Attachments [][]byte
}

// Ack answers a client's acknowledgement request. It is nil when the client asked for none.
// Calling it more than once sends nothing the second time.
type Ack func(args ...any) error

// EventHandler handles one EVENT; handlers for one socket run in the order packets arrived.
type EventHandler func(s *Socket, args Args, ack Ack)

// Server is a Socket.IO server for the main namespace "/".
type Server struct{}

func NewServer(o Options) *Server                                  { panic("todo") }
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { panic("todo") }
func (s *Server) Use(m Middleware)                                 { panic("todo") }
func (s *Server) OnConnection(fn func(*Socket))                    { panic("todo") }
func (s *Server) Socket(id string) *Socket                         { panic("todo") } // nil if unknown
func (s *Server) SocketCount() int                                 { panic("todo") }
func (s *Server) RoomCount() int                                   { panic("todo") } // rooms other than each socket's own id room
func (s *Server) RoomSize(room string) int                         { panic("todo") }
func (s *Server) Close(ctx context.Context) error                  { panic("todo") } // disconnect every socket, stop

// Emit sends an event to every socket; returns the number of sockets reached.
func (s *Server) Emit(event string, args ...any) (int, error) { panic("todo") }

// EmitTo sends an event to the union of rooms, except sockets in exceptRooms (a socket id
// is a room holding that socket). The packet is encoded once. Returns sockets reached.
func (s *Server) EmitTo(rooms []string, exceptRooms []string, event string, args ...any) (int, error) {
	panic("todo")
}

// Socket is one client connected to the main namespace.
type Socket struct{}

func (s *Socket) ID() string                                                { panic("todo") }
func (s *Socket) Transport() string                                         { panic("todo") } // current transport
func (s *Socket) RemoteAddr() string                                        { panic("todo") }
func (s *Socket) Header() http.Header                                       { panic("todo") }
func (s *Socket) Query() url.Values                                         { panic("todo") }
func (s *Socket) Recovered() bool                                           { panic("todo") } // state came back through recovery
func (s *Socket) On(event string, h EventHandler)                           { panic("todo") }
func (s *Socket) OnAny(h func(s *Socket, event string, args Args, ack Ack)) { panic("todo") } // events with no On handler
func (s *Socket) OnDisconnect(fn func(s *Socket, reason string))            { panic("todo") }
func (s *Socket) Emit(event string, args ...any) error                      { panic("todo") } // []byte args become binary attachments
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	panic("todo")
}
func (s *Socket) Join(rooms ...string)  { panic("todo") }
func (s *Socket) Leave(room string)     { panic("todo") }
func (s *Socket) Rooms() []string       { panic("todo") } // includes its own id
func (s *Socket) Disconnect()           { panic("todo") } // sends DISCONNECT, closes the transport
func (s *Socket) Set(key string, v any) { panic("todo") } // per-socket data, kept across recovery
func (s *Socket) Get(key string) any    { panic("todo") }
