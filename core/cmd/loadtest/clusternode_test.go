package main

import (
	"bytes"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestClusterNodeScenario runs the cluster scenario against the Node reference at a small
// size: two socket.io servers with the Redis adapter on a private redis-server, installed
// with npm ci on first use.
func TestClusterNodeScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and runs the Node reference")
	}
	for _, tool := range []string{"redis-server", "node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " is not installed")
		}
	}
	bin := serverBinary(t)
	before := runtime.NumGoroutine()
	var out, errb bytes.Buffer
	code := run([]string{
		"-server", bin, "-config", "../../../examples/config/loadtest.hcl", "-markdown", "-scenario", "cluster-node",
		"-cluster-sockets", "20", "-cluster-rate", "20", "-cluster-duration", "1s", "-timeout", "90s",
	}, &out, &errb)
	table := out.String()
	if code != 0 {
		t.Fatalf("run = %d\nstdout:\n%s\nstderr:\n%s", code, table, errb.String())
	}
	for _, want := range []string{
		"| cluster-node | deliveries | 400 (20 messages x 20 sockets, half on each node) |",
		"| cluster-node | deliveries lost | 0 | <= 0 | ok |",
		"| cluster-node | CPU per delivery, both nodes + Redis |",
		"| cluster-node | delivery latency p99 |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	checkGoroutines(t, before)
}
