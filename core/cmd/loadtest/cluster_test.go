package main

import (
	"bytes"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestClusterScenario runs the cluster scenario at a small size: two real nodes on a
// private redis-server, every message reaching the sockets of both.
func TestClusterScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	bin := serverBinary(t)
	before := runtime.NumGoroutine()
	var out, errb bytes.Buffer
	code := run([]string{
		"-server", bin, "-config", "../../../examples/config/loadtest.hcl", "-markdown", "-scenario", "cluster",
		"-cluster-sockets", "20", "-cluster-rate", "20", "-cluster-duration", "1s", "-cluster-connects", "20", "-timeout", "60s",
	}, &out, &errb)
	table := out.String()
	if code != 0 {
		t.Fatalf("run = %d\nstdout:\n%s\nstderr:\n%s", code, table, errb.String())
	}
	for _, want := range []string{
		"| cluster | deliveries | 400 (20 messages x 20 sockets, half on each node) |",
		"| cluster | deliveries lost | 0 | <= 0 | ok |",
		"| cluster | deliveries duplicated | 0 | <= 0 | ok |",
		"| cluster | CPU per connect, cluster node |",
		"| cluster | CPU per connect, no cluster |",
		"| cluster | CPU per delivery, both nodes + Redis |",
		"| cluster | CPU per delivery / small-write floor |",
		"| cluster | delivery latency p99 |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	checkGoroutines(t, before)
}
