package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/rtserver/rtserver/core/dispatch"
	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
	"google.golang.org/grpc"
)

var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  pluginv1.ProtocolVersion,
	MagicCookieKey:   pluginv1.MagicCookieKey,
	MagicCookieValue: pluginv1.MagicCookieValue,
}

// errDraining means the process stopped taking calls before this one was sent;
// the caller retries on the slot's current process.
var errDraining = errors.New("plugin process is draining")

// errBusy: the call would have to wait (in-flight bound, full send queue).
var errBusy = errors.New("plugin process is busy")

// Bounds on one stream message: a few big payloads must not delay the small
// ones behind them, nor come near gRPC's message size limits.
const (
	maxBatch      = 256
	maxBatchBytes = 1 << 20
)

// maxMessageBytes is the largest message a plugin may send to the Host service.
const maxMessageBytes = 64 << 20

func approxSize(m *pluginv1.HandleRequest) int {
	n := len(m.Payload) + len(m.Name) + len(m.RequestId) + len(m.MessageId) + len(m.SocketId) + len(m.UserId) + 32
	for _, r := range m.Rooms {
		n += len(r) + 2
	}
	return n
}

// clientPlugin is the go-plugin glue on the core's side.
type clientPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

type dispensed struct {
	rpc    pluginv1.PluginClient
	broker *plugin.GRPCBroker
}

func (clientPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("pluginhost: the plugin server lives in the plugin")
}

func (clientPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &dispensed{rpc: pluginv1.NewPluginClient(c), broker: b}, nil
}

// proc is one running plugin process and the stream that carries its calls.
//
// Calls: Dispatch -> begin (in-flight bound, refuse when draining) -> register a
// reply channel in pending -> sendq -> sendLoop batches onto the stream ->
// recvLoop matches replies by id. DispatchAsync registers a callback instead of a
// channel and waits for nothing (tryBegin, start). When the stream ends every pending
// call fails with PLUGIN_UNAVAILABLE and, unless we were stopping it, onCrash is called.
//
// Lock order: mu and pmu are never held together.
type proc struct {
	name   string
	path   string // the private copy it runs from
	log    hclog.Logger
	client *plugin.Client
	rpc    pluginv1.PluginClient
	pid    int
	desc   *pluginv1.DescribeResponse

	lifeline *os.File // write end; closing it makes the SDK exit

	sem     chan struct{} // in-flight bound
	sendq   chan *pluginv1.HandleRequest
	cancelq chan uint64
	nextID  atomic.Uint64

	stream       pluginv1.Plugin_StreamClient
	streamCancel context.CancelFunc

	pmu     sync.Mutex
	pending map[uint64]waiter
	// watched holds the Done channels of the contexts that asynchronous calls depend on,
	// each watched by one context.AfterFunc (see watchLocked).
	watched map[<-chan struct{}]struct{}
	dead    bool
	deadCh  chan struct{} // closed once the stream has ended

	mu        sync.Mutex
	closing   bool
	active    int
	closingCh chan struct{}
	drained   chan struct{}

	stopping atomic.Bool
	batches  atomic.Int64 // stream messages sent, to see how well calls batch
	sent     atomic.Int64
	onCrash  func(*proc, error)
	loops    sync.WaitGroup
	stopOnce sync.Once
}

type procParams struct {
	name        string
	path        string // the private copy to run
	log         hclog.Logger
	core        dispatch.Host
	config      json.RawMessage
	maxInFlight int
	checkWait   time.Duration // bound on start-up, Describe and Configure
	onCrash     func(*proc, error)
}

