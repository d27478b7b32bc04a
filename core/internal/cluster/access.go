package cluster

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the adapter's client, shared by the cluster-wide stores (Shared) so a node keeps
// one connection pool to the cluster's Redis.
func (a *Adapter) Redis() redis.UniversalClient { return a.client }

// Up reports whether Redis is believed reachable: false from a failed publish or a failed
// heartbeat until the subscription is confirmed again and Redis answers commands.
func (a *Adapter) Up() bool { return !a.down.Load() }

// MarkDown records that a call to Redis begun at start failed outside the adapter (a
// heartbeat of the cluster-wide stores), so /health and socket_server_cluster_redis_up say
// so even on a node that publishes nothing; unless Redis was seen answering again since
// start (failedSince).
func (a *Adapter) MarkDown(start time.Time) { a.failedSince(start) }

// ProbeSubscription is called while the adapter is down and Redis answers other calls
// again: a PING written on the subscription's connection succeeds only once go-redis has
// reconnected it, and a reconnection resubscribes before anything else is sent, so the
// node is up again.
func (a *Adapter) ProbeSubscription(ctx context.Context) bool {
	a.mu.Lock()
	ps := a.pubsub
	a.mu.Unlock()
	if ps == nil || ps.Ping(ctx) != nil {
		return false
	}
	a.setDown(false)
	return true
}

// published records a publish that Redis took. While the node is down that shows the
// publishing client reaches Redis again, not that the subscription does: the two use
// different connections, and go-redis says nothing when the subscription's drops. So the
// node is marked up only once a PING on the subscription's connection succeeds too
// (ProbeSubscription), tried off the caller's goroutine, one probe at a time; until then
// broadcasts keep being counted as not published and are tried once per probeEvery.
func (a *Adapter) published() {
	if !a.down.Load() || !a.probing.CompareAndSwap(false, true) {
		return
	}
	if !a.goBackground(func() {
		defer a.probing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
		defer cancel()
		a.ProbeSubscription(ctx)
	}) {
		a.probing.Store(false)
	}
}
