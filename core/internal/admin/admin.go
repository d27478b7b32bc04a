// Package admin is the server side of the official Socket.IO Admin UI (@socket.io/admin-ui
// 0.5.x): the /admin namespace with its own login, the figures it reports every two
// seconds, in development mode every socket, room and event of the main namespace as they
// happen, and the UI's actions (join, leave, disconnect, emit) made through the hub's
// Adapter so that they reach sockets wherever the adapter reaches them.
//
// The hooks into the main namespace (SocketConnected, the Adapter wrapper, the
// socketio.Observer) return at once while no admin socket is connected, here or, in a
// cluster (cluster.go), on another node.
//
// Lock order: Admin.mu, then sessions.mu; neither is held while emitting or calling the
// Adapter.
package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/bcrypt"

	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/ratelimit"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// Namespace is where the Admin UI connects.
const Namespace = "/admin"

// The refusals an admin CONNECT may get, as the UI shows them.
const (
	msgInvalidCredentials = "invalid credentials"
	msgTooManyAttempts    = "too many failed attempts, try again later"
)

// Options configures an Admin. Zero values take the defaults shown.
type Options struct {
	Username     string // "admin"
	PasswordHash []byte // bcrypt; required
	ReadOnly     bool   // refuse the UI's actions and do not offer them
	Production   bool   // report aggregated figures only, no per-socket events
	ServerID     string // the hostname
	// IO is the main namespace's server: its sockets are listed and watched.
	IO *socketio.Server
	// ClientIP names the peer of a socket for the failed-login limit; default the
	// remote address's host.
	ClientIP func(s *socketio.Socket) string
	// FailuresPerMinute bounds failed logins per client IP; 10.
	FailuresPerMinute int
	MaxSessions       int           // session ids kept at once, the oldest dropped first; 1000
	SessionTTL        time.Duration // 24h
	StatsInterval     time.Duration // 2s
	Logger            hclog.Logger
}

