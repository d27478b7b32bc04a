package server_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/nodetest"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

// TestNodeInteropOnRedisCluster runs the suite of TestNodeInterop on a three-master Redis
// Cluster: the emitter and the Node.js socket.io server use redis@4 cluster clients, ours
// a redis_cluster block. Classic pub/sub works across the shards since a PUBLISH reaches
// the subscribers of every shard, and both sides sum PUBSUB NUMSUB over the shards.
func TestNodeInteropOnRedisCluster(t *testing.T) {
	node := nodetest.Node(t)
	addrs := redistest.StartCluster(t, 3)
	dir := filepath.Join(moduleRoot(t), "core", "internal", "cluster", "testdata", "node")
	nodetest.Install(t, dir, filepath.Join("node_modules", "@socket.io", "redis-adapter"))
	nodes := startNodesOn(t, 2, func(c *config.Cluster) {
		c.RedisCluster = &config.RedisCluster{Addrs: addrs[:1]}
		c.RequestTimeout = 500 * time.Millisecond
	})
	nodetest.Run(t, node, dir, []string{"NODE_A_URL=" + nodes[0].url, "NODE_B_URL=" + nodes[1].url,
		"REDIS_CLUSTER=" + strings.Join(addrs, ","), "KEY_PREFIX=" + nodes[0].cfg.Cluster.KeyPrefix,
		"JWT_SECRET=" + testSecret, "API_KEY=" + testAPIKey},
		"interop.test.mjs")
}
