package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/rtserver/rtserver/core/internal/ratelimit"
)

// Shared holds the state that must be the same on every node for a limit to hold
// cluster-wide: the signed requests' nonces, the rate limits (HTTP per API key, failed
// API auth per IP, connections per IP per minute) and the number of connections per IP.
//
// Every call has a short deadline. When Redis does not answer, the call returns an error
// and the caller decides with its own node's in-memory state (which it always keeps): the
// limits then hold per node, never looser than a single node's. Each fallback is counted
// in socket_server_cluster_fallbacks_total{store} and logged once per outage.
//
// Keys (<prefix> is cluster.key_prefix):
//
//	<prefix>-nonce#<sha256(key name, nonce)>  a claimed nonce, until its timestamp leaves the window
//	<prefix>-rate#<limit>#<id>                 a rate limit's GCRA timestamp (µs), until full again
//	{<prefix>}-nodes                           sorted set: node uid -> expiry of its heartbeat (ms)
//	{<prefix>}-conns#<uid>                     hash: client IP -> that node's connections
//
// The nodes' keys are read and written together by scripts and MULTI, which Redis Cluster
// allows only within one hash slot: the {<prefix>} hash tag puts them all in one. The
// nonces and rate limits are one key per call and keep no tag, so they spread over the
// cluster's slots.
type Shared struct {
	a           *Adapter
	rdb         redis.UniversalClient
	prefix      string
	uid         string
	ttl         time.Duration
	timeout     time.Duration
	beatTimeout time.Duration
	log         hclog.Logger

	fallbacks *prometheus.CounterVec
	failing   atomic.Bool  // an outage was logged; cleared by the next call that succeeds
	lastTry   atomic.Int64 // unix ns of the last call let through to Redis while failing

	mu      sync.Mutex     // a leaf: guards conns, gen and dirty; no call is made under it
	conns   map[string]int // this node's connections per IP, the truth its hash is rebuilt from
	gen     uint64         // counts changes to conns, so a rebuild that raced one is redone
	dirty   bool           // Redis may differ from conns: rebuild at the next heartbeat
	stop    chan struct{}
	done    chan struct{}
	started bool
	closed  bool // after Close a release changes only conns: the node's hash is gone

	releases sync.WaitGroup // ReleaseConn calls in flight
}

// SharedOptions configure Shared.
type SharedOptions struct {
	// NodeTTL is how long a node's connection counts outlive its last heartbeat (a node
	// killed without closing); heartbeats run every NodeTTL/3. 15s when zero.
	NodeTTL time.Duration
	// Timeout bounds each call to Redis; 500ms when zero. A handshake or an API request
	// waits at most this long before deciding with this node's counts.
	Timeout time.Duration
	// HeartbeatTimeout bounds a heartbeat; the adapter's publish deadline (cluster.
	// connect_timeout) is right, as a failed heartbeat marks the node down and a node down
	// publishes at most once a second: a slow moment must not cost broadcasts. 5s when zero.
	HeartbeatTimeout time.Duration
	Logger           hclog.Logger
	Registerer       prometheus.Registerer
}

// Fallback labels of socket_server_cluster_fallbacks_total.
const (
	StoreNonce = "nonce"
	StoreRate  = "rate"
	StoreConns = "conns_ip"
)

// NewShared builds the cluster-wide stores on a's Redis client. Heartbeats start with Start.
func NewShared(a *Adapter, o SharedOptions) *Shared {
	if o.NodeTTL <= 0 {
		o.NodeTTL = 15 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.HeartbeatTimeout <= 0 {
		o.HeartbeatTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	s := &Shared{
		a: a, rdb: a.Redis(), prefix: a.prefix, uid: a.UID(), ttl: o.NodeTTL, log: o.Logger,
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socket_server_cluster_fallbacks_total",
			Help: "Checks of a cluster-wide limit decided with this node's counts alone because Redis did not answer, by store: nonce, rate, conns_ip.",
		}, []string{"store"}),
		// Not dirty: a new node (a new uid) has nothing in Redis to correct, and a rebuild
		// racing the first handshakes could undo their counts until the next heartbeat.
		conns: map[string]int{},
	}
	for _, l := range []string{StoreNonce, StoreRate, StoreConns} {
		s.fallbacks.WithLabelValues(l)
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.fallbacks)
	}
	s.timeout, s.beatTimeout = o.Timeout, o.HeartbeatTimeout
	return s
}

// result records the outcome of one call to Redis: a failure is counted under store and
// logged once per outage; a success ends the outage.
func (s *Shared) result(store string, err error) error {
	if err == nil {
		if s.failing.Swap(false) {
			s.log.Info("redis answers again: limits hold cluster-wide")
		}
		return nil
	}
	s.fallbacks.WithLabelValues(store).Inc()
	s.lastTry.Store(time.Now().UnixNano())
	if !s.failing.Swap(true) {
		s.log.Warn("redis unreachable: limits and the nonce store hold for this node only until it answers",
			"store", store, "error", err)
	}
	return err
}

