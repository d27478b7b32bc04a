// Package redistest holds the Redis setup that tests of several packages share: the shared
// Redis's address (or a skip), a key prefix of the test's own, an address nothing listens on,
// and a private redis-server that a test may stop and start again.
//
// The rule for the shared Redis is the same everywhere: a test that needs it is skipped when
// it does not answer, unless REQUIRE_REDIS=1 says it must run, in which case it fails.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultAddr is the shared Redis when REDIS_ADDR is not set.
const DefaultAddr = "127.0.0.1:6379"

// Required reports whether REQUIRE_REDIS=1 turns a missing Redis into a failure.
func Required() bool { return os.Getenv("REQUIRE_REDIS") == "1" }

// Addr is the shared Redis ($REDIS_ADDR, default 127.0.0.1:6379) once it accepts a
// connection. Without one the test is skipped, or fails when Redis is required.
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = DefaultAddr
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		if Required() {
			t.Fatalf("Redis at %s is required (REQUIRE_REDIS=1) but unreachable: %v", addr, err)
		}
		t.Skipf("no Redis at %s (set REDIS_ADDR, or REQUIRE_REDIS=1 to fail instead): %v", addr, err)
	}
	c.Close()
	return addr
}

// URL is Addr as the redis_url the cluster settings take (database 0).
func URL(t testing.TB) string {
	t.Helper()
	return "redis://" + Addr(t) + "/0"
}

// Prefix is base followed by random hex: a key prefix no other test run shares, so tests on
// the shared Redis neither hear nor see each other's keys.
func Prefix(t testing.TB, base string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return base + "-" + hex.EncodeToString(b[:])
}

// DeadAddr is a loopback address nothing listens on (a port just taken and let go).
func DeadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Private is a redis-server of the test's own on a free loopback port, keeping nothing on
// disk, so a test can stop and start it without touching the Redis other tests share.
type Private struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
}

// StartPrivate starts a private redis-server and kills it at the test's end. Without the
// redis-server binary the test is skipped, or fails when Redis is required.
func StartPrivate(t testing.TB) *Private {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if Required() {
			t.Fatal("redis-server is required (REQUIRE_REDIS=1) but not installed")
		}
		t.Skip("redis-server is not installed")
	}
	r := &Private{t: t, port: freePort(t)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// freePort is the port of DeadAddr.
func freePort(t testing.TB) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(DeadAddr(t))
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// Addr is where the private server listens; it stays the same across Stop and Start.
func (r *Private) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// Start runs redis-server on the port and waits until it answers PING.
func (r *Private) Start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer rc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rc.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.Stop()
			r.t.Fatalf("private redis-server on %d does not answer: %v", r.port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server outright, as a crash would; stopping a stopped server does nothing.
func (r *Private) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}
