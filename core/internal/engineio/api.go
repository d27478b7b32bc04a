// Package engineio is the Engine.IO v4 server: handshake, the polling and websocket
// transports, the upgrade between them, heartbeats and payload limits. It knows nothing of
// Socket.IO packets: it hands whole messages (text or binary) to a Handler and sends
// messages it is given, in order, per session.
package engineio

import (
	"errors"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Options configures a Server. The zero value is usable: every field has a default.
//
// Path is where the caller mounts ServeHTTP (the Server does not check the URL path).
// AllowedOrigins, when set, also refuses (403, code 4) a request whose Origin header is not
// listed, websocket upgrades included: browsers do not apply CORS to websockets. Requests
// without Origin (not from a browser) are served.
type Options struct {
	Path             string        // default "/socket.io/"
	PingInterval     time.Duration // default 25s
	PingTimeout      time.Duration // default 20s
	MaxPayload       int           // bytes, default 1_000_000
	Transports       []string      // default {"polling","websocket"}
	AllowUpgrades    bool          // default true: a zero Options gets true via defaults
	DisableUpgrades  bool          // refuses polling->websocket upgrades (a bool cannot say "unset")
	AllowedOrigins   []string      // CORS; empty: no CORS headers; "*" any origin
	MaxOutboundBytes int           // per-session queued bytes before the session is closed; default 1 MiB
	// InlineWebsocket runs the Handler for websocket messages on the network poller's
	// goroutine instead of handing each message to a worker (HTTPServer only). It saves
	// a goroutine hand-off per message (about 4 µs of CPU per request/reply on a 2-core
	// machine) but the Handler must then never block: while it runs, no other
	// connection of that poller is read.
	InlineWebsocket bool
	// InboundLimit, when positive, caps the bytes a session's websockets may carry from
	// the peer until the Handler calls Conn.LiftInboundLimit; past it the session is
	// closed with "parse error". nbio holds a websocket message whole until its last
	// byte, so this bounds what a peer the layer above has not accepted yet can make the
	// server hold (polling bodies are bounded per request by MaxPayload). Counted by
	// HTTPServer only.
	InboundLimit int
	// Admit, when set, runs for every handshake (a request without sid) once its
	// transport, protocol version and origin passed, before a session exists. A non-nil
	// *Refusal refuses the handshake. Otherwise release, when not nil, is called once:
	// after Handler.OnClose of the session the handshake created, or at once when it
	// created none. It may be called from any goroutine.
	Admit  func(r *http.Request) (release func(), refusal *Refusal)
	Logger hclog.Logger
}

// Refusal is how Options.Admit refuses a handshake: the client gets Status with Body as
// the JSON body, or without one the reference server's error body
// {"code":4,"message":Message} (4 is "Forbidden", what the reference server answers when
// its allowRequest refuses), and a Retry-After header (whole seconds, rounded up) when
// RetryAfter is positive. Clients do not read the body: it is for people and tools.
type Refusal struct {
	Status     int
	Message    string
	Body       []byte
	RetryAfter time.Duration
}

// Handler receives the life of every session. Calls for one session never overlap (OnClose
// included: a Close from inside OnMessage runs OnClose once OnMessage returns). They run on
// the HTTP server's handler goroutine for that connection, or on a timer goroutine for a
// ping timeout; blocking in them delays that session's next messages, not other sessions
// (unless Options.InlineWebsocket, under which websocket messages are handled on the
// network poller: a Handler that blocks there stalls every connection of that poller).
type Handler interface {
	// OnOpen runs once per session after the handshake was sent.
	OnOpen(c *Conn)
	// OnMessage runs for every message packet ('4'), in order, never concurrently for
	// one session. data is only valid during the call.
	OnMessage(c *Conn, data []byte, binary bool)
	// OnClose runs once when the session ends, with a reason such as
	// "transport close", "transport error", "ping timeout", "forced close",
	// "parse error", "buffer full", "server shutting down".
	OnClose(c *Conn, reason string)
}

// Close reasons handed to Handler.OnClose.
const (
	ReasonTransportClose = "transport close"
	ReasonTransportError = "transport error"
	ReasonPingTimeout    = "ping timeout"
	ReasonForcedClose    = "forced close"
	ReasonParseError     = "parse error"
	ReasonBufferFull     = "buffer full"
	ReasonShutdown       = "server shutting down"
)

// Transport names.
const (
	TransportPolling   = "polling"
	TransportWebsocket = "websocket"
)

// ErrClosed is returned by Conn.Send once the session is closed.
var ErrClosed = errors.New("engineio: session closed")

// Defaults for a zero Options.
const (
	DefaultPath             = "/socket.io/"
	DefaultPingInterval     = 25 * time.Second
	DefaultPingTimeout      = 20 * time.Second
	DefaultMaxPayload       = 1_000_000
	DefaultMaxOutboundBytes = 1 << 20
)

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = DefaultPingTimeout
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	if len(o.Transports) == 0 {
		o.Transports = []string{TransportPolling, TransportWebsocket}
	}
	// A bool cannot tell "unset" from "false", so upgrades stay on unless DisableUpgrades.
	o.AllowUpgrades = !o.DisableUpgrades
	if o.MaxOutboundBytes <= 0 {
		o.MaxOutboundBytes = DefaultMaxOutboundBytes
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	return o
}
