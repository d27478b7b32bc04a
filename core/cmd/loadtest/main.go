// Command loadtest measures rtserver under load, the figures behind `make bench` and
// BENCHMARKS.md: memory per idle connection, server CPU per room delivery and per ack round
// trip, a paced connect storm, round trips through a plugin, and the floor that the kernel
// alone sets on this machine (plain TCP, no server). Each server scenario starts the
// server binary as a child process on a free port of 127.0.0.1 (so its CPU and memory can be
// read from /proc), drives it over real websockets, stops it, and the results are printed as
// one table.
//
// The soak scenario (not part of all) mixes well-behaved, slow, large and churning clients
// for -soak-duration and checks that nothing was lost and nothing leaked.
//
//	go run ./core/cmd/loadtest [-scenario all|room|room-unbatched|ack|plugin|floor|rss|rss-register|storm|soak|cluster|cluster-node|redis-scaling[,...]] [-markdown]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	which := fs.String("scenario", "all", "scenarios to run: all, or a comma-separated list of room, room-unbatched, ack, plugin, floor, rss, rss-register, storm, soak, cluster, cluster-node, redis-scaling (the last four are not part of all)")
	fs.StringVar(&o.spec.binary, "server", "bin/rtserver", "the rtserver binary")
	fs.StringVar(&o.spec.config, "config", "examples/config/loadtest.hcl", "configuration to start from (host and plugins.dir are overridden)")
	echo := fs.String("echo", "", "echo plugin binary for the plugin and soak scenarios (default: build ./examples/echo)")
	chat := fs.String("chat", "", "chat plugin binary for the soak scenario (default: build ./examples/chat)")
	fs.StringVar(&o.spec.profileDir, "profile-dir", "", "write each server's CPU and allocation profiles (pprof) into this folder")
	fs.BoolVar(&o.spec.keep, "keep", false, "keep each server's folder (configuration and log) in the temp dir")
	fs.IntVar(&o.conns, "conns", 19000, "rss: idle connections at the second reading")
	fs.IntVar(&o.rssBase, "rss-base", 5000, "rss: idle connections at the first reading")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "rss: wait before reading the RSS")
	fs.IntVar(&o.connPar, "connect-par", 64, "connects in flight when opening connections unpaced")
	fs.IntVar(&o.roomSize, "room-size", 1000, "room: sockets in the room")
	fs.IntVar(&o.roomMsgs, "room-messages", 1000, "room: POST /api/room calls")
	fs.IntVar(&o.ubRate, "unbatched-rate", 50, "room-unbatched: POST /api/room calls per second")
	fs.IntVar(&o.ubMsgs, "unbatched-messages", 250, "room-unbatched: POST /api/room calls")
	fs.IntVar(&o.posters, "room-posters", 4, "room: concurrent HTTP API callers")
	fs.IntVar(&o.ackConns, "ack-conns", 200, "ack: connections, each with one ping in flight")
	fs.IntVar(&o.storm, "storm-conns", 19000, "storm: connections to open")
	fs.IntVar(&o.rate, "storm-rate", 1000, "storm: connects per second")
	fs.IntVar(&o.plugConn, "plugin-conns", 100, "plugin: connections, each with one client:event in flight")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "ack, plugin: load before measuring")
	fs.DurationVar(&o.window, "duration", 5*time.Second, "ack, plugin: measurement window")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "time limit of each scenario (soak: on top of -soak-duration)")
	fs.DurationVar(&o.soak.duration, "soak-duration", 3*time.Minute, "soak: how long the mixed load runs")
	fs.IntVar(&o.soak.clients, "soak-clients", 20, "soak: well-behaved clients (room messages and client:event)")
	fs.IntVar(&o.soak.slow, "soak-slow", 4, "soak: clients that stop reading")
	fs.IntVar(&o.soak.churn, "soak-churn", 6, "soak: clients that drop their connection and recover it, over and over")
	fs.IntVar(&o.soak.rate, "soak-rate", 20, "soak: POST /api/room calls per second (every 10th carries ~100 KB)")
	fs.DurationVar(&o.soak.healthTimeout, "soak-health-timeout", time.Second, "soak: a GET /health slower than this is a miss")
	clusterFlags(fs)
	markdown := fs.Bool("markdown", false, "print the table as markdown")
	strict := fs.Bool("strict", false, "exit 1 when a figure misses its target (not only on errors)")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	selected, err := pick(*which)
	if err == nil {
		err = o.validate()
	}
	if err == nil && o.spec.profileDir != "" {
		err = os.MkdirAll(o.spec.profileDir, 0o755)
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return 2
	}
	level := hclog.Info
	if *verbose {
		level = hclog.Debug
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "loadtest", Level: level, Output: stderr})

	if err := raiseFileLimit(); err != nil {
		log.Warn("cannot raise the open-file limit", "error", err)
	}
	needs := map[string]bool{}
	needsServer := false
	for _, s := range selected {
		needs["echo"] = needs["echo"] || s.name == "plugin" || s.name == "soak"
		needs["chat"] = needs["chat"] || s.name == "soak"
		needsServer = needsServer || s.name != "floor"
	}
	if _, err := os.Stat(o.spec.binary); err != nil && needsServer {
		log.Error("server binary missing: run `make build` or pass -server", "error", err)
		return 1
	}
	o.pluginBins = map[string]string{"echo": *echo, "chat": *chat}
	var buildDir string
	for _, name := range []string{"echo", "chat"} {
		if !needs[name] || o.pluginBins[name] != "" {
			continue
		}
		if buildDir == "" {
			if buildDir, err = os.MkdirTemp("", "loadtest-plugins-"); err != nil {
				log.Error("temp dir", "error", err)
				return 1
			}
			defer os.RemoveAll(buildDir)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		o.pluginBins[name], err = buildPlugin(ctx, buildDir, name)
		cancel()
		if err != nil {
			log.Error("cannot build the "+name+" plugin", "error", err)
			return 1
		}
	}

	r := &runner{o: o, log: log}
	var rows []row
	failures := 0
	for _, s := range selected {
		log.Info("scenario", "name", s.name)
		r.current = s.name
		limit := o.timeout
		if s.name == "soak" {
			limit += o.soak.duration
		}
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		t0 := time.Now()
		r.otherLoad = math.NaN()
		got, stuck, err := runBounded(ctx, r, s, limit+time.Minute)
		cancel()
		if stuck {
			// The scenario ignored its deadline: report and end the process (its servers die
			// with it, by their parent-death signal) rather than hang.
			log.Error("scenario did not stop after its time limit; giving up", "name", s.name)
			rows = append(rows, failed(s.name, errors.New("did not stop after its time limit")))
			printMachine(stdout, o.spec.binary, *markdown)
			printTable(stdout, rows, *markdown)
			return 1
		}
		rows = append(rows, got...)
		if err == nil && !math.IsNaN(r.otherLoad) {
			// Tick rounding can make an idle machine's figure slightly negative.
			other := max(r.otherLoad, 0)
			rows = append(rows, info(s.name, "other processes' CPU meanwhile", fmt.Sprintf("%.2f cores of %d", other, runtime.NumCPU())))
		}
		if err != nil {
			failures++
			log.Error("scenario failed", "name", s.name, "error", err)
			rows = append(rows, failed(s.name, err))
			continue
		}
		log.Info("scenario done", "name", s.name, "took", time.Since(t0).Round(100*time.Millisecond))
	}

	printMachine(stdout, o.spec.binary, *markdown)
	printTable(stdout, rows, *markdown)
	missed := 0
	for _, rw := range rows {
		if rw.Verdict == "MISSED" {
			missed++
		}
	}
	switch {
	case failures > 0:
		return 1
	case missed > 0 && *strict:
		return 1
	}
	return 0
}

