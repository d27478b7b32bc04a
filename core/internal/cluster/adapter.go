// Package cluster joins nodes through Redis with the classic pub/sub protocol of
// @socket.io/redis-adapter 8.x, so a node of this product and a Node.js socket.io node (or
// @socket.io/redis-emitter) see each other's broadcasts. It is a hub.Adapter: the node's
// own sockets are reached through the in-memory adapter it wraps, and every broadcast is
// also published for the other nodes.
//
// Beside broadcasts it speaks the adapter's request/response channels (requests.go): it
// answers every request a Node.js node or the emitter sends, and asks the other nodes to
// join, leave, disconnect or describe a socket it does not hold, to count a broadcast's
// recipients (BroadcastCount) and for the cluster's counts (ClusterStats).
//
// Locks: mu (Start, Close), callsMu, a call's mu and bgMu are never held together. Only
// Start holds one (mu) while talking to Redis, so that Close cannot run halfway through a
// subscription; none is held while publishing an answer or delivering to sockets.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// Options configure an Adapter.
type Options struct {
	RedisURL       string
	KeyPrefix      string        // "socket.io" in the official adapter
	ConnectTimeout time.Duration // start-up wait for Redis, and each publish's deadline
	Logger         hclog.Logger
	Registerer     prometheus.Registerer // nil: no metrics
	// Sockets are this node's sockets, as other nodes' requests reach them (nil: this
	// node answers every request as a node with no sockets).
	Sockets *socketio.Server
	// RequestTimeout bounds the wait for other nodes' answers (default 2s).
	RequestTimeout time.Duration
	// Redis, when set, says how to reach Redis instead of RedisURL: a single server, a
	// master that Sentinels watch, or a Redis Cluster (config.Cluster.RedisOptions).
	Redis *redis.UniversalOptions
}

// Deliverer reaches this node's sockets with a broadcast received from another node; its
// arguments are any number of values (a Node node may send several, and buffers).
// socketio.Server.EmitTo is one.
type Deliverer func(rooms, except []string, event string, args ...any) (int, error)

// Adapter is a hub.Adapter across nodes. SocketCount and RoomCount are the local adapter's
// (ClusterStats has the cluster's).
type Adapter struct {
	hub.Adapter // this node's sockets
	io          *socketio.Server
	deliver     Deliverer
	client      redis.UniversalClient
	prefix      string
	uid         string
	timeout     time.Duration
	reqTimeout  time.Duration
	log         hclog.Logger
	m           *clusterMetrics
	rec         *recoveryLink // shared connection state recovery (recovery.go); nil: off

	callsMu sync.Mutex // guards calls
	calls   map[string]*call

	serving  chan struct{}  // a slot per other node's request being answered
	bgMu     sync.Mutex     // guards bgClosed and wg.Add
	bgClosed bool           // Close began: no new background work
	wg       sync.WaitGroup // goroutines answering requests

	// down is set while Redis is known unreachable (a failed publish) and cleared once the
	// subscription is known to be back (a confirmed resubscription, or a PING on its
	// connection after a publish or heartbeat succeeded). While it is set a broadcast
	// tries Redis at most once per probeEvery, so the API does not wait a timeout per call.
	down      atomic.Bool
	lastProbe atomic.Int64 // unix nanoseconds of the last publish tried while down
	probing   atomic.Bool  // a publish made while down is having the subscription probed (published)
	upAt      atomic.Int64 // monotonic nanoseconds since clockBase when down was last cleared

	// rooms holds the per-room subscriptions (rooms.go); nil when the adapter has no
	// sockets to watch, and then it subscribes to every broadcast by pattern.
	rooms     *roomSubs
	sweepDone chan struct{} // closed when the sweeper of rooms ends

	mu     sync.Mutex // guards pubsub, done and closed
	pubsub *redis.PubSub
	done   chan struct{} // closed when the receive loop ends
	closed bool
}

var (
	_ hub.Adapter = (*Adapter)(nil)
	_ hub.Counter = (*Adapter)(nil)
)

