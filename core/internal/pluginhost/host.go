// Package pluginhost runs the application's plugins: out-of-process gRPC servers
// (hashicorp/go-plugin) dropped as binaries into a folder. It routes client
// events, messages and actions to them (it is the core's dispatch.Dispatcher),
// serves them the core's Host service, hot-reloads replaced binaries without
// losing a call, restarts crashed ones with backoff, and unloads removed ones.
// It is the only package of the core that imports go-plugin.
package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtserver/rtserver/core/internal/dispatch"
	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// PluginConfig overrides what a plugin describes about itself. Name is the
// binary's file name in Dir. Nil route lists keep the plugin's own; Timeout and
// MaxInFlight 0 take the Options defaults; SHA256, when set, pins the binary:
// any other content is refused. Config is handed to the plugin's Configure.
type PluginConfig struct {
	Name        string
	Events      []string
	Messages    []string
	Actions     []string
	Timeout     time.Duration
	MaxInFlight int
	SHA256      string
	Config      json.RawMessage
}

// Options configure a Host. Zero values take defaults: DefaultTimeout 5s,
// MaxInFlight 1024 per plugin process, DrainTimeout 10s, hclog's default
// Logger named "plugins", no metrics.
type Options struct {
	Dir            string
	DefaultTimeout time.Duration
	MaxInFlight    int
	DrainTimeout   time.Duration
	Plugins        []PluginConfig
	Logger         hclog.Logger
	Registerer     prometheus.Registerer
}

// Plugin states as reported by Plugins. A skipped file is one in Dir that is not
// loaded (not executable, a symbolic link, a name that is not accepted); Error says
// why.
const (
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateFailed     = "failed"
	StateSkipped    = "skipped"
)

