package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// Shared connection state recovery (RecoveryOptions.Shared): sessions and the log of
// recoverable packets live in a store every node of a cluster reads, so that a client may
// come back on any node, also after the node it was on died without a word.
//
//   - A session's record (id, rooms, the application's session through MarshalSession)
//     is written when the socket connects and again after each change (join, leave, a
//     SetSession that the application follows with a room change such as register), by
//     one writer goroutine that coalesces changes; connected sockets' records are
//     refreshed every RefreshEvery so that they outlive the node by at least
//     MaxDisconnection. A transport close writes the final state; a deliberate disconnect
//     deletes the record.
//   - Each record names the connection that owns it: a connection updates or deletes its
//     record only while it still owns it, so a stale connection on a node that has not yet
//     noticed its client left cannot overwrite the record of the connection that
//     recovered it elsewhere.
//   - Taking a record is atomic in the store: two nodes racing to recover one pid cannot
//     both get it.
//   - Packets get their offsets from the store (the node that originates a broadcast logs
//     it once and tells the others its offset); the server delivers them with EmitAt.
//     Direct emits to one socket (replies, the welcome) are not logged and are not
//     replayed; they carry the newest offset this node delivered (recovery.last), so that
//     a client that has received no broadcast yet still has an offset to come back with:
//     everything logged up to it that was for the socket was queued to it before.
//   - A CONNECT with {pid, offset} takes the record, reads the packets logged after offset,
//     keeps those the session's rooms would have received, and adds those this node
//     delivered between that read and the socket's acceptance from the local ring (which
//     in this mode is a window of recent deliveries, bounded as in recovery.go).
//
// The store is called without any lock held, except that the read of a restore runs on
// the inbound path of the connecting session, bounded by StoreTimeout and skipped while
// the store is known down.

// SharedStore keeps recovery state where every node of a cluster reads it.
type SharedStore interface {
	// Save applies session writes in order.
	Save(ctx context.Context, writes []SessionWrite) error
	// Take removes and returns the record saved under pid; nil when there is none.
	// Two callers never both get one record.
	Take(ctx context.Context, pid string) ([]byte, error)
	// After returns up to max packets logged after offset, oldest first. known is false
	// when offset is no longer (or never was) in the log: what followed it may be lost.
	After(ctx context.Context, offset string, max int) (packets []SharedPacket, known bool, err error)
	// Last returns the newest offset issued so far; with none yet, it issues one.
	Last(ctx context.Context) (string, error)
	// ValidOffset reports whether off has the form of the store's offsets.
	ValidOffset(off string) bool
	// Newer reports whether offset a was issued after offset b (both valid).
	Newer(a, b string) bool
}

// WriteKind says how a SessionWrite applies.
type WriteKind int

// Session write kinds.
const (
	WriteCreate  WriteKind = iota // the connection takes the record over
	WriteUpdate                   // applied only while the connection owns the record
	WriteDelete                   // applied only while the connection owns the record
	WriteRefresh                  // only the record's time to live
)

// SessionWrite is one change of a session's record.
type SessionWrite struct {
	Kind  WriteKind
	PID   string
	Owner string // the connection writing
	Data  []byte // the record (WriteCreate, WriteUpdate)
	TTL   time.Duration
}

// SharedPacket is a logged broadcast: one event with one JSON argument.
type SharedPacket struct {
	Offset string
	Rooms  []string
	Except []string
	Event  string
	Data   json.RawMessage
}

// sharedRecord is what a session's record holds.
type sharedRecord struct {
	ID      string          `json:"id"`
	Rooms   []string        `json:"rooms,omitempty"`
	Session json.RawMessage `json:"session,omitempty"`
}

// Bounds on what one restore takes in.
const (
	maxRecordBytes = 64 << 10
	maxPIDLen      = 64
	writeBatch     = 512
)

type shared struct {
	r     *recovery
	store SharedStore
	opts  *RecoveryOptions

	mu     sync.Mutex            // a leaf; guards dirty, closes and closing stopc
	dirty  map[*Socket]WriteKind // connected sockets whose record must be written
	closes []SessionWrite        // final writes of sockets that left
	wake   chan struct{}         // capacity 1
	stopc  chan struct{}         // closed by stop
	done   chan struct{}         // closed when run returns
	down   atomic.Int64          // unix nanoseconds of the last store failure; 0: none
}

func newShared(r *recovery, o *RecoveryOptions) *shared {
	sh := &shared{
		r:     r,
		store: o.Shared,
		opts:  o,
		dirty: make(map[*Socket]WriteKind),
		wake:  make(chan struct{}, 1),
		stopc: make(chan struct{}),
		done:  make(chan struct{}),
	}
	go sh.run()
	return sh
}

