package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rtserver/rtserver/core/internal/auth"
)

// options are the sizes and limits of the scenarios, from the flags.
type options struct {
	spec serverSpec
	// pluginBins are the example plugins' binaries, by name (from -echo and -chat, or
	// built for the run).
	pluginBins map[string]string

	rssBase  int // connections at the first RSS reading
	conns    int // connections at the second RSS reading
	settle   time.Duration
	connPar  int // concurrent connects when connecting unpaced
	roomSize int
	roomMsgs int
	ubRate   int // room-unbatched: POST /api/room calls per second
	ubMsgs   int // room-unbatched: POST /api/room calls
	posters  int
	ackConns int
	storm    int
	rate     int
	plugConn int
	warmup   time.Duration
	window   time.Duration
	timeout  time.Duration
	soak     soakOptions
}

// runner runs scenarios, each on a fresh server.
type runner struct {
	o   options
	log hclog.Logger
	// otherLoad is the CPU (in cores) that other processes used during the last scenario.
	otherLoad float64
	// smallWrite is the floor's CPU per small write (µs) from its last run.
	smallWrite float64
	current    string // the scenario running
}

// scenario is one measurement; it returns its table rows.
type scenario struct {
	name string
	run  func(r *runner, ctx context.Context) ([]row, error)
}

// scenarios, in the order "all" runs them: the many-connection ones last. The 19,000
// sockets each of those leaves in TIME_WAIT make every later packet's socket lookup
// slower for a minute (plugin round trips measured 52-55k/s alone, 36k/s right after
// storm).
var scenarios = []scenario{
	{"room", (*runner).room},
	{"ack", (*runner).ack},
	{"plugin", (*runner).plugin},
	{"floor", (*runner).floor},
	{"room-unbatched", (*runner).roomUnbatched},
	{"rss", (*runner).rss},
	{"rss-register", (*runner).rssRegistered},
	{"storm", (*runner).storm},
}

// withServer starts a server with the named example plugins, runs fn and stops the
// server, returning fn's error or, if fn succeeded, any trouble at stop.
func (r *runner) withServer(ctx context.Context, plugins []string, fn func(*serverProc) error, settings ...setting) error {
	spec := r.o.spec
	spec.label = r.current
	spec.settings = settings
	spec.plugins = map[string]string{}
	for _, name := range plugins {
		if r.o.pluginBins[name] == "" {
			return fmt.Errorf("no %s plugin binary", name)
		}
		spec.plugins[name] = r.o.pluginBins[name]
	}
	srv, err := startServer(ctx, spec, r.log)
	if err != nil {
		return err
	}
	// What the rest of the machine (other processes than the server, its plugins and this
	// tool) used during the scenario: the figures are only as good as this is small.
	other := func() time.Duration {
		busy, _ := machineBusy()
		srvCPU, _ := srv.cpu()
		plugCPU, _, _ := srv.childrenCPU()
		return busy - srvCPU - plugCPU - selfCPU()
	}
	other0, t0 := other(), time.Now()
	ferr := fn(srv)
	if ferr == nil {
		ferr = srv.running()
	}
	if ferr == nil {
		r.otherLoad = float64(other()-other0) / float64(time.Since(t0))
	}
	serr := srv.stop(spec.keep)
	if n := srv.logTail.Lines(); n > 0 {
		r.log.Info("server wrote to its log", "lines", n, "last", "\n"+srv.logTail.String())
	}
	if ferr != nil {
		return ferr
	}
	if serr != nil {
		r.log.Warn("server stop", "error", serr)
	}
	return nil
}

// tokens mints a JWT per user "load-N" for from <= N < to.
func tokens(secret string, from, to int) ([]string, error) {
	out := make([]string, to-from)
	for i := range out {
		t, err := auth.Mint([]byte(secret), "HS256", "load-"+strconv.Itoa(from+i), 2*time.Hour)
		if err != nil {
			return nil, fmt.Errorf("mint token: %w", err)
		}
		out[i] = t
	}
	return out, nil
}

// connectMany opens connections from..to-1 (unpaced, par at a time), each waiting for its
// system:welcome. It fails on the first connection that fails.
func (r *runner) connectMany(ctx context.Context, srv *serverProc, from, to int, h hooks) ([]*client, error) {
	return r.connectManyAs(ctx, srv, from, to, h, false)
}

