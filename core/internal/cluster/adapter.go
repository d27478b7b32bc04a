// Package cluster joins nodes through Redis with the classic pub/sub protocol of
// @socket.io/redis-adapter 8.x, so a node of this product and a Node.js socket.io node (or
// @socket.io/redis-emitter) see each other's broadcasts. It is a hub.Adapter: the node's
// own sockets are reached through the in-memory adapter it wraps, and every broadcast is
// also published for the other nodes.
//
// This slice carries broadcasts only. Join, leave, disconnect and the counts stay local (a
// later slice adds the adapter's request/response channel for them), so a broadcast's count
// is the number of sockets reached on this node.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/rtserver/rtserver/core/internal/hub"
)

// Options configure an Adapter.
type Options struct {
	RedisURL       string
	KeyPrefix      string        // "socket.io" in the official adapter
	ConnectTimeout time.Duration // start-up wait for Redis, and each publish's deadline
	Logger         hclog.Logger
	Registerer     prometheus.Registerer // nil: no metrics
}

// Deliverer reaches this node's sockets with a broadcast received from another node; its
// arguments are any number of values (a Node node may send several, and buffers).
// socketio.Server.EmitTo is one.
type Deliverer func(rooms, except []string, event string, args ...any) (int, error)

// Adapter is a hub.Adapter across nodes. Methods other than Broadcast are the local
// adapter's.
type Adapter struct {
	hub.Adapter // this node's sockets
	deliver     Deliverer
	client      redis.UniversalClient
	prefix      string
	uid         string
	timeout     time.Duration
	log         hclog.Logger
	m           *clusterMetrics
	rec         *recoveryLink // shared connection state recovery (recovery.go); nil: off

	// down is set while Redis is known unreachable (a failed publish) and cleared by a
	// publish that succeeds or a subscription Redis confirms. While it is set a broadcast
	// tries Redis at most once per probeEvery, so the API does not wait a timeout per call.
	down      atomic.Bool
	lastProbe atomic.Int64 // unix nanoseconds of the last publish tried while down

	mu     sync.Mutex // guards pubsub, done and closed
	pubsub *redis.PubSub
	done   chan struct{} // closed when the receive loop ends
	closed bool
}

var _ hub.Adapter = (*Adapter)(nil)

// New builds the adapter; nothing connects until Start.
func New(local hub.Adapter, deliver Deliverer, o Options) (*Adapter, error) {
	opt, err := redis.ParseURL(o.RedisURL)
	if err != nil {
		return nil, errors.New("cluster: redis_url is not a Redis URL")
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	opt.DialTimeout = o.ConnectTimeout
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:       []string{opt.Addr},
		DB:          opt.DB,
		Username:    opt.Username,
		Password:    opt.Password,
		TLSConfig:   opt.TLSConfig,
		DialTimeout: opt.DialTimeout,
		Protocol:    opt.Protocol,
	})
	var idBytes [6]byte
	_, _ = rand.Read(idBytes[:])
	a := &Adapter{
		Adapter: local,
		deliver: deliver,
		client:  client,
		prefix:  o.KeyPrefix,
		uid:     hex.EncodeToString(idBytes[:]),
		timeout: o.ConnectTimeout,
		log:     o.Logger,
		m:       newMetrics(o.Registerer),
	}
	return a, nil
}

// UID is the node's id on the wire.
func (a *Adapter) UID() string { return a.uid }

// pattern is what a node subscribes to, as the official adapter does: every broadcast of
// the main namespace, on the all-node channel or a room's.
func (a *Adapter) pattern() string { return a.prefix + "#" + mainNamespace + "#*" }

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
	ps := a.client.PSubscribe(cctx, a.pattern())
	// Wait for Redis to confirm the subscription, so that a broadcast published once Start
	// has returned reaches this node.
	if _, err := ps.Receive(cctx); err != nil {
		a.setDown(true)
		a.log.Error("redis unreachable at start: serving this node's sockets only until it answers",
			"error", err, "timeout", a.timeout)
	} else {
		a.setDown(false)
		a.log.Info("joined the cluster", "uid", a.uid, "pattern", a.pattern())
	}
	a.pubsub = ps
	a.done = make(chan struct{})
	go a.receive(ps, a.done)
	return nil
}

// receive delivers other nodes' broadcasts until the subscription is closed. go-redis
// reconnects and resubscribes on its own; a re-confirmed subscription marks Redis up.
func (a *Adapter) receive(ps *redis.PubSub, done chan struct{}) {
	defer close(done)
	for m := range ps.ChannelWithSubscriptions() {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind == "psubscribe" && a.down.Load() {
				a.setDown(false)
				a.log.Info("redis answers again: resubscribed", "pattern", a.pattern())
			}
		case *redis.Message:
			a.onMessage(m.Payload)
		}
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
	if _, err := deliver(b.rooms, b.except, b.event, b.args...); err != nil {
		a.log.Warn("delivering a broadcast from another node failed", "event", b.event, "error", err)
	}
}

// Broadcast reaches this node's sockets and publishes the broadcast for the others. The
// count is this node's: other nodes do not answer with theirs in this version. A broadcast
// that cannot be published (Redis down) is still delivered here, counted in
// socket_server_cluster_messages_total{result="publish_failed"} and logged.
func (a *Adapter) Broadcast(to hub.Target, event string, data json.RawMessage) (int, error) {
	if a.rec != nil {
		return a.broadcastLogged(to, event, data)
	}
	msg, err := encodeBroadcast(a.uid, to.Rooms, to.Except, event, data)
	if err != nil {
		return 0, err
	}
	if !a.mayPublish() {
		a.m.messages.WithLabelValues("publish_failed").Inc()
		return a.Adapter.Broadcast(to, event, data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	err = a.client.Publish(ctx, broadcastChannel(a.prefix, to.Rooms), msg).Err()
	cancel()
	if err != nil {
		a.setDown(true)
		a.m.messages.WithLabelValues("publish_failed").Inc()
		a.log.Warn("broadcast not published to the cluster", "event", event, "error", err)
	} else {
		a.setDown(false)
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
		a.m.up.Set(1)
	}
}

// Close ends the subscription and the Redis connections.
func (a *Adapter) Close() error {
	a.mu.Lock()
	ps, done, closed := a.pubsub, a.done, a.closed
	a.pubsub, a.closed = nil, true
	a.mu.Unlock()
	if closed {
		return nil
	}
	var errs []error
	if ps != nil {
		errs = append(errs, ps.Close())
		<-done
	}
	errs = append(errs, a.client.Close())
	return errors.Join(errs...)
}

type clusterMetrics struct {
	set      atomic.Bool // up was set once
	up       prometheus.Gauge
	messages *prometheus.CounterVec
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
	}
	if r != nil {
		r.MustRegister(m.up, m.messages)
	}
	return m
}