func (o *Options) defaults() {
	if o.Username == "" {
		o.Username = "admin"
	}
	if o.ServerID == "" {
		o.ServerID, _ = os.Hostname()
	}
	if o.ClientIP == nil {
		o.ClientIP = func(s *socketio.Socket) string {
			host, _, err := net.SplitHostPort(s.RemoteAddr())
			if err != nil {
				return s.RemoteAddr()
			}
			return host
		}
	}
	if o.FailuresPerMinute <= 0 {
		o.FailuresPerMinute = 10
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 1000
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 24 * time.Hour
	}
	if o.StatsInterval <= 0 {
		o.StatsInterval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
}

// Admin serves the /admin namespace.
type Admin struct {
	o        Options
	log      hclog.Logger
	userHash [32]byte
	started  time.Time
	failures *ratelimit.Limiter
	// sharedFailures counts failed logins across the cluster (ShareFailures); nil on a
	// single node.
	sharedFailures SharedLimiter
	// logins bounds the bcrypt comparisons running at once: each takes tens of
	// milliseconds of CPU, on the goroutine that handles the CONNECT.
	logins  chan struct{}
	actions chan struct{} // bounds the UI's actions running at once (actions.go)
	fan     hub.Adapter   // the wrapped adapter (Wrap)
	buf     eventBuffer
	since   sync.Map // *socketio.Socket -> time.Time of its connection

	// watching is the number of admin sockets connected here: the hooks do nothing at 0
	// unless another node's admins watch (remoteUntil).
	watching atomic.Int32

	// In a cluster (cluster.go): the link to the other nodes, the end of the lease another
	// node's admins hold on this node's events (unix nanoseconds), and the queue of events
	// to publish.
	link        Cluster
	remoteUntil atomic.Int64
	pubQ        chan json.RawMessage
	pubStop     chan struct{}
	kick        chan struct{} // cap 1: run the stats loop's round now
	bg          sync.WaitGroup

	mu     sync.Mutex
	admins map[*socketio.Socket]struct{}
	stop   chan struct{} // closes the stats loop; nil while it does not run
	closed bool

	smu      sync.Mutex
	sessions map[[32]byte]time.Time // sha256 of a session id -> its expiry
	blocked  map[string]time.Time   // client IP -> end of its refusal, after too many failures
}

// maxBlocked bounds the IPs refused at once; beyond it the limiter alone still refuses
// them, after a comparison.
const maxBlocked = 10000

// New returns an Admin. Install Authenticate as the /admin namespace's middleware and
// HandleConnection for its sockets, SocketConnected for the main namespace's, wrap the
// hub's adapter with Wrap, and observe the main namespace with IO.Observe(admin).
func New(o Options) (*Admin, error) {
	o.defaults()
	if _, err := bcrypt.Cost(o.PasswordHash); err != nil {
		return nil, errors.New("admin: the password hash is not a bcrypt hash")
	}
	if o.IO == nil {
		return nil, errors.New("admin: no socketio server")
	}
	return &Admin{
		o:        o,
		log:      o.Logger,
		userHash: sha256.Sum256([]byte(o.Username)),
		started:  time.Now(),
		failures: ratelimit.New(o.FailuresPerMinute, time.Minute, 10000),
		logins:   make(chan struct{}, 2),
		actions:  make(chan struct{}, 4),
		admins:   make(map[*socketio.Socket]struct{}),
		sessions: make(map[[32]byte]time.Time),
		blocked:  make(map[string]time.Time),
		kick:     make(chan struct{}, 1),
	}, nil
}

// HashPassword returns the bcrypt hash of a password, as the configuration keeps it.
func HashPassword(password string) ([]byte, error) {
	return bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
}

type credentials struct {
	Username  string `json:"username"`
	Password  string `json:"password"`
	SessionID string `json:"sessionId"`
}

// sessionKey is what the admin socket's session holds once its CONNECT is accepted: the
// session id to hand to the UI when the login was by password.
type sessionKey struct{ issued string }

// Authenticate is the middleware of the /admin namespace: a session id handed out earlier,
// or the username and password; never the clients' JWT.
func (a *Admin) Authenticate(s *socketio.Socket, raw json.RawMessage) error {
	var c credentials
	if len(raw) > 0 && json.Unmarshal(raw, &c) != nil {
		c = credentials{}
	}
	if c.SessionID != "" && a.validSession(c.SessionID) {
		s.SetSession(sessionKey{})
		return nil
	}
	ip := a.o.ClientIP(s)
	if c.Username == "" && c.Password == "" && c.SessionID == "" {
		return &socketio.ConnectError{Message: msgInvalidCredentials}
	}
	if a.isBlocked(ip) {
		return &socketio.ConnectError{Message: msgTooManyAttempts}
	}
	// The comparison runs here, on the goroutine handling the CONNECT: the server's
	// handlers are promised not to block, so at most cap(logins) run at once and an IP
	// past its failures gets no more of them until its refusal ends.
	select {
	case a.logins <- struct{}{}:
	default:
		return &socketio.ConnectError{Message: msgTooManyAttempts}
	}
	ok := a.checkPassword(c.Username, c.Password)
	<-a.logins
	if !ok {
		if r := a.failed(ip); !r.Allowed {
			a.block(ip, r.RetryAfter)
			a.log.Warn("admin login refused: too many failures", "ip", ip)
			return &socketio.ConnectError{Message: msgTooManyAttempts}
		}
		a.log.Info("admin login failed", "ip", ip)
		return &socketio.ConnectError{Message: msgInvalidCredentials}
	}
	id := a.newSession()
	a.shareSession(id)
	s.SetSession(sessionKey{issued: id})
	a.log.Info("admin logged in", "ip", ip)
	return nil
}

// checkPassword compares in constant time: the username through its hash, and the
// password with bcrypt, which runs whether or not the username matched.
func (a *Admin) checkPassword(user, password string) bool {
	uh := sha256.Sum256([]byte(user))
	userOK := subtle.ConstantTimeCompare(uh[:], a.userHash[:]) == 1
	passOK := bcrypt.CompareHashAndPassword(a.o.PasswordHash, []byte(password)) == nil
	return userOK && passOK
}

// newSession records and returns a new session id. Only its hash is kept, so that a
// lookup compares hashes rather than the secret itself.
func (a *Admin) newSession() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	now := time.Now()
	a.smu.Lock()
	defer a.smu.Unlock()
	for k, exp := range a.sessions {
		if now.After(exp) {
			delete(a.sessions, k)
		}
	}
	if len(a.sessions) >= a.o.MaxSessions {
		var oldest [32]byte
		var first time.Time
		for k, exp := range a.sessions {
			if first.IsZero() || exp.Before(first) {
				oldest, first = k, exp
			}
		}
		delete(a.sessions, oldest)
	}
	k := sha256.Sum256([]byte(id))
	a.sessions[k] = now.Add(a.o.SessionTTL)
	return id
}