// errSkipped is the error of a call not made: Redis failed less than probeEvery ago.
var errSkipped = errors.New("cluster: redis failing, not asked")

// skip reports whether a call should not go to Redis: during an outage one call per
// probeEvery tries it, the others decide alone at once instead of each waiting for a
// deadline (a handshake or an API request would pay it).
func (s *Shared) skip(store string) bool {
	if !s.failing.Load() {
		return false
	}
	now := time.Now().UnixNano()
	last := s.lastTry.Load()
	if now-last >= int64(probeEvery) && s.lastTry.CompareAndSwap(last, now) {
		return false
	}
	s.fallbacks.WithLabelValues(store).Inc()
	return true
}

func (s *Shared) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// ClaimNonce records keyName's nonce until expiry and reports whether no node had
// recorded it before. The Redis key is a hash, so its size is fixed whatever the nonce.
func (s *Shared) ClaimNonce(keyName, nonce string, expiry time.Time) (bool, error) {
	h := sha256.New()
	h.Write([]byte(keyName))
	h.Write([]byte{0})
	h.Write([]byte(nonce))
	if s.skip(StoreNonce) {
		return false, errSkipped
	}
	key := s.prefix + "-nonce#" + hex.EncodeToString(h.Sum(nil))
	ttl := time.Until(expiry)
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	ctx, cancel := s.ctx()
	defer cancel()
	fresh, err := s.rdb.SetNX(ctx, key, 1, ttl).Result()
	return fresh, s.result(StoreNonce, err)
}

// gcraScript is ratelimit's GCRA on Redis's clock (µs), so every node shares one
// timestamp per key and nodes' clocks do not matter. It returns {allowed, tat-now,
// retry}: for an allowed event tat is the new one.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new = tat + interval
if new - now > window then
  return {0, tat - now, new - window - now}
end
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.floor((new - now) / 1000) + 1)
return {1, new - now, 0}
`)

// RateLimiter is one cluster-wide limit: limit events per window per id.
type RateLimiter struct {
	s        *Shared
	name     string
	limit    int
	window   time.Duration
	interval time.Duration
}

// Limiter returns the cluster-wide limit called name (it is part of the keys); nil when
// limit or window is not positive (no limit).
func (s *Shared) Limiter(name string, limit int, window time.Duration) *RateLimiter {
	if limit <= 0 || window <= 0 {
		return nil
	}
	return &RateLimiter{s: s, name: name, limit: limit, window: window,
		interval: max(window/time.Duration(limit), time.Microsecond)}
}

// Allow spends one event of id's allowance, cluster-wide. On error the result is
// meaningless and the caller decides alone. A nil RateLimiter allows everything.
func (l *RateLimiter) Allow(id string) (ratelimit.Result, error) {
	if l == nil {
		return ratelimit.Result{Allowed: true}, nil
	}
	if l.s.skip(StoreRate) {
		return ratelimit.Result{}, errSkipped
	}
	ctx, cancel := l.s.ctx()
	defer cancel()
	now := time.Now()
	v, err := gcraScript.Run(ctx, l.s.rdb, []string{l.s.prefix + "-rate#" + l.name + "#" + id},
		l.interval.Microseconds(), l.window.Microseconds()).Int64Slice()
	if err == nil && len(v) != 3 {
		err = errors.New("cluster: unexpected rate limit reply")
	}
	if err = l.s.result(StoreRate, err); err != nil {
		return ratelimit.Result{}, err
	}
	ahead := time.Duration(v[1]) * time.Microsecond
	r := ratelimit.Result{Allowed: v[0] == 1, Limit: l.limit, Reset: now.Add(ahead)}
	if r.Allowed {
		r.Remaining = int((l.window - ahead) / l.interval)
	} else {
		r.RetryAfter = time.Duration(v[2]) * time.Microsecond
	}
	return r, nil
}

// takeConnScript counts one more connection from ARGV[1] on this node unless the live nodes
// already hold ARGV[2]. A node is live while its heartbeat's expiry in KEYS[1] is ahead;
// the dead are dropped first, so a node killed without closing stops counting once its
// heartbeat expires. This node is (re)marked live by the call itself.
var takeConnScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
local sum = 0
for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local c = redis.call('HGET', ARGV[5] .. n, ARGV[1])
  if c then sum = sum + tonumber(c) end
end
if sum >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
`)

// releaseScript gives one connection of ARGV[1] back.
var releaseScript = redis.NewScript(`
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
`)

