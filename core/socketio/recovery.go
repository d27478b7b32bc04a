package socketio

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rtserver/rtserver/core/engineio"
)

// Connection state recovery, following the official server's convention:
//
//   - Every plain outbound EVENT (no ack id) is given an offset, appended as its last
//     argument, and is recorded in one server-wide log. The client remembers the last
//     offset it saw.
//   - The CONNECT reply carries {"sid", "pid"}; pid is a private session id.
//   - When a socket drops for a transport reason (not a deliberate disconnect), its id,
//     rooms and Set/Get data are kept under its pid for MaxDisconnection.
//   - A CONNECT whose auth holds {"pid","offset"} of a kept session gets the same id,
//     rooms and data back (Socket.Recovered), the same pid in the CONNECT reply, and every
//     logged packet after offset that its rooms would have received, in order, right after
//     the CONNECT reply.
//
// Memory is bounded: the log is a ring of MaxTotalPackets encoded packets (shared with the
// deliveries, so a packet costs its bytes once), a session whose missed packets exceed
// MaxPackets or whose offset fell out of the ring is not recovered, and at most MaxSessions
// disconnected sessions are kept.
//
// Broadcasts are serialised by recovery.mu so that offsets reach every socket in log
// order; recovery.mu is taken before Server.mu.

type recovery struct {
	opts   RecoveryOptions
	prefix string // random per process: offsets from another run never match

	mu       sync.Mutex
	seq      uint64   // seq of the newest logged packet
	ring     []logged // len == MaxTotalPackets once full
	start    int      // index of the oldest entry
	n        int
	sessions map[string]*savedSession
	persists int
}

type logged struct {
	seq    uint64
	rooms  []string
	except []string
	// The encoded packet and its attachments; replays wrap them in fresh Messages, so the
	// delivered ones (with their cached websocket frames) are not kept alive by the log.
	data []byte
	atts [][]byte
}

type savedSession struct {
	id, pid string
	rooms   []string
	data    map[string]any
	at      time.Time
	offset  uint64
}

func newRecovery(o RecoveryOptions) *recovery {
	return &recovery{
		opts:     o,
		prefix:   newID()[:8] + "-",
		sessions: make(map[string]*savedSession),
	}
}

func (r *recovery) stop() {
	r.mu.Lock()
	r.ring, r.start, r.n = nil, 0, 0
	clear(r.sessions)
	r.mu.Unlock()
}

// broadcast encodes the event once with the next offset, logs it and queues it to every
// recipient under r.mu (so offsets reach each socket in log order); the writes happen
// outside the lock (flush.go).
func (r *recovery) broadcast(srv *Server, rooms, except []string, event string, args []any) (int, error) {
	r.mu.Lock()
	seq := r.seq + 1
	enc, err := encodePacket(PacketEvent, 0, false, &event, args, r.prefix+strconv.FormatUint(seq, 36))
	if err != nil {
		r.mu.Unlock()
		return 0, err
	}
	r.seq = seq
	msgs := enc.messages()
	tp := srv.getTargets()
	srv.mu.RLock()
	*tp = srv.collect(*tp, rooms, except)
	srv.mu.RUnlock()
	r.appendLocked(logged{seq: seq, rooms: slices.Clone(rooms), except: slices.Clone(except), data: enc.data(), atts: enc.atts})
	started := srv.getTargets()
	n := queueTo(*tp, msgs, started)
	r.mu.Unlock()
	srv.putTargets(tp)
	srv.fl.write(*started, size(msgs))
	srv.putTargets(started)
	return n, nil
}

func (r *recovery) appendLocked(e logged) {
	max := r.opts.MaxTotalPackets
	if r.n < max {
		if len(r.ring) < max {
			r.ring = append(r.ring, e)
		} else {
			r.ring[(r.start+r.n)%max] = e
		}
		r.n++
		return
	}
	r.ring[r.start] = e
	r.start = (r.start + 1) % max
}

// parseOffset returns the seq of an offset this process issued.
func (r *recovery) parseOffset(off string) (uint64, bool) {
	rest, ok := strings.CutPrefix(off, r.prefix)
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 36, 64)
	return seq, err == nil
}

