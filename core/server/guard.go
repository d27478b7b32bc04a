package server

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/auth"
	"github.com/rtserver/rtserver/core/clientip"
	"github.com/rtserver/rtserver/core/hub"
	"github.com/rtserver/rtserver/core/metrics"
	"github.com/rtserver/rtserver/core/ratelimit"
	"github.com/rtserver/rtserver/core/socketio"
)

// Codes of a refused connection, carried in connect_error's data.code.
const (
	CodeRateLimited      = "RATE_LIMITED"
	CodeTooManyConns     = "TOO_MANY_CONNECTIONS"
	CodeTooManyConnsIP   = "TOO_MANY_CONNECTIONS_PER_IP"
	CodeUnauthorized     = "UNAUTHORIZED"
	CodeRecoveryMismatch = "RECOVERY_USER_MISMATCH"
	keyClientIP          = "server.ip"
	keyExpiryTimer       = "server.expiry"
	connectErrorMessage  = "Authentication failed"
)

type guardOptions struct {
	MaxConnections      int
	MaxConnectionsPerIP int
	ConnectionsPerMin   int
	MaxKeys             int
	TrustedProxies      clientip.Proxies
	Verifier            *auth.Verifier
	DisconnectOnExpiry  bool
	Metrics             *metrics.Metrics
	Logger              hclog.Logger
}

// connGuard decides who may connect: connection counts in total and per IP, the connection
// rate per IP, and the JWT in the CONNECT auth payload.
type connGuard struct {
	o    guardOptions
	rate *ratelimit.Limiter

	mu    sync.Mutex
	total int
	perIP map[string]int
}

func newConnGuard(o guardOptions) *connGuard {
	g := &connGuard{o: o, perIP: make(map[string]int)}
	if o.ConnectionsPerMin > 0 {
		g.rate = ratelimit.New(o.ConnectionsPerMin, time.Minute, o.MaxKeys)
	}
	return g
}

// clientIP is the peer's address, or the client's address from X-Forwarded-For when the
// peer is a trusted proxy (clientip.Proxies.Resolve).
func (g *connGuard) clientIP(s *socketio.Socket) string {
	host, _, err := net.SplitHostPort(s.RemoteAddr())
	if err != nil {
		host = s.RemoteAddr()
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	return g.o.TrustedProxies.Resolve(peer, s.Header().Values("X-Forwarded-For")).String()
}

// authPayload is the CONNECT auth object: the token, and on a reconnection what the client
// says of it. pid and offset are added by the official client itself when it tries to
// recover its session; attempt and delay are ours (see README, "Reconnection").
type authPayload struct {
	Token   *string `json:"token"`
	PID     string  `json:"pid"`
	Attempt int     `json:"attempt"`
	Delay   int     `json:"delay"`
}

type refusal struct {
	Code       string `json:"code"`
	Message    string `json:"message"`
	RetryAfter *int   `json:"retryAfter,omitempty"`
}

// middleware runs for every CONNECT: limits first (they are cheap and protect the JWT check),
// then the token.
func (g *connGuard) middleware(s *socketio.Socket, raw json.RawMessage) error {
	ip := g.clientIP(s)
	if r := g.rate.Allow(ip); !r.Allowed {
		retry := int((r.RetryAfter + time.Second - 1) / time.Second)
		g.refused(s)
		if g.o.Metrics != nil {
			g.o.Metrics.RateLimited.WithLabelValues("ws_connection").Inc()
		}
		return &socketio.ConnectError{Message: "Rate limit exceeded", Data: refusal{
			Code: CodeRateLimited, Message: "Too many connections from this address", RetryAfter: &retry}}
	}

	claims, p, err := g.verify(raw)
	if err != nil {
		var ae *auth.Error
		code, msg := CodeUnauthorized, err.Error()
		if errors.As(err, &ae) {
			code, msg = ae.Code, ae.Message
		}
		g.refused(s)
		g.o.Logger.Debug("connection refused", "ip", ip, "code", code)
		return &socketio.ConnectError{Message: connectErrorMessage, Data: refusal{Code: code, Message: msg}}
	}

	if code, msg := g.check(ip); code != "" {
		g.refused(s)
		return &socketio.ConnectError{Message: msg, Data: refusal{Code: code, Message: msg}}
	}
	// A recovered session keeps its user: a token of someone else cannot take it over.
	if prev := hub.UserID(s); prev != "" && prev != claims.UserID {
		g.refused(s)
		msg := "The session being recovered belongs to another user"
		return &socketio.ConnectError{Message: connectErrorMessage, Data: refusal{Code: CodeRecoveryMismatch, Message: msg}}
	}
	s.Set(keyClientIP, ip)
	hub.SetUserID(s, claims.UserID)
	hub.SetReconnect(s, hub.Reconnect{AskedRecovery: p.PID != "", Attempt: p.Attempt, Delay: p.Delay})
	if g.o.DisconnectOnExpiry && !claims.ExpiresAt.IsZero() {
		t := time.AfterFunc(time.Until(claims.ExpiresAt), s.Disconnect)
		s.Set(keyExpiryTimer, t)
	}
	return nil
}

func (g *connGuard) verify(raw json.RawMessage) (*auth.Claims, authPayload, error) {
	var p authPayload
	if len(raw) == 0 || json.Unmarshal(raw, &p) != nil || p.Token == nil || *p.Token == "" {
		return nil, p, &auth.Error{Code: auth.CodeMissing, Message: "auth.token is required"}
	}
	c, err := g.o.Verifier.Verify(*p.Token)
	return c, p, err
}

func (g *connGuard) refused(s *socketio.Socket) {
	if g.o.Metrics != nil {
		g.o.Metrics.ConnectionsTotal.WithLabelValues("false", s.Transport()).Inc()
	}
}

// check says which connection limit, if any, refuses one more socket from ip. Sockets are
// counted once accepted (onConnection), so a CONNECT that never completes holds nothing;
// the price is that simultaneous CONNECTs may pass a limit by the few in between.
func (g *connGuard) check(ip string) (code, msg string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.o.MaxConnections > 0 && g.total >= g.o.MaxConnections {
		return CodeTooManyConns, "The server has reached its connection limit"
	}
	if g.o.MaxConnectionsPerIP > 0 && g.perIP[ip] >= g.o.MaxConnectionsPerIP {
		return CodeTooManyConnsIP, "Too many connections from this address"
	}
	return "", ""
}

func (g *connGuard) take(ip string) {
	g.mu.Lock()
	g.total++
	g.perIP[ip]++
	g.mu.Unlock()
}

func (g *connGuard) release(ip string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.perIP[ip]--; g.perIP[ip] <= 0 {
		delete(g.perIP, ip)
	}
}

// onConnection counts an accepted socket and frees its slot when it leaves.
func (g *connGuard) onConnection(s *socketio.Socket) {
	ip, _ := s.Get(keyClientIP).(string)
	g.take(ip)
	if g.o.Metrics != nil {
		g.o.Metrics.ConnectionsTotal.WithLabelValues("true", s.Transport()).Inc()
		g.o.Metrics.ActiveConnections.Inc()
	}
	s.OnDisconnect(func(s *socketio.Socket, reason string) {
		if t, ok := s.Get(keyExpiryTimer).(*time.Timer); ok {
			t.Stop()
		}
		g.release(ip)
		if g.o.Metrics != nil {
			g.o.Metrics.ActiveConnections.Dec()
		}
	})
}
