package socketio

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// Connection state recovery, following the official server's convention:
//
//   - Every plain outbound EVENT (no ack id) is given an offset, appended as its last
//     argument, and is recorded in one server-wide log. The client remembers the last
//     offset it saw.
//   - The CONNECT reply carries {"sid", "pid"}; pid is a private session id.
//   - When a socket drops for a transport reason (not a deliberate disconnect), its id,
//     rooms and session (SetSession) are kept under its pid for MaxDisconnection.
//   - A CONNECT whose auth holds {"pid","offset"} of a kept session gets the same id,
//     rooms and session back (Socket.Recovered), the same pid in the CONNECT reply, and every
//     logged packet after offset that its rooms would have received, in order, right after
//     the CONNECT reply.
//
// Memory is bounded: the log is a ring of at most MaxTotalPackets encoded packets and
// MaxTotalBytes bytes (the oldest leave first), a session whose missed packets exceed
// MaxPackets or whose offset fell out of the ring is not recovered, and at most MaxSessions
// disconnected sessions are kept.
//
// The log is also bounded in age (see maxAge): on an idle server the packets of every
// socket's first moments (a welcome, say) would otherwise stay until pushed out by newer
// ones. A periodic sweep drops the entries past that age, forgets kept sessions past
// MaxDisconnection and shrinks a ring that emptied. Ages are counted in sweeps (epochs),
// so that logging a packet reads no clock.
//
// A kept session's id stays reserved (Server.kept) until the session is taken or swept, so
// no other socket can join the room named by that id while its owner is away and then
// receive the owner's events once it comes back.
//
// Broadcasts are serialised by recovery.mu so that offsets reach every socket in log
// order; recovery.mu is taken before Server.mu.

type recovery struct {
	opts   RecoveryOptions
	srv    *Server
	prefix string // random per process: offsets from another run never match

	every time.Duration // the period of the sweep (tick)
	span  uint64        // an entry logged in epoch e is dropped by the sweep that starts e+span

	mu       sync.Mutex
	sweep    *time.Timer // the periodic sweep; nil once stopped
	epoch    uint64      // sweeps so far
	seq      uint64      // seq of the newest logged packet
	ring     []logged    // len == MaxTotalPackets once full
	chunk    *logChunk   // where short packets' text is copied (keepLocked)
	start    int         // index of the oldest entry
	first    uint64      // seq of the oldest entry, when n > 0; the seqs in the ring follow on
	n        int
	bytes    int    // kept by the ring's entries (logged.cost)
	lost     uint64 // newest seq that left the log for a bound other than age
	sessions map[string]*savedSession
	persists int

	sh   *shared // nil unless RecoveryOptions.Shared (shared.go)
	last string  // with sh: the newest offset delivered here, or the store's at start
}

// logged is one entry of the log. The ring holds one per packet (two per socket on a
// server that welcomes each socket and answers its register, so the slot's size counts
// per idle connection): the common case, a packet for one room (a socket's own) with no
// exceptions, attachments or store offset, is held in the slot alone, and the rest goes
// behind more.
type logged struct {
	// The epoch it was logged in, or last replayed in (touchLocked): it never
	// decreases from the oldest entry to the newest.
	epoch uint64
	// The encoded packet (text); replays wrap it in fresh Messages, so the delivered
	// ones (with their cached websocket frames) are not kept alive by the log. A short
	// one is n bytes at at of a chunk shared with its neighbours in the ring
	// (keepLocked); a long one, n == 0, is the whole of a chunk of its own. Two words
	// rather than a slice's three.
	chunk *logChunk
	at, n uint32
	// The only room, when the packet went to exactly one ("" otherwise); an array so
	// that rooms can return it as a slice without an allocation.
	room [1]string
	more *loggedMore // nil when off, except and atts are empty and rooms has at most one room
}

// logChunk holds the text of logged packets.
type logChunk struct{ b []byte }

// text is the encoded packet.
func (e *logged) text() []byte {
	switch {
	case e.chunk == nil:
		return nil
	case e.n == 0:
		return e.chunk.b
	}
	end := e.at + e.n
	return e.chunk.b[e.at:end:end]
}

