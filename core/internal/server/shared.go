package server

import (
	"time"

	"github.com/rtserver/rtserver/core/internal/cluster"
	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/httpapi"
	"github.com/rtserver/rtserver/core/internal/ratelimit"
)

// sharedRate is a connection rate counted across the cluster (cluster.RateLimiter); it is
// asked only when this node's own limiter allows, and on error this node's answer stands.
type sharedRate interface {
	Allow(id string) (ratelimit.Result, error)
}

// sharedConns counts connections per IP across the cluster (cluster.Shared). TakeConn's
// error means Redis did not answer: the connection is let in by this node's count and
// counted all the same, so ReleaseConn must follow it too.
type sharedConns interface {
	TakeConn(ip string, max int) (bool, error)
	ReleaseConn(ip string)
}

// Names of the cluster-wide rate limits (part of their Redis keys).
const (
	sharedLimitConnections = "ws_connection"
	sharedLimitHTTP        = "http"
	sharedLimitHTTPAuth    = "http_auth"
)

// shareLimits makes the connection limits and the API's nonce store and limits hold
// across the cluster, and has /health report it. It runs only on a clustered node, after
// the adapter and the guard are built and before the API is.
func (s *Server) shareLimits(cfg *config.Config, apiOpts *httpapi.Options) {
	s.shared = cluster.NewShared(s.cluster, cluster.SharedOptions{
		NodeTTL:          cfg.Cluster.NodeTTL,
		HeartbeatTimeout: cfg.Cluster.ConnectTimeout,
		Logger:           s.log.Named("cluster"),
		Registerer:       s.metrics.Registry,
	})
	if s.guard.o.ConnectionsPerMin > 0 {
		s.guard.sharedRate = s.shared.Limiter(sharedLimitConnections, s.guard.o.ConnectionsPerMin, time.Minute)
	}
	if s.guard.o.MaxConnectionsPerIP > 0 {
		s.guard.sharedConns = s.shared
	}
	apiOpts.SharedNonces = s.shared
	if apiOpts.RequestsPerMinute > 0 {
		apiOpts.SharedRequests = s.shared.Limiter(sharedLimitHTTP, apiOpts.RequestsPerMinute, time.Minute)
	}
	if apiOpts.FailedAuthPerMinute > 0 {
		apiOpts.SharedFailedAuth = s.shared.Limiter(sharedLimitHTTPAuth, apiOpts.FailedAuthPerMinute, time.Minute)
	}
	apiOpts.Cluster = s.cluster
}