// startProc launches the binary, health-checks it, asks it to Describe itself,
// starts the Host service for it, Configures it and opens the request stream.
// On any failure the process is stopped and an error returned.
func startProc(ctx context.Context, pp procParams) (p *proc, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("lifeline pipe: %w", err)
	}
	// go-plugin makes the directory for the plugin's unix socket (it does with a
	// RunnerFunc) and removes it in Kill, which stop always calls.
	env := []string{
		pluginv1.LifelineFDEnv + "=3",
		pluginv1.LogLevelEnv + "=" + levelName(pp.log),
	}
	runners := &runnerSlot{}
	out := &lineLogger{log: pp.log.Named(pp.name), stream: "stdout"}
	errw := &lineLogger{log: pp.log.Named(pp.name), stream: "stderr"}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          plugin.PluginSet{pluginv1.PluginSetName: clientPlugin{}},
		RunnerFunc:       runners.make(pp.path, env, []*os.File{r}), // r is fd 3 in the plugin
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           pp.log,
		SyncStdout:       out,
		SyncStderr:       errw,
		StartTimeout:     pp.checkWait,
	})
	// The host closing while the plugin starts ends the start at once.
	stopWatch := context.AfterFunc(ctx, runners.kill)
	defer stopWatch()
	p = &proc{
		name: pp.name, path: pp.path, log: pp.log.Named(pp.name), client: client, lifeline: w,
		sendq:     make(chan *pluginv1.HandleRequest, 1024),
		cancelq:   make(chan uint64, 1024),
		pending:   make(map[uint64]waiter),
		watched:   make(map[<-chan struct{}]struct{}),
		deadCh:    make(chan struct{}),
		closingCh: make(chan struct{}),
		drained:   make(chan struct{}),
		onCrash:   pp.onCrash,
	}
	if pp.maxInFlight > 0 {
		p.sem = make(chan struct{}, pp.maxInFlight)
	}
	defer func() {
		if err != nil {
			p.stopping.Store(true)
			if p.streamCancel != nil {
				p.streamCancel()
			}
			client.Kill()
			w.Close()
			p.loops.Wait()
			p = nil
		}
	}()

	cp, err := client.Client()
	r.Close() // the child has its copy
	if err != nil {
		return p, fmt.Errorf("start: %w", err)
	}
	p.pid, _ = strconv.Atoi(client.ID())
	raw, err := cp.Dispense(pluginv1.PluginSetName)
	if err != nil {
		return p, fmt.Errorf("dispense: %w", err)
	}
	d := raw.(*dispensed)
	p.rpc = d.rpc
	if err := cp.Ping(); err != nil {
		return p, fmt.Errorf("health check: %w", err)
	}

	cctx, cancel := context.WithTimeout(ctx, pp.checkWait)
	defer cancel()
	p.desc, err = p.rpc.Describe(cctx, &pluginv1.DescribeRequest{})
	if err != nil {
		return p, fmt.Errorf("describe: %w", err)
	}

	brokerID := d.broker.NextId()
	hs := &hostService{core: pp.core}
	p.loops.Add(1)
	go func() {
		defer p.loops.Done()
		// Returns when go-plugin closes the broker (on Kill).
		d.broker.AcceptAndServe(brokerID, func(opts []grpc.ServerOption) *grpc.Server {
			s := grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(maxMessageBytes))...)
			pluginv1.RegisterHostServer(s, hs)
			return s
		})
	}()
	if _, err := p.rpc.Configure(cctx, &pluginv1.ConfigureRequest{ConfigJson: pp.config, HostBrokerId: brokerID}); err != nil {
		return p, fmt.Errorf("configure: %w", err)
	}

	sctx, scancel := context.WithCancel(context.Background())
	p.streamCancel = scancel
	p.stream, err = p.rpc.Stream(sctx)
	if err != nil {
		return p, fmt.Errorf("open stream: %w", err)
	}
	p.loops.Add(2)
	go p.sendLoop(sctx)
	go p.recvLoop()
	return p, nil
}

func levelName(l hclog.Logger) string {
	switch {
	case l.IsTrace():
		return "trace"
	case l.IsDebug():
		return "debug"
	case l.IsInfo():
		return "info"
	case l.IsWarn():
		return "warn"
	}
	return "error"
}

// begin reserves a slot for one call: it waits (within ctx) for the in-flight
// bound and refuses once the process is draining.
func (p *proc) begin(lim limits) error {
	if p.sem != nil {
		select {
		case p.sem <- struct{}{}:
		case <-p.closingCh:
			return errDraining
		case <-lim.caller.Done():
			return dispatch.Errorf(dispatch.CodePluginTimeout, "plugin %s: %d calls in flight, none finished in time", p.name, cap(p.sem))
		case <-lim.own.Done():
			return dispatch.Errorf(dispatch.CodePluginTimeout, "plugin %s: %d calls in flight, none finished in time", p.name, cap(p.sem))
		}
	}
	return p.enter()
}

// enter counts a call in flight once its slot is held; it gives the slot back and
// refuses when the process is draining.
func (p *proc) enter() error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		if p.sem != nil {
			<-p.sem
		}
		return errDraining
	}
	p.active++
	p.mu.Unlock()
	return nil
}

