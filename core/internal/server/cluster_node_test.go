package server_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/nodetest"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

// TestNodeInterop runs core/internal/cluster/testdata/node: @socket.io/redis-emitter and a
// Node.js socket.io server with @socket.io/redis-adapter in one cluster with two nodes of
// ours (pinned versions in its package.json).
func TestNodeInterop(t *testing.T) {
	node := nodetest.Node(t)
	addr := redistest.Addr(t)
	dir := filepath.Join(moduleRoot(t), "core", "internal", "cluster", "testdata", "node")
	nodetest.Install(t, dir, filepath.Join("node_modules", "@socket.io", "redis-adapter"))
	_, _, prefix := startCluster(t, 0) // a key prefix of this test's own
	var ours []*env
	for i := 0; i < 2; i++ {
		ours = append(ours, startServer(t, func(c *config.Config) {
			c.Cluster.RedisURL = "redis://" + addr + "/0"
			c.Cluster.KeyPrefix = prefix
			c.Cluster.RequestTimeout = 500 * time.Millisecond
		}))
	}
	nodetest.Run(t, node, dir, []string{"NODE_A_URL=" + ours[0].url, "NODE_B_URL=" + ours[1].url,
		"REDIS_URL=redis://" + addr + "/0", "KEY_PREFIX=" + prefix, "JWT_SECRET=" + testSecret, "API_KEY=" + testAPIKey},
		"interop.test.mjs")
}
