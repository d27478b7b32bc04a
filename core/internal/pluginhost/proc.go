package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/rtserver/rtserver/core/internal/dispatch"
	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
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
// A call (see call.go): a slot under the in-flight bound (tryBegin, or begin when it has
// to wait) -> send registers it in pending, watches its contexts and queues its request
// -> sendLoop batches requests onto the stream -> recvLoop matches replies by id. The
// reply, the end of one of the call's contexts (expire) or the end of the stream completes
// it, whichever takes it from pending first. When the stream ends every pending call fails
// with PLUGIN_UNAVAILABLE and, unless we were stopping it, onCrash is called.
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
	pending map[uint64]*call
	// watched holds the Done channels of the contexts that pending calls depend on, each
	// watched by one context.AfterFunc (see watchLocked), with the func that stops it.
	watched map[<-chan struct{}]func() bool
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
	last := &lastWords{}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          plugin.PluginSet{pluginv1.PluginSetName: clientPlugin{}},
		RunnerFunc:       runners.make(pp.path, env, []*os.File{r}), // r is fd 3 in the plugin
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           pp.log,
		SyncStdout:       out,
		SyncStderr:       errw,
		Stderr:           last,
		StartTimeout:     pp.checkWait,
	})
	// The host closing while the plugin starts ends the start at once.
	stopWatch := context.AfterFunc(ctx, runners.kill)
	defer stopWatch()
	p = &proc{
		name: pp.name, path: pp.path, log: pp.log.Named(pp.name), client: client, lifeline: w,
		sendq:     make(chan *pluginv1.HandleRequest, 1024),
		cancelq:   make(chan uint64, 1024),
		pending:   make(map[uint64]*call),
		watched:   make(map[<-chan struct{}]func() bool),
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
		client.Kill() // and wait for the plugin's stderr to be read to its end
		if words := last.String(); words != "" {
			if runners.exitedByItself() { // the SDK refusing to serve says why, and exits
				return p, fmt.Errorf("start: the plugin exited: %s", words)
			}
			return p, fmt.Errorf("start: %w; the plugin said: %s", err, words)
		}
		return p, fmt.Errorf("start: %w", err)
	}
	last.stopped.Store(true)
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
			s := grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(wire.MaxMessageBytes))...)
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

// tryBegin reserves a slot for one call without waiting: errBusy when the in-flight
// bound is reached, errDraining once the process is draining.
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

