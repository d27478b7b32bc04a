package sdk

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	pluginv1 "github.com/rtserver/rtserver/proto/plugin/v1"
)

// fakeStream stands for the core's end of the request stream: Recv hands out the queued
// batches, then blocks until the stream's context ends.
type fakeStream struct {
	grpc.ServerStream
	ctx     context.Context
	batches chan *pluginv1.RequestBatch
	mu      sync.Mutex
	sent    []*pluginv1.HandleResponse
}

func (f *fakeStream) Context() context.Context { return f.ctx }

func (f *fakeStream) Recv() (*pluginv1.RequestBatch, error) {
	select {
	case b := <-f.batches:
		return b, nil
	case <-f.ctx.Done():
		return nil, f.ctx.Err()
	}
}

func (f *fakeStream) Send(b *pluginv1.ResponseBatch) error {
	f.mu.Lock()
	f.sent = append(f.sent, b.Responses...)
	f.mu.Unlock()
	return nil
}

type waiter struct{ started chan struct{} }

func (waiter) Info() Info { return Info{Name: "waiter", Events: []string{"*"}} }

func (w waiter) OnEvent(ctx context.Context, e Event) (Reply, error) {
	w.started <- struct{}{}
	select {
	case <-ctx.Done():
		return Reply{}, ctx.Err()
	case <-time.After(20 * time.Second):
		return Reply{Data: "not cancelled"}, nil
	}
}

// TestStreamEndCancelsHandlers: a handler's context hangs off a shared deadline, not off
// the stream; when the stream's context ends, every handler still running is cancelled
// all the same, and one cancelled by the core's cancel message stops too.
func TestStreamEndCancelsHandlers(t *testing.T) {
	w := waiter{started: make(chan struct{}, 2)}
	s := newServer(w, slog.New(slog.DiscardHandler), nil)
	ctx, cancel := context.WithCancel(context.Background())
	st := &fakeStream{ctx: ctx, batches: make(chan *pluginv1.RequestBatch, 4)}
	req := func(id uint64) *pluginv1.HandleRequest {
		return &pluginv1.HandleRequest{Id: id, Kind: pluginv1.Kind_KIND_EVENT, Name: "wait",
			Payload: []byte(`{"type":"wait"}`), TimeoutNanos: int64(30 * time.Second)}
	}
	st.batches <- &pluginv1.RequestBatch{Requests: []*pluginv1.HandleRequest{req(1), req(2)}}
	done := make(chan error, 1)
	go func() { done <- s.Stream(st) }()
	<-w.started
	<-w.started

	st.batches <- &pluginv1.RequestBatch{Cancel: []uint64{1}}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st.mu.Lock()
		n := len(st.sent)
		st.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the core's cancel did not stop the handler")
		}
		time.Sleep(5 * time.Millisecond)
	}

	cancel() // the stream ends: request 2 must be cancelled too
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stream did not return: a handler outlived the stream's context")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.sent) != 2 {
		t.Fatalf("%d replies, want 2", len(st.sent))
	}
	for _, r := range st.sent {
		if r.Error == nil {
			t.Errorf("request %d was not cancelled: %s", r.Id, r.Data)
		}
	}
}
