package hub

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/rtserver/rtserver/core/internal/socketio"
)

// session is the hub's state of one socket, in the socket's session slot
// (socketio.Socket.SetSession). Admit makes it at CONNECT from what the connection guard
// learned; HandleConnection completes it; the disconnect ends it. Connection state
// recovery hands the session of the dropped connection to the one that continues it, which
// takes its user and registration from it (resume) and starts everything else afresh.
type session struct {
	// Set before the socket is published, read-only afterwards.
	userID   string // the token's user
	clientIP string
	// What Admit learned that only HandleConnection reads: nil when there is nothing
	// (a first connection whose token does not expire), and dropped once read, so that
	// an idle socket keeps neither.
	start *sessionStart

	mu     sync.Mutex  // guards the fields below; a leaf: nothing is called while it is held
	expiry *time.Timer // started by HandleConnection, stopped at the disconnect
	// The flags and the count share one word: there is a session per idle socket, and
	// apart they would pad the record into the next size class.
	registered bool  // register succeeded (kept across recovery)
	counted    bool  // counted in its user (Hub.users)
	running    bool  // a client:* request is running (queue)
	gone       bool  // the socket disconnected
	refused    int32 // events refused in a row by the rate limit; stops growing at its maximum
	// The socket's client:* requests: one runs at a time, the others wait in queue, so
	// replies keep the order of requests, with no goroutine while idle.
	queue  []func()
	ctx    context.Context
	cancel context.CancelFunc
}

// Reconnect is what a client said of its reconnection in the CONNECT auth payload.
type Reconnect struct {
	AskedRecovery bool // it sent the private session id of an earlier connection
	Attempt       int  // the client's reconnection attempt number (0: a first connection)
	Delay         int  // the delay before that attempt, in milliseconds
}

// Admission is what the connection guard learned of a socket at CONNECT.
type Admission struct {
	UserID    string // from the verified token
	ClientIP  string
	Reconnect Reconnect
	Expires   time.Time // when to disconnect the socket (the token's expiry); zero: never
}

// ErrRecoveryMismatch refuses a CONNECT that would recover another user's session.
var ErrRecoveryMismatch = errors.New("the session being recovered belongs to another user")

// Admit records who a connecting socket is; the connection guard calls it from its CONNECT
// middleware once the token is verified. A socket that recovers a session keeps its user: a
// token of someone else cannot take it over (ErrRecoveryMismatch).
func Admit(s *socketio.Socket, a Admission) error {
	ss := &session{userID: a.UserID, clientIP: a.ClientIP}
	if a.Reconnect != (Reconnect{}) || !a.Expires.IsZero() {
		ss.start = &sessionStart{reconnect: a.Reconnect, expires: a.Expires}
	}
	if prev := sessionOf(s); prev != nil {
		if prev.userID != "" && prev.userID != a.UserID {
			return ErrRecoveryMismatch
		}
		ss.registered = prev.isRegistered()
	}
	s.SetSession(ss)
	return nil
}

// sessionStart is the part of an Admission that HandleConnection uses once.
type sessionStart struct {
	reconnect Reconnect
	expires   time.Time // disconnect the socket then; zero: never
}

// sessionOf returns the hub's session of s; nil before Admit (or HandleConnection).
func sessionOf(s *socketio.Socket) *session {
	ss, _ := s.Session().(*session)
	return ss
}

func (ss *session) isRegistered() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.registered
}

// countRefused counts an event refused by the rate limit (refused) or one let through, and
// returns the number refused in a row.
func (ss *session) countRefused(refused bool) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !refused {
		ss.refused = 0
	} else if ss.refused < math.MaxInt32 {
		ss.refused++
	}
	return int(ss.refused)
}

// begin completes the session of an accepted socket: a recovered one is counted in its
// user again (its user room came back with its rooms); one that asked to recover and was
// not starts unregistered; the token's expiry is armed.
func (h *Hub) begin(s *socketio.Socket, ss *session) {
	if s.Recovered() {
		h.countSession(ss)
	} else {
		ss.mu.Lock()
		ss.registered = false
		ss.mu.Unlock()
	}
	if ss.start != nil && !ss.start.expires.IsZero() {
		t := time.AfterFunc(time.Until(ss.start.expires), s.Disconnect)
		ss.mu.Lock()
		ss.expiry = t
		ss.mu.Unlock()
	}
}

// end closes the session of a socket that disconnected: its requests end, its user loses
// it, its expiry timer stops.
func (h *Hub) end(ss *session) {
	ss.mu.Lock()
	ss.gone = true
	t := ss.expiry
	ss.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	ss.endRequests()
	h.uncountSession(ss)
}