// New builds the adapter; nothing connects until Start.
func New(local hub.Adapter, deliver Deliverer, o Options) (*Adapter, error) {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	setRedisLogger(o.Logger)
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	client, err := newClient(o.RedisURL, o.Redis, o.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	var idBytes [6]byte
	_, _ = rand.Read(idBytes[:])
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = defaultRequestTimeout
	}
	a := &Adapter{
		Adapter:    local,
		io:         o.Sockets,
		reqTimeout: o.RequestTimeout,
		calls:      make(map[string]*call),
		serving:    make(chan struct{}, maxServing),
		deliver:    deliver,
		client:     client,
		prefix:     o.KeyPrefix,
		uid:        hex.EncodeToString(idBytes[:]),
		timeout:    o.ConnectTimeout,
		log:        o.Logger,
		m:          newMetrics(o.Registerer),
	}
	if o.Sockets != nil {
		a.rooms = newRoomSubs(a)
		o.Sockets.WatchRooms(a.rooms)
	}
	return a, nil
}

// UID is the node's id on the wire.
func (a *Adapter) UID() string { return a.uid }

// pattern matches every broadcast of the main namespace, on the all-node channel or a
// room's; the official adapter subscribes to it, and so does this one when it has no
// sockets to watch. With sockets, it subscribes to allChannel and to the channel of each
// room with a member here (rooms.go).
func (a *Adapter) pattern() string { return a.prefix + "#" + mainNamespace + "#*" }

// allChannel carries broadcasts to every node: to no room, or to several.
func (a *Adapter) allChannel() string { return broadcastChannel(a.prefix, nil) }

// reqChannel carries requests; respChannel the answers of nodes that do not name the
// requester (the Node.js adapter's default); ownRespChannel(uid) the answers to uid.
func (a *Adapter) reqChannel() string  { return a.prefix + "-request#" + mainNamespace + "#" }
func (a *Adapter) respChannel() string { return a.prefix + "-response#" + mainNamespace + "#" }
func (a *Adapter) ownRespChannel(uid string) string {
	return a.respChannel() + uid + "#"
}

// markChannel carries nothing: each node of this product subscribes to it so that PUBSUB
// NUMSUB tells its nodes, which answer counted broadcasts, from Node.js nodes, which do
// not. It does not match the broadcast pattern of either.
func (a *Adapter) markChannel() string { return a.prefix + "-rtserver#" + mainNamespace + "#" }

// Start subscribes and starts delivering other nodes' broadcasts. When Redis does not answer
// within the connect timeout it logs an error and returns nil: the node serves its own
// sockets (degraded, socket_server_cluster_redis_up 0) while go-redis keeps reconnecting,
// and subscribes once Redis is back.
func (a *Adapter) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pubsub != nil || a.closed {
		return errors.New("cluster: started twice or after Close")
	}
	cctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	own := []string{a.reqChannel(), a.respChannel(), a.ownRespChannel(a.uid), a.markChannel()}
	var ps *redis.PubSub
	var err error
	pending := make(map[string]bool)
	if a.rooms == nil {
		ps = a.client.PSubscribe(cctx, a.pattern())
		pending[a.pattern()] = true
		err = ps.Subscribe(cctx, own...)
	} else {
		ps = a.client.Subscribe(cctx)
		a.rooms.subMu.Lock()
		own = append(append(own, a.allChannel()), a.rooms.start(ps)...)
		err = batched(own, func(chs []string) error { return ps.Subscribe(cctx, chs...) })
		a.rooms.subMu.Unlock()
	}
	for _, ch := range own {
		pending[ch] = true
	}
	// Wait for Redis to confirm the subscriptions, so that a broadcast or request published
	// once Start has returned reaches this node.
	var early []*redis.Message
	for len(pending) > 0 && err == nil {
		var m any
		if m, err = ps.Receive(cctx); err != nil {
			break
		}
		switch m := m.(type) {
		case *redis.Subscription:
			delete(pending, m.Channel)
			if a.rooms != nil {
				a.rooms.confirmed(m.Channel)
			}
		case *redis.Message:
			// A message can arrive between the confirmations (the pattern is confirmed
			// first): keep it for the receive loop rather than lose it.
			early = append(early, m)
		}
	}
	if err != nil {
		a.setDown(true)
		a.log.Error("redis unreachable at start: serving this node's sockets only until it answers",
			"error", err, "timeout", a.timeout)
	} else {
		a.setDown(false)
		a.log.Info("joined the cluster", "uid", a.uid, "pattern", a.pattern())
	}
	a.pubsub = ps
	a.done = make(chan struct{})
	go a.receive(ps, a.done, early)
	if a.rooms != nil {
		a.sweepDone = make(chan struct{})
		go a.rooms.run(a.sweepDone)
	}
	return nil
}

