// Package conformance serves, from the product's own protocol packages, the servers the
// official Engine.IO and Socket.IO protocol test suites expect (the test-suite/ of
// socketio/engine.io-protocol and socketio/socket.io-protocol), both on one port:
//
//   - /engine.io/: a bare Engine.IO v4 server that echoes every message back;
//   - /socket.io/: a Socket.IO v5 server with the namespaces / and /custom. Each socket
//     emits "auth" with its CONNECT payload on connection; on /, "message" is answered
//     with "message-back" and the same arguments (attachments included), and
//     "message-with-ack" is acknowledged with the same arguments.
//
// Both use pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000 bytes and CORS
// "*"; the Socket.IO server closes a session that connects no namespace within 1 s. It is
// a development tool (rtserver conformance), never part of the served product.
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/internal/engineio"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// The settings the suites check.
const (
	PingInterval   = 300 * time.Millisecond
	PingTimeout    = 200 * time.Millisecond
	MaxPayload     = 1_000_000
	ConnectTimeout = time.Second
	// AuthDelay is how long after the CONNECT reply "auth" is emitted (see OnConnection).
	AuthDelay = 20 * time.Millisecond
)

// Server is the two endpoints on one listener.
type Server struct {
	http   *engineio.HTTPServer
	engine *engineio.Server
	io     *socketio.Server
}

// Start serves the endpoints on ln until Shutdown.
func Start(ln net.Listener, log hclog.Logger) (*Server, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Server{
		engine: engineio.NewServer(engineio.Options{
			Path:           "/engine.io/",
			PingInterval:   PingInterval,
			PingTimeout:    PingTimeout,
			MaxPayload:     MaxPayload,
			AllowedOrigins: []string{"*"},
			Logger:         log.Named("engine.io"),
		}, echo{}),
		io: newSocketIO(log),
	}
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", s.engine)
	mux.Handle("/socket.io/", s.io)
	s.http = engineio.NewHTTPServer(ln, mux)
	s.http.Logger = log
	if err := s.http.Start(); err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	return s, nil
}

// Addr returns the address served.
func (s *Server) Addr() net.Addr { return s.http.Addr() }

// Shutdown closes every session, then the listener and its connections, up to ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.engine.Close()
	err := s.io.Close(ctx)
	return errors.Join(err, s.http.Shutdown(ctx))
}

// echo is the Engine.IO handler: every message goes back as it came.
type echo struct{}

func (echo) OnOpen(*engineio.Conn) {}

func (echo) OnMessage(c *engineio.Conn, data []byte, binary bool) {
	// data is only valid during the call; the copy is the message's from now on.
	_ = c.Send(engineio.NewMessage(append([]byte(nil), data...), binary))
}

func (echo) OnClose(*engineio.Conn, string) {}

func newSocketIO(log hclog.Logger) *socketio.Server {
	srv := socketio.NewServer(socketio.Options{
		Path:           "/socket.io/",
		PingInterval:   PingInterval,
		PingTimeout:    PingTimeout,
		MaxPayload:     MaxPayload,
		AllowedOrigins: []string{"*"},
		ConnectTimeout: ConnectTimeout,
		Namespaces:     []string{"/custom"},
		Logger:         log,
	})
	srv.Use(func(so *socketio.Socket, auth json.RawMessage) error {
		if len(auth) == 0 {
			auth = json.RawMessage(`{}`) // as the reference's handshake.auth
		}
		so.SetSession(auth)
		return nil
	})
	srv.OnConnection(func(so *socketio.Socket) {
		// The suites read the CONNECT reply and "auth" with a listener each, added one
		// after the other; ws (their client) emits every frame of one read at once, so
		// "auth" must not reach them in the same read as the reply, or it is missed. The
		// reference server writes it a tick later, after the reply's write completed.
		auth := so.Session()
		time.AfterFunc(AuthDelay, func() { _ = so.Emit("auth", auth) })
		if so.Namespace() != "/" {
			return
		}
		so.On("message", func(so *socketio.Socket, args socketio.Args, _ socketio.Ack) {
			_ = so.Emit("message-back", args.Values()...)
		})
		so.On("message-with-ack", func(_ *socketio.Socket, args socketio.Args, ack socketio.Ack) {
			if ack != nil {
				_ = ack(args.Values()...)
			}
		})
	})
	return srv
}
