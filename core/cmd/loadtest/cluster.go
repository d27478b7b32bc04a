package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zclconf/go-cty/cty"
)

// clusterOptions size the cluster scenario (run only when named: -scenario cluster).
type clusterOptions struct {
	sockets  int
	rate     int
	duration time.Duration
	connects int // connections opened to measure the cost of a connect
}

var clusterOpts clusterOptions

// clusterFlags registers the cluster scenario's flags.
func clusterFlags(fs *flag.FlagSet) {
	fs.IntVar(&clusterOpts.sockets, "cluster-sockets", 1000, "cluster: sockets in the room, half on each node")
	fs.IntVar(&clusterOpts.rate, "cluster-rate", 50, "cluster: room messages per second, all sent through the first node")
	fs.DurationVar(&clusterOpts.duration, "cluster-duration", 10*time.Second, "cluster: how long messages are sent")
	fs.IntVar(&clusterOpts.connects, "cluster-connects", 500, "cluster: connections opened to a cluster node and to a node without cluster, to compare the cost of a connect (0: skip)")
}

func init() {
	extraScenarios = append(extraScenarios, scenario{"cluster", (*runner).cluster})
}

// redisProc is a redis-server of the scenario's own on a free port, keeping nothing on disk.
type redisProc struct {
	cmd  *exec.Cmd
	port int
}

func startRedis(ctx context.Context) (*redisProc, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("cluster: redis-server is not installed")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &redisProc{cmd: cmd, port: port}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr(), time.Second)
		if err == nil {
			c.Close()
			return r, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.stop()
			return nil, fmt.Errorf("redis-server on %d does not listen: %w", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisProc) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisProc) stop() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// cluster runs two nodes on a private Redis with one room spread over both, sends room
// messages through the first node at a steady rate and reports what arrived, how late,
// and the CPU both nodes and Redis spent per delivery.
func (r *runner) cluster(ctx context.Context) ([]row, error) {
	return r.clusterOf(ctx, "cluster", func(ctx context.Context, spec serverSpec, _ *redisProc) (*serverProc, error) {
		return startServer(ctx, spec, r.log)
	})
}

