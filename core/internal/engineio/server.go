package engineio

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

// Error codes of the reference server, sent as {"code":N,"message":"..."}.
const (
	codeUnknownTransport    = 0
	codeUnknownSID          = 1
	codeBadHandshakeMethod  = 2
	codeBadRequest          = 3
	codeForbidden           = 4
	codeUnsupportedProtocol = 5
)

var errorMessages = [...]string{
	codeUnknownTransport:    "Transport unknown",
	codeUnknownSID:          "Session ID unknown",
	codeBadHandshakeMethod:  "Bad handshake method",
	codeBadRequest:          "Bad request",
	codeForbidden:           "Forbidden",
	codeUnsupportedProtocol: "Unsupported protocol version",
}

// upgradeTimeout bounds how long a probing websocket may wait for the upgrade packet.
const upgradeTimeout = 10 * time.Second

// Server is the Engine.IO endpoint: mount ServeHTTP at Options.Path.
type Server struct {
	opts      Options
	handler   Handler
	log       hclog.Logger
	upgrader  *websocket.Upgrader
	handshake []byte // handshake JSON after the sid, identical for every session of a transport
	wsOnly    []byte

	hb *heartbeats

	mu       sync.Mutex
	sessions map[string]*Conn
	closed   bool
	open     atomic.Int64
}

// NewServer returns a Server with o's zero fields set to their defaults.
func NewServer(o Options, h Handler) *Server {
	o = o.withDefaults()
	if o.Admit != nil {
		h = admittedHandler{h}
	}
	s := &Server{opts: o, handler: h, log: o.Logger, hb: newHeartbeats(), sessions: map[string]*Conn{}}
	upgrades := `[]`
	if o.AllowUpgrades && s.allows(TransportWebsocket) && s.allows(TransportPolling) {
		upgrades = `["websocket"]`
	}
	tail := `,"pingInterval":` + strconv.FormatInt(o.PingInterval.Milliseconds(), 10) +
		`,"pingTimeout":` + strconv.FormatInt(o.PingTimeout.Milliseconds(), 10) +
		`,"maxPayload":` + strconv.Itoa(o.MaxPayload) + `}`
	s.handshake = []byte(`","upgrades":` + upgrades + tail)
	s.wsOnly = []byte(`","upgrades":[]` + tail)
	s.upgrader = s.newUpgrader()
	return s
}

// Options returns the effective options (defaults applied).
func (s *Server) Options() Options { return s.opts }

func (s *Server) allows(transport string) bool { return slices.Contains(s.opts.Transports, transport) }

// ServeHTTP answers every Engine.IO request, in the order the reference server checks them:
// CORS and preflight, transport, protocol version, origin, then the session or handshake.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.cors(w, r) {
		writeError(w, http.StatusForbidden, codeForbidden)
		return
	}
	if r.Method == http.MethodOptions && len(s.opts.AllowedOrigins) > 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	q := r.URL.RawQuery
	transport := queryGet(q, "transport")
	if !s.allows(transport) {
		writeError(w, http.StatusBadRequest, codeUnknownTransport)
		return
	}
	if queryGet(q, "EIO") != "4" {
		writeError(w, http.StatusBadRequest, codeUnsupportedProtocol)
		return
	}
	isWS := transport == TransportWebsocket
	if isWS && !isWebsocketUpgrade(r) {
		writeError(w, http.StatusBadRequest, codeBadRequest)
		return
	}
	if sid := queryGet(q, "sid"); sid != "" {
		c := s.session(sid)
		if c == nil {
			writeError(w, http.StatusBadRequest, codeUnknownSID)
			return
		}
		if isWS {
			s.serveUpgrade(c, w, r)
			return
		}
		c.servePolling(w, r)
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusBadRequest, codeBadHandshakeMethod)
		return
	}
	release, ok := s.admit(w, r)
	if !ok {
		return
	}
	if isWS {
		s.serveWebsocketHandshake(w, r, release)
		return
	}
	s.servePollingHandshake(w, r, release)
}

// admit asks Options.Admit about a handshake; false means it was refused and answered.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (func(), bool) {
	if s.opts.Admit == nil {
		return nil, true
	}
	release, refusal := s.opts.Admit(r)
	if refusal == nil {
		return release, true
	}
	if refusal.RetryAfter > 0 {
		secs := (refusal.RetryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	if refusal.Body != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(refusal.Body)))
		w.WriteHeader(refusal.Status)
		_, _ = w.Write(refusal.Body)
		return nil, false
	}
	msg := refusal.Message
	if msg == "" {
		msg = errorMessages[codeForbidden]
	}
	writeErrorMessage(w, refusal.Status, codeForbidden, msg)
	return nil, false
}

