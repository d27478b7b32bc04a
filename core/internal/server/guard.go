package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/clientip"
	"github.com/rtserver/rtserver/core/internal/coded"
	"github.com/rtserver/rtserver/core/internal/engineio"
	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/metrics"
	"github.com/rtserver/rtserver/core/internal/ratelimit"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// Codes of a refused connection: the first three are the code of a refused handshake's
// error body, the others connect_error's data.code.
const (
	CodeRateLimited      = coded.RateLimited
	CodeTooManyConns     = coded.TooManyConnections
	CodeTooManyConnsIP   = coded.TooManyConnectionsPerIP
	CodeUnauthorized     = coded.Unauthorized
	CodeRecoveryMismatch = coded.RecoveryUserMismatch
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

// connGuard decides who may connect. At the Engine.IO handshake, before any session
// exists: the connection rate per IP and the number of sessions in total and per IP,
// counting sessions whose CONNECT has not been accepted yet (an unauthenticated one holds
// buffers and timers too). At CONNECT: the JWT in the auth payload.
type connGuard struct {
	o    guardOptions
	rate *ratelimit.Limiter
	// On a clustered node (shareLimits): the rate and the per-IP count across nodes,
	// consulted after this node's own, which always holds.
	sharedRate  sharedRate
	sharedConns sharedConns

	// Given to every socket by onConnection: made once, not a closure per socket.
	goneFn func(s *socketio.Socket, reason string)

	mu    sync.Mutex // a leaf: nothing is called while it is held
	total int
	perIP map[string]int
}

func newConnGuard(o guardOptions) *connGuard {
	g := &connGuard{o: o, perIP: make(map[string]int)}
	g.goneFn = func(*socketio.Socket, string) { g.o.Metrics.ActiveConnections.Dec() }
	if o.ConnectionsPerMin > 0 {
		g.rate = ratelimit.New(o.ConnectionsPerMin, time.Minute, o.MaxKeys)
	}
	return g
}

// xffHeader is where a trusted proxy puts the client's address.
const xffHeader = "X-Forwarded-For"

// clientIP is the peer's address, or the client's address from X-Forwarded-For (xff: the
// header's values) when the peer is a trusted proxy (clientip.Proxies.Resolve).
func (g *connGuard) clientIP(remoteAddr string, xff []string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	return g.o.TrustedProxies.Resolve(peer, xff).String()
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

// admit runs for every Engine.IO handshake (socketio.Options.AdmitHandshake): the rate,
// then the counts. An admitted session holds its place until it closes, whether or not
// it ever CONNECTs; the release returned gives it back. A refusal answers the handshake
// with the API's error body {success:false, error, code} (SPEC, Rate Limiting): 429
// RATE_LIMITED (with retryAfter and Retry-After), 503 TOO_MANY_CONNECTIONS, 403
// TOO_MANY_CONNECTIONS_PER_IP.
func (g *connGuard) admit(r *http.Request) (func(), *engineio.Refusal) {
	ip := g.clientIP(r.RemoteAddr, r.Header.Values(xffHeader))
	res := g.rate.Allow(ip)
	if res.Allowed && g.sharedRate != nil {
		if sr, err := g.sharedRate.Allow(ip); err == nil {
			res = sr
		}
	}
	if !res.Allowed {
		g.refused(r.URL.Query().Get("transport"))
		if g.o.Metrics != nil {
			g.o.Metrics.RateLimited.WithLabelValues("ws_connection").Inc()
		}
		retry := int((res.RetryAfter + time.Second - 1) / time.Second)
		return nil, &engineio.Refusal{Status: http.StatusTooManyRequests, RetryAfter: res.RetryAfter,
			Body: handshakeRefusal(CodeRateLimited, "Rate limit exceeded", &retry)}
	}
	if status, code := g.take(ip); code != "" {
		g.refused(r.URL.Query().Get("transport"))
		g.o.Logger.Debug("handshake refused", "ip", ip, "code", code)
		msg := "Too many connections"
		if code == CodeTooManyConnsIP {
			msg = "Too many connections from this address"
		}
		return nil, &engineio.Refusal{Status: status, Body: handshakeRefusal(code, msg, nil)}
	}
	if g.sharedConns == nil {
		return func() { g.release(ip) }, nil
	}
	// This node's count allows it; the cluster's may not. On error Redis did not answer
	// and this node's count decides.
	if ok, err := g.sharedConns.TakeConn(ip, g.o.MaxConnectionsPerIP); err == nil && !ok {
		g.release(ip)
		g.refused(r.URL.Query().Get("transport"))
		g.o.Logger.Debug("handshake refused", "ip", ip, "code", CodeTooManyConnsIP, "scope", "cluster")
		return nil, &engineio.Refusal{Status: http.StatusForbidden,
			Body: handshakeRefusal(CodeTooManyConnsIP, "Too many connections from this address", nil)}
	}
	return func() {
		g.release(ip)
		g.sharedConns.ReleaseConn(ip)
	}, nil
}

// callsOut reports whether admit asks another process (the cluster's store) and may
// therefore wait.
func (g *connGuard) callsOut() bool { return g.sharedRate != nil || g.sharedConns != nil }

// handshakeRefusal is the JSON body of a refused handshake.
func handshakeRefusal(code, msg string, retryAfter *int) []byte {
	b, _ := json.Marshal(struct {
		Success    bool   `json:"success"`
		Error      string `json:"error"`
		Code       string `json:"code"`
		RetryAfter *int   `json:"retryAfter,omitempty"`
	}{false, msg, code, retryAfter})
	return b
}

// middleware runs for every CONNECT: the token. The connection limits were applied at the
// handshake, and the session already holds its place.
func (g *connGuard) middleware(s *socketio.Socket, raw json.RawMessage) error {
	claims, p, err := g.verify(raw)
	if err != nil {
		var ae *coded.Error
		code, msg := CodeUnauthorized, err.Error()
		if errors.As(err, &ae) {
			code, msg = ae.Code, ae.Message
		}
		g.refused(s.Transport())
		g.o.Logger.Debug("connection refused", "ip", g.clientIP(s.RemoteAddr(), s.Handshake().Values(xffHeader)), "code", code)
		return &socketio.ConnectError{Message: connectErrorMessage, Data: refusal{Code: code, Message: msg}}
	}
	a := hub.Admission{
		UserID:    claims.UserID,
		ClientIP:  g.clientIP(s.RemoteAddr(), s.Handshake().Values(xffHeader)),
		Reconnect: hub.Reconnect{AskedRecovery: p.PID != "", Attempt: p.Attempt, Delay: p.Delay},
	}
	if g.o.DisconnectOnExpiry {
		a.Expires = claims.ExpiresAt
	}
	// A recovered session keeps its user: a token of someone else cannot take it over.
	if err := hub.Admit(s, a); errors.Is(err, hub.ErrRecoveryMismatch) {
		g.refused(s.Transport())
		msg := "The session being recovered belongs to another user"
		return &socketio.ConnectError{Message: connectErrorMessage, Data: refusal{Code: CodeRecoveryMismatch, Message: msg}}
	}
	return nil
}

func (g *connGuard) verify(raw json.RawMessage) (*auth.Claims, authPayload, error) {
	var p authPayload
	if tok, ok := onlyToken(raw); ok {
		p.Token = &tok
	} else if len(raw) == 0 || json.Unmarshal(raw, &p) != nil {
		p = authPayload{}
	}
	if p.Token == nil || *p.Token == "" {
		return nil, p, &coded.Error{Code: coded.TokenMissing, Message: "auth.token is required"}
	}
	c, err := g.o.Verifier.Verify(*p.Token)
	return c, p, err
}

func (g *connGuard) refused(transport string) {
	if g.o.Metrics == nil {
		return
	}
	if transport != engineio.TransportWebsocket {
		transport = engineio.TransportPolling // a label from the request stays bounded
	}
	g.o.Metrics.ConnectionsTotal.WithLabelValues("false", transport).Inc()
}

// take counts one more session from ip, or says which limit refuses it.
func (g *connGuard) take(ip string) (status int, code string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.o.MaxConnections > 0 && g.total >= g.o.MaxConnections {
		return http.StatusServiceUnavailable, CodeTooManyConns
	}
	if g.o.MaxConnectionsPerIP > 0 && g.perIP[ip] >= g.o.MaxConnectionsPerIP {
		return http.StatusForbidden, CodeTooManyConnsIP
	}
	g.total++
	g.perIP[ip]++
	return 0, ""
}

func (g *connGuard) release(ip string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.perIP[ip]--; g.perIP[ip] <= 0 {
		delete(g.perIP, ip)
	}
}

// onConnection records an accepted socket in the metrics. Its place in the limits was
// taken at the handshake.
func (g *connGuard) onConnection(s *socketio.Socket) {
	if g.o.Metrics == nil {
		return
	}
	g.o.Metrics.ConnectionsTotal.WithLabelValues("true", s.Transport()).Inc()
	g.o.Metrics.ActiveConnections.Inc()
	s.OnDisconnect(g.goneFn)
}

// onlyToken reads the auth of a first connection, {"token":"..."} and nothing else, without
// encoding/json; ok false for any other text (other members, an escape, a name in another
// case), which is then decoded in full.
func onlyToken(raw []byte) (string, bool) {
	b := bytes.Trim(raw, jsonSpace)
	rest, ok := bytes.CutPrefix(b, []byte(`{`))
	if !ok {
		return "", false
	}
	rest, ok = bytes.CutPrefix(bytes.TrimLeft(rest, jsonSpace), []byte(`"token"`))
	if !ok {
		return "", false
	}
	rest, ok = bytes.CutPrefix(bytes.TrimLeft(rest, jsonSpace), []byte(`:`))
	if !ok {
		return "", false
	}
	rest, ok = bytes.CutPrefix(bytes.TrimLeft(rest, jsonSpace), []byte(`"`))
	if !ok {
		return "", false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return "", false
	}
	tok := rest[:end]
	for _, c := range tok {
		if c == '\\' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(tok) || !bytes.Equal(bytes.Trim(rest[end+1:], jsonSpace), []byte(`}`)) {
		return "", false
	}
	return string(tok), true
}

// jsonSpace is the white space JSON allows between tokens.
const jsonSpace = " \t\r\n"