// receive delivers other nodes' broadcasts until the subscription is closed. go-redis
// reconnects and resubscribes on its own; a re-confirmed subscription marks Redis up once
// commands are answered too (confirmUp).
func (a *Adapter) receive(ps *redis.PubSub, done chan struct{}, early []*redis.Message) {
	defer close(done)
	for _, m := range early {
		a.route(m)
	}
	for m := range ps.ChannelWithSubscriptions() {
		switch m := m.(type) {
		case *redis.Subscription:
			if a.rooms != nil && m.Kind == "subscribe" {
				a.rooms.confirmed(m.Channel)
			}
			if (m.Channel == a.pattern() || m.Channel == a.allChannel()) && a.down.Load() {
				a.goBackground(a.confirmUp)
			}
		case *redis.Message:
			a.route(m)
		}
	}
}

// confirmUp marks Redis up once the subscription is back, if a command on the client that
// publishes succeeds too. The two use different connections: after as many failed dials as
// its pool has connections, go-redis fails every new call on that pool with the last dial
// error, without dialing, until a dial it retries once a second succeeds. So after an
// outage (a master killed under Sentinel, a restarted server) the subscription can be back
// up to a second before publishes and answers are: the node stays down until then, and a
// heartbeat (ProbeSubscription) or a probing publish marks it up once the pool dials again.
func (a *Adapter) confirmUp() {
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	if err := a.client.Ping(ctx).Err(); err != nil {
		a.log.Debug("resubscribed, but redis does not answer commands yet", "error", err)
		return
	}
	if a.down.Load() {
		a.setDown(false)
		a.log.Info("redis answers again: resubscribed", "pattern", a.pattern())
	}
}

// route hands a message to the handler of its channel.
func (a *Adapter) route(m *redis.Message) {
	switch {
	case m.Pattern != "" || strings.HasPrefix(m.Channel, a.allChannel()):
		a.onMessage(m.Payload)
	case m.Channel == a.reqChannel():
		a.onRequest(m.Payload)
	default:
		a.onResponse(m.Payload)
	}
}

func (a *Adapter) onMessage(payload string) {
	b, err := decodeBroadcast([]byte(payload))
	if errors.Is(err, errIgnored) {
		return
	}
	if err != nil {
		a.m.messages.WithLabelValues("malformed").Inc()
		a.log.Debug("malformed broadcast ignored", "error", err)
		return
	}
	if b.uid == a.uid {
		return // our own, already delivered locally
	}
	a.m.messages.WithLabelValues("received").Inc()
	deliver := a.deliver
	if a.rec != nil && b.offset != "" {
		deliver = a.rec.deliverer(b.offset) // logged: delivered with its offset
	}
	n, err := deliver(b.rooms, b.except, b.event, b.args...)
	if err != nil {
		a.log.Warn("delivering a broadcast from another node failed", "event", b.event, "error", err)
	}
	if b.countID != "" && validID(b.uid) {
		a.answerCount(b.uid, b.countID, n)
	}
}

// answerCount tells the node that published a counted broadcast how many sockets it
// reached here, off the receive loop (a publish may wait for Redis).
func (a *Adapter) answerCount(uid, requestID string, n int) {
	select {
	case a.serving <- struct{}{}:
	default:
		a.m.requests.WithLabelValues("dropped").Inc()
		return
	}
	t := reqBroadcastCount
	b, _ := json.Marshal(wireResponse{Type: &t, RequestID: requestID, ClientCount: &n})
	if !a.goBackground(func() {
		defer func() { <-a.serving }()
		if err := a.publishResponse(uid, b); err != nil {
			a.log.Debug("count answer not published", "error", err)
		}
	}) {
		<-a.serving
	}
}