// shareSession records a session id for the other nodes of the cluster. Without Redis the
// session still logs in on this node.
func (a *Admin) shareSession(id string) {
	if a.link == nil {
		return
	}
	if err := a.link.SaveSession(sha256.Sum256([]byte(id)), a.o.SessionTTL); err != nil {
		a.log.Warn("admin session not shared with the cluster: it logs in on this node only", "error", err)
	}
}

func (a *Admin) isBlocked(ip string) bool {
	a.smu.Lock()
	defer a.smu.Unlock()
	until, ok := a.blocked[ip]
	if ok && time.Now().After(until) {
		delete(a.blocked, ip)
		return false
	}
	return ok
}

func (a *Admin) block(ip string, d time.Duration) {
	now := time.Now()
	a.smu.Lock()
	defer a.smu.Unlock()
	if len(a.blocked) >= maxBlocked {
		for k, until := range a.blocked {
			if now.After(until) {
				delete(a.blocked, k)
			}
		}
	}
	if len(a.blocked) < maxBlocked {
		a.blocked[ip] = now.Add(d)
	}
}

func (a *Admin) validSession(id string) bool {
	if len(id) > 128 {
		return false
	}
	k := sha256.Sum256([]byte(id))
	a.smu.Lock()
	exp, ok := a.sessions[k]
	if ok && time.Now().After(exp) {
		delete(a.sessions, k)
		ok = false
	}
	a.smu.Unlock()
	if ok || a.link == nil || !issuedShape(id) {
		return ok
	}
	// A session handed out by another node of the cluster.
	found, err := a.link.SessionExists(k)
	if err != nil {
		a.log.Warn("admin session not checked in the cluster", "error", err)
	}
	return found
}

// issuedShape reports whether id looks like a session id newSession hands out (32 lower-case
// hex digits): no other is looked up in the cluster.
func issuedShape(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// features lists what the UI may offer.
func (a *Admin) features() []string {
	var f []string
	if !a.o.ReadOnly {
		f = append(f, "EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT")
	}
	f = append(f, "AGGREGATED_EVENTS")
	if !a.o.Production {
		f = append(f, "ALL_EVENTS")
	}
	return f
}

// HandleConnection sets up an accepted admin socket: its session id when it logged in by
// password, the config, the sockets (development), the first figures, and its actions.
func (a *Admin) HandleConnection(s *socketio.Socket) {
	if k, ok := s.Session().(sessionKey); ok && k.issued != "" {
		_ = s.Emit("session", k.issued)
	}
	_ = s.Emit("config", map[string]any{"supportedFeatures": a.features()})
	a.registerActions(s)
	a.mu.Lock()
	a.admins[s] = struct{}{}
	a.watching.Store(int32(len(a.admins)))
	first := len(a.admins) == 1
	a.ensureLoopLocked()
	a.mu.Unlock()
	if first && a.link != nil {
		// The other nodes learn at once that someone watches, and report to this node.
		a.kickLoop()
	}
	s.OnDisconnect(func(s *socketio.Socket, _ string) {
		a.mu.Lock()
		delete(a.admins, s)
		a.watching.Store(int32(len(a.admins)))
		if len(a.admins) == 0 && a.stop != nil && !a.remoteWatching() {
			close(a.stop)
			a.stop = nil
		}
		a.mu.Unlock()
	})
	if !a.o.Production {
		if a.link == nil {
			_ = s.Emit("all_sockets", a.allSockets())
		} else {
			a.clusterSockets(s)
		}
	}
	_ = s.Emit("server_stats", a.stats(false))
}

// adminSockets returns the connected admin sockets, to emit to without the lock.
func (a *Admin) adminSockets() []*socketio.Socket {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*socketio.Socket, 0, len(a.admins))
	for s := range a.admins {
		out = append(out, s)
	}
	return out
}