// failed records a store failure: restores are skipped for a second, and it is counted.
func (sh *shared) failed(op string, err error) {
	now := time.Now()
	prev := sh.down.Swap(now.UnixNano())
	if prev == 0 || now.Sub(time.Unix(0, prev)) > 10*time.Second {
		// Once per outage, roughly: every write fails while the store is down.
		sh.r.srv.log.Warn("recovery store failed", "op", op, "error", err)
	} else {
		sh.r.srv.log.Debug("recovery store failed", "op", op, "error", err)
	}
	if sh.opts.OnStoreFailure != nil {
		sh.opts.OnStoreFailure()
	}
}

// isDown reports a store failure within the last second.
func (sh *shared) isDown() bool {
	t := sh.down.Load()
	return t != 0 && time.Since(time.Unix(0, t)) < time.Second
}

func (sh *shared) signal() {
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

// changed queues a write of s's record (create wins over update until written).
func (sh *shared) changed(s *Socket, kind WriteKind) {
	if s.nsp != "/" || s.owner == "" {
		return
	}
	sh.mu.Lock()
	if prev, ok := sh.dirty[s]; !ok || prev != WriteCreate {
		sh.dirty[s] = kind
	}
	sh.mu.Unlock()
	sh.signal()
}

// left queues the final write of a socket that left: its state for MaxDisconnection
// when it may come back, its deletion otherwise. Called before s leaves the indexes.
func (sh *shared) left(s *Socket, keep bool) {
	if s.owner == "" {
		return
	}
	w := SessionWrite{PID: s.pid, Owner: s.owner, Kind: WriteDelete}
	if keep {
		data, err := sh.record(s)
		if err != nil {
			sh.r.srv.log.Warn("session not kept for recovery", "id", s.id, "error", err)
		} else {
			w.Kind, w.Data, w.TTL = WriteUpdate, data, sh.opts.MaxDisconnection
		}
	}
	sh.mu.Lock()
	if kind, queued := sh.dirty[s]; queued && kind == WriteCreate && w.Kind == WriteUpdate {
		// Never written yet: there is no record to own.
		w.Kind = WriteCreate
	}
	delete(sh.dirty, s)
	sh.closes = append(sh.closes, w)
	sh.mu.Unlock()
	sh.signal()
}

// record encodes s's current record.
func (sh *shared) record(s *Socket) ([]byte, error) {
	rec := sharedRecord{ID: s.id}
	srv := s.cl.srv
	srv.mu.RLock()
	rec.Rooms = s.rooms.appendTo(rec.Rooms)
	srv.mu.RUnlock()
	if v := s.Session(); v != nil && sh.opts.MarshalSession != nil {
		b, err := sh.opts.MarshalSession(v)
		if err != nil {
			return nil, err
		}
		rec.Session = b
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if len(data) > maxRecordBytes {
		return nil, errors.New("session record larger than 64 KiB")
	}
	return data, nil
}

// ttl is a connected session's time to live: it outlives the last refresh by
// MaxDisconnection.
func (sh *shared) ttl() time.Duration { return sh.opts.MaxDisconnection + sh.opts.RefreshEvery }

func (sh *shared) run() {
	defer close(sh.done)
	sh.learnLast()
	t := time.NewTicker(sh.opts.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-sh.wake:
			sh.flush(context.Background(), false)
		case <-t.C:
			sh.learnLast()
			sh.flush(context.Background(), true)
		case <-sh.stopc:
			return
		}
	}
}

// learnLast sets the offset direct emits carry until this node delivers a logged packet.
func (sh *shared) learnLast() {
	r := sh.r
	r.mu.Lock()
	known := r.last != ""
	r.mu.Unlock()
	if known {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sh.opts.StoreTimeout)
	last, err := sh.store.Last(ctx)
	cancel()
	if err != nil {
		sh.failed("last", err)
		return
	}
	r.mu.Lock()
	if r.last == "" {
		r.last = last
	}
	r.mu.Unlock()
}

// flush writes what changed, and with refresh every connected session's time to live.
func (sh *shared) flush(ctx context.Context, refresh bool) {
	sh.mu.Lock()
	dirty, closes := sh.dirty, sh.closes
	sh.dirty, sh.closes = make(map[*Socket]WriteKind), nil
	sh.mu.Unlock()
	writes := make([]SessionWrite, 0, len(dirty)+len(closes))
	for s, kind := range dirty {
		if s.state.Load() != stateConnected {
			continue // its final write is in closes
		}
		data, err := sh.record(s)
		if err != nil {
			sh.r.srv.log.Warn("session record not written", "id", s.id, "error", err)
			continue
		}
		writes = append(writes, SessionWrite{Kind: kind, PID: s.pid, Owner: s.owner, Data: data, TTL: sh.ttl()})
	}
	writes = append(writes, closes...)
	if refresh {
		srv := sh.r.srv
		srv.mu.RLock()
		for _, s := range srv.sockets {
			if _, written := dirty[s]; !written && s.owner != "" {
				writes = append(writes, SessionWrite{Kind: WriteRefresh, PID: s.pid, Owner: s.owner, TTL: sh.ttl()})
			}
		}
		srv.mu.RUnlock()
	}
	for len(writes) > 0 {
		n := min(len(writes), writeBatch)
		wctx, cancel := context.WithTimeout(ctx, sh.opts.StoreTimeout)
		err := sh.store.Save(wctx, writes[:n])
		cancel()
		if err != nil {
			sh.failed("save", err)
			sh.retry(dirty, closes)
			return
		}
		writes = writes[n:]
	}
}

// retry queues again what a failed flush was to write: the connected sockets' records
// (written afresh from their state then) and the final writes, at most MaxSessions of
// those, the newest kept. Writes that did apply before the failure apply again, which
// leaves the same records.
func (sh *shared) retry(dirty map[*Socket]WriteKind, closes []SessionWrite) {
	sh.mu.Lock()
	for s, kind := range dirty {
		if prev, ok := sh.dirty[s]; !ok || prev != WriteCreate {
			sh.dirty[s] = kind
		}
	}
	all := append(closes, sh.closes...)
	if over := len(all) - sh.opts.MaxSessions; over > 0 {
		all = all[over:]
	}
	sh.closes = all
	sh.mu.Unlock()
}

// stop writes what is pending (the final state of every socket closed so far) and ends
// the writer; ctx bounds the wait.
func (sh *shared) stop(ctx context.Context) {
	sh.mu.Lock()
	select {
	case <-sh.stopc:
		sh.mu.Unlock()
		return
	default:
		close(sh.stopc)
	}
	sh.mu.Unlock()
	<-sh.done
	sh.flush(ctx, false)
}

// restore is what a shared restore found: the record and the packets to replay.
type restore struct {
	last   string // the newest offset read from the store (or the client's)
	s0     uint64 // r.seq when the read began
	replay []*engineio.Message
	count  int
	bytes  int
}

// takeShared removes the record named by auth's pid from the store and reads what the
// session missed; nil when it cannot be recovered.
func (r *recovery) takeShared(auth []byte) *savedSession {
	sh := r.sh
	var a struct {
		PID    string `json:"pid"`
		Offset string `json:"offset"`
	}
	if json.Unmarshal(auth, &a) != nil || a.PID == "" || len(a.PID) > maxPIDLen || !sh.store.ValidOffset(a.Offset) {
		return nil
	}
	if sh.isDown() {
		return nil
	}
	r.mu.Lock()
	s0 := r.seq
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.StoreTimeout)
	defer cancel()
	data, err := sh.store.Take(ctx, a.PID)
	if err != nil {
		sh.failed("take", err)
		return nil
	}
	if data == nil {
		return nil
	}
	var rec sharedRecord
	if json.Unmarshal(data, &rec) != nil || rec.ID == "" {
		return nil
	}
	ss := &savedSession{id: rec.ID, pid: a.PID, rooms: rec.Rooms, at: time.Now()}
	if len(rec.Session) > 0 && r.opts.UnmarshalSession != nil {
		if ss.session, err = r.opts.UnmarshalSession(rec.Session); err != nil {
			return nil
		}
	}
	// The log is trimmed to about MaxTotalPackets: reading more than that after one
	// offset means it moved on past what a session may miss.
	limit := r.opts.MaxTotalPackets + sharedScanSlack
	pkts, known, err := sh.store.After(ctx, a.Offset, limit)
	if err != nil {
		sh.failed("read", err)
		return nil
	}
	if !known || len(pkts) >= limit {
		if r.opts.OnOverflow != nil {
			r.opts.OnOverflow()
		}
		return nil
	}
	rs := &restore{last: a.Offset, s0: s0}
	for _, p := range pkts {
		rs.last = p.Offset
		if p.Event == "" || !ss.receives(p.Rooms, p.Except) {
			continue // a marker (SharedStore.Last), or not for this session
		}
		ev := p.Event
		enc, err := encodePacket(PacketEvent, 0, false, &ev, []any{p.Data}, p.Offset)
		if err != nil {
			continue
		}
		if !r.addReplay(rs, enc.data(), nil) {
			return nil
		}
	}
	ss.shared = rs
	return ss
}