// runBounded runs a scenario, giving up on it (stuck) if it has not returned within limit.
func runBounded(ctx context.Context, r *runner, s scenario, limit time.Duration) (rows []row, stuck bool, err error) {
	type result struct {
		rows []row
		err  error
	}
	done := make(chan result, 1)
	go func() {
		rows, err := s.run(r, ctx)
		done <- result{rows, err}
	}()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case res := <-done:
		return res.rows, false, res.err
	case <-t.C:
		return nil, true, nil
	}
}

// pick resolves the -scenario flag; "all" may be one of the names.
func pick(which string) ([]scenario, error) {
	var out []scenario
	for _, name := range strings.Split(which, ",") {
		name = strings.TrimSpace(name)
		if name == "all" {
			out = append(out, scenarios...)
			continue
		}
		found := false
		for _, s := range append(scenarios[:len(scenarios):len(scenarios)], extraScenarios...) {
			if s.name == name {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario %q (all, room, room-unbatched, ack, plugin, floor, rss, rss-register, storm, soak, cluster, cluster-node, redis-scaling)", name)
		}
	}
	return out, nil
}

func (o *options) validate() error {
	switch {
	case o.rssBase < 1 || o.conns <= o.rssBase:
		return errors.New("-conns must be larger than -rss-base, both positive")
	case o.connPar < 1, o.roomSize < 1, o.roomMsgs < 1, o.ubRate < 1, o.ubMsgs < 1, o.posters < 1, o.ackConns < 1,
		o.storm < 1, o.rate < 1, o.plugConn < 1:
		return errors.New("sizes and rates must be positive")
	case o.window <= 0 || o.warmup <= 0 || o.timeout <= 0:
		return errors.New("-warmup, -duration and -timeout must be positive")
	case o.soak.duration <= 0 || o.soak.clients < 1 || o.soak.slow < 0 || o.soak.churn < 0 || o.soak.rate < 1 || o.soak.healthTimeout <= 0:
		return errors.New("-soak-duration, -soak-clients, -soak-rate and -soak-health-timeout must be positive, -soak-slow and -soak-churn not negative")
	}
	return nil
}

// raiseFileLimit lifts the soft open-file limit to the hard one. Setting it explicitly
// (rather than relying on the Go runtime's own raise) also makes the server child inherit it.
func raiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// printMachine writes what the figures were measured on.
func printMachine(w io.Writer, binary string, markdown bool) {
	cpu := "unknown"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range scanLines(data) {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel := "unknown"
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(data))
	}
	version := "unknown"
	if out, err := exec.Command(binary, "version").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lines := []string{
		fmt.Sprintf("CPU: %s, %d logical cores (server, plugin and load generator share them)", cpu, runtime.NumCPU()),
		fmt.Sprintf("Linux %s, %s, open-file limit %d", kernel, runtime.Version(), lim.Cur),
		fmt.Sprintf("rtserver %s", version),
	}
	for _, l := range lines {
		if markdown {
			fmt.Fprintf(w, "- %s\n", l)
		} else {
			fmt.Fprintln(w, l)
		}
	}
	fmt.Fprintln(w)
}
