package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/internal/engineio"
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
	// MaxConnectPayload caps every message of a session whose CONNECT has not been
	// accepted; 16 KiB (an 8 KiB token and the rest of the auth object). Until then the
	// peer is unauthenticated and only a CONNECT is taken: a larger message, a binary one or a packet announcing attachments closes
	// the session ("parse error"), so that nothing it sends is held. Its websocket may
	// carry 4*MaxConnectPayload+16 KiB meanwhile, unfinished messages included.
	MaxConnectPayload int
	// AdmitHandshake, when set, decides on every Engine.IO handshake before a session
	// exists (engineio.Options.Admit): what it takes is given back when that session
	// closes, CONNECTed or not.
	AdmitHandshake func(r *http.Request) (release func(), refusal *engineio.Refusal)
	// NonBlockingHandlers promises that middlewares, event handlers, ack callbacks and
	// disconnect handlers never block (they hand slow work to goroutines of their own):
	// websocket messages are then handled on the network poller, without a goroutine
	// hand-off per message (engineio.Options.InlineWebsocket).
	NonBlockingHandlers bool
	Logger              hclog.Logger
	// Namespaces lists the namespaces besides "/" a client may CONNECT to; default none
	// (a CONNECT to another is refused "Invalid namespace"). Their sockets are handed to
	// OnConnection and the middlewares like those of "/" (Socket.Namespace tells them
	// apart) but join no rooms, are not reached by broadcasts and are not recovered.
	Namespaces []string
	// Recovery, when set, turns on connection state recovery (see recovery.go).
	Recovery *RecoveryOptions
	// ArgMembers names, per event, up to MaxArgMembers members of the event's first
	// argument that its handler routes by: the pass that validates an inbound packet
	// picks them up (Args.Members), so the handler does not scan the payload again.
	ArgMembers map[string][]string
}

// RecoveryOptions turns on connection state recovery: outbound EVENT packets carry an
// offset, CONNECT replies carry a private session id (pid), and a client that reconnects
// with {pid, offset} within MaxDisconnection gets its id, rooms, data and missed packets back.
type RecoveryOptions struct {
	MaxDisconnection time.Duration // 2m
	MaxPackets       int           // per session, missed packets kept; 1000
	MaxTotalPackets  int           // across all sessions; 10000
	// MaxTotalBytes bounds the bytes the log keeps (packets and attachments); the oldest
	// packets leave first, and a packet larger than the whole budget is not kept at all
	// (sessions that missed it are not recovered). 32 MiB.
	MaxTotalBytes int
	MaxSessions   int // disconnected sessions kept at once; 100000
	// OnOverflow, when set, is called each time a session cannot be recovered because
	// the packets it missed passed MaxPackets or left the ring of MaxTotalPackets.
	OnOverflow func()

	// Shared, when set, keeps sessions and the packet log in a store every node reads
	// (shared.go); the in-memory ring then only covers recent local deliveries.
	Shared SharedStore
	// MarshalSession and UnmarshalSession carry SetSession's value through the shared
	// store as JSON; without them the session is not kept there.
	MarshalSession   func(v any) (json.RawMessage, error)
	UnmarshalSession func(data json.RawMessage) (any, error)
	// OnStoreFailure, when set, is called each time the shared store fails an operation.
	OnStoreFailure func()
	StoreTimeout   time.Duration // each call to the shared store; 2s
	RefreshEvery   time.Duration // connected sessions' records are refreshed; 30s
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
	// Depth is the deepest nesting of objects and arrays within one of Raw's arguments (0
	// when all are scalars), measured by the pass that validated them.
	Depth int
	// Members are the members of Raw[0] that Options.ArgMembers names for the event,
	// found by the pass that validated the packet (EVENT packets only).
	Members Members
}

// Members are the values of the top-level members of an event's first argument that
// Options.ArgMembers names for the event.
type Members struct {
	// Scanned is whether the event has names in Options.ArgMembers (and arguments); when
	// it is false, nothing was looked for and the other fields are zero.
	Scanned bool
	// Object is whether the first argument is a JSON object; when it is false, Values
	// are all nil.
	Object bool
	// Values[k] is the raw value of the member named ArgMembers[event][k]; nil when the
	// object has no such member (a present value is never empty). Names match after
	// unescaping, and the last of duplicate names wins, as when decoding into a map.
	Values [MaxArgMembers]json.RawMessage
}

// Ack answers a client's acknowledgement request. It is nil when the client asked for none.
// Calling it more than once sends nothing the second time.
type Ack func(args ...any) error

// EventHandler handles one EVENT; handlers for one socket run in the order packets arrived.
type EventHandler func(s *Socket, args Args, ack Ack)

// ErrDisconnected is returned (or handed to an ack callback) when the socket is gone or
// never finished connecting.
var ErrDisconnected = errors.New("socketio: socket disconnected")

// Disconnect reasons handed to OnDisconnect besides engineio's transport reasons
// ("transport close", "transport error", "ping timeout", "parse error", "buffer full",
// "forced close", "server shutting down").
const (
	ReasonServerDisconnect = "server namespace disconnect"
	ReasonClientDisconnect = "client namespace disconnect"
)

func (o *Options) setDefaults() {
	if o.Path == "" {
		o.Path = "/socket.io/"
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 20 * time.Second
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = 1_000_000
	}
	if len(o.Transports) == 0 {
		o.Transports = []string{"polling", "websocket"}
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 45 * time.Second
	}
	if o.MaxOutboundBytes <= 0 {
		o.MaxOutboundBytes = 1 << 20
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 10 * time.Second
	}
	if o.MaxConnectPayload <= 0 {
		o.MaxConnectPayload = 16 << 10
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if r := o.Recovery; r != nil {
		c := *r
		if c.MaxDisconnection <= 0 {
			c.MaxDisconnection = 2 * time.Minute
		}
		if c.MaxPackets <= 0 {
			c.MaxPackets = 1000
		}
		if c.MaxTotalPackets <= 0 {
			c.MaxTotalPackets = 10000
		}
		if c.MaxTotalBytes <= 0 {
			c.MaxTotalBytes = 32 << 20
		}
		if c.MaxSessions <= 0 {
			c.MaxSessions = 100000
		}
		if c.StoreTimeout <= 0 {
			c.StoreTimeout = 2 * time.Second
		}
		if c.RefreshEvery <= 0 {
			c.RefreshEvery = min(30*time.Second, max(c.MaxDisconnection/2, time.Second))
		}
		o.Recovery = &c
	}
}

// Values returns the arguments ready to be emitted again: raw JSON stays raw, and an
// argument holding placeholders is decoded with its placeholders replaced by the
// attachment bytes, so that an Emit sends them as attachments again.
func (a Args) Values() []any {
	out := make([]any, len(a.Raw))
	for i, raw := range a.Raw {
		out[i] = raw
		if len(a.Attachments) == 0 || !bytes.Contains(raw, placeholderKey) {
			continue
		}
		var v any
		if json.Unmarshal(raw, &v) == nil {
			out[i] = a.fillPlaceholders(v)
		}
	}
	return out
}

var placeholderKey = []byte(`"_placeholder"`)

func (a Args) fillPlaceholders(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if ph, _ := x["_placeholder"].(bool); ph && len(x) == 2 {
			if n, ok := x["num"].(float64); ok && n >= 0 && int(n) < len(a.Attachments) && float64(int(n)) == n {
				return a.Attachments[int(n)]
			}
		}
		for k, e := range x {
			x[k] = a.fillPlaceholders(e)
		}
	case []any:
		for i, e := range x {
			x[i] = a.fillPlaceholders(e)
		}
	}
	return v
}