// loggedMore is what an entry that does not fit its slot keeps.
type loggedMore struct {
	off    string // the shared store's offset (shared.go); empty in memory
	rooms  []string
	except []string
	atts   [][]byte
	whole  bool // the text still ends with its offset (see trimmed)
}

// trimmed reports whether the text is kept without its trailing offset argument, which
// the log rebuilds from the entry's seq (offsetSuffix): every packet of the in-memory
// log, whose offsets are its own. A shared store's entries keep theirs.
func (e *logged) trimmed() bool { return e.more == nil || !e.more.whole }

// newLogged is the entry of a packet sent to rooms (every socket when none) but except,
// under the shared store's offset off; data is set by appendLocked.
func newLogged(off string, rooms, except []string, atts [][]byte) logged {
	if off == "" && len(except) == 0 && len(atts) == 0 && len(rooms) <= 1 && (len(rooms) == 0 || rooms[0] != "") {
		var e logged
		if len(rooms) == 1 {
			e.room[0] = rooms[0]
		}
		return e
	}
	return logged{more: &loggedMore{off: off, rooms: slices.Clone(rooms), except: slices.Clone(except), atts: atts, whole: off != ""}}
}

// rooms is what the packet was sent to; none: every socket. Valid while the entry is.
func (e *logged) rooms() []string {
	if e.more != nil {
		return e.more.rooms
	}
	if e.room[0] == "" {
		return nil
	}
	return e.room[:]
}

func (e *logged) except() []string {
	if e.more == nil {
		return nil
	}
	return e.more.except
}

func (e *logged) atts() [][]byte {
	if e.more == nil {
		return nil
	}
	return e.more.atts
}

func (e *logged) off() string {
	if e.more == nil {
		return ""
	}
	return e.more.off
}

type savedSession struct {
	id, pid string
	rooms   []string
	session any
	at      time.Time
	offset  uint64
	shared  *restore // read from the shared store (shared.go)
}

func newRecovery(srv *Server, o RecoveryOptions) *recovery {
	r := &recovery{
		opts:     o,
		srv:      srv,
		prefix:   newID()[:8] + "-",
		sessions: make(map[string]*savedSession),
	}
	age := maxAge(o, srv.opts)
	r.every = min(30*time.Second, max(time.Second, age/4))
	// An entry of epoch e was logged before sweep e+1 started, and sweeps start at least
	// every apart (each arms the next when done): when sweep e+span starts, the entry is
	// at least (span-1)*every old, which span makes at least maxAge. It is dropped then,
	// at most two periods later than its age alone would allow.
	r.span = uint64((age+r.every-1)/r.every) + 1
	r.mu.Lock()
	r.sweep = time.AfterFunc(r.every, r.tick)
	r.mu.Unlock()
	return r
}

// ageSlack covers the latency of the heartbeat's timer and of connect middlewares
// between a session's take and its acceptance.
const ageSlack = 10 * time.Second

// maxAge is how long a logged packet may still be replayed to a session that can be
// recovered. A packet queued to a socket at t has reached the client, or the session
// is closed for a ping timeout, by t + PingInterval + 2*PingTimeout: the pong to a ping
// sent before t proves nothing about the packet, the next ping goes out PingInterval
// after that pong (at most PingTimeout after t) and its pong is due PingTimeout later.
// The closed session is then kept for MaxDisconnection at most. A replay counts as a
// queueing (touchLocked), so a session recovered and dropped again before it read its
// replay is covered too.
func maxAge(o RecoveryOptions, so Options) time.Duration {
	return o.MaxDisconnection + so.PingInterval + 2*so.PingTimeout + ageSlack
}

func (r *recovery) stop() {
	r.mu.Lock()
	if r.sweep != nil {
		r.sweep.Stop()
		r.sweep = nil
	}
	r.ring, r.start, r.n, r.bytes, r.chunk = nil, 0, 0, 0, nil
	clear(r.sessions)
	r.srv.mu.Lock()
	clear(r.srv.kept)
	r.srv.mu.Unlock()
	r.mu.Unlock()
}

// costLocked is what entry e, logged as seq, keeps alive, roughly: its bytes and its
// bookkeeping. A trimmed text counts with its offset, as it was sent.
func (r *recovery) costLocked(e *logged, seq uint64) int {
	n := len(e.text())
	if e.trimmed() {
		var sb [40]byte
		n += len(r.offsetSuffix(sb[:0], seq))
	}
	return e.costWith(n)
}