// sharedScanSlack covers a log trimmed approximately (whole blocks at a time).
const sharedScanSlack = 1000

// receives reports whether ss's socket would have received a broadcast to rooms/except.
func (ss *savedSession) receives(rooms, except []string) bool {
	in := func(room string) bool { return room == ss.id || slices.Contains(ss.rooms, room) }
	if len(rooms) > 0 && !slices.ContainsFunc(rooms, in) {
		return false
	}
	return !slices.ContainsFunc(except, in)
}

// addReplay appends one packet to a restore within the limits of missedLocked; false
// when it does not fit (the session is not recovered).
func (r *recovery) addReplay(rs *restore, data []byte, atts [][]byte) bool {
	rs.count++
	rs.bytes += len(data) + 64
	if rs.count > r.opts.MaxPackets || rs.bytes > r.srv.opts.MaxOutboundBytes/2 {
		if r.opts.OnOverflow != nil {
			r.opts.OnOverflow()
		}
		return false
	}
	rs.replay = append(rs.replay, encoded{buf: data, atts: atts}.messages()...)
	return true
}

// acceptShared records s like Server.accept. A restored session also gets what this node
// delivered since its read of the store began (ring entries after s0 newer than the
// newest offset read), so nothing falls between the read and the acceptance.
func (r *recovery) acceptShared(s *Socket, restored *savedSession) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	var replay []*engineio.Message
	if restored != nil {
		if r.sinceLocked(restored) {
			replay = restored.shared.replay
		} else {
			restored = nil
			s.pid = newID()
		}
	}
	s.owner = newID()
	if !s.cl.srv.accept(s, restored, replay...) {
		return false
	}
	r.sh.changed(s, WriteCreate)
	return true
}