func (p *proc) end() {
	p.mu.Lock()
	p.active--
	if p.closing && p.active == 0 {
		close(p.drained)
	}
	p.mu.Unlock()
	if p.sem != nil {
		<-p.sem
	}
}

// call sends one request and waits for its reply, ctx's deadline or the end of
// the process, whichever comes first. The caller has called begin.
func (p *proc) call(lim limits, req *dispatch.Request) (*pluginv1.HandleResponse, error) {
	if err := checkPayload(req); err != nil {
		return nil, err
	}
	id := p.nextID.Add(1)
	ch := make(chan *pluginv1.HandleResponse, 1)
	p.pmu.Lock()
	if p.dead {
		p.pmu.Unlock()
		return nil, dispatch.Errorf(dispatch.CodePluginUnavailable, "plugin %s is not running", p.name)
	}
	p.pending[id] = waiter{ch: ch}
	p.pmu.Unlock()

	m := wireRequest(id, lim, req)
	select {
	case p.sendq <- m:
	case <-lim.caller.Done():
		p.forget(id)
		return nil, timeoutErr(p.name, lim)
	case <-lim.own.Done():
		p.forget(id)
		return nil, timeoutErr(p.name, lim)
	case <-p.deadCh:
		return nil, dispatch.Errorf(dispatch.CodePluginUnavailable, "plugin %s exited", p.name)
	}
	select {
	case r := <-ch:
		if r == nil {
			return nil, dispatch.Errorf(dispatch.CodePluginUnavailable, "plugin %s exited during the call", p.name)
		}
		// A handler that gave up at its deadline may answer just before our own timer
		// fires: it is still a timeout, whatever the plugin called it.
		if r.GetError() != nil && errors.Is(lim.err(), context.DeadlineExceeded) {
			return nil, timeoutErr(p.name, lim)
		}
		return r, nil
	case <-lim.caller.Done():
		return nil, p.abandon(id, lim)
	case <-lim.own.Done():
		return nil, p.abandon(id, lim)
	}
}

// abandon forgets a call that ran out of time or was cancelled and tells the plugin to
// stop working on it.
func (p *proc) abandon(id uint64, lim limits) error {
	p.forget(id)
	select {
	case p.cancelq <- id:
	default:
	}
	return timeoutErr(p.name, lim)
}

// limits bound one call: the caller's context and the plugin's own deadline (a shared
// context from the slot's deadline.Cache, cheaper than a context per call).
type limits struct {
	caller, own context.Context
}

// err is the reason the call must end, nil while it may go on.
func (l limits) err() error {
	if err := l.caller.Err(); err != nil {
		return err
	}
	return l.own.Err()
}

// deadline is the earlier of the two deadlines.
func (l limits) deadline() (time.Time, bool) {
	dl, ok := l.own.Deadline()
	if c, cok := l.caller.Deadline(); cok && (!ok || c.Before(dl)) {
		return c, true
	}
	return dl, ok
}

// checkPayload refuses a payload too large for the stream: it would break the stream for
// every call on it.
func checkPayload(req *dispatch.Request) error {
	if len(req.Payload) > maxMessageBytes/2 {
		return dispatch.Errorf(dispatch.CodePluginError, "payload of %d bytes is too large for a plugin", len(req.Payload))
	}
	return nil
}

// wireRequest is req as the stream carries it, with the time left before lim's deadline.
// The message comes from wireRequests: sendLoop returns it there once the stream has
// encoded it.
func wireRequest(id uint64, lim limits, req *dispatch.Request) *pluginv1.HandleRequest {
	m := wireRequests.Get().(*pluginv1.HandleRequest)
	m.Id, m.RequestId, m.MessageId, m.SocketId = id, req.RequestID, req.MessageID, req.SocketID
	m.UserId, m.Rooms, m.Kind, m.Name, m.Payload = req.UserID, req.Rooms, wireKind(req.Kind), req.Name, req.Payload
	if dl, ok := lim.deadline(); ok {
		m.TimeoutNanos = max(int64(time.Until(dl)), 1)
	}
	return m
}

var wireRequests = sync.Pool{New: func() any { return new(pluginv1.HandleRequest) }}

func timeoutErr(name string, lim limits) error {
	err := lim.err()
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		return dispatch.Errorf(dispatch.CodePluginTimeout, "plugin %s did not answer in time", name)
	}
	return dispatch.Errorf(dispatch.CodePluginUnavailable, "call to plugin %s cancelled: %v", name, err)
}