// heartbeatScript marks this node live and keeps its hash; it returns 0 when the hash is
// gone although the node holds connections (Redis restarted empty), so they are written
// again.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], 10 * ttl)
if redis.call('PEXPIRE', KEYS[2], ttl) == 0 and tonumber(ARGV[3]) > 0 then return 0 end
return 1
`)

func (s *Shared) nodesKey() string        { return "{" + s.prefix + "}-nodes" }
func (s *Shared) connsPrefix() string     { return "{" + s.prefix + "}-conns#" }
func (s *Shared) connsKey() string        { return s.connsPrefix() + s.uid }
func (s *Shared) ttlMillis() int64        { return s.ttl.Milliseconds() }
func (s *Shared) change(ip string, d int) { s.mu.Lock(); s.changeLocked(ip, d); s.mu.Unlock() }

func (s *Shared) changeLocked(ip string, d int) {
	s.gen++
	if s.conns[ip] += d; s.conns[ip] <= 0 {
		delete(s.conns, ip)
	}
}

// TakeConn counts one more connection from ip unless the cluster already holds max of
// them. On error the connection is counted here all the same (the caller decided to let
// it in by its own counts) and the node's hash is rebuilt once Redis answers.
func (s *Shared) TakeConn(ip string, max int) (bool, error) {
	if s.skip(StoreConns) {
		s.mu.Lock()
		s.changeLocked(ip, 1)
		s.dirty = true
		s.mu.Unlock()
		return false, errSkipped
	}
	ctx, cancel := s.ctx()
	defer cancel()
	ok, err := takeConnScript.Run(ctx, s.rdb, []string{s.nodesKey(), s.connsKey()},
		ip, max, s.uid, s.ttlMillis(), s.connsPrefix()).Bool()
	if err = s.result(StoreConns, err); err != nil {
		s.mu.Lock()
		s.changeLocked(ip, 1)
		s.dirty = true
		s.mu.Unlock()
		return false, err
	}
	if ok {
		s.change(ip, 1)
	}
	return ok, nil
}

// ReleaseConn gives back a connection TakeConn counted (allowed, or let in on error). It
// does not wait for Redis: it runs where a session closes, possibly under the protocol's
// locks. Close waits for the releases in flight.
func (s *Shared) ReleaseConn(ip string) {
	s.mu.Lock()
	s.changeLocked(ip, -1)
	// During an outage the release is not sent: the hash is rebuilt once Redis answers.
	closed := s.closed || s.failing.Load()
	if s.failing.Load() {
		s.dirty = true
	}
	if !closed {
		s.releases.Add(1)
	}
	s.mu.Unlock()
	if closed {
		return
	}
	go func() {
		defer s.releases.Done()
		ctx, cancel := s.ctx()
		defer cancel()
		if err := s.result(StoreConns, releaseScript.Run(ctx, s.rdb, []string{s.connsKey()}, ip).Err()); err != nil {
			s.mu.Lock()
			s.dirty = true
			s.mu.Unlock()
		}
	}()
}

// Start runs the heartbeat until Close.
func (s *Shared) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return
	}
	s.started = true
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.heartbeats(s.stop, s.done)
}

func (s *Shared) heartbeats(stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(s.ttl / 3)
	defer tick.Stop()
	s.heartbeat()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			s.heartbeat()
		}
	}
}

// heartbeat keeps this node live, rebuilds its hash when it may be wrong, and tells the
// adapter whether Redis answers: a node that publishes nothing learns of an outage here.
func (s *Shared) heartbeat() {
	s.mu.Lock()
	held := len(s.conns)
	s.mu.Unlock()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.beatTimeout)
	defer cancel()
	kept, err := heartbeatScript.Run(ctx, s.rdb, []string{s.nodesKey(), s.connsKey()},
		s.uid, s.ttlMillis(), held).Bool()
	if err != nil {
		s.a.MarkDown(start)
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return
	}
	_ = s.result(StoreConns, nil) // Redis answers: the outage, if any, is over
	if !s.a.Up() {
		s.a.ProbeSubscription(ctx)
	}
	s.mu.Lock()
	if !kept {
		s.dirty = true
	}
	dirty := s.dirty
	s.mu.Unlock()
	if dirty {
		s.rebuild(ctx)
	}
}

// rebuild writes this node's hash from its own counts. A TakeConn or ReleaseConn that ran
// meanwhile may be counted twice or not at all, so the rebuild is redone at the next
// heartbeat until one runs undisturbed.
func (s *Shared) rebuild(ctx context.Context) {
	s.mu.Lock()
	gen := s.gen
	fields := make([]any, 0, 2*len(s.conns))
	for ip, n := range s.conns {
		fields = append(fields, ip, n)
	}
	s.mu.Unlock()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.connsKey())
		if len(fields) > 0 {
			p.HSet(ctx, s.connsKey(), fields...)
			p.PExpire(ctx, s.connsKey(), s.ttl)
		}
		return nil
	})
	s.mu.Lock()
	s.dirty = err != nil || s.gen != gen
	s.mu.Unlock()
	if err == nil {
		s.log.Debug("connection counts written again", "ips", len(fields)/2)
	}
}

// Close stops the heartbeat and takes this node's counts out of the cluster at once.
func (s *Shared) Close() {
	s.mu.Lock()
	stop, done, started := s.stop, s.done, s.started
	s.started, s.stop, s.closed = false, nil, true
	s.mu.Unlock()
	if !started || stop == nil {
		s.releases.Wait()
		return
	}
	close(stop)
	<-done
	s.releases.Wait()
	ctx, cancel := s.ctx()
	defer cancel()
	_, _ = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, s.nodesKey(), s.uid)
		p.Del(ctx, s.connsKey())
		return nil
	})
}