// begin is tryBegin waiting, within lim, for a slot under the in-flight bound.
func (p *proc) begin(lim limits) error {
	if p.sem != nil {
		select {
		case p.sem <- struct{}{}:
		case <-p.closingCh:
			return errDraining
		case <-lim.caller.Done():
			return limitErr(p.name, lim)
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

// send queues c's request on the stream. The caller holds a slot (tryBegin or begin).
// Without wait, false (and nothing done) means the send queue is full. With wait, it
// waits for room within c's limits. Otherwise c is now pending: its reply, a deadline,
// the caller's cancellation or the end of the process completes it.
func (p *proc) send(c *call, wait bool) bool {
	c.id = p.nextID.Add(1)
	m := wireRequest(c.id, c.lim, c.req)
	// Registered and watched under pmu, with the request queued: the reply (taken under
	// pmu) then finds the call, and a deadline that has already passed waits for us to
	// finish here.
	p.pmu.Lock()
	if p.dead {
		p.pmu.Unlock()
		recycle(m)
		c.complete(nil, dispatch.Errorf(dispatch.CodePluginUnavailable, "plugin %s is not running", p.name))
		return true
	}
	if !wait {
		select {
		case p.sendq <- m:
		default:
			p.pmu.Unlock()
			recycle(m)
			return false
		}
	}
	id, lim := c.id, c.lim // c is not ours to read once it is pending
	p.pending[id] = c
	p.watchLocked(lim.own)
	p.watchLocked(lim.caller)
	p.pmu.Unlock()
	if !wait {
		return true
	}
	select {
	case p.sendq <- m:
		return true
	case <-lim.caller.Done():
	case <-lim.own.Done():
	case <-p.deadCh:
	}
	recycle(m)
	// Whoever takes the call from pending completes it: a watch, the end of the
	// process, or this.
	if _, ok := p.take(id); ok {
		if c.lim.err() == nil {
			c.complete(nil, dispatch.Errorf(dispatch.CodePluginUnavailable, "plugin %s exited", p.name))
		} else {
			c.complete(nil, limitErr(p.name, c.lim))
		}
	}
	return true
}

// limits bound one call: the caller's context, which ends when the client is gone, and
// the plugin's own deadline (a shared context from the slot's wire.Deadlines, cheaper than
// a context per call).
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
	if len(req.Payload) > wire.MaxMessageBytes/2 {
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
		m.TimeoutNanos = wire.TimeLeft(dl)
	}
	return m
}

var wireRequests = sync.Pool{New: func() any { return new(pluginv1.HandleRequest) }}

func recycle(m *pluginv1.HandleRequest) {
	m.Reset()
	wireRequests.Put(m)
}

// limitErr is the error of a call that lim ended: PLUGIN_TIMEOUT at a deadline,
// PLUGIN_UNAVAILABLE when the caller cancelled it (its client is gone).
func limitErr(name string, lim limits) error {
	err := lim.err()
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		return dispatch.Errorf(dispatch.CodePluginTimeout, "plugin %s did not answer in time", name)
	}
	return dispatch.Errorf(dispatch.CodePluginUnavailable, "call to plugin %s cancelled: %v", name, err)
}

func (p *proc) sendLoop(ctx context.Context) {
	defer p.loops.Done()
	b := &pluginv1.RequestBatch{}
	for {
		b.Requests, b.Cancel = b.Requests[:0], b.Cancel[:0]
		size := 0
		select {
		case m := <-p.sendq:
			b.Requests = append(b.Requests, m)
			size = m.ApproxSize()
		case id := <-p.cancelq:
			b.Cancel = append(b.Cancel, id)
		case <-ctx.Done():
			return
		case <-p.deadCh:
			return
		}
		wire.Fill(1, size, func() (int, bool) {
			select {
			case m := <-p.sendq:
				b.Requests = append(b.Requests, m)
				return m.ApproxSize(), true
			case id := <-p.cancelq:
				b.Cancel = append(b.Cancel, id)
				return 8, true
			default:
				return 0, false
			}
		})
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
			recycle(m)
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
	watches := p.watched
	p.watched = nil
	close(p.deadCh)
	p.pmu.Unlock()
	for _, stop := range watches {
		stop()
	}
	for _, c := range pending {
		c.replied(nil)
	}
	if !p.stopping.Load() && p.onCrash != nil {
		p.onCrash(p, err)
	}
}

func (p *proc) deliver(id uint64, r *pluginv1.HandleResponse) {
	if c, ok := p.take(id); ok {
		c.replied(r)
	}
}

// take removes the call id from pending; ok only for the first taker, which owns the
// call's outcome (a reply, its deadline or the end of the process).
func (p *proc) take(id uint64) (*call, bool) {
	p.pmu.Lock()
	c, ok := p.pending[id]
	delete(p.pending, id)
	p.pmu.Unlock()
	return c, ok
}

// watchLocked makes sure that the end of ctx expires the pending calls that depend on it.
// Calls share their contexts (the plugin's deadlines come from a wire.Deadlines; a
// client's calls share the context that ends when it goes away), so one
// context.AfterFunc per distinct context replaces one per call and its removal at the
// reply: at the end, the calls still pending on it are found in pending. The watches end
// with the context or with the process. Caller holds pmu.
func (p *proc) watchLocked(ctx context.Context) {
	done := ctx.Done()
	if done == nil {
		return // never ends
	}
	if _, ok := p.watched[done]; ok {
		return
	}
	p.watched[done] = context.AfterFunc(ctx, func() { p.expire(done) })
}

// expire ends the pending calls that depend on a context that just ended.
func (p *proc) expire(done <-chan struct{}) {
	var due []*call
	p.pmu.Lock()
	delete(p.watched, done)
	for id, c := range p.pending {
		if c.dependsOn(done) {
			delete(p.pending, id)
			due = append(due, c)
		}
	}
	p.pmu.Unlock()
	for _, c := range due {
		c.expired()
	}
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