// connectManyAs is connectMany; with register, each connection also registers its token's
// user ("load-N") and waits for the register:ack.
func (r *runner) connectManyAs(ctx context.Context, srv *serverProc, from, to int, h hooks, register bool) ([]*client, error) {
	toks, err := tokens(srv.secret, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]*client, to-from)
	var (
		next     atomic.Int64
		firstErr error
		errOnce  sync.Once
		failed   atomic.Bool
		wg       sync.WaitGroup
	)
	for range min(r.o.connPar, to-from) {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= len(out) {
					return
				}
				dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				o := dialOptions{url: srv.wsURL(), token: toks[i], welcome: true, hooks: h, idx: from + i}
				if register {
					o.register = "load-" + strconv.Itoa(from+i)
				}
				c, _, err := dial(dctx, o)
				cancel()
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("connection %d: %w", from+i, err) })
					failed.Store(true)
					return
				}
				out[i] = c
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		closeAll(out)
		return nil, firstErr
	}
	return out, nil
}

// waitFor polls cond until it holds, the context ends, the server exits or clients die.
func waitFor(ctx context.Context, srv *serverProc, cs []*client, what string, cond func() bool) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	checks := 0
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
		if checks++; checks%20 == 0 {
			if err := srv.running(); err != nil {
				return err
			}
			if n, err := deadClients(cs); n > 0 {
				return fmt.Errorf("waiting for %s: %d connections closed, first: %v", what, n, err)
			}
		}
	}
	return nil
}

// settledRSS waits settle, then samples the RSS until two readings 250 ms apart differ by
// under 0.5% (at most 5 s more), and returns the last.
func settledRSS(ctx context.Context, srv *serverProc, settle time.Duration) (int64, error) {
	if err := sleep(ctx, settle); err != nil {
		return 0, err
	}
	prev, err := srv.rss()
	if err != nil {
		return 0, err
	}
	for range 20 {
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return 0, err
		}
		cur, err := srv.rss()
		if err != nil {
			return 0, err
		}
		diff := cur - prev
		if diff < 0 {
			diff = -diff
		}
		prev = cur
		if diff*200 < cur {
			break
		}
	}
	return prev, nil
}

// mem is the server's Go memory split, from its /metrics.
type mem struct {
	heap, stack int64
	goroutines  int
}

// memSplit reads the server's heap and stack in use and its goroutines from /metrics, so
// that an RSS slope can be split into what the Go heap, the stacks and the rest (kernel
// socket buffers are not in RSS; runtime and fragmentation are) account for.
func memSplit(ctx context.Context, srv *serverProc) (mem, error) {
	var m mem
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.httpURL("/metrics"), nil)
	if err != nil {
		return m, err
	}
	// No keep-alive: the reading leaves no connection (or goroutine) behind.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return m, fmt.Errorf("GET /metrics: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return m, fmt.Errorf("GET /metrics: %w", err)
	}
	h := parseMetric(bytes.NewReader(body), "go_memstats_heap_inuse_bytes")
	st := parseMetric(bytes.NewReader(body), "go_memstats_stack_inuse_bytes")
	g := parseMetric(bytes.NewReader(body), "go_goroutines")
	if h < 0 || st < 0 || g < 0 {
		return m, errors.New("GET /metrics: no go_memstats_heap_inuse_bytes, go_memstats_stack_inuse_bytes or go_goroutines")
	}
	return mem{heap: int64(h), stack: int64(st), goroutines: int(g)}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// rss measures the server's resident memory with rssBase and conns idle, welcomed
// connections; the figure is the slope between the two.
func (r *runner) rss(ctx context.Context) ([]row, error) { return r.rssOf(ctx, "rss", false) }

// rssRegistered is rss with every connection registered: the state a real client holds
// (user index entry, registered flag, recovery state), not just a welcomed socket.
func (r *runner) rssRegistered(ctx context.Context) ([]row, error) {
	return r.rssOf(ctx, "rss-register", true)
}

