package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Deployments other than one server, made of redis-server processes of the test's own on
// free loopback ports, keeping nothing on disk, killed at the test's end.

// NeedTools skips the test without the named programs, or fails it when Redis is required.
func NeedTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if Required() {
				t.Fatalf("%s is required (REQUIRE_REDIS=1) but not installed", n)
			}
			t.Skipf("%s is not installed", n)
		}
	}
}

// Sentinel is a master, one replica of it and Sentinels watching them as MasterName.
type Sentinel struct {
	MasterName string
	Addr       string   // the first Sentinel's
	Addrs      []string // every Sentinel's, Addr first
	Master     string   // the first master's address
	Replica    string   // its replica's address, the master after a failover

	procs map[string]*exec.Cmd // the redis-server of each of Master and Replica
}

// SentinelOptions shape a Sentinel deployment; zero values take the defaults.
type SentinelOptions struct {
	Sentinels       int           // how many Sentinels (default 1)
	Quorum          int           // Sentinels that must agree the master is down (default a majority)
	DownAfter       time.Duration // down-after-milliseconds (default 2s)
	FailoverTimeout time.Duration // failover-timeout (default 10s)
}

// StartSentinel starts a master, a replica in sync with it and a Sentinel that knows both
// (so that SENTINEL FAILOVER may promote the replica at once). Without redis-server the
// test is skipped, or fails when Redis is required.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	return StartSentinelWith(t, SentinelOptions{})
}