// offsetSuffix appends the end of the in-memory log's packet seq to b: its offset, the
// last argument, and the closing bracket (encodePacket after an event name).
func (r *recovery) offsetSuffix(b []byte, seq uint64) []byte {
	b = append(b, ',', '"')
	b = append(b, r.prefix...)
	b = strconv.AppendUint(b, seq, 36)
	return append(b, '"', ']')
}

// costWith is cost for a text of size bytes.
func (e *logged) costWith(size int) int {
	n := size + 64
	for _, a := range e.atts() {
		n += len(a) + 24
	}
	for _, room := range e.rooms() {
		n += len(room) + 16
	}
	for _, room := range e.except() {
		n += len(room) + 16
	}
	return n
}

// logData is the packet's text as the log keeps it. The text shares its buffer with the
// frame being sent, which has room for the frame header in front and, when an argument's
// size could not be guessed (a struct, such as system:welcome), the spare capacity of
// append's growth behind: for a short packet that is often as much again as the text,
// kept for as long as the entry lives. Then the log keeps an exact copy instead, and the
// buffer goes once the frame is written.
func (e encoded) logData() []byte {
	d := e.data()
	if cap(e.buf)-len(d) <= max(64, len(d)/4) {
		return d
	}
	return append(make([]byte, 0, len(d)), d...)
}

// Short packets are copied into chunks of logChunkSize bytes, one after the other in log
// order: an entry then costs its text, without an allocation of its own and its size
// class's rounding. Entries leave the ring in order, so a chunk is freed once its last entry
// has left, and at most the oldest and the newest chunk are partly dead or unused.
const (
	logChunkSize  = 4096
	logChunkLimit = 512 // a longer packet keeps its own bytes (logData)
)

// keepLocked stores the text of enc, logged as seq, for e as the log keeps it: trimmed of
// its offset when e is (e.trimmed), which the encoding always allows in memory; should it
// not, e keeps the whole text.
func (r *recovery) keepLocked(e *logged, enc encoded, seq uint64) {
	d := enc.data()
	cut := 0
	if e.trimmed() {
		var sb [40]byte
		if suffix := r.offsetSuffix(sb[:0], seq); bytes.HasSuffix(d, suffix) {
			cut = len(suffix)
		} else {
			if e.more == nil {
				e.more = &loggedMore{rooms: slices.Clone(e.rooms())} // not e.room's own array
				e.room[0] = ""
			}
			e.more.whole = true
		}
	}
	if len(d) > logChunkLimit {
		kept := enc.logData()
		e.chunk, e.at, e.n = &logChunk{b: kept[:len(kept)-cut]}, 0, 0
		return
	}
	d = d[:len(d)-cut]
	c := r.chunk
	if c == nil || cap(c.b)-len(c.b) < len(d) {
		c = &logChunk{b: make([]byte, 0, logChunkSize)}
		r.chunk = c
	}
	at := len(c.b)
	c.b = append(c.b, d...)
	e.chunk, e.at, e.n = c, uint32(at), uint32(len(d))
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
	r.appendLocked(newLogged("", rooms, except, enc.atts), enc, seq)
	started := srv.getTargets()
	n := queueTo(*tp, msgs, started)
	r.mu.Unlock()
	srv.putTargets(tp)
	srv.fl.write(*started, size(msgs))
	srv.putTargets(started)
	return n, nil
}

// appendLocked logs e as packet seq (r.seq, one after the previous one logged),
// dropping the oldest entries past MaxTotalPackets or MaxTotalBytes. An entry larger than
// MaxTotalBytes empties the log and is not kept: a session whose offset is older then
// finds the entry after its offset lost and is not recovered. Entries past their age
// are the sweep's: an epoch only ends there, so this would find none.
func (r *recovery) appendLocked(e logged, enc encoded, seq uint64) {
	e.epoch = r.epoch
	c := e.costWith(len(enc.data()))
	if c > r.opts.MaxTotalBytes {
		for r.n > 0 {
			r.dropOldestLocked()
		}
		r.lost = seq
		return
	}
	for r.n > 0 && r.bytes+c > r.opts.MaxTotalBytes {
		r.lost = r.first
		r.dropOldestLocked()
	}
	if r.n == r.opts.MaxTotalPackets {
		r.lost = r.first
		r.dropOldestLocked()
	}
	if r.n == len(r.ring) {
		r.growLocked()
	}
	if r.n == 0 {
		r.first = seq
	}
	r.keepLocked(&e, enc, seq)
	r.ring[(r.start+r.n)%len(r.ring)] = e
	r.n++
	r.bytes += c
}

