package main

import (
	"bytes"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestRedisScalingScenario runs the Redis scaling measurement at a tiny size on a private
// redis-server: every subscriber receives what it should, and the fit is reported.
func TestRedisScalingScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a redis-server")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	bin := serverBinary(t)
	saved := redisScalingOpts
	t.Cleanup(func() { redisScalingOpts = saved })
	redisScalingOpts.subscribers = []int{1, 3}
	redisScalingOpts.messages = 120
	redisScalingOpts.rooms = 5
	before := runtime.NumGoroutine()
	var out, errb bytes.Buffer
	code := run([]string{"-server", bin, "-markdown", "-scenario", "redis-scaling", "-timeout", "40s"}, &out, &errb)
	table := out.String()
	if code != 0 {
		t.Fatalf("run = %d\nstdout:\n%s\nstderr:\n%s", code, table, errb.String())
	}
	for _, want := range []string{
		"| redis-scaling | S=3: Redis CPU per message to all S |",
		"| redis-scaling | S=3: Redis CPU per message to a room on 1 node |",
		"| redis-scaling | S=3: Redis CPU per room message, S nodes on the pattern |",
		"| redis-scaling | fit: Redis CPU per message = a + b x subscribed nodes |",
		"| redis-scaling | predicted, all-node channel, 10 / 100 nodes |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	checkGoroutines(t, before)
}

func TestFitLine(t *testing.T) {
	a, b := fitLine([]float64{1, 2, 4}, []float64{5, 7, 11})
	if a < 2.999 || a > 3.001 || b < 1.999 || b > 2.001 {
		t.Fatalf("fitLine = %v, %v; want 3, 2", a, b)
	}
}