// clusterOf is the cluster scenario run on the nodes start starts (rtserver, or the Node
// reference of clusternode.go).
func (r *runner) clusterOf(ctx context.Context, name string, start func(context.Context, serverSpec, *redisProc) (*serverProc, error)) ([]row, error) {
	o := clusterOpts
	if o.sockets < 2 || o.rate < 1 || o.duration <= 0 {
		return nil, errors.New("cluster: -cluster-sockets >= 2, -cluster-rate >= 1 and -cluster-duration > 0")
	}
	rds, err := startRedis(ctx)
	if err != nil {
		return nil, err
	}
	defer rds.stop()
	spec := r.o.spec
	spec.label = name
	spec.settings = []setting{
		{"cluster", "redis_url", cty.StringVal("redis://" + rds.addr() + "/0")},
		{"cluster", "key_prefix", cty.StringVal("loadtest")},
	}
	var nodes []*serverProc
	defer func() {
		for _, n := range nodes {
			if err := n.stop(spec.keep); err != nil {
				r.log.Warn("server stop", "error", err)
			}
		}
	}()
	for range 2 {
		n, err := start(ctx, spec, rds)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}

	var joined, got, extraWarm, dups atomic.Int64
	total := int(float64(o.rate) * o.duration.Seconds())
	// seen[socket][message] tells a duplicate from a first delivery, so that a socket that
	// hears a message twice cannot make up for one that missed it.
	seen := make([][]atomic.Bool, o.sockets)
	for i := range seen {
		seen[i] = make([]atomic.Bool, total)
	}
	var latMu sync.Mutex
	lat := make([]time.Duration, 0, o.sockets*o.rate*int(o.duration/time.Second+1))
	// latRemote holds the latencies of node 2's sockets (also in lat), reached through Redis.
	latRemote := make([]time.Duration, 0, cap(lat)/2+1)
	measuring := atomic.Bool{}
	h := hooks{event: func(c *client, ev, pkt []byte) {
		switch string(ev) {
		case "bench":
			if !measuring.Load() {
				extraWarm.Add(1)
				return
			}
			n := stampAfter(pkt, `"n":`)
			if c.idx < 0 || c.idx >= len(seen) || n < 0 || n >= int64(total) || seen[c.idx][n].Swap(true) {
				dups.Add(1)
				return
			}
			got.Add(1)
			if t := sentAt(pkt); t > 0 {
				d := time.Duration(time.Now().UnixNano() - t)
				latMu.Lock()
				lat = append(lat, d)
				if c.idx >= o.sockets/2 {
					latRemote = append(latRemote, d)
				}
				latMu.Unlock()
			}
		case "room:join:ack":
			joined.Add(1)
		}
	}}
	half := o.sockets / 2
	var cs []*client
	defer func() { closeAll(cs) }()
	for i, n := range nodes {
		from, to := i*half, half
		if i == 1 {
			from, to = half, o.sockets
		}
		part, err := r.connectMany(ctx, n, from, to, h)
		if err != nil {
			return nil, err
		}
		cs = append(cs, part...)
	}
	join := []byte(`42["room:join",{"room":"bench"}]`)
	for _, c := range cs {
		if err := c.send(join); err != nil {
			return nil, fmt.Errorf("room:join: %w", err)
		}
	}
	size := int64(len(cs))
	if err := waitFor(ctx, nodes[0], cs, "room:join:ack", func() bool { return joined.Load() >= size }); err != nil {
		return nil, err
	}
	api := newAPIClient(nodes[0], 8)
	defer api.close()
	// A first message, outside the measurement, shows both nodes deliver.
	if _, err := api.post(ctx, "/api/room", benchBody(-1)); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, nodes[0], cs, "the warm-up message on both nodes", func() bool { return extraWarm.Load() >= size }); err != nil {
		return nil, fmt.Errorf("%w (%d of %d)", err, extraWarm.Load(), size)
	}
	// The small-write floor, just before and just after the sends: a delivery is one
	// write at this pace, so that is what the figure is read against.
	rig, err := newWriteRig(ctx, int(size))
	if err != nil {
		return nil, err
	}
	defer rig.close()
	rounds := max(1, 50000/int(size))
	if err := rig.slice(rounds); err != nil {
		return nil, err
	}
	measuring.Store(true)

	cpu0 := make([]cpuTimes, 0, 3)
	for _, n := range nodes {
		t, err := n.times()
		if err != nil {
			return nil, err
		}
		cpu0 = append(cpu0, t)
	}
	redis0, err := procTimes(rds.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	// Paced sends: one per tick, at most 8 in flight.
	tick := time.NewTicker(time.Second / time.Duration(o.rate))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var postErr atomic.Pointer[error]
	for i := 0; i < total; i++ {
		select {
		case <-ctx.Done():
			tick.Stop()
			wg.Wait()
			return nil, ctx.Err()
		case <-tick.C:
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := api.post(ctx, "/api/room", benchBody(int64(i))); err != nil {
				postErr.CompareAndSwap(nil, &err)
			}
		})
	}
	tick.Stop()
	wg.Wait()
	if p := postErr.Load(); p != nil {
		return nil, *p
	}
	want := int64(total) * size
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = waitFor(wctx, nodes[0], cs, "every delivery", func() bool { return got.Load() >= want })
	cancel()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	var used cpuTimes
	perNode := make([]time.Duration, len(nodes))
	for i, n := range nodes {
		t, err := n.times()
		if err != nil {
			return nil, err
		}
		d := t.sub(cpu0[i])
		used.user += d.user
		used.sys += d.sys
		perNode[i] = d.user + d.sys
	}
	redis1, err := procTimes(rds.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	rd := redis1.sub(redis0)
	if err := rig.slice(rounds); err != nil {
		return nil, err
	}
	delivered := got.Load()
	latMu.Lock()
	slices.Sort(lat)
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	slices.Sort(latRemote)
	r50, r99 := percentile(latRemote, 0.50), percentile(latRemote, 0.99)
	latMu.Unlock()
	nodesCPU := us(used.user + used.sys)
	redisCPU := us(rd.user + rd.sys)
	d := float64(max(delivered, 1))
	per := (nodesCPU + redisCPU) / d
	rows := []row{
		info(name, "deliveries", fmt.Sprintf("%d (%d messages x %d sockets, half on each node)", want, total, size)),
		atMost(name, "deliveries lost", float64(want-delivered), 0, "%.0f"),
		atMost(name, "deliveries duplicated", float64(dups.Load()), 0, "%.0f"),
		atMost(name, "CPU per delivery, both nodes + Redis", per, 4, "%.2f µs"),
		info(name, "of which Redis", fmt.Sprintf("%.2f µs", redisCPU/d)),
		info(name, "of which node 1 (API, publish, its half)", fmt.Sprintf("%.2f µs", us(perNode[0])/d)),
		info(name, "of which node 2 (from Redis, its half)", fmt.Sprintf("%.2f µs", us(perNode[1])/d)),
		info(name, "server CPU in the kernel (system time)", fmt.Sprintf("%.0f%%", 100*us(used.sys)/max(nodesCPU, 1))),
		info(name, "small-write floor, before and after the sends", fmt.Sprintf("%.2f µs (%d writes)", rig.perWrite(), rig.writes)),
		info(name, "CPU per delivery / small-write floor", fmt.Sprintf("%.2fx", per/max(rig.perWrite(), 0.001))),
		info(name, "delivery latency p50", p50.Round(time.Microsecond).String()),
		below(name, "delivery latency p99", float64(p99)/float64(time.Millisecond), 10, "%.2f ms"),
		info(name, "of which node 2's sockets (through Redis) p50 / p99", r50.Round(time.Microsecond).String()+" / "+r99.Round(time.Microsecond).String()),
	}
	if o.connects > 0 {
		closeAll(cs)
		cs = nil
		more, err := r.clusterConnects(ctx, nodes[1], rds)
		if err != nil {
			return nil, err
		}
		rows = append(rows, more...)
	}
	return rows, nil
}