// broadcast emits to every admin socket of this node and, while another node's admins
// watch, to theirs.
func (a *Admin) broadcast(event string, args ...any) {
	a.emitLocal(event, args...)
	if a.link != nil && a.remoteWatching() {
		a.publishEvent(event, args)
	}
}

// emitLocal emits to this node's admin sockets.
func (a *Admin) emitLocal(event string, args ...any) {
	for _, s := range a.adminSockets() {
		_ = s.Emit(event, args...)
	}
}

// ensureLoopLocked starts the stats loop unless it runs; a.mu is held.
func (a *Admin) ensureLoopLocked() {
	if a.stop == nil && !a.closed {
		a.stop = make(chan struct{})
		a.bg.Add(1)
		go a.statsLoop(a.stop)
	}
}

// kickLoop has the stats loop run a round now rather than at its next tick.
func (a *Admin) kickLoop() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// statsLoop reports this node's figures every StatsInterval while admins watch, here or
// on another node; it ends when nobody does.
func (a *Admin) statsLoop(stop chan struct{}) {
	defer a.bg.Done()
	t := time.NewTicker(a.o.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		case <-a.kick:
		}
		a.endLease()
		a.mu.Lock()
		local := len(a.admins) > 0
		if !local && !a.remoteWatching() {
			if a.stop == stop {
				a.stop = nil
			}
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		a.transportUpdates()
		st := a.stats(true)
		if local {
			a.emitLocal("server_stats", st)
		}
		if a.link != nil {
			a.publishStats(st, local)
		}
	}
}

type namespaceDetails struct {
	Name         string `json:"name"`
	SocketsCount int    `json:"socketsCount"`
}

type serverStats struct {
	ServerID            string             `json:"serverId"`
	Hostname            string             `json:"hostname"`
	PID                 int                `json:"pid"`
	Uptime              float64            `json:"uptime"`
	ClientsCount        int                `json:"clientsCount"`
	PollingClientsCount int                `json:"pollingClientsCount"`
	AggregatedEvents    []aggregatedEvent  `json:"aggregatedEvents"`
	Namespaces          []namespaceDetails `json:"namespaces"`
}

// stats are this node's figures; with take, the aggregated events since the last take
// (the first figures a new admin gets carry none, leaving them to the next round).
func (a *Admin) stats(take bool) serverStats {
	host, _ := os.Hostname()
	socks := a.o.IO.Sockets()
	polling := 0
	for _, s := range socks {
		if s.Transport() == "polling" {
			polling++
		}
	}
	st := serverStats{
		ServerID:            a.o.ServerID,
		Hostname:            host,
		PID:                 os.Getpid(),
		Uptime:              time.Since(a.started).Seconds(),
		ClientsCount:        len(socks),
		PollingClientsCount: polling,
		AggregatedEvents:    []aggregatedEvent{},
		Namespaces: []namespaceDetails{
			{Name: "/", SocketsCount: len(socks)},
			{Name: Namespace, SocketsCount: int(a.watching.Load())},
		},
	}
	if take {
		st.AggregatedEvents = a.buf.take()
	}
	return st
}