// StartSentinelWith is StartSentinel with o's Sentinels; it returns once every Sentinel
// knows the master, its replica and the other Sentinels, so that they can agree on the
// master's death and elect one of them to fail it over.
func StartSentinelWith(t testing.TB, o SentinelOptions) *Sentinel {
	t.Helper()
	NeedTools(t, "redis-server")
	if o.Sentinels <= 0 {
		o.Sentinels = 1
	}
	if o.Quorum <= 0 {
		o.Quorum = o.Sentinels/2 + 1
	}
	if o.DownAfter <= 0 {
		o.DownAfter = 2 * time.Second
	}
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = 10 * time.Second
	}
	ctx := context.Background()
	s := &Sentinel{MasterName: "mymaster", Master: DeadAddr(t), Replica: DeadAddr(t)}
	for i := 0; i < o.Sentinels; i++ {
		s.Addrs = append(s.Addrs, DeadAddr(t))
	}
	s.Addr = s.Addrs[0]
	s.procs = map[string]*exec.Cmd{s.Master: startServer(t, "master", serverArgs(s.Master)...)}
	_, mport, _ := net.SplitHostPort(s.Master)
	s.procs[s.Replica] = startServer(t, "replica", serverArgs(s.Replica, "--replicaof", "127.0.0.1", mport)...)
	replica := redis.NewClient(&redis.Options{Addr: s.Replica})
	defer replica.Close()
	// The Sentinel reads the master's replicas when it starts and then every 10 s: start it
	// once the replica is in sync, so that it knows the replica at once.
	eventually(t, 10*time.Second, "replica in sync", func() bool {
		info, err := replica.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	for i, addr := range s.Addrs {
		dir := t.TempDir()
		_, sport, _ := net.SplitHostPort(addr)
		conf := filepath.Join(dir, "sentinel.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(`port %s
bind 127.0.0.1
sentinel monitor %s 127.0.0.1 %s %d
sentinel down-after-milliseconds %[2]s %[5]d
sentinel failover-timeout %[2]s %[6]d
`, sport, s.MasterName, mport, o.Quorum, o.DownAfter.Milliseconds(), o.FailoverTimeout.Milliseconds())), 0o600); err != nil {
			t.Fatal(err)
		}
		startServer(t, fmt.Sprint("sentinel ", i), conf, "--sentinel")
	}
	for _, addr := range s.Addrs {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
		// Sentinels find each other through hello messages on the master every 2 s.
		eventually(t, 20*time.Second, "Sentinel "+addr+" knows the master's replica and the other Sentinels", func() bool {
			r, err := sc.Replicas(ctx, s.MasterName).Result()
			if err != nil || len(r) != 1 {
				return false
			}
			others, err := sc.Sentinels(ctx, s.MasterName).Result()
			return err == nil && len(others) == len(s.Addrs)-1
		})
		sc.Close()
	}
	return s
}

// KillMaster kills the first master with SIGKILL and waits until it is gone: a master's
// death, not a failover the Sentinels were asked for.
func (s *Sentinel) KillMaster(t testing.TB) {
	t.Helper()
	s.Kill(t, s.Master)
}

// Kill kills the redis-server at addr (Master or Replica) with SIGKILL and waits until it
// is gone.
func (s *Sentinel) Kill(t testing.TB, addr string) {
	t.Helper()
	cmd := s.procs[addr]
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// Restart starts the killed redis-server at addr again, empty, as a replica of the master
// the first Sentinel names (as a restarted old master is once the Sentinels have told it),
// and waits until every Sentinel sees it as a replica in sync, one they may promote.
func (s *Sentinel) Restart(t testing.TB, addr string) {
	t.Helper()
	master := s.CurrentMaster(t)
	host, port, err := net.SplitHostPort(master)
	if err != nil || master == addr {
		t.Fatalf("restart %s: the Sentinel names %q as the master", addr, master)
	}
	s.procs[addr] = startServer(t, "restarted "+addr, serverArgs(addr, "--replicaof", host, port)...)
	ctx := context.Background()
	for _, sa := range s.Addrs {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sa})
		eventually(t, 30*time.Second, "Sentinel "+sa+" sees "+addr+" as a replica in sync", func() bool {
			rs, err := sc.Replicas(ctx, s.MasterName).Result()
			if err != nil {
				return false
			}
			for _, r := range rs {
				if net.JoinHostPort(r["ip"], r["port"]) == addr {
					return r["flags"] == "slave" && r["master-link-status"] == "ok"
				}
			}
			return false
		})
		sc.Close()
	}
}

// WaitPromoted waits until every Sentinel names the replica as the master and the replica
// says it is one.
func (s *Sentinel) WaitPromoted(t testing.TB, timeout time.Duration) {
	t.Helper()
	s.WaitMaster(t, s.Replica, timeout)
}

// WaitMaster waits until every Sentinel names addr as the master and addr says it is one.
func (s *Sentinel) WaitMaster(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	eventually(t, timeout, "the Sentinels promoted "+addr, func() bool {
		for _, sa := range s.Addrs {
			if masterAt(sa, s.MasterName) != addr {
				return false
			}
		}
		info, err := c.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "role:master")
	})
}

// CurrentMaster is the master's address as the first Sentinel sees it ("" when it cannot
// say).
func (s *Sentinel) CurrentMaster(t testing.TB) string {
	t.Helper()
	return masterAt(s.Addr, s.MasterName)
}

// masterAt is the address of name's master as the Sentinel at addr sees it ("" when it
// cannot say).
func masterAt(addr, name string) string {
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
	defer sc.Close()
	a, err := sc.GetMasterAddrByName(context.Background(), name).Result()
	if err != nil || len(a) != 2 {
		return ""
	}
	return net.JoinHostPort(a[0], a[1])
}

// Failover has the Sentinel promote the replica and waits until it says it did.
func (s *Sentinel) Failover(t testing.TB) {
	t.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
	defer sc.Close()
	// The Sentinel refuses (NOGOODSLAVE) until it has seen the replica in sync, which
	// takes a full resync of seconds on a loaded machine: ask again until it accepts.
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := sc.Failover(context.Background(), s.MasterName).Err()
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "NOGOODSLAVE") || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	eventually(t, 15*time.Second, "the replica promoted", func() bool { return s.CurrentMaster(t) == s.Replica })
}

// StartCluster starts a Redis Cluster of n masters (at least 3, as redis-cli requires)
// without replicas and returns their addresses once every node says the cluster is ok.
// Without redis-server or redis-cli the test is skipped, or fails when Redis is required.
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	NeedTools(t, "redis-server", "redis-cli")
	ctx := context.Background()
	var addrs []string
	for i := 0; i < n; i++ {
		addr := DeadAddr(t)
		_, bus, _ := net.SplitHostPort(DeadAddr(t))
		startServer(t, "cluster node", serverArgs(addr, "--cluster-enabled", "yes", "--cluster-port", bus,
			"--cluster-config-file", filepath.Join(t.TempDir(), "nodes.conf"), "--cluster-node-timeout", "2000")...)
		addrs = append(addrs, addr)
	}
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		eventually(t, 10*time.Second, addr+" answers", func() bool { return c.Ping(ctx).Err() == nil })
		c.Close()
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-yes")
	if out, err := exec.CommandContext(cctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		eventually(t, 10*time.Second, addr+" sees the cluster ok", func() bool {
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		c.Close()
	}
	return addrs
}

// serverArgs are a redis-server's on addr that keeps nothing on disk. A replica's full
// sync starts at once rather than after the default 5 s that a master waits for more
// replicas to share it.
func serverArgs(addr string, more ...string) []string {
	host, port, _ := net.SplitHostPort(addr)
	return append([]string{"--port", port, "--bind", host, "--save", "", "--appendonly", "no",
		"--repl-diskless-sync-delay", "0"}, more...)
}

// startServer runs redis-server with args in a directory of its own, logging to a file
// whose end a failing test shows, and kills it at the test's end.
func startServer(t testing.TB, what string, args ...string) *exec.Cmd {
	t.Helper()
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("%s (redis-server %s):\n%s", what, strings.Join(args, " "), lastLines(string(b), 20))
			}
		}
	})
	return cmd
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// eventually retries cond every 50ms until it holds, failing with what after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