func (r *runner) rssOf(ctx context.Context, name string, register bool) ([]row, error) {
	what := "idle connection"
	if register {
		what = "idle registered connection"
	}
	var rows []row
	err := r.withServer(ctx, nil, func(srv *serverProc) error {
		rss0, err := settledRSS(ctx, srv, r.o.settle/2)
		if err != nil {
			return err
		}
		var all []*client
		defer func() { closeAll(all) }()
		t0 := time.Now()
		cs, err := r.connectManyAs(ctx, srv, 0, r.o.rssBase, hooks{}, register)
		if err != nil {
			return err
		}
		all = append(all, cs...)
		r.log.Info(name+": connected", "conns", len(all), "in", time.Since(t0).Round(time.Millisecond))
		rss1, err := settledRSS(ctx, srv, r.o.settle)
		if err != nil {
			return err
		}
		m1, err := memSplit(ctx, srv)
		if err != nil {
			return err
		}
		t1 := time.Now()
		cs, err = r.connectManyAs(ctx, srv, r.o.rssBase, r.o.conns, hooks{}, register)
		if err != nil {
			return err
		}
		all = append(all, cs...)
		r.log.Info(name+": connected", "conns", len(all), "in", time.Since(t1).Round(time.Millisecond))
		rss2, err := settledRSS(ctx, srv, r.o.settle)
		if err != nil {
			return err
		}
		m2, err := memSplit(ctx, srv)
		if err != nil {
			return err
		}
		if n, err := deadClients(all); n > 0 {
			return fmt.Errorf("%d idle connections were closed, first: %v", n, err)
		}
		added := float64(r.o.conns - r.o.rssBase)
		per := float64(rss2-rss1) / added / 1024
		rows = append(rows,
			info(name, "server RSS, no connections", fmt.Sprintf("%.1f MB", float64(rss0)/(1<<20))),
			info(name, fmt.Sprintf("server RSS, %d %ss", r.o.rssBase, what), fmt.Sprintf("%.1f MB", float64(rss1)/(1<<20))),
			info(name, fmt.Sprintf("server RSS, %d %ss", r.o.conns, what), fmt.Sprintf("%.1f MB", float64(rss2)/(1<<20))),
			atMost(name, fmt.Sprintf("RSS per %s (marginal, %d -> %d)", what, r.o.rssBase, r.o.conns), per, 8, "%.2f KB"),
			info(name, "of which Go heap in use, per connection", fmt.Sprintf("%.2f KB", float64(m2.heap-m1.heap)/added/1024)),
			info(name, "of which goroutine stacks, per connection", fmt.Sprintf("%.2f KB (%.2f goroutines)", float64(m2.stack-m1.stack)/added/1024, float64(m2.goroutines-m1.goroutines)/added)),
		)
		return nil
	})
	return rows, err
}

// room measures the server's CPU per delivery: roomSize sockets in one room, roomMsgs
// POST /api/room calls, until every socket has every message.
func (r *runner) room(ctx context.Context) ([]row, error) {
	rows, _, _, err := r.roomRun(ctx, "room", r.o.roomMsgs, 0, pause{})
	return rows, err
}

// roomUnbatched is room with the POSTs paced at ubRate a second, one at a time, so that
// each socket has at most one frame queued at a time and every delivery is its own write
// call. The floor's small write is measured first, as in floor, and again in slices
// between the POSTs (writeRig): the figure is set beside the interleaved one.
func (r *runner) roomUnbatched(ctx context.Context) ([]row, error) {
	const name = "room-unbatched"
	rows, err := r.floor(ctx)
	if err != nil {
		return rows, err
	}
	rig, err := newWriteRig(ctx, r.o.roomSize)
	if err != nil {
		return rows, err
	}
	defer rig.close()
	// About as many floor writes as the floor scenario makes, in ubSlices slices.
	rounds := max(1, (r.o.roomMsgs/10+1)/ubSlices)
	between := pause{every: max(1, r.o.ubMsgs/ubSlices), do: func() error { return rig.slice(rounds) }}
	if err := rig.slice(rounds); err != nil {
		return rows, err
	}
	more, per, wpd, err := r.roomRun(ctx, name, r.o.ubMsgs, time.Second/time.Duration(r.o.ubRate), between)
	rows = append(rows, more...)
	if err != nil {
		return rows, err
	}
	floor := rig.perWrite()
	rows = append(rows, info(name, "small-write floor, between the POSTs", fmt.Sprintf("%.2f µs (%d writes in %d slices)", floor, rig.writes, ubSlices+1)))
	// The figure is only that of unbatched delivery when the writes were: a server that
	// falls behind the pace queues frames per socket and writes them together.
	rows = append(rows, atLeast(name, "server write calls per delivery (unbatched)", wpd, 0.95, "%.3f"))
	if floor > 0 && per > 0 {
		rows = append(rows, atMost(name, "server CPU per delivery / small-write floor", per/floor, 1.4, "%.2fx"))
	} else {
		// CPU time is read in clock ticks: a run this small may show none at all.
		rows = append(rows, info(name, "server CPU per delivery / small-write floor",
			"not measurable: too little CPU time in this run (raise -unbatched-messages)"))
	}
	return rows, nil
}

