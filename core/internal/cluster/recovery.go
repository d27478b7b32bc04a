package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// Connection state recovery across nodes, kept in Redis so that it outlives the node a
// client was on (socketio.SharedStore; the rules are in core/internal/socketio/shared.go).
//
//   - <prefix>:recovery is a stream of every broadcast, bounded by MAXLEN ~ MaxLen and
//     expiring StreamTTL after the last one. The node that originates a broadcast appends
//     it and publishes it in one script, so the stream's order is the order every node
//     receives broadcasts in; the entry id is the offset clients get, carried to the other
//     nodes in the broadcast's options ("offset").
//   - <prefix>:session:<pid> is a hash {o: owning connection, d: record} with a time to
//     live; writes other than a connection's first apply only while it owns the hash, and
//     a restore takes it (read and delete) in one script.

// RecoveryOptions configure a RecoveryStore.
type RecoveryOptions struct {
	RedisURL       string
	Redis          *redis.UniversalOptions // as Options.Redis; nil: RedisURL
	KeyPrefix      string
	MaxLen         int           // stream entries kept, about (trimming is by whole blocks)
	StreamTTL      time.Duration // the stream is dropped this long after its last entry
	ConnectTimeout time.Duration
}

// RecoveryStore is socketio.SharedStore on Redis.
type RecoveryStore struct {
	client   redis.UniversalClient
	stream   string
	sessions string // key prefix of session hashes
	maxLen   int64
	ttl      time.Duration
}

var _ socketio.SharedStore = (*RecoveryStore)(nil)

