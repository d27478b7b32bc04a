// Package ratelimit counts events per key (an IP, a connection, an API key) and says when a
// key has had too many. It uses GCRA (a token bucket kept as one timestamp per key): up to
// `limit` events may come at once, then one more each window/limit. Over time that is
// exactly `limit` per `window`; any one window-long stretch holds at most 2*limit-1 (a
// full burst at its start, the refill during it).
//
// Memory is bounded: at most maxKeys keys are remembered. A key whose allowance is full
// again is forgotten (forgetting it changes nothing), in sweeps amortized over Allow; when a
// shard is full of active keys, the key closest to being idle is evicted, which errs on the
// side of allowing.
package ratelimit

import (
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"
)

// Result is the outcome of one Allow, with what the HTTP headers X-RateLimit-* and
// Retry-After need.
type Result struct {
	Allowed    bool
	Limit      int           // events per window; 0 for a nil Limiter (no limit)
	Remaining  int           // events still allowed right now
	Reset      time.Time     // when the full allowance is back
	RetryAfter time.Duration // when refused: how long until one more event is allowed
}

// Limiter allows limit events per window per key. It is safe for concurrent use; the zero
// value is not usable, and a nil *Limiter allows everything.
type Limiter struct {
	limit    int
	window   int64 // ns
	interval int64 // ns between events at the sustained rate: window / limit
	seed     maphash.Seed
	base     time.Time // monotonic origin of the int64 times below
	now      func() int64
	shards   []shard
	mask     uint64
}

// shard is one lock's worth of keys. tat is GCRA's "theoretical arrival time": the time
// (ns since base) at which the key's allowance is full again; a key is idle once tat <= now.
type shard struct {
	mu        sync.Mutex
	tat       map[string]int64
	max       int
	nextSweep int64
	_         [32]byte // keep neighbouring shards' locks off one cache line
}

const (
	maxShards       = 64
	minKeysPerShard = 64
	defaultMaxKeys  = 100000
	// evictSample bounds the work of making room in a full shard of active keys.
	evictSample = 8
)

// New returns a Limiter allowing limit events per window for each key, remembering at most
// maxKeys keys (maxKeys <= 0 means 100000). limit <= 0 or window <= 0 returns nil, which
// allows everything.
func New(limit int, window time.Duration, maxKeys int) *Limiter {
	if limit <= 0 || window <= 0 {
		return nil
	}
	if maxKeys <= 0 {
		maxKeys = defaultMaxKeys
	}
	n := 1
	for n < maxShards && maxKeys/(n*2) >= minKeysPerShard {
		n *= 2
	}
	l := &Limiter{
		limit:    limit,
		window:   int64(window),
		interval: max(int64(window)/int64(limit), 1),
		seed:     maphash.MakeSeed(),
		base:     time.Now(),
		shards:   make([]shard, n),
		mask:     uint64(n - 1),
	}
	l.now = func() int64 { return int64(time.Since(l.base)) }
	for i := range l.shards {
		// Spread maxKeys exactly over the shards so the total never exceeds it.
		m := maxKeys / n
		if i < maxKeys%n {
			m++
		}
		l.shards[i].max = m
		l.shards[i].tat = make(map[string]int64)
	}
	return l
}

// Allow records one event for key and reports whether it is within the limit. A refused
// event is not counted.
func (l *Limiter) Allow(key string) Result {
	return l.allow(key, false)
}

// AllowOwned is Allow for a key that is a string of its own, such as an id, rather than a
// part of a larger buffer: the limiter keeps it as it is, without a copy. The hub checks
// every event of every socket against its id, and the copy would outlive the check for
// as long as the key's state, a window.
func (l *Limiter) AllowOwned(key string) Result {
	return l.allow(key, true)
}

func (l *Limiter) allow(key string, owned bool) Result {
	if l == nil {
		return Result{Allowed: true}
	}
	now := l.now()
	s := &l.shards[l.shardIndex(key)]

	s.mu.Lock()
	if now >= s.nextSweep {
		s.sweep(now)
		s.nextSweep = now + l.window
	}
	tat, known := s.tat[key]
	if tat < now {
		tat = now
	}
	newTAT := tat + l.interval
	if newTAT-now > l.window {
		s.mu.Unlock()
		return Result{
			Limit:      l.limit,
			Reset:      l.at(tat),
			RetryAfter: time.Duration(newTAT - l.window - now),
		}
	}
	if !known {
		if len(s.tat) >= s.max {
			s.makeRoom(now)
		}
		if !owned {
			key = strings.Clone(key) // a key kept in the map must not pin the caller's buffer
		}
	}
	s.tat[key] = newTAT
	s.mu.Unlock()

	return Result{
		Allowed:   true,
		Limit:     l.limit,
		Remaining: int((l.window - (newTAT - now)) / l.interval),
		Reset:     l.at(newTAT),
	}
}

// Forget drops key, as if it had never been seen (e.g. when a connection closes).
func (l *Limiter) Forget(key string) {
	if l == nil {
		return
	}
	s := &l.shards[l.shardIndex(key)]
	s.mu.Lock()
	delete(s.tat, key)
	s.mu.Unlock()
}

// Len returns the number of keys remembered, idle ones not yet swept included.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}

// Limit returns the events allowed per window (0 for a nil Limiter).
func (l *Limiter) Limit() int {
	if l == nil {
		return 0
	}
	return l.limit
}

func (l *Limiter) shardIndex(key string) int {
	return int(maphash.String(l.seed, key) & l.mask)
}

func (l *Limiter) at(ns int64) time.Time { return l.base.Add(time.Duration(ns)) }

// sweep forgets every idle key. It runs at most once per window per shard, so its cost is
// amortized over the Allow calls of that window.
func (s *shard) sweep(now int64) {
	for k, tat := range s.tat {
		if tat <= now {
			delete(s.tat, k)
		}
	}
}

// makeRoom frees one slot in a full shard: an idle key if a small sample finds one, else the
// sampled key with the earliest tat (the one with the most allowance left, so evicting it
// grants the least). Go's randomized map iteration makes the sample random.
func (s *shard) makeRoom(now int64) {
	victim, oldest, seen := "", int64(math.MaxInt64), 0
	for k, tat := range s.tat {
		if tat <= now {
			delete(s.tat, k)
			return
		}
		if tat < oldest {
			victim, oldest = k, tat
		}
		if seen++; seen >= evictSample {
			break
		}
	}
	delete(s.tat, victim)
}