// recoverable reports whether a socket closed for reason may come back.
func recoverable(reason string) bool {
	switch reason {
	case engineio.ReasonTransportClose, engineio.ReasonTransportError, engineio.ReasonPingTimeout,
		engineio.ReasonShutdown, engineio.ReasonBufferFull, engineio.ReasonForcedClose:
		return true
	}
	return false
}

// persist keeps a dropped socket's state under its pid. Called from onClose before the
// socket leaves the indexes.
func (r *recovery) persist(s *Socket, reason string) {
	s.mu.Lock()
	deliberate := s.closeReason != ""
	data := make(map[string]any, len(s.data))
	for k, v := range s.data {
		data[k] = v
	}
	s.mu.Unlock()
	if deliberate || !recoverable(reason) || s.pid == "" {
		return
	}
	s.srv.mu.RLock()
	rooms := make([]string, 0, len(s.rooms))
	for room := range s.rooms {
		rooms = append(rooms, room)
	}
	s.srv.mu.RUnlock()
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.persists++
	if len(r.sessions) >= r.opts.MaxSessions || r.persists%256 == 0 {
		r.sweepLocked(now)
	}
	if len(r.sessions) >= r.opts.MaxSessions {
		return
	}
	r.sessions[s.pid] = &savedSession{id: s.id, pid: s.pid, rooms: rooms, data: data, at: now}
}

func (r *recovery) sweepLocked(now time.Time) {
	for pid, ss := range r.sessions {
		if now.Sub(ss.at) > r.opts.MaxDisconnection {
			delete(r.sessions, pid)
		}
	}
}

// takeSession removes and returns the session named by auth's pid when it can be
// recovered from auth's offset; nil otherwise.
func (r *recovery) takeSession(auth []byte) *savedSession {
	var a struct {
		PID    string `json:"pid"`
		Offset string `json:"offset"`
	}
	if json.Unmarshal(auth, &a) != nil || a.PID == "" || a.Offset == "" {
		return nil
	}
	seq, ok := r.parseOffset(a.Offset)
	if !ok {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ss := r.sessions[a.PID]
	if ss == nil {
		return nil
	}
	delete(r.sessions, a.PID)
	if time.Since(ss.at) > r.opts.MaxDisconnection {
		return nil
	}
	ss.offset = seq
	if _, ok := r.missedLocked(ss); !ok {
		if r.opts.OnOverflow != nil {
			r.opts.OnOverflow()
		}
		return nil
	}
	return ss
}

// missedLocked returns the logged packets after ss.offset that ss's rooms would have
// received, or false when they cannot all be replayed.
func (r *recovery) missedLocked(ss *savedSession) ([]*engineio.Message, bool) {
	if ss.offset > r.seq {
		return nil, false
	}
	if ss.offset == r.seq {
		return nil, true
	}
	if r.n == 0 || r.ring[r.start].seq > ss.offset+1 {
		return nil, false // the packets right after the offset were dropped from the ring
	}
	in := func(room string) bool { return room == ss.id || slices.Contains(ss.rooms, room) }
	var out []*engineio.Message
	count := 0
	first := int(ss.offset + 1 - r.ring[r.start].seq)
	for i := first; i < r.n; i++ {
		e := &r.ring[(r.start+i)%len(r.ring)]
		if len(e.rooms) > 0 && !slices.ContainsFunc(e.rooms, in) {
			continue
		}
		if slices.ContainsFunc(e.except, in) {
			continue
		}
		if count++; count > r.opts.MaxPackets {
			return nil, false
		}
		// No room in front of the logged text (it was framed in place when first sent):
		// the replay's frame is a copy.
		out = append(out, encoded{buf: e.data, atts: e.atts}.messages()...)
	}
	return out, true
}

// accept records s like Server.accept, replaying what a restored session missed. A
// session that can no longer be replayed (the ring moved on during middleware) is
// accepted as a fresh one with a new pid.
func (r *recovery) accept(s *Socket, restored *savedSession) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	var replay []*engineio.Message
	if restored != nil {
		missed, ok := r.missedLocked(restored)
		if ok {
			replay = missed
		} else {
			restored = nil
			s.pid = newID()
		}
	}
	return s.srv.accept(s, restored, replay...)
}