// NewRecoveryStore builds the store; it connects on first use.
func NewRecoveryStore(o RecoveryOptions) (*RecoveryStore, error) {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.MaxLen <= 0 {
		o.MaxLen = 10000
	}
	if o.StreamTTL <= 0 {
		o.StreamTTL = 4 * time.Minute
	}
	client, err := newClient(o.RedisURL, o.Redis, o.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	return &RecoveryStore{
		client:   client,
		stream:   o.KeyPrefix + ":recovery",
		sessions: o.KeyPrefix + ":session:",
		maxLen:   int64(o.MaxLen),
		ttl:      o.StreamTTL,
	}, nil
}

// Close closes the store's connections.
func (s *RecoveryStore) Close() error { return s.client.Close() }

// saveScript applies one session write: c(reate), u(pdate), d(elete), r(efresh).
var saveScript = redis.NewScript(`
if ARGV[1] ~= 'c' and redis.call('HGET', KEYS[1], 'o') ~= ARGV[2] then return 0 end
if ARGV[1] == 'd' then redis.call('DEL', KEYS[1]) return 1 end
if ARGV[1] ~= 'r' then redis.call('HSET', KEYS[1], 'o', ARGV[2], 'd', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// takeSessionScript reads and deletes a session hash at once.
var takeSessionScript = redis.NewScript(`
local d = redis.call('HGET', KEYS[1], 'd')
if d then redis.call('DEL', KEYS[1]) end
return d
`)

// appendScript logs a broadcast and publishes it with its offset appended (a str8 value:
// the message ends with the options' open "offset" key).
var appendScript = redis.NewScript(`
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'r', ARGV[2], 'e', ARGV[3], 'v', ARGV[4], 'd', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PUBLISH', ARGV[7], ARGV[8] .. string.char(0xd9, #id) .. id)
return id
`)

var writeKinds = map[socketio.WriteKind]string{
	socketio.WriteCreate: "c", socketio.WriteUpdate: "u", socketio.WriteDelete: "d", socketio.WriteRefresh: "r",
}

// Save applies writes in one pipeline. The script is run by its sha without asking Redis
// first whether it knows it (a round trip per save, on every connect); a Redis that has
// forgotten it (restarted, SCRIPT FLUSH) answers NOSCRIPT to every write of the pipeline,
// and the pipeline is then run again once the script is loaded. Running a write twice
// is harmless: each sets the same fields, deadline or deletion again.
func (s *RecoveryStore) Save(ctx context.Context, writes []socketio.SessionWrite) error {
	if len(writes) == 0 {
		return nil
	}
	err := s.savePipeline(ctx, writes)
	if err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return err
	}
	if err := saveScript.Load(ctx, s.client).Err(); err != nil {
		return err
	}
	return s.savePipeline(ctx, writes)
}

// savePipeline runs writes by the script's sha; the error is the first command's that
// failed (NOSCRIPT when Redis does not know the script).
func (s *RecoveryStore) savePipeline(ctx context.Context, writes []socketio.SessionWrite) error {
	pipe := s.client.Pipeline()
	for _, w := range writes {
		ttl := max(w.TTL.Milliseconds(), 1)
		saveScript.EvalSha(ctx, pipe, []string{s.sessions + w.PID}, writeKinds[w.Kind], w.Owner, w.Data, ttl)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Take reads and deletes the record saved under pid.
func (s *RecoveryStore) Take(ctx context.Context, pid string) ([]byte, error) {
	v, err := takeSessionScript.Run(ctx, s.client, []string{s.sessions + pid}).Text()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []byte(v), nil
}

// afterBatch is how many entries one XRANGE reads.
const afterBatch = 512

// After reads the entries logged after offset. They are all there when the stream's
// first entry is not newer than offset: the stream is only trimmed, oldest first, so no
// entry after offset has left it. The first entry is read once the entries are. A stream
// that does not exist has had no entry for StreamTTL, longer than any session is kept:
// nothing was missed.
func (s *RecoveryStore) After(ctx context.Context, offset string, limit int) ([]socketio.SharedPacket, bool, error) {
	var out []socketio.SharedPacket
	start := "(" + offset
	for len(out) < limit {
		n := int64(min(afterBatch, limit-len(out)))
		msgs, err := s.client.XRangeN(ctx, s.stream, start, "+", n).Result()
		if err != nil {
			return nil, false, err
		}
		for _, m := range msgs {
			out = append(out, entryPacket(m))
		}
		if int64(len(msgs)) < n {
			break
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	first, err := s.client.XRangeN(ctx, s.stream, "-", "+", 1).Result()
	if err != nil {
		return nil, false, err
	}
	if len(first) == 1 && s.Newer(first[0].ID, offset) {
		return nil, false, nil
	}
	return out, true, nil
}

// lastScript returns the stream's newest entry id, adding a marker entry (no event) to a
// stream that has none, so that the offset it returns is in the log and its successors
// can be told trimmed or not.
var lastScript = redis.NewScript(`
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then return last[1][1] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'v', '')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return id
`)

// Last returns the newest offset of the log.
func (s *RecoveryStore) Last(ctx context.Context) (string, error) {
	return lastScript.Run(ctx, s.client, []string{s.stream}, s.maxLen, s.ttl.Milliseconds()).Text()
}

func entryPacket(m redis.XMessage) socketio.SharedPacket {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	p := socketio.SharedPacket{Offset: m.ID, Event: str("v"), Data: json.RawMessage(str("d"))}
	_ = json.Unmarshal([]byte(str("r")), &p.Rooms)
	_ = json.Unmarshal([]byte(str("e")), &p.Except)
	if len(p.Data) == 0 || !json.Valid(p.Data) {
		p.Data = json.RawMessage("null")
	}
	return p
}

// ValidOffset reports whether off is a stream entry id, <ms>-<seq>.
func (s *RecoveryStore) ValidOffset(off string) bool {
	_, _, ok := parseStreamID(off)
	return ok
}

// Newer compares two stream entry ids.
func (s *RecoveryStore) Newer(a, b string) bool {
	am, as, _ := parseStreamID(a)
	bm, bs, _ := parseStreamID(b)
	return am > bm || am == bm && as > bs
}

func parseStreamID(id string) (ms, seq uint64, ok bool) {
	if len(id) > 41 {
		return 0, 0, false
	}
	l, r, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(l, 10, 64)
	seq, err2 := strconv.ParseUint(r, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

// appendPublish logs a broadcast and publishes msg (ending with the open "offset" key)
// with its offset; it returns the offset.
func (s *RecoveryStore) appendPublish(ctx context.Context, channel string, msg []byte, rooms, except []string, event string, data json.RawMessage) (string, error) {
	r, err := json.Marshal(nonNil(rooms))
	if err != nil {
		return "", err
	}
	e, err := json.Marshal(nonNil(except))
	if err != nil {
		return "", err
	}
	id, err := appendScript.Run(ctx, s.client, []string{s.stream},
		s.maxLen, r, e, event, []byte(data), s.ttl.Milliseconds(), channel, msg).Text()
	if err != nil {
		return "", fmt.Errorf("cluster: recovery log: %w", err)
	}
	return id, nil
}

func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// DeliverAt reaches this node's sockets with a broadcast the recovery log holds under
// offset; socketio.Server.EmitAt is one.
type DeliverAt func(offset string, rooms, except []string, event string, args ...any) (int, error)

// recoveryLink is what the adapter needs for shared recovery.
type recoveryLink struct {
	store     *RecoveryStore
	deliverAt DeliverAt
}

func (l *recoveryLink) deliverer(offset string) Deliverer {
	return func(rooms, except []string, event string, args ...any) (int, error) {
		return l.deliverAt(offset, rooms, except, event, args...)
	}
}

// EnableRecovery makes every broadcast go through the recovery log of store, delivered
// here with deliver. Call it before Start.
func (a *Adapter) EnableRecovery(store *RecoveryStore, deliver DeliverAt) {
	a.rec = &recoveryLink{store: store, deliverAt: deliver}
}

// broadcastLogged is Broadcast with shared recovery: the broadcast is appended to the
// log and published in one script, then delivered here under its offset. When Redis
// fails it is still delivered here, without an offset (it cannot be replayed), and
// counted as for a failed publish.
func (a *Adapter) broadcastLogged(to hub.Target, event string, data json.RawMessage) (int, error) {
	msg, err := encodeBroadcast(a.uid, to.Rooms, to.Except, event, data, "", true)
	if err != nil {
		return 0, err
	}
	if !a.mayPublish() {
		a.m.messages.WithLabelValues("publish_failed").Inc()
		return a.Adapter.Broadcast(to, event, data)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	off, err := a.rec.store.appendPublish(ctx, broadcastChannel(a.prefix, to.Rooms), msg, to.Rooms, to.Except, event, data)
	cancel()
	if err != nil {
		a.failedSince(start)
		a.m.messages.WithLabelValues("publish_failed").Inc()
		a.log.Warn("broadcast not published to the cluster", "event", event, "error", err)
		return a.Adapter.Broadcast(to, event, data)
	}
	a.published()
	a.m.messages.WithLabelValues("published").Inc()
	return a.rec.deliverAt(off, to.Rooms, to.Except, event, data)
}
