package httpapi

import (
	"time"

	"github.com/rtserver/rtserver/core/internal/ratelimit"
)

// SharedNonces records nonces where every node of a cluster sees them (cluster.Shared).
// The API keeps its in-memory store all the same and asks it first: a replay this node
// has seen is refused even while the shared store cannot answer.
type SharedNonces interface {
	// ClaimNonce records keyName's nonce until expiry and reports whether no node had
	// recorded it before; an error means it could not tell.
	ClaimNonce(keyName, nonce string, expiry time.Time) (bool, error)
}

// SharedLimiter is a rate limit counted across the cluster (cluster.RateLimiter). It is
// asked only when this node's own limiter allows the request, and on error this node's
// answer stands.
type SharedLimiter interface {
	Allow(id string) (ratelimit.Result, error)
}

// ClusterHealth is what /health reports of the cluster (cluster.Adapter).
type ClusterHealth interface {
	// Up reports whether the node reaches the cluster's Redis.
	Up() bool
	// UID is the node's id in the cluster.
	UID() string
}

// Health statuses of GET /health.
const (
	HealthOK = "ok"
	// HealthDegraded: the node serves its own sockets but cannot reach the cluster's
	// Redis, so broadcasts do not reach other nodes and limits hold per node. Still 200:
	// a load balancer should keep sending clients to a node that serves them.
	HealthDegraded = "degraded"
)

// clusterHealth is the "cluster" object of GET /health, present only on a clustered node.
type clusterHealth struct {
	Redis string `json:"redis"` // "up" or "down"
	Node  string `json:"node"`  // this node's uid on the wire
}

// healthOf builds /health's status and cluster object.
func healthOf(c ClusterHealth) (string, *clusterHealth) {
	if c == nil {
		return HealthOK, nil
	}
	if c.Up() {
		return HealthOK, &clusterHealth{Redis: "up", Node: c.UID()}
	}
	return HealthDegraded, &clusterHealth{Redis: "down", Node: c.UID()}
}