// trimLocked drops the entries past maxAge: no session that may still be recovered can
// miss them.
func (r *recovery) trimLocked() {
	for r.n > 0 && r.ring[r.start].epoch+r.span <= r.epoch {
		r.dropOldestLocked()
	}
}

// touchLocked renews the age of the entries from seq on, which were just replayed to a
// session: it may drop again before it reads them and come back with the same offset.
// The newest entries are renewed with them, so ages stay in order along the ring.
func (r *recovery) touchLocked(seq uint64) {
	if r.n == 0 {
		return
	}
	for i := int(max(seq, r.first) - r.first); i < r.n; i++ {
		r.ring[(r.start+i)%len(r.ring)].epoch = r.epoch
	}
}

// tick is the periodic sweep: it starts the next epoch, drops the entries past maxAge,
// forgets kept sessions past MaxDisconnection and gives back a ring much larger than
// what it holds; then it arms the next one.
func (r *recovery) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sweep == nil {
		return // stopped
	}
	r.sweepOnceLocked()
	r.sweep.Reset(r.every)
}

func (r *recovery) sweepOnceLocked() {
	r.epoch++
	r.trimLocked()
	if r.sh == nil {
		r.sweepLocked(time.Now())
	}
	r.shrinkLocked()
}

// shrinkLocked halves a ring that is at most a quarter full, and frees an empty one:
// after a burst, or once an idle server's entries aged out, the ring does not keep the
// size of its busiest moment. Growing again by doubling cannot undo a halving at once.
func (r *recovery) shrinkLocked() {
	if r.n == 0 {
		r.ring, r.start, r.chunk = nil, 0, nil
		return
	}
	if len(r.ring) <= 16 || r.n > len(r.ring)/4 {
		return
	}
	r.resizeLocked(len(r.ring) / 2)
}

// growLocked doubles the ring (up to MaxTotalPackets), oldest entry first: a log that
// never fills does not cost its whole bound.
func (r *recovery) growLocked() {
	r.resizeLocked(min(r.opts.MaxTotalPackets, max(16, 2*len(r.ring))))
}

func (r *recovery) resizeLocked(size int) {
	resized := make([]logged, size)
	for i := range r.n {
		resized[i] = r.ring[(r.start+i)%len(r.ring)]
	}
	r.ring, r.start = resized, 0
}

func (r *recovery) dropOldestLocked() {
	e := &r.ring[r.start]
	r.bytes -= r.costLocked(e, r.first)
	*e = logged{}
	r.start = (r.start + 1) % len(r.ring)
	r.first++
	r.n--
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
	deliberate := s.deliberate
	session := s.session
	s.mu.Unlock()
	if r.sh != nil {
		r.sh.left(s, !deliberate && recoverable(reason))
		return
	}
	if deliberate || !recoverable(reason) || s.pid == "" {
		return
	}
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
	// The id is reserved before the socket leaves the index (onClose removes it after
	// this), so there is no moment at which another socket could join it.
	srv := s.cl.srv
	srv.mu.Lock()
	rooms := s.rooms.appendTo(make([]string, 0, s.rooms.len()))
	srv.kept[s.id] = struct{}{}
	srv.mu.Unlock()
	r.sessions[s.pid] = &savedSession{id: s.id, pid: s.pid, rooms: rooms, session: session, at: now}
}

func (r *recovery) sweepLocked(now time.Time) {
	for _, ss := range r.sessions {
		if now.Sub(ss.at) > r.opts.MaxDisconnection {
			r.forgetLocked(ss)
		}
	}
}