// sinceLocked adds to restored's replay the ring entries delivered after its read began
// that it has not read; false when some of them already left the ring.
func (r *recovery) sinceLocked(ss *savedSession) bool {
	rs := ss.shared
	if r.seq == rs.s0 {
		return true
	}
	// Unlike missedLocked, an entry after s0 that left for its age is not known to be
	// for others; only a take and acceptance further apart than maxAge find one gone.
	if r.n == 0 || r.first > rs.s0+1 {
		return false
	}
	first := int(rs.s0 + 1 - r.first)
	for i := first; i < r.n; i++ {
		e := &r.ring[(r.start+i)%len(r.ring)]
		if !r.sh.store.Newer(e.off(), rs.last) || !ss.receives(e.rooms(), e.except()) {
			continue
		}
		if !r.addReplay(rs, e.text(), e.atts()) {
			return false
		}
	}
	return true
}

// broadcastAt delivers an event under the offset the store gave it, logging it in the
// local window; with no offset it is delivered without one and not logged.
func (r *recovery) broadcastAt(srv *Server, off string, rooms, except []string, event string, args []any) (int, error) {
	if off == "" {
		return srv.emitPlain(rooms, except, event, args)
	}
	r.mu.Lock()
	enc, err := encodePacket(PacketEvent, 0, false, &event, args, off)
	if err != nil {
		r.mu.Unlock()
		return 0, err
	}
	r.seq++
	if r.last == "" || r.sh.store.Newer(off, r.last) {
		r.last = off
	}
	msgs := enc.messages()
	tp := srv.getTargets()
	srv.mu.RLock()
	*tp = srv.collect(*tp, rooms, except)
	srv.mu.RUnlock()
	r.appendLocked(newLogged(off, rooms, except, enc.atts), enc, r.seq)
	started := srv.getTargets()
	n := queueTo(*tp, msgs, started)
	r.mu.Unlock()
	srv.putTargets(tp)
	srv.fl.write(*started, size(msgs))
	srv.putTargets(started)
	return n, nil
}

// emitDirect sends an event to s alone with the newest offset this node delivered,
// queued under r.mu so that it follows every logged packet that offset covers.
func (r *recovery) emitDirect(s *Socket, event string, args []any) error {
	r.mu.Lock()
	enc, err := encodePacket(PacketEvent, 0, false, &event, args, r.last)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	msgs := enc.messages()
	first, err := s.cl.conn.Queue(msgs...)
	r.mu.Unlock()
	if err != nil {
		return ErrDisconnected
	}
	if first {
		s.cl.conn.Flush()
	}
	return nil
}

// EmitAt is EmitTo for a packet that a shared recovery store logged under offset: the
// packet carries that offset. With shared recovery off, or an empty offset, it is EmitTo.
func (s *Server) EmitAt(offset string, rooms, exceptRooms []string, event string, args ...any) (int, error) {
	if s.rec == nil || s.rec.sh == nil {
		return s.EmitTo(rooms, exceptRooms, event, args...)
	}
	return s.rec.broadcastAt(s, offset, rooms, exceptRooms, event, args)
}
