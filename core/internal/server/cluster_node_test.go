package server_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

// TestNodeInterop runs core/internal/cluster/testdata/node: @socket.io/redis-emitter and a
// Node.js socket.io server with @socket.io/redis-adapter in one cluster with two nodes of
// ours (pinned versions in its package.json).
func TestNodeInterop(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; the npm suite needs Node.js 18+")
	}
	addr := redistest.Addr(t)
	dir := filepath.Join(moduleRoot(t), "core", "internal", "cluster", "testdata", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@socket.io", "redis-adapter")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, b)
		}
	}
	_, _, prefix := startCluster(t, 0) // a key prefix of this test's own
	var ours []*env
	for i := 0; i < 2; i++ {
		ours = append(ours, startServer(t, func(c *config.Config) {
			c.Cluster.RedisURL = "redis://" + addr + "/0"
			c.Cluster.KeyPrefix = prefix
			c.Cluster.RequestTimeout = 500 * time.Millisecond
		}))
	}
	cmd := exec.Command(node, "--test", "--test-reporter=spec", "interop.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_A_URL="+ours[0].url, "NODE_B_URL="+ours[1].url,
		"REDIS_URL=redis://"+addr+"/0", "KEY_PREFIX="+prefix, "JWT_SECRET="+testSecret, "API_KEY="+testAPIKey)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("node suite failed: %v", err)
	}
}