// admittedHandler gives back what Options.Admit took once a session's OnClose has run.
// Sessions that never reach OnOpen never get OnClose: their handshake releases instead
// (see started).
type admittedHandler struct{ Handler }

func (h admittedHandler) OnOpen(c *Conn) {
	c.opened = true
	h.Handler.OnOpen(c)
}

func (h admittedHandler) OnClose(c *Conn, reason string) {
	defer c.releaseAdmission() // even if OnClose panics
	h.Handler.OnClose(c, reason)
}

// releaseAdmission calls the session's Admit release, once.
func (c *Conn) releaseAdmission() {
	if f := c.admitted.Swap(nil); f != nil {
		(*f)()
	}
}

// started runs the session's start (OnOpen) from its handshake; a session closed before
// OnOpen gets no OnClose, so what it was admitted with is given back here.
func (c *Conn) started() {
	c.start()
	if !c.opened {
		c.releaseAdmission()
	}
}

// cors sets the CORS headers when the request's Origin is allowed; it reports false when
// origins are configured and this one is not (websocket upgrades bypass browser CORS, so
// the server itself must refuse them). Requests without Origin are not from a browser.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	if len(s.opts.AllowedOrigins) == 0 {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !slices.Contains(s.opts.AllowedOrigins, "*") && !slices.Contains(s.opts.AllowedOrigins, origin) {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
			h.Add("Vary", "Access-Control-Request-Headers")
		}
		h.Set("Access-Control-Max-Age", "86400")
	}
	return true
}

func isWebsocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// writeError answers like the reference server: a JSON body with code and message.
func writeError(w http.ResponseWriter, status, code int) {
	writeErrorMessage(w, status, code, errorMessages[code])
}

func writeErrorMessage(w http.ResponseWriter, status, code int, msg string) {
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) session(sid string) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[sid]
}

// register creates a session and makes it routable; nil once the server is closed (then
// release has been called). The session's inMu is held until start releases it.
func (s *Server) register(r *http.Request, transport uint8, release func()) *Conn {
	c := &Conn{srv: s, id: newSID(), hs: newHandshake(r), transport: transport}
	c.hbIdx = -1
	c.inLeft.Store(-1)
	if s.opts.InboundLimit > 0 {
		c.inLeft.Store(int64(s.opts.InboundLimit))
	}
	if release != nil {
		c.admitted.Store(&release)
	}
	c.inMu.Lock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.inMu.Unlock()
		if release != nil {
			release()
		}
		return nil
	}
	s.sessions[c.id] = c
	s.open.Add(1)
	return c
}

func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	if s.sessions[c.id] == c {
		delete(s.sessions, c.id)
	}
	s.mu.Unlock()
}

// openJSON builds the handshake data (the open packet's JSON) for c.
func (s *Server) openJSON(c *Conn, wsOnly bool) []byte {
	tail := s.handshake
	if wsOnly {
		tail = s.wsOnly
	}
	b := make([]byte, 0, 10+len(c.id)+len(tail))
	b = append(b, `{"sid":"`...)
	b = append(b, c.id...)
	return append(b, tail...)
}

func (s *Server) servePollingHandshake(w http.ResponseWriter, r *http.Request, release func()) {
	c := s.register(r, transportPolling, release)
	if c == nil {
		writeError(w, http.StatusServiceUnavailable, codeBadRequest)
		return
	}
	open := newPacket(packetOpen, s.openJSON(c, !s.opts.AllowUpgrades || !s.allows(TransportWebsocket)))
	writePayload(w, open.pollEncoding())
	c.started()
}

// Close closes every session with reason "server shutting down" and refuses new ones.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	all := make([]*Conn, 0, len(s.sessions))
	for _, c := range s.sessions {
		all = append(all, c)
	}
	s.mu.Unlock()
	for _, c := range all {
		c.Close(ReasonShutdown)
	}
}

// Count returns the number of open sessions.
func (s *Server) Count() int { return int(s.open.Load()) }

// newSID returns 20 url-safe characters from 120 random bits, like the reference base64id.
func newSID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