func (p *proc) forget(id uint64) {
	p.pmu.Lock()
	delete(p.pending, id)
	p.pmu.Unlock()
}

func (p *proc) sendLoop(ctx context.Context) {
	defer p.loops.Done()
	b := &pluginv1.RequestBatch{}
	for {
		b.Requests, b.Cancel = b.Requests[:0], b.Cancel[:0]
		select {
		case m := <-p.sendq:
			b.Requests = append(b.Requests, m)
		case id := <-p.cancelq:
			b.Cancel = append(b.Cancel, id)
		case <-ctx.Done():
			return
		case <-p.deadCh:
			return
		}
		// Take whatever else is queued; yield once first so callers that are
		// runnable get to queue too. One stream message per call costs most of a
		// round trip; a batch shares that cost.
		yielded := false
		size := 0
		if len(b.Requests) > 0 {
			size = approxSize(b.Requests[0])
		}
	fill:
		for len(b.Requests)+len(b.Cancel) < maxBatch && size < maxBatchBytes {
			select {
			case m := <-p.sendq:
				b.Requests = append(b.Requests, m)
				size += approxSize(m)
			case id := <-p.cancelq:
				b.Cancel = append(b.Cancel, id)
			default:
				if yielded {
					break fill
				}
				yielded = true
				runtime.Gosched()
			}
		}
		p.batches.Add(1)
		p.sent.Add(int64(len(b.Requests)))
		if err := p.stream.Send(b); err != nil {
			// recvLoop sees the same failure and cleans up; fail what we hold now.
			for _, m := range b.Requests {
				p.deliver(m.Id, nil)
			}
			if !p.stopping.Load() {
				p.log.Warn("request stream broken", "error", err)
			}
			return
		}
		// Encoded onto the stream: the requests can be reused.
		for i, m := range b.Requests {
			m.Reset()
			wireRequests.Put(m)
			b.Requests[i] = nil
		}
	}
}

func (p *proc) recvLoop() {
	defer p.loops.Done()
	var err error
	for {
		var b *pluginv1.ResponseBatch
		b, err = p.stream.Recv()
		if err != nil {
			break
		}
		for _, r := range b.Responses {
			p.deliver(r.Id, r)
		}
	}
	p.pmu.Lock()
	p.dead = true
	pending := p.pending
	p.pending = nil
	close(p.deadCh)
	p.pmu.Unlock()
	for _, w := range pending {
		w.give(nil)
	}
	if !p.stopping.Load() && p.onCrash != nil {
		p.onCrash(p, err)
	}
}

func (p *proc) deliver(id uint64, r *pluginv1.HandleResponse) {
	if w, ok := p.take(id); ok {
		w.give(r)
	}
}

// take removes the call id from pending; ok only for the first taker, which owns the
// call's outcome (a reply, its deadline or the end of the process).
func (p *proc) take(id uint64) (waiter, bool) {
	p.pmu.Lock()
	w, ok := p.pending[id]
	delete(p.pending, id)
	p.pmu.Unlock()
	return w, ok
}

// waiter is who gets a call's reply: a goroutine blocked in call (ch) or an
// asynchronous call's completion (async). nil means the process ended.
type waiter struct {
	ch    chan *pluginv1.HandleResponse
	async *asyncCall
}

func (w waiter) give(r *pluginv1.HandleResponse) {
	if w.async != nil {
		w.async.replied(r)
		return
	}
	w.ch <- r
}

// asyncCall is one call made by start: its reply, its deadline or the end of the
// process completes it, once, on whichever goroutine got there first.
type asyncCall struct {
	p   *proc
	id  uint64
	lim limits
	fin func(*pluginv1.HandleResponse, error)
}

func (a *asyncCall) replied(r *pluginv1.HandleResponse) {
	switch {
	case r == nil:
		a.fin(nil, dispatch.Errorf(dispatch.CodePluginUnavailable, "plugin %s exited during the call", a.p.name))
	case r.GetError() != nil && errors.Is(a.lim.err(), context.DeadlineExceeded):
		// As in call: an answer given up at the deadline is still a timeout.
		a.fin(nil, timeoutErr(a.p.name, a.lim))
	default:
		a.fin(r, nil)
	}
}

