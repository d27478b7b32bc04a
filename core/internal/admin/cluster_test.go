package admin_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/nodetest"
	"github.com/rtserver/rtserver/core/internal/redistest"
)

// TestNodeAdminCluster runs the npm suite's cluster file against two nodes on the shared
// Redis: an admin connected to one node sees the other as a server, its sockets and their
// rooms, acts on them, and a session id from one node logs in on the other.
func TestNodeAdminCluster(t *testing.T) {
	addr := redistest.Addr(t)
	node := nodetest.Node(t)
	dir := npmInstall(t)
	for _, mode := range []string{config.AdminDevelopment, config.AdminProduction} {
		t.Run(mode, func(t *testing.T) {
			prefix := redistest.Prefix(t, "rt-admin")
			var urls []string
			for i := 0; i < 2; i++ {
				ts := start(t, func(c *config.Config) {
					c.Cluster.RedisURL = "redis://" + addr + "/0"
					c.Cluster.KeyPrefix = prefix
					c.Cluster.RequestTimeout = 2 * time.Second
					c.Admin.Mode = mode
				})
				urls = append(urls, ts.url)
			}
			base := runtime.NumGoroutine()
			nodetest.Run(t, node, dir, []string{"NODE_A_URL=" + urls[0], "NODE_B_URL=" + urls[1],
				"JWT_SECRET=" + testSecret, "ADMIN_USER=admin", "ADMIN_PASSWORD=" + testPassword, "MODE=" + mode},
				"cluster.test.mjs")
			// The admins are gone with the suite's process: the stats loops end once the
			// other node's lease on them runs out, and nothing of the requests stays.
			deadline := time.Now().Add(20 * time.Second)
			for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > base {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines left over %d:\n%s", n-base, base, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

// TestNodeAdminRedisDown runs the single-node suite on a clustered node whose Redis does
// not answer: the admin logs in, lists and acts on the node's own sockets, and its session
// id logs in again, none of it waiting on Redis.
func TestNodeAdminRedisDown(t *testing.T) {
	node := nodetest.Node(t)
	dir := npmInstall(t)
	dead := redistest.DeadAddr(t)
	ts := start(t, func(c *config.Config) {
		c.Cluster.RedisURL = "redis://" + dead + "/0"
		c.Cluster.KeyPrefix = redistest.Prefix(t, "rt-admin-down")
		c.Cluster.ConnectTimeout = 500 * time.Millisecond
		// The shared recovery store's own outage handling is not what this test is about.
		c.Recovery.Enabled = false
	})
	nodetest.Run(t, node, dir, []string{"SERVER_URL=" + ts.url, "JWT_SECRET=" + testSecret,
		"ADMIN_USER=admin", "ADMIN_PASSWORD=" + testPassword, "MODE=development"}, "admin.test.mjs")
}