// pause is work that roomRun does between its paced POSTs, every so many.
type pause struct {
	every int
	do    func() error
}

func (p pause) due(done, msgs int) bool {
	return p.do != nil && (done%p.every == 0 || done == msgs)
}

// ubSlices is how many slices of the small-write floor room-unbatched takes between its
// POSTs (one more before the first).
const ubSlices = 10

// roomRun posts msgs messages to a room of roomSize sockets: with every > 0 one at a time,
// one per every, otherwise as fast as the posters go. It returns the rows, the server CPU
// per delivery in µs and the server's write calls per delivery.
//
// With every > 0, between.do (when set) runs after every between.every POSTs and after the
// last, once the server has delivered them all: what it does is not the server's.
func (r *runner) roomRun(ctx context.Context, name string, msgs int, every time.Duration, between pause) ([]row, float64, float64, error) {
	var rows []row
	var per, wpd float64
	err := r.withServer(ctx, nil, func(srv *serverProc) error {
		var joined, got atomic.Int64
		h := hooks{event: func(c *client, ev, pkt []byte) {
			switch string(ev) {
			case "bench":
				got.Add(1)
			case "room:join:ack":
				joined.Add(1)
			}
		}}
		cs, err := r.connectMany(ctx, srv, 0, r.o.roomSize, h)
		if err != nil {
			return err
		}
		defer closeAll(cs)
		join := []byte(`42["room:join",{"room":"bench"}]`)
		for _, c := range cs {
			if err := c.send(join); err != nil {
				return fmt.Errorf("room:join: %w", err)
			}
		}
		size := int64(len(cs))
		if err := waitFor(ctx, srv, cs, "room:join:ack", func() bool { return joined.Load() >= size }); err != nil {
			return err
		}

		api := newAPIClient(srv, r.o.posters)
		defer api.close()
		// One message first, outside the measurement, to warm every path.
		if n, err := api.postRoom(ctx, -1); err != nil {
			return err
		} else if n != size {
			return fmt.Errorf("POST /api/room reached %d recipients, want %d", n, size)
		}
		if err := waitFor(ctx, srv, cs, "the warm-up message", func() bool { return got.Load() >= size }); err != nil {
			return err
		}
		got.Store(0)

		cpu0, err := srv.times()
		if err != nil {
			return err
		}
		writes0, err := srv.writes()
		if err != nil {
			return err
		}
		gen0 := selfCPU()
		t0 := time.Now()
		var next atomic.Int64
		var pausedCPU, pausedWall atomic.Int64 // spent in between.do: not the POSTs'
		var wg sync.WaitGroup
		posters := r.o.posters
		var tick *time.Ticker
		if every > 0 {
			posters = 1
			tick = time.NewTicker(every)
			defer tick.Stop()
		}
		errs := make(chan error, posters)
		for range posters {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(msgs) {
						return
					}
					if tick != nil {
						select {
						case <-ctx.Done():
							errs <- ctx.Err()
							return
						case <-tick.C:
						}
					}
					n, err := api.postRoom(ctx, i)
					if err == nil && n != size {
						err = fmt.Errorf("POST /api/room reached %d recipients, want %d", n, size)
					}
					if done := int(i + 1); err == nil && tick != nil && between.due(done, msgs) {
						err = waitFor(ctx, srv, cs, "the POSTs' deliveries", func() bool { return got.Load() >= int64(done)*size })
						if err == nil {
							c0, t0 := selfCPU(), time.Now()
							err = between.do()
							pausedCPU.Add(int64(selfCPU() - c0))
							pausedWall.Add(int64(time.Since(t0)))
						}
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		want := int64(msgs) * size
		if err := waitFor(ctx, srv, cs, "every delivery", func() bool { return got.Load() >= want }); err != nil {
			return fmt.Errorf("%w (%d of %d delivered)", err, got.Load(), want)
		}
		elapsed := time.Since(t0) - time.Duration(pausedWall.Load())
		cpu1, err := srv.times()
		if err != nil {
			return err
		}
		gen := selfCPU() - gen0 - time.Duration(pausedCPU.Load())
		used := cpu1.sub(cpu0)
		writes1, err := srv.writes()
		if err != nil {
			return err
		}
		if extra := got.Load() - want; extra != 0 {
			return fmt.Errorf("%d deliveries more than sent", extra)
		}
		per = us(used.user+used.sys) / float64(want)
		wpd = float64(writes1-writes0) / float64(want)
		rows = append(rows,
			info(name, "deliveries", fmt.Sprintf("%d (%d POSTs x %d sockets)", want, msgs, size)),
			info(name, "deliveries/s", fmt.Sprintf("%.0f", float64(want)/elapsed.Seconds())),
			atMost(name, "server CPU per delivery", per, 4, "%.2f µs"),
			split(name, used, float64(want)),
			info(name, "server write calls per delivery", fmt.Sprintf("%.3f (frames for one socket share a write)", wpd)),
			info(name, "load generator CPU per delivery", fmt.Sprintf("%.2f µs", us(gen)/float64(want))),
		)
		return nil
	})
	return rows, per, wpd, err
}

// apiClient calls the HTTP API with keep-alive connections.
type apiClient struct {
	srv *serverProc
	hc  *http.Client
	tr  *http.Transport
}

func newAPIClient(srv *serverProc, conns int) *apiClient {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true}
	return &apiClient{srv: srv, tr: tr, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (a *apiClient) close() { a.tr.CloseIdleConnections() }

// postRoom sends message i to room "bench" and returns the recipients the server counted.
func (a *apiClient) postRoom(ctx context.Context, i int64) (int64, error) {
	body := `{"room":"bench","event":"bench","data":{"n":` + strconv.FormatInt(i, 10) + `,"text":"hello, room"}}`
	res, err := a.post(ctx, "/api/room", body)
	return res.Recipients, err
}

// apiResult is what the HTTP API answers to a push, broadcast or room call.
type apiResult struct {
	Success    bool  `json:"success"`
	Recipients int64 `json:"recipients"`
	Delivered  bool  `json:"delivered"`
}

// post sends a JSON body to an API route and reads its answer, which must be a success.
func (a *apiClient) post(ctx context.Context, path, body string) (apiResult, error) {
	var res apiResult
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.srv.httpURL(path), strings.NewReader(body))
	if err != nil {
		return res, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", a.srv.apiKey)
	resp, err := a.hc.Do(req)
	if err != nil {
		return res, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return res, fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("POST %s: HTTP %d: %s", path, resp.StatusCode, clip(data))
	}
	if err := json.Unmarshal(data, &res); err != nil || !res.Success {
		return res, fmt.Errorf("POST %s: unexpected answer %s", path, clip(data))
	}
	return res, nil
}

// loop drives request/reply traffic: every connection keeps one request in flight, sending
// the next from its reader as soon as the reply arrives. It records latencies and counts
// while measuring.
type loop struct {
	stop      atomic.Bool
	measuring atomic.Bool
	done      atomic.Int64 // replies
	bad       atomic.Int64 // replies that report a failure
	sendErrs  atomic.Int64
	lat       [][]time.Duration // per connection; only its reader appends
	send      func(c *client) error
}

func newLoop(conns int, send func(c *client) error) *loop {
	return &loop{lat: make([][]time.Duration, conns), send: send}
}

// reply records one reply on c and sends the next request.
func (l *loop) reply(c *client, ok bool) {
	d := c.since()
	if l.measuring.Load() {
		l.lat[c.idx] = append(l.lat[c.idx], d)
	}
	l.done.Add(1)
	if !ok {
		l.bad.Add(1)
	}
	if !l.stop.Load() {
		if err := l.send(c); err != nil {
			l.sendErrs.Add(1)
		}
	}
}

// gcRow reports the server's garbage collections during the window: part of the latency
// tail (BENCHMARKS.md).
func gcRow(scenario string, w window) row {
	v := "unknown (metrics off)"
	if w.gcCycles >= 0 {
		v = fmt.Sprintf("%.0f in %.1f s", w.gcCycles, w.elapsed.Seconds())
	}
	return info(scenario, "server garbage collections", v)
}

// window is what one measurement window saw.
type window struct {
	replies   int64
	bad       int64
	elapsed   time.Duration
	serverCPU time.Duration
	server    cpuTimes
	pluginCPU time.Duration
	genCPU    time.Duration
	gcCycles  float64 // the server's garbage collections in the window; < 0 unknown
}

// measure starts the loop on cs, lets it warm up, measures for the window, then stops it
// and waits for the replies in flight.
func (r *runner) measure(ctx context.Context, srv *serverProc, cs []*client, l *loop, plugins bool) (window, error) {
	return r.measureFor(ctx, srv, cs, l, plugins, r.o.warmup, r.o.window)
}

// measureFor is measure with its own warm-up and window; it may run again on the same loop
// once the previous one returned.
func (r *runner) measureFor(ctx context.Context, srv *serverProc, cs []*client, l *loop, plugins bool, warmup, length time.Duration) (window, error) {
	var w window
	l.stop.Store(false)
	done0 := l.done.Load()
	for _, c := range cs {
		if err := l.send(c); err != nil {
			return w, fmt.Errorf("first request: %w", err)
		}
	}
	defer l.stop.Store(true)
	if err := sleep(ctx, warmup); err != nil {
		return w, err
	}
	if l.done.Load() == done0 {
		return w, fmt.Errorf("no reply within the %s warm-up", warmup)
	}
	l.measuring.Store(true)
	cpu0, err := srv.times()
	if err != nil {
		return w, err
	}
	var plug0 time.Duration
	if plugins {
		plug0, _, _ = srv.childrenCPU()
	}
	gc0 := srv.gcCycles()
	gen0, n0, bad0, t0 := selfCPU(), l.done.Load(), l.bad.Load(), time.Now()
	if err := sleep(ctx, length); err != nil {
		return w, err
	}
	cpu1, err := srv.times()
	if err != nil {
		return w, err
	}
	if plugins {
		plug1, _, _ := srv.childrenCPU()
		w.pluginCPU = plug1 - plug0
	}
	w.genCPU = selfCPU() - gen0
	w.gcCycles = -1
	if gc0 >= 0 {
		if gc1 := srv.gcCycles(); gc1 >= 0 {
			w.gcCycles = gc1 - gc0
		}
	}
	w.replies, w.bad, w.elapsed = l.done.Load()-n0, l.bad.Load()-bad0, time.Since(t0)
	w.server = cpu1.sub(cpu0)
	w.serverCPU = w.server.user + w.server.sys
	l.measuring.Store(false)
	l.stop.Store(true)
	if n := l.sendErrs.Load(); n > 0 {
		return w, fmt.Errorf("%d requests could not be sent", n)
	}
	if n, err := deadClients(cs); n > 0 {
		return w, fmt.Errorf("%d connections closed during the run, first: %v", n, err)
	}
	// Let the requests in flight finish, so that closing is clean; their replies are not
	// counted.
	_ = sleep(ctx, 200*time.Millisecond)
	return w, nil
}

// ack measures the server's CPU per `ping` ack round trip with ackConns connections each
// keeping one ping in flight.
func (r *runner) ack(ctx context.Context) ([]row, error) {
	const name = "ack"
	var rows []row
	err := r.withServer(ctx, nil, func(srv *serverProc) error {
		l := newLoop(r.o.ackConns, (*client).sendPing)
		h := hooks{ack: func(c *client, id uint64, pkt []byte) { l.reply(c, true) }}
		cs, err := r.connectMany(ctx, srv, 0, r.o.ackConns, h)
		if err != nil {
			return err
		}
		defer closeAll(cs)
		echo, err := newEchoRig(ctx, r.o.ackConns)
		if err != nil {
			return err
		}
		defer echo.close()
		// The window in ackSlices parts, with a slice of the echo floor before each part
		// and after the last: the floor of the same seconds.
		var w window
		for k := range ackSlices {
			if err := echo.slice(ctx, r.o.window/ackSlices/2); err != nil {
				return err
			}
			warm := r.o.warmup
			if k > 0 {
				warm = min(warm, 200*time.Millisecond)
			}
			part, err := r.measureFor(ctx, srv, cs, l, false, warm, r.o.window/ackSlices)
			if err != nil {
				return err
			}
			w.add(part)
		}
		if err := echo.slice(ctx, r.o.window/ackSlices/2); err != nil {
			return err
		}
		closeAll(cs)
		lat := merge(l.lat)
		per := us(w.serverCPU) / float64(w.replies)
		rows = append(rows,
			info(name, "round trips/s", fmt.Sprintf("%.0f (%d connections, 1 in flight each)", float64(w.replies)/w.elapsed.Seconds(), len(cs))),
			info(name, "latency p50 / p99", fmt.Sprintf("%.2f / %.2f ms", ms(percentile(lat, .5)), ms(percentile(lat, .99)))),
			atMost(name, "server CPU per ack round trip", per, 8, "%.2f µs"),
			split(name, w.server, float64(w.replies)),
			info(name, "load generator CPU per round trip", fmt.Sprintf("%.2f µs", us(w.genCPU)/float64(w.replies))),
			gcRow(name, w),
			info(name, "echo floor between the parts, per side", fmt.Sprintf("%.2f µs (%d round trips in %d slices)", echo.perSide(), echo.trips, ackSlices+1)),
		)
		if f := echo.perSide(); f > 0 {
			rows = append(rows, atMost(name, "server CPU per ack round trip / echo floor", per/f, 1.3, "%.2fx"))
		}
		return nil
	})
	return rows, err
}

// ackSlices is how many parts ack's window is cut into, with the echo floor between.
const ackSlices = 5

// add sums o into w; gcCycles stays unknown once either is.
func (w *window) add(o window) {
	w.replies += o.replies
	w.bad += o.bad
	w.elapsed += o.elapsed
	w.server.user += o.server.user
	w.server.sys += o.server.sys
	w.serverCPU += o.serverCPU
	w.pluginCPU += o.pluginCPU
	w.genCPU += o.genCPU
	if w.gcCycles >= 0 && o.gcCycles >= 0 {
		w.gcCycles += o.gcCycles
	} else {
		w.gcCycles = -1
	}
}

// storm opens storm connections paced at rate per second and measures the time from the
// dial to the CONNECT ack.
func (r *runner) storm(ctx context.Context) ([]row, error) {
	const name = "storm"
	var rows []row
	err := r.withServer(ctx, nil, func(srv *serverProc) error {
		toks, err := tokens(srv.secret, 0, r.o.storm)
		if err != nil {
			return err
		}
		cs := make([]*client, r.o.storm)
		lats := make([]time.Duration, r.o.storm)
		errs := make([]error, r.o.storm)
		defer func() { closeAll(cs) }()
		interval := time.Second / time.Duration(r.o.rate)
		var wg sync.WaitGroup
		cpu0, err := srv.cpu()
		if err != nil {
			return err
		}
		gen0 := selfCPU()
		start := time.Now()
		for i := range r.o.storm {
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				if err := sleep(ctx, wait); err != nil {
					wg.Wait()
					return err
				}
			}
			wg.Go(func() {
				dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				cs[i], lats[i], errs[i] = dial(dctx, dialOptions{url: srv.wsURL(), token: toks[i], idx: i})
			})
		}
		paced := time.Since(start)
		wg.Wait()
		cpu1, err := srv.cpu()
		if err != nil {
			return err
		}
		gen := selfCPU() - gen0
		var ok []time.Duration
		fails := map[string]int{}
		nfail := 0
		for i, err := range errs {
			if err != nil {
				nfail++
				fails[errClass(err)]++
				continue
			}
			ok = append(ok, lats[i])
		}
		// Let the welcomes and a few heartbeats of the last ones pass, then check every
		// connection survived.
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
		dead, derr := deadClients(cs)
		lat := merge([][]time.Duration{ok})
		rows = append(rows,
			info(name, "connections, offered rate", fmt.Sprintf("%d at %.0f/s", r.o.storm, float64(r.o.storm)/paced.Seconds())),
			info(name, "connect latency p50", fmt.Sprintf("%.2f ms", ms(percentile(lat, .5)))),
			below(name, "connect latency p99", ms(percentile(lat, .99)), 100, "%.2f ms"),
			info(name, "connect latency max", fmt.Sprintf("%.2f ms", ms(percentile(lat, 1)))),
			atMost(name, "failed connects", float64(nfail), 0, "%.0f"),
			info(name, "server CPU per connect", fmt.Sprintf("%.0f µs", us(cpu1-cpu0)/float64(r.o.storm))),
			info(name, "load generator CPU per connect", fmt.Sprintf("%.0f µs", us(gen)/float64(r.o.storm))),
		)
		if nfail > 0 {
			r.log.Warn("storm: failed connects", "count", nfail, "by_error", fmt.Sprint(fails))
		}
		if dead > 0 {
			rows = append(rows, atMost(name, "connections closed after connecting", float64(dead), 0, "%.0f"))
			r.log.Warn("storm: connections closed after connecting", "count", dead, "first", derr)
		}
		return nil
	})
	return rows, err
}

// errClass shortens an error to its kind, for counting failures by cause.
func errClass(err error) string {
	s := err.Error()
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(s, "i/o timeout") {
		return "timeout"
	}
	if i := strings.Index(s, ": "); i > 0 && i < 40 {
		rest := s[i+2:]
		if j := strings.LastIndex(rest, ": "); j >= 0 {
			rest = rest[j+2:]
		}
		return s[:i] + ": " + rest
	}
	return s
}

// plugin measures client:event round trips through the echo plugin: plugConns connections
// each keeping one event in flight.
func (r *runner) plugin(ctx context.Context) ([]row, error) {
	const name = "plugin"
	var rows []row
	err := r.withServer(ctx, []string{"echo"}, func(srv *serverProc) error {
		if err := waitPluginReady(ctx, srv); err != nil {
			return err
		}
		event := []byte(`42["client:event",{"type":"bench","data":{"n":1}}]`)
		l := newLoop(r.o.plugConn, func(c *client) error {
			return c.sendTimed(func(b []byte) []byte { return append(b, event...) })
		})
		success := []byte(`"success":true`)
		h := hooks{event: func(c *client, ev, pkt []byte) {
			switch string(ev) {
			case "server:response":
				l.reply(c, bytes.Contains(pkt, success))
			case "error":
				l.reply(c, false)
			}
		}}
		cs, err := r.connectMany(ctx, srv, 0, r.o.plugConn, h)
		if err != nil {
			return err
		}
		defer closeAll(cs)
		w, err := r.measure(ctx, srv, cs, l, true)
		closeAll(cs)
		if err != nil {
			return err
		}
		lat := merge(l.lat)
		n := float64(w.replies)
		rows = append(rows,
			atLeast(name, "round trips/s", n/w.elapsed.Seconds(), 40000, "%.0f"),
			info(name, "latency p50", fmt.Sprintf("%.2f ms", ms(percentile(lat, .5)))),
			below(name, "latency p99", ms(percentile(lat, .99)), 5, "%.2f ms"),
			atMost(name, "failed round trips", float64(w.bad), 0, "%.0f"),
			info(name, "server CPU per round trip", fmt.Sprintf("%.2f µs", us(w.serverCPU)/n)),
			split(name, w.server, n),
			info(name, "plugin CPU per round trip", fmt.Sprintf("%.2f µs", us(w.pluginCPU)/n)),
			info(name, "load generator CPU per round trip", fmt.Sprintf("%.2f µs", us(w.genCPU)/n)),
			gcRow(name, w),
		)
		return nil
	})
	return rows, err
}

// waitPluginReady sends client:event until the echo plugin answers it successfully.
func waitPluginReady(ctx context.Context, srv *serverProc) error {
	resp := make(chan []byte, 4)
	h := hooks{event: func(c *client, ev, pkt []byte) {
		if string(ev) == "server:response" || string(ev) == "error" {
			select {
			case resp <- bytes.Clone(pkt):
			default:
			}
		}
	}}
	tok, err := tokens(srv.secret, 1_000_000, 1_000_001)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, _, err := dial(dctx, dialOptions{url: srv.wsURL(), token: tok[0], welcome: true, hooks: h})
	cancel()
	if err != nil {
		return fmt.Errorf("probe connection: %w", err)
	}
	defer c.close()
	deadline := time.Now().Add(15 * time.Second)
	var last []byte
	for time.Now().Before(deadline) {
		if err := c.send([]byte(`42["client:event",{"type":"bench","data":{"probe":true}}]`)); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		select {
		case last = <-resp:
			if bytes.Contains(last, []byte(`"success":true`)) {
				return nil
			}
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("the echo plugin did not answer client:event within 15s; last answer: %s", clip(last))
}

// split is the row that shows how much of the server's CPU per operation was spent in the
// kernel (on loopback, a write also runs the receiver's TCP input path).
func split(scenario string, t cpuTimes, ops float64) row {
	return info(scenario, "  of which user / system", fmt.Sprintf("%.2f / %.2f µs", us(t.user)/ops, us(t.sys)/ops))
}