// expired completes a call taken from pending because a deadline (or the caller's
// cancellation) came first.
func (a *asyncCall) expired() {
	select { // let the plugin stop working on it
	case a.p.cancelq <- a.id:
	default:
	}
	a.fin(nil, timeoutErr(a.p.name, a.lim))
}

// dependsOn reports whether the call ends with the context whose Done channel is done.
func (a *asyncCall) dependsOn(done <-chan struct{}) bool {
	return a.lim.own.Done() == done || a.lim.caller.Done() == done
}

// watchLocked makes sure that the end of ctx expires the asynchronous calls that depend on
// it. Calls share their deadline contexts (core/deadline: one per plugin and one per
// caller every few ms), so one context.AfterFunc per distinct context replaces one per call
// and its removal at the reply: at the end, the calls still pending on it are found
// in pending. Caller holds pmu.
func (p *proc) watchLocked(ctx context.Context) {
	done := ctx.Done()
	if done == nil {
		return // never ends
	}
	if _, ok := p.watched[done]; ok {
		return
	}
	p.watched[done] = struct{}{}
	context.AfterFunc(ctx, func() { p.expire(done) })
}

// expire ends the pending asynchronous calls that depend on a context that just ended.
func (p *proc) expire(done <-chan struct{}) {
	var due []*asyncCall
	p.pmu.Lock()
	delete(p.watched, done)
	for id, w := range p.pending {
		if w.async != nil && w.async.dependsOn(done) {
			delete(p.pending, id)
			due = append(due, w.async)
		}
	}
	p.pmu.Unlock()
	for _, a := range due {
		a.expired()
	}
}

// tryBegin is begin without waiting: errBusy when the in-flight bound is reached.
func (p *proc) tryBegin() error {
	if p.sem != nil {
		select {
		case p.sem <- struct{}{}:
		default:
			return errBusy
		}
	}
	return p.enter()
}

// start sends one request without waiting: fin gets the outcome exactly once (maybe
// before start returns), on the stream's receive goroutine, a deadline's goroutine or
// this one; it must not block. The caller has called tryBegin. false (and no fin) means
// the send queue is full: the caller takes the blocking path instead.
func (p *proc) start(lim limits, req *dispatch.Request, fin func(*pluginv1.HandleResponse, error)) bool {
	if err := checkPayload(req); err != nil {
		fin(nil, err)
		return true
	}
	a := &asyncCall{p: p, id: p.nextID.Add(1), lim: lim, fin: fin}
	m := wireRequest(a.id, lim, req)
	// Registered, watched and sent under pmu: the reply (taken under pmu) then sees the
	// watches, and a deadline that has already passed waits for us to finish here.
	p.pmu.Lock()
	if p.dead {
		p.pmu.Unlock()
		fin(nil, dispatch.Errorf(dispatch.CodePluginUnavailable, "plugin %s is not running", p.name))
		return true
	}
	select {
	case p.sendq <- m:
	default:
		p.pmu.Unlock()
		return false
	}
	p.pending[a.id] = waiter{async: a}
	p.watchLocked(lim.own)
	p.watchLocked(lim.caller)
	p.pmu.Unlock()
	return true
}

// inFlight is the number of calls between begin and end.
func (p *proc) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active
}

// stop refuses new calls, waits for the ones in flight (at most drain), then
// ends the stream and the process. Safe to call more than once.
func (p *proc) stop(drain time.Duration) {
	p.stopOnce.Do(func() {
		p.stopping.Store(true)
		p.mu.Lock()
		p.closing = true
		close(p.closingCh)
		if p.active == 0 {
			close(p.drained)
		}
		p.mu.Unlock()
		if drain > 0 {
			t := time.NewTimer(drain)
			select {
			case <-p.drained:
			case <-p.deadCh:
			case <-t.C:
				p.log.Warn("drain timed out; stopping with calls in flight", "in_flight", p.inFlight())
			}
			t.Stop()
		}
		p.streamCancel()
		p.client.Kill()
		p.lifeline.Close()
		p.loops.Wait()
	})
}

func wireKind(k dispatch.Kind) pluginv1.Kind {
	switch k {
	case dispatch.KindEvent:
		return pluginv1.Kind_KIND_EVENT
	case dispatch.KindMessage:
		return pluginv1.Kind_KIND_MESSAGE
	case dispatch.KindAction:
		return pluginv1.Kind_KIND_ACTION
	}
	return pluginv1.Kind_KIND_UNSPECIFIED
}
