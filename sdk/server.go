package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"

	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
	"github.com/rtserver/rtserver/proto/plugin/v1/wire"
)

// server adapts a Plugin to the generated gRPC service: the only place that
// converts between wire types and the SDK's types.
type server struct {
	pluginv1.UnimplementedPluginServer

	p       Plugin
	name    string
	event   EventHandler // nil when p has none
	message MessageHandler
	action  ActionHandler
	log     *slog.Logger
	broker  *plugin.GRPCBroker // nil in tests that drive the server directly
	host    atomic.Pointer[hostBox]
	// deadlines shares one deadline context among the requests that arrive within a few
	// ms (a context.WithTimeout per request was 15% of the echo plugin's CPU).
	deadlines wire.Deadlines
}

type hostBox struct{ h Host }

func newServer(p Plugin, log *slog.Logger, broker *plugin.GRPCBroker) *server {
	s := &server{p: p, name: p.Info().Name, log: log, broker: broker}
	s.event, _ = p.(EventHandler)
	s.message, _ = p.(MessageHandler)
	s.action, _ = p.(ActionHandler)
	return s
}

func (s *server) Describe(context.Context, *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	in := s.p.Info()
	return &pluginv1.DescribeResponse{
		Name: in.Name, Version: in.Version,
		Events: in.Events, Messages: in.Messages, Actions: in.Actions,
	}, nil
}

func (s *server) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.ConfigureResponse, error) {
	if s.broker != nil && req.GetHostBrokerId() != 0 {
		conn, err := s.broker.Dial(req.GetHostBrokerId())
		if err != nil {
			return nil, fmt.Errorf("sdk: dial host service: %w", err)
		}
		s.host.Store(&hostBox{h: grpcHost{c: pluginv1.NewHostClient(conn)}})
	}
	if hb := s.host.Load(); hb != nil {
		ctx = WithHost(ctx, hb.h)
	}
	if c, ok := s.p.(Configurer); ok {
		if err := c.Configure(ctx, json.RawMessage(req.GetConfigJson())); err != nil {
			return nil, fmt.Errorf("sdk: configure: %w", err)
		}
	}
	return &pluginv1.ConfigureResponse{}, nil
}

func (s *server) Handle(ctx context.Context, req *pluginv1.HandleRequest) (*pluginv1.HandleResponse, error) {
	if t := req.GetTimeoutNanos(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(t))
		defer cancel()
	}
	return s.handle(ctx, req), nil
}

type job struct {
	ctx    context.Context
	cancel context.CancelFunc
	req    *pluginv1.HandleRequest
}

// Stream serves requests as they arrive, each in its own goroutine, and sends
// replies back in batches: whatever finished while the previous Send was in
// progress goes out in the next one.
func (s *server) Stream(st pluginv1.Plugin_StreamServer) error {
	ctx := st.Context()
	out := make(chan *pluginv1.HandleResponse, wire.MaxBatch)
	senderDone := make(chan struct{})
	go s.sendLoop(st, out, senderDone)

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		cancels = make(map[uint64]context.CancelFunc)
		jobs    = make(chan job) // idle workers wait here
		done    = make(chan struct{})
	)
	run := func(j job) {
		resp := s.handle(j.ctx, j.req)
		mu.Lock()
		delete(cancels, j.req.Id)
		mu.Unlock()
		j.cancel()
		out <- resp
		wg.Done()
	}
	// Workers outlive their first request and take the next from jobs: a fresh
	// goroutine per request spends much of its time growing its stack while
	// decoding JSON. Their number follows the peak concurrency the core allows.
	worker := func(j job) {
		for {
			run(j)
			select {
			case j = <-jobs:
			case <-done:
				return
			}
		}
	}
	// The requests' contexts hang off shared deadline contexts, not off the stream's:
	// when the stream's context ends, every handler still running is cancelled here.
	stopWatch := context.AfterFunc(ctx, func() {
		mu.Lock()
		for _, c := range cancels {
			c()
		}
		mu.Unlock()
	})
	defer stopWatch()
	var recvErr error
	for {
		b, err := st.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				recvErr = err
			}
			break
		}
		for _, req := range b.Requests {
			var j job
			j.req = req
			if t := req.GetTimeoutNanos(); t > 0 {
				j.ctx, j.cancel = context.WithCancel(s.deadlines.Get(time.Duration(t)))
			} else {
				j.ctx, j.cancel = context.WithCancel(ctx)
			}
			mu.Lock()
			cancels[req.Id] = j.cancel
			mu.Unlock()
			if ctx.Err() != nil { // the stream ended before the watch saw this one
				j.cancel()
			}
			wg.Add(1)
			select {
			case jobs <- j:
			default:
				go worker(j)
			}
		}
		// After the requests: a cancellation may follow its request in the same batch.
		if len(b.Cancel) > 0 {
			mu.Lock()
			for _, id := range b.Cancel {
				if c := cancels[id]; c != nil {
					c()
				}
			}
			mu.Unlock()
		}
	}
	defer close(done)
	// The core closed its side (drain or shutdown): finish what is running, flush.
	wg.Wait()
	close(out)
	<-senderDone
	return recvErr
}