// PluginInfo is one plugin as GET /api/plugins shows it. Name is the file name,
// escaped as by strconv.Quote (without the quotes) when it is not an accepted name.
type PluginInfo struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	SHA256   string `json:"sha256"`
	Routes   Routes `json:"routes"`
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
	PID      int    `json:"pid,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Host loads, routes to and supervises plugins. Its methods are safe for
// concurrent use.
//
// One goroutine (run) makes every lifecycle change after Start: load, reload,
// restart, remove. Dispatch reads only the route table and each slot's current
// process, both swapped atomically. h.mu guards the slot fields that Plugins
// reads; it is never held while waiting on a process, and is taken before a
// proc's own locks when both are needed.
type Host struct {
	o       Options
	core    dispatch.Host
	log     hclog.Logger
	m       *metrics
	byName  map[string]*PluginConfig
	store   *copies
	copies  string // private dir holding the hash-named copies we run
	routes  atomic.Pointer[table]
	closed  atomic.Bool
	ctx     context.Context
	cancel  context.CancelFunc
	crashCh chan crash
	retryCh chan retry
	runDone chan struct{}
	ready   chan struct{} // closed once the plugins found at Start are loaded (or refused)
	started bool
	stops   sync.WaitGroup // drains and stops in the background

	mu      sync.Mutex
	slots   map[string]*slot
	skipped map[string]string // file name -> why it is not loaded

	// Tunables; tests shorten them.
	pollEvery   time.Duration
	backoffMin  time.Duration
	backoffMax  time.Duration
	crashLimit  int
	crashWindow time.Duration
	checkWait   time.Duration
}

// slot is one binary name in Dir and whichever process currently serves it.
type slot struct {
	name    string
	cfg     *PluginConfig
	timeout time.Duration
	maxIF   int
	cur     atomic.Pointer[proc]
	okCalls map[dispatch.Kind]prometheus.Counter
	labels  codeLabels
	dur     map[dispatch.Kind]prometheus.Observer
	inFl    prometheus.Gauge
	// deadlines shares the per-call deadline of calls that start within a few ms.
	deadlines wire.Deadlines

	// Guarded by Host.mu.
	routes   Routes
	stamp    stamp
	sha      string
	path     string // private copy
	version  string
	state    string
	restarts int
	crashes  []time.Time
	lastErr  string
	gen      int // bumped on every new binary, so stale restarts are dropped
}

type crash struct {
	s   *slot
	p   *proc
	err error
}

type retry struct {
	s   *slot
	gen int
}

// New checks the options and prepares a Host; Start loads the plugins. host is
// what plugins reach through the Host service (nil: their calls fail).
func New(o Options, host dispatch.Host) (*Host, error) {
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = 5 * time.Second
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 1024
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = hclog.L().Named("plugins")
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("pluginhost: metrics: %w", err)
	}
	h := &Host{
		o: o, core: host, log: o.Logger, m: m,
		byName:      map[string]*PluginConfig{},
		crashCh:     make(chan crash, 16),
		retryCh:     make(chan retry, 16),
		runDone:     make(chan struct{}),
		ready:       make(chan struct{}),
		slots:       map[string]*slot{},
		skipped:     map[string]string{},
		pollEvery:   500 * time.Millisecond,
		backoffMin:  250 * time.Millisecond,
		backoffMax:  30 * time.Second,
		crashLimit:  5,
		crashWindow: time.Minute,
		checkWait:   10 * time.Second,
	}
	for i := range o.Plugins {
		pc := &o.Plugins[i]
		if pc.Name == "" {
			return nil, errors.New("pluginhost: a plugin config has no name")
		}
		if _, dup := h.byName[pc.Name]; dup {
			return nil, fmt.Errorf("pluginhost: plugin %q configured twice", pc.Name)
		}
		h.byName[pc.Name] = pc
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.routes.Store(&table{})
	return h, nil
}

var _ dispatch.Dispatcher = (*Host)(nil)

// Start checks Dir, sweeps the private copies of servers that no longer run, and
// returns; loading goes on in the background so that serving never waits for a
// plugin. In order: every executable in Dir is loaded (copy, hash, pin check,
// launch, health check, Describe, Configure) and routed to as soon as it is ready,
// Ready is closed, then Dir is watched for new, replaced and removed binaries until
// Close. Until Ready, a request no loaded plugin handles gets PLUGIN_UNAVAILABLE.
// A binary that fails to load, or whose routes clash with an already loaded one's, is
// refused and reported by Plugins.
func (h *Host) Start(context.Context) error {
	if h.started {
		return errors.New("pluginhost: already started")
	}
	h.started = true
	if h.o.Dir == "" {
		close(h.ready)
		close(h.runDone)
		return nil
	}
	if fi, err := os.Stat(h.o.Dir); err != nil || !fi.IsDir() {
		close(h.ready)
		close(h.runDone)
		return fmt.Errorf("pluginhost: plugin dir %q: not a readable directory: %v", h.o.Dir, err)
	}
	c, err := openCopies(h.o.Dir, h.log)
	if err != nil {
		close(h.ready)
		close(h.runDone)
		return fmt.Errorf("pluginhost: %w", err)
	}
	h.store, h.copies = c, c.dir
	go h.run()
	return nil
}

// Ready is closed once the plugins found in Dir at Start are loaded or refused.
func (h *Host) Ready() <-chan struct{} { return h.ready }

// initialLoad loads what Dir holds at start, in name order.
func (h *Host) initialLoad() {
	defer close(h.ready)
	files, err := h.list()
	if err != nil {
		h.log.Error("reading the plugin dir", "error", err)
		return
	}
	for _, f := range files {
		if h.ctx.Err() != nil {
			return
		}
		_ = h.load(f.name, f.st) // logged and reported by Plugins
	}
	for name := range h.byName {
		if _, ok := h.slots[name]; !ok {
			h.log.Warn("configured plugin has no binary", "plugin", displayName(name), "dir", h.o.Dir)
		}
	}
}

type file struct {
	name string
	st   stamp
}

// list returns the binaries in Dir to load, and records (and logs once) the files
// that are not loaded and why.
func (h *Host) list() ([]file, error) {
	entries, err := os.ReadDir(h.o.Dir)
	if err != nil {
		return nil, fmt.Errorf("pluginhost: read plugin dir: %w", err)
	}
	var out []file
	skipped := map[string]string{}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		switch why := skipReason(fi); why {
		case "":
			out = append(out, file{e.Name(), stampOf(fi)})
		case ignored:
		default:
			skipped[e.Name()] = why
		}
	}
	h.mu.Lock()
	var fresh []string
	for name, why := range skipped {
		if h.skipped[name] != why {
			fresh = append(fresh, name)
		}
	}
	h.skipped = skipped
	h.mu.Unlock()
	sort.Strings(fresh)
	for _, name := range fresh {
		h.log.Info("not loading a file of the plugin dir", "file", displayName(name), "reason", skipped[name])
	}
	return out, nil
}

// run is the lifecycle goroutine: every load, reload, restart and removal after
// Start happens here, one at a time.
func (h *Host) run() {
	defer close(h.runDone)
	h.initialLoad()
	tick := time.NewTicker(h.pollEvery)
	defer tick.Stop()
	settling := map[string]stamp{}
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
			h.scan(settling)
		case c := <-h.crashCh:
			h.crashed(c)
		case r := <-h.retryCh:
			h.restart(r)
		}
	}
}

// scan compares Dir with what is loaded. A changed file is loaded once it has
// looked the same for two polls, so a binary copied in slowly (not renamed) is
// not started half-written.
func (h *Host) scan(settling map[string]stamp) {
	files, err := h.list()
	if err != nil {
		h.log.Error("scanning plugin dir", "error", err)
		return
	}
	seen := map[string]bool{}
	for _, f := range files {
		seen[f.name] = true
		h.mu.Lock()
		s := h.slots[f.name]
		same := s != nil && s.stamp == f.st
		h.mu.Unlock()
		if same {
			delete(settling, f.name)
			continue
		}
		if prev, ok := settling[f.name]; !ok || prev != f.st {
			settling[f.name] = f.st
			continue
		}
		delete(settling, f.name)
		_ = h.load(f.name, f.st) // logged and reported by Plugins
	}
	for name := range settling {
		if !seen[name] {
			delete(settling, name)
		}
	}
	h.mu.Lock()
	var gone []*slot
	for name, s := range h.slots {
		if !seen[name] {
			gone = append(gone, s)
		}
	}
	h.mu.Unlock()
	for _, s := range gone {
		h.remove(s)
	}
}

func (h *Host) newSlot(name string) *slot {
	s := &slot{name: name, cfg: h.byName[name], timeout: h.o.DefaultTimeout, maxIF: h.o.MaxInFlight,
		okCalls: map[dispatch.Kind]prometheus.Counter{}, dur: map[dispatch.Kind]prometheus.Observer{}}
	if s.cfg != nil {
		if s.cfg.Timeout > 0 {
			s.timeout = s.cfg.Timeout
		}
		if s.cfg.MaxInFlight > 0 {
			s.maxIF = s.cfg.MaxInFlight
		}
	}
	for _, k := range kinds {
		s.okCalls[k] = h.m.calls.WithLabelValues(name, k.String(), "OK")
		s.dur[k] = h.m.duration.WithLabelValues(name, k.String())
	}
	s.inFl = h.m.inFlight.WithLabelValues(name)
	return s
}

// load brings in a new or changed binary: private copy and hash, pin check,
// start and check a process, then swap it and the routing table in atomically and
// drain the process it replaces in the background. On failure whatever ran
// before stays.
func (h *Host) load(name string, st stamp) (err error) {
	var path string
	h.mu.Lock()
	s := h.slots[name]
	isNew := s == nil
	if isNew {
		s = h.newSlot(name)
	}
	s.stamp = st
	h.mu.Unlock()
	log := h.log.With("plugin", name) // an accepted name: nothing to escape

	defer func() {
		if err == nil {
			return
		}
		h.mu.Lock()
		s.lastErr = err.Error()
		if isNew {
			s.state = StateFailed
			h.slots[name] = s
		}
		h.mu.Unlock()
		h.dropCopy(path)
		if isNew {
			log.Error("plugin binary refused", "error", err)
		} else {
			log.Error("new plugin binary refused; the previous one stays", "error", err)
		}
	}()

	path, sum, err := privateCopy(filepath.Join(h.o.Dir, name), h.copies, name)
	if err != nil {
		return err
	}
	h.mu.Lock()
	unchanged := !isNew && s.sha == sum && s.state != StateFailed
	h.mu.Unlock()
	if unchanged {
		return nil // touched, same content
	}
	if s.cfg != nil && s.cfg.SHA256 != "" && !strings.EqualFold(s.cfg.SHA256, sum) {
		return fmt.Errorf("sha256 %s does not match the pinned %s", sum, s.cfg.SHA256)
	}
	p, err := h.startProc(s, path)
	if err != nil {
		return err
	}
	routes := routesFor(p.desc, s.cfg)

	h.mu.Lock()
	prevRoutes := s.routes
	s.routes = routes
	all := make([]*slot, 0, len(h.slots)+1)
	for _, o := range h.slots {
		if o != s {
			all = append(all, o)
		}
	}
	t, terr := buildTable(append(all, s))
	if terr != nil {
		s.routes = prevRoutes
		h.mu.Unlock()
		p.stop(0)
		return terr
	}
	h.slots[name] = s
	s.sha, s.path, s.version = sum, path, p.desc.GetVersion()
	s.state, s.lastErr, s.crashes = StateRunning, "", nil
	s.gen++
	old := s.cur.Swap(p)
	h.routes.Store(t)
	h.mu.Unlock()

	if old != nil {
		h.m.reloads.WithLabelValues(name).Inc()
		log.Info("plugin reloaded", "version", p.desc.GetVersion(), "sha256", sum[:12], "pid", p.pid)
		h.stopInBackground(old, h.o.DrainTimeout, func() { h.dropCopy(old.path) })
	} else {
		log.Info("plugin loaded", "version", p.desc.GetVersion(), "sha256", sum[:12], "pid", p.pid, "routes", fmt.Sprintf("%+v", routes))
	}
	return nil
}

func (h *Host) startProc(s *slot, path string) (*proc, error) {
	return startProc(h.ctx, procParams{
		name: s.name, path: path, log: h.log, core: h.core, maxInFlight: s.maxIF, checkWait: h.checkWait,
		config: configOf(s.cfg),
		onCrash: func(p *proc, err error) {
			select {
			case h.crashCh <- crash{s, p, err}:
			case <-h.ctx.Done():
			}
		},
	})
}

func configOf(c *PluginConfig) json.RawMessage {
	if c == nil {
		return nil
	}
	return c.Config
}

func routesFor(d *pluginv1.DescribeResponse, c *PluginConfig) Routes {
	r := Routes{Events: d.GetEvents(), Messages: d.GetMessages(), Actions: d.GetActions()}
	if c != nil {
		if c.Events != nil {
			r.Events = c.Events
		}
		if c.Messages != nil {
			r.Messages = c.Messages
		}
		if c.Actions != nil {
			r.Actions = c.Actions
		}
	}
	return r
}

// stopInBackground drains and stops p, then runs after (if any).
func (h *Host) stopInBackground(p *proc, drain time.Duration, after ...func()) {
	h.stops.Add(1)
	go func() {
		defer h.stops.Done()
		p.stop(drain)
		for _, f := range after {
			f()
		}
	}()
}

// dropCopy removes a private copy no slot runs any more, so repeated deploys
// do not fill the disk.
func (h *Host) dropCopy(path string) {
	if path == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.slots {
		if s.path == path {
			return
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		h.log.Warn("removing an old plugin copy", "path", path, "error", err)
	}
	_ = os.Remove(filepath.Dir(path)) // only once empty: same content may run under another name
}

// crashed handles a process whose stream ended without us stopping it: calls now
// fail fast with PLUGIN_UNAVAILABLE, and a restart is scheduled with exponential
// backoff and jitter unless the plugin crashed crashLimit times within
// crashWindow, in which case it is failed until a new binary arrives.
func (h *Host) crashed(c crash) {
	if h.closed.Load() {
		return // stopping: Close stops it
	}
	if !c.s.cur.CompareAndSwap(c.p, nil) {
		return // already replaced or removed
	}
	h.stopInBackground(c.p, 0)
	h.crashBookkeeping(c.s, fmt.Errorf("plugin process exited: %w", c.err))
}

func (h *Host) crashBookkeeping(s *slot, cause error) {
	now := time.Now()
	h.mu.Lock()
	kept := s.crashes[:0]
	for _, t := range s.crashes {
		if now.Sub(t) < h.crashWindow {
			kept = append(kept, t)
		}
	}
	s.crashes = append(kept, now)
	n := len(s.crashes)
	gen := s.gen
	s.lastErr = cause.Error()
	failed := n >= h.crashLimit
	if failed {
		s.state = StateFailed
	} else {
		s.state = StateRestarting
	}
	h.mu.Unlock()
	if failed {
		h.log.Error("plugin keeps crashing; failed until a new binary arrives", "plugin", s.name, "crashes", n, "window", h.crashWindow, "error", cause)
		return
	}
	d := h.backoff(n)
	h.log.Warn("plugin down; restarting", "plugin", s.name, "in", d, "error", cause)
	time.AfterFunc(d, func() {
		select {
		case h.retryCh <- retry{s, gen}:
		case <-h.ctx.Done():
		}
	})
}

// backoff is backoffMin·2^(n-1), capped at backoffMax, ±20% jitter.
func (h *Host) backoff(n int) time.Duration {
	d := h.backoffMin << min(n-1, 20)
	if d > h.backoffMax || d <= 0 {
		d = h.backoffMax
	}
	j := time.Duration(float64(d) * 0.2 * (2*rand.Float64() - 1))
	return d + j
}

func (h *Host) restart(r retry) {
	s := r.s
	h.mu.Lock()
	stale := h.slots[s.name] != s || s.gen != r.gen || s.state != StateRestarting
	path := s.path
	h.mu.Unlock()
	if stale {
		return
	}
	p, err := h.startProc(s, path)
	if err != nil {
		h.crashBookkeeping(s, fmt.Errorf("restart failed: %w", err))
		return
	}
	h.mu.Lock()
	s.state, s.lastErr = StateRunning, ""
	s.restarts++
	h.mu.Unlock()
	s.cur.Store(p)
	h.m.restarts.WithLabelValues(s.name).Inc()
	h.log.Info("plugin restarted", "plugin", s.name, "pid", p.pid)
}

// remove unloads a slot whose binary is gone: out of the routing table first,
// then its process drains and stops.
func (h *Host) remove(s *slot) {
	h.mu.Lock()
	delete(h.slots, s.name)
	all := make([]*slot, 0, len(h.slots))
	for _, o := range h.slots {
		all = append(all, o)
	}
	t, err := buildTable(all)
	if err == nil { // removing routes cannot create a conflict
		h.routes.Store(t)
	}
	s.gen++
	h.mu.Unlock()
	h.log.Info("plugin binary removed; unloading", "plugin", s.name)
	if p := s.cur.Swap(nil); p != nil {
		h.stopInBackground(p, h.o.DrainTimeout, func() { h.dropCopy(p.path) })
	}
}

// Plugins lists, sorted by name, for GET /api/plugins: the
// plugins, and the files of Dir that are not loaded (StateSkipped).
func (h *Host) Plugins() []PluginInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]PluginInfo, 0, len(h.slots)+len(h.skipped))
	for name, why := range h.skipped {
		out = append(out, PluginInfo{Name: displayName(name), State: StateSkipped, Error: why})
	}
	for _, s := range h.slots {
		pi := PluginInfo{Name: s.name, Version: s.version, SHA256: s.sha, Routes: s.routes,
			State: s.state, Restarts: s.restarts, Error: s.lastErr}
		if p := s.cur.Load(); p != nil {
			pi.PID = p.pid
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close stops watching, lets every plugin finish its calls in flight (at most
// DrainTimeout), stops every plugin process and removes the private copies.
// Later calls to Dispatch get PLUGIN_UNAVAILABLE.
func (h *Host) Close() error {
	if h.closed.Swap(true) {
		return nil
	}
	h.cancel()
	if h.started {
		<-h.runDone
	}
	h.stopAll()
	h.stops.Wait()
	if h.store != nil {
		if err := h.store.close(); err != nil {
			return fmt.Errorf("pluginhost: remove private copies: %w", err)
		}
	}
	return nil
}

func (h *Host) stopAll() {
	h.mu.Lock()
	var ps []*proc
	for _, s := range h.slots {
		if p := s.cur.Swap(nil); p != nil {
			ps = append(ps, p)
		}
	}
	h.routes.Store(&table{})
	h.mu.Unlock()
	for _, p := range ps {
		h.stopInBackground(p, h.o.DrainTimeout)
	}
	h.stops.Wait()
}