// Broadcast reaches this node's sockets and publishes the broadcast for the others. The
// count is this node's (BroadcastCount asks the others for theirs). A broadcast
// that cannot be published (Redis down) is still delivered here, counted in
// socket_server_cluster_messages_total{result="publish_failed"} and logged.
func (a *Adapter) Broadcast(to hub.Target, event string, data json.RawMessage) (int, error) {
	if a.rec != nil {
		return a.broadcastLogged(to, event, data)
	}
	msg, err := encodeBroadcast(a.uid, to.Rooms, to.Except, event, data, "", false)
	if err != nil {
		return 0, err
	}
	if !a.mayPublish() {
		a.m.messages.WithLabelValues("publish_failed").Inc()
		return a.Adapter.Broadcast(to, event, data)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	err = a.client.Publish(ctx, broadcastChannel(a.prefix, to.Rooms), msg).Err()
	cancel()
	if err != nil {
		a.failedSince(start)
		a.m.messages.WithLabelValues("publish_failed").Inc()
		a.log.Warn("broadcast not published to the cluster", "event", event, "error", err)
	} else {
		a.published()
		a.m.messages.WithLabelValues("published").Inc()
	}
	return a.Adapter.Broadcast(to, event, data)
}

// probeEvery is how often a broadcast tries Redis while it is known down.
const probeEvery = time.Second

// mayPublish reports whether this broadcast should try Redis: always while it is up, once
// per probeEvery while it is down.
func (a *Adapter) mayPublish() bool {
	if !a.down.Load() {
		return true
	}
	now := time.Now().UnixNano()
	last := a.lastProbe.Load()
	return now-last >= int64(probeEvery) && a.lastProbe.CompareAndSwap(last, now)
}

func (a *Adapter) setDown(down bool) {
	if a.down.Swap(down) == down && a.m.set.Load() {
		return
	}
	a.m.set.Store(true)
	if down {
		a.m.up.Set(0)
		a.lastProbe.Store(time.Now().UnixNano())
	} else {
		a.upAt.Store(int64(time.Since(clockBase)))
		a.m.up.Set(1)
	}
}

// failedSince records a call to Redis begun at start that failed. A call begun during an
// outage can fail after the node has seen Redis answer again (its retries ran out, or it
// met a connection the pool had not yet dropped): such a failure is older news than the
// recovery and leaves the node up.
func (a *Adapter) failedSince(start time.Time) {
	if a.upAt.Load() > int64(start.Sub(clockBase)) {
		return
	}
	a.setDown(true)
}

// clockBase makes upAt a reading of the monotonic clock, which a change of the wall clock
// does not move.
var clockBase = time.Now()

// goBackground runs fn on a goroutine Close waits for; false (fn not run) once Close began.
func (a *Adapter) goBackground(fn func()) bool {
	a.bgMu.Lock()
	defer a.bgMu.Unlock()
	if a.bgClosed {
		return false
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		fn()
	}()
	return true
}

// serveBounded runs fn on a background goroutine within the bound on requests served at
// once (a.serving); a request over the bound, or one arriving while the adapter closes, is
// dropped and counted.
func (a *Adapter) serveBounded(fn func()) {
	select {
	case a.serving <- struct{}{}:
	default:
		a.m.requests.WithLabelValues("dropped").Inc()
		return
	}
	if !a.goBackground(func() {
		defer func() { <-a.serving }()
		fn()
	}) {
		<-a.serving
	}
}

// Close ends the subscription and the Redis connections.
func (a *Adapter) Close() error {
	a.mu.Lock()
	ps, done, closed, sweepDone := a.pubsub, a.done, a.closed, a.sweepDone
	a.pubsub, a.closed = nil, true
	a.mu.Unlock()
	if closed {
		return nil
	}
	if a.rooms != nil {
		if a.io != nil {
			a.io.WatchRooms(nil)
		}
		close(a.rooms.stop)
		if sweepDone != nil {
			<-sweepDone
		}
	}
	var errs []error
	if ps != nil {
		errs = append(errs, ps.Close())
		<-done
	}
	a.bgMu.Lock()
	a.bgClosed = true
	a.bgMu.Unlock()
	a.wg.Wait()
	errs = append(errs, a.client.Close())
	return errors.Join(errs...)
}

type clusterMetrics struct {
	set      atomic.Bool // up was set once
	up       prometheus.Gauge
	messages *prometheus.CounterVec
	requests *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) *clusterMetrics {
	m := &clusterMetrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "socket_server_cluster_redis_up",
			Help: "1 while the node is subscribed to the cluster's Redis, 0 while it serves only its own sockets.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socket_server_cluster_messages_total",
			Help: "Cluster broadcasts by result: published, publish_failed, received (from another node), malformed.",
		}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socket_server_cluster_requests_total",
			Help: "Requests between nodes by result: served (another node's, handled), server_side_emit, dropped (too many at once), malformed, too_large, answer_failed (Redis unreachable), timed_out (this node's, some node did not answer).",
		}, []string{"result"}),
	}
	if r != nil {
		r.MustRegister(m.up, m.messages, m.requests)
	}
	return m
}