// clusterConnects compares the cost of a connect on a cluster node (its id room's
// subscription and, with recovery on, its session in Redis) with a node without cluster.
// Latency: 100 connections opened one after the other on an idle node, from the dial to
// the CONNECT ack; then CPU: o.connects opened 64 at a time, over the node and Redis.
func (r *runner) clusterConnects(ctx context.Context, node *serverProc, rds *redisProc) ([]row, error) {
	const name = "cluster"
	// Let the closes of the room's sockets settle first (their session writes, and their
	// id rooms' unsubscriptions after a second's linger).
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	spec := r.o.spec
	spec.label = name + "-single"
	single, err := startServer(ctx, spec, r.log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := single.stop(spec.keep); err != nil {
			r.log.Warn("server stop", "error", err)
		}
	}()
	var rows []row
	for _, c := range []struct {
		what string
		srv  *serverProc
		rds  *redisProc
	}{{"cluster node", node, rds}, {"no cluster", single, nil}} {
		cpu, p50, p99, err := r.connectCost(ctx, c.srv, c.rds)
		if err != nil {
			return nil, fmt.Errorf("connects, %s: %w", c.what, err)
		}
		rows = append(rows,
			info(name, "CPU per connect, "+c.what, fmt.Sprintf("%.1f µs", cpu)),
			info(name, "connect latency p50 / p99, "+c.what, p50.Round(time.Microsecond).String()+" / "+p99.Round(time.Microsecond).String()))
	}
	return rows, nil
}

// connectCost reports the latency of 100 connects to srv one at a time, then opens
// clusterOpts.connects connections for the CPU per connect of srv and rds (nil: none).
func (r *runner) connectCost(ctx context.Context, srv *serverProc, rds *redisProc) (float64, time.Duration, time.Duration, error) {
	const base = 1 << 20 // user ids apart from the room's sockets
	cpu := func() (time.Duration, error) {
		t, err := srv.times()
		if err != nil || rds == nil {
			return t.user + t.sys, err
		}
		rt, err := procTimes(rds.cmd.Process.Pid)
		return t.user + t.sys + rt.user + rt.sys, err
	}
	const serial = 100
	toks, err := tokens(srv.secret, base, base+serial)
	if err != nil {
		return 0, 0, 0, err
	}
	lat := make([]time.Duration, 0, serial)
	for i, tok := range toks {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		c, d, err := dial(dctx, dialOptions{url: srv.wsURL(), token: tok, welcome: true, idx: -1})
		cancel()
		if err != nil {
			return 0, 0, 0, fmt.Errorf("connection %d: %w", i, err)
		}
		lat = append(lat, d)
		c.close()
	}
	c0, err := cpu()
	if err != nil {
		return 0, 0, 0, err
	}
	n := clusterOpts.connects
	cs, err := r.connectMany(ctx, srv, base+serial, base+serial+n, hooks{})
	if err != nil {
		return 0, 0, 0, err
	}
	c1, err := cpu()
	closeAll(cs)
	if err != nil {
		return 0, 0, 0, err
	}
	slices.Sort(lat)
	return us(c1-c0) / float64(n), percentile(lat, 0.50), percentile(lat, 0.99), nil
}

// stampAfter reads the unsigned integer after key in a bench packet (-1 when absent).
func stampAfter(pkt []byte, key string) int64 {
	i := bytes.Index(pkt, []byte(key))
	if i < 0 || i+len(key) >= len(pkt) || pkt[i+len(key)] < '0' || pkt[i+len(key)] > '9' {
		return -1
	}
	var t int64
	for _, b := range pkt[i+len(key):] {
		if b < '0' || b > '9' {
			break
		}
		t = t*10 + int64(b-'0')
	}
	return t
}

// benchBody is room message i, stamped with the time it is sent.
func benchBody(i int64) string {
	return `{"room":"bench","event":"bench","data":{"n":` + strconv.FormatInt(i, 10) +
		`,"t":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}}`
}

// sentAt reads the "t" stamp of a bench packet (0 when absent).
func sentAt(pkt []byte) int64 {
	i := bytes.Index(pkt, []byte(`"t":`))
	if i < 0 {
		return 0
	}
	var t int64
	for _, b := range pkt[i+4:] {
		if b < '0' || b > '9' {
			break
		}
		t = t*10 + int64(b-'0')
	}
	return t
}