// forgetLocked drops a kept session and releases its id.
func (r *recovery) forgetLocked(ss *savedSession) {
	delete(r.sessions, ss.pid)
	srv := r.srv
	srv.mu.Lock()
	delete(srv.kept, ss.id)
	srv.mu.Unlock()
}

// takeSession removes and returns the session named by auth's pid when it can be
// recovered from auth's offset; nil otherwise.
func (r *recovery) takeSession(auth []byte) *savedSession {
	if !mayNamePID(auth) {
		return nil // a first connection: no need to decode its auth again
	}
	if r.sh != nil {
		return r.takeShared(auth)
	}
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
	// Released now; accept evicts anyone who joins the id's room before the owner is back.
	r.forgetLocked(ss)
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
// received, or false when they cannot all be replayed: some left the log for a bound
// other than age, there are more than MaxPackets, or together they are more than half
// of MaxOutboundBytes. The replay is queued at once, before the client reads anything,
// so a larger one would close the session for "buffer full" on every attempt and the
// client would never come back. Entries after the offset that left for their age were
// for other sockets (maxAge): the session is recovered without them.
func (r *recovery) missedLocked(ss *savedSession) ([]*engineio.Message, bool) {
	if ss.offset > r.seq {
		return nil, false
	}
	if ss.offset == r.seq {
		return nil, true
	}
	if ss.offset < r.lost {
		return nil, false // a packet after the offset was pushed out of the ring
	}
	in := func(room string) bool { return room == ss.id || slices.Contains(ss.rooms, room) }
	var out []*engineio.Message
	count, bytes := 0, 0
	maxBytes := r.srv.opts.MaxOutboundBytes / 2
	first := 0
	if r.n > 0 && ss.offset >= r.first {
		first = int(ss.offset + 1 - r.first)
	}
	for i := first; i < r.n; i++ {
		e := &r.ring[(r.start+i)%len(r.ring)]
		if rooms := e.rooms(); len(rooms) > 0 && !slices.ContainsFunc(rooms, in) {
			continue
		}
		if slices.ContainsFunc(e.except(), in) {
			continue
		}
		if count++; count > r.opts.MaxPackets {
			return nil, false
		}
		seq := r.first + uint64(i)
		if bytes += r.costLocked(e, seq); bytes > maxBytes {
			return nil, false
		}
		if !e.trimmed() {
			// No room in front of the logged text (it was framed in place when first
			// sent): the replay's frame is a copy.
			out = append(out, encoded{buf: e.text(), atts: e.atts()}.messages()...)
			continue
		}
		// The text is rebuilt with its offset behind room for the frame, framed in place.
		text := e.text()
		buf := make([]byte, engineio.FrameHeadroom, engineio.FrameHeadroom+len(text)+len(r.prefix)+17)
		buf = r.offsetSuffix(append(buf, text...), seq)
		out = append(out, encoded{buf: buf, off: engineio.FrameHeadroom, atts: e.atts()}.messages()...)
	}
	return out, true
}

// accept records s like Server.accept, replaying what a restored session missed. A
// session that can no longer be replayed (the ring moved on during middleware) is
// accepted as a fresh one with a new pid.
func (r *recovery) accept(s *Socket, restored *savedSession) bool {
	if r.sh != nil {
		return r.acceptShared(s, restored)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var replay []*engineio.Message
	if restored != nil {
		missed, ok := r.missedLocked(restored)
		if ok {
			replay = missed
			if len(replay) > 0 {
				r.touchLocked(restored.offset + 1)
			}
		} else {
			restored = nil
			s.pid = newID()
		}
	}
	return s.cl.srv.accept(s, restored, replay...)
}

// mayNamePID reports whether auth could decode to a non-empty "pid". encoding/json matches
// member names case-insensitively, after unescaping, and folds some non-ASCII letters to
// ASCII ones (dotless ı to I), so only a text with none of those and no "pid" in any case
// is known to hold none.
func mayNamePID(auth []byte) bool {
	for i, c := range auth {
		switch {
		case c == '\\' || c >= utf8.RuneSelf:
			return true
		case c|0x20 == 'p' && i+2 < len(auth) && auth[i+1]|0x20 == 'i' && auth[i+2]|0x20 == 'd':
			return true
		}
	}
	return false
}