func (s *server) sendLoop(st pluginv1.Plugin_StreamServer, out <-chan *pluginv1.HandleResponse, done chan<- struct{}) {
	defer close(done)
	batch := &pluginv1.ResponseBatch{}
	broken := false
	for r := range out {
		batch.Responses = append(batch.Responses[:0], r)
		wire.Fill(1, r.ApproxSize(), func() (int, bool) {
			select {
			case r, ok := <-out:
				if !ok {
					return 0, false
				}
				batch.Responses = append(batch.Responses, r)
				return r.ApproxSize(), true
			default:
				return 0, false
			}
		})
		if broken {
			continue // keep draining so handlers never block
		}
		if err := st.Send(batch); err != nil {
			s.log.Debug("reply stream closed", "error", err.Error())
			broken = true
		}
	}
}

// handle runs the matching handler with panics recovered into PLUGIN_ERROR.
func (s *server) handle(ctx context.Context, req *pluginv1.HandleRequest) (resp *pluginv1.HandleResponse) {
	resp = &pluginv1.HandleResponse{Id: req.GetId()}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("handler panicked", "kind", req.GetKind().String(), "name", req.GetName(),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			resp.Data = nil
			resp.Error = &pluginv1.Error{Code: CodePluginError, Message: fmt.Sprintf("handler panicked: %v", v)}
		}
	}()
	if hb := s.host.Load(); hb != nil {
		ctx = WithHost(ctx, hb.h)
	}
	reply, err := s.call(ctx, req)
	if err != nil {
		resp.Error = toWireError(err)
		return resp
	}
	if reply.Data != nil {
		b, err := encode(reply.Data)
		if err != nil {
			resp.Error = &pluginv1.Error{Code: CodePluginError, Message: err.Error()}
			return resp
		}
		resp.Data = b
	}
	return resp
}

// The members each kind of request is read by. The core has checked the payload (valid
// JSON, routed by these same members matched exactly), so one pass over its bytes
// (wire.Members) does what decoding into a struct did at several times the cost.
var (
	eventKeys   = []string{"type", "data"}
	messageKeys = []string{"content", "type", "metadata"}
	actionKeys  = []string{"action", "params"}
)

func (s *server) call(ctx context.Context, req *pluginv1.HandleRequest) (Reply, error) {
	c := Client{SocketID: req.GetSocketId(), UserID: req.GetUserId(), Rooms: req.GetRooms()}
	raw := json.RawMessage(req.GetPayload())
	switch req.GetKind() {
	case pluginv1.Kind_KIND_EVENT:
		h := s.event
		if h == nil {
			break
		}
		var f [2]json.RawMessage
		wire.Members(raw, eventKeys, f[:]) // a malformed payload still reaches the handler as Raw
		typ, _ := wire.String(f[0])
		if typ == "" {
			typ = req.GetName()
		}
		return h.OnEvent(ctx, Event{Client: c, RequestID: req.GetRequestId(), Type: typ, Data: f[1], Raw: raw})
	case pluginv1.Kind_KIND_MESSAGE:
		h := s.message
		if h == nil {
			break
		}
		var f [3]json.RawMessage
		wire.Members(raw, messageKeys, f[:])
		content, _ := wire.String(f[0])
		typ, _ := wire.String(f[1])
		if typ == "" {
			typ = req.GetName()
		}
		return h.OnMessage(ctx, Message{Client: c, RequestID: req.GetRequestId(), MessageID: req.GetMessageId(),
			Type: typ, Content: content, Metadata: f[2], Raw: raw})
	case pluginv1.Kind_KIND_ACTION:
		h := s.action
		if h == nil {
			break
		}
		var f [2]json.RawMessage
		wire.Members(raw, actionKeys, f[:])
		action, _ := wire.String(f[0])
		if action == "" {
			action = req.GetName()
		}
		return h.OnAction(ctx, Action{Client: c, RequestID: req.GetRequestId(), Action: action, Params: f[1], Raw: raw})
	}
	return Reply{}, Error(CodeNoHandler, fmt.Sprintf("plugin %q has no handler for %s %q",
		s.name, req.GetKind(), req.GetName()))
}

func toWireError(err error) *pluginv1.Error {
	var ce *CodedError
	if errors.As(err, &ce) {
		return &pluginv1.Error{Code: ce.Code, Message: ce.Message}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &pluginv1.Error{Code: CodePluginTimeout, Message: err.Error()}
	}
	return &pluginv1.Error{Code: CodePluginError, Message: err.Error()}
}
