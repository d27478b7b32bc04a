package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// errBusy is returned when maxPendingCalls requests of this node already wait for answers.
var errBusy = errors.New("cluster: too many requests waiting for other nodes")

// call is one request of this node waiting for other nodes' answers.
type call struct {
	mu      sync.Mutex
	answers []*wireResponse
	notify  chan struct{} // cap 1: an answer arrived
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// onResponse hands an answer to the request waiting for it; answers to requests of
// other nodes (on the shared response channel) and late answers are ignored.
func (a *Adapter) onResponse(payload string) {
	if len(payload) > maxResponseBytes {
		a.m.requests.WithLabelValues("too_large").Inc()
		return
	}
	if len(payload) == 0 || payload[0] != '{' {
		return // MessagePack: a BROADCAST_ACK, for a kind of request this node never sends
	}
	var r wireResponse
	if err := json.Unmarshal([]byte(payload), &r); err != nil {
		a.m.requests.WithLabelValues("malformed").Inc()
		return
	}
	a.callsMu.Lock()
	c := a.calls[r.RequestID]
	a.callsMu.Unlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	if len(c.answers) < maxAnswers {
		c.answers = append(c.answers, &r)
	}
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// serverCount is the number of nodes in the cluster, this one included, counted as the
// Node.js adapter does: the subscribers of the request channel.
func (a *Adapter) serverCount(ctx context.Context) (int, error) {
	m, err := numSub(ctx, a.client, a.reqChannel())
	if err != nil {
		return 0, err
	}
	return int(m[a.reqChannel()]), nil
}

// ask publishes on channel req (its uid and requestId filled in) as JSON, or msg when not
// nil, and collects answers until done says the answers are enough, want answers came, or the
// request timeout passed. complete is false after a timeout.
func (a *Adapter) ask(channel string, req *wireRequest, msg []byte, want int, done func([]*wireResponse) bool) (answers []*wireResponse, complete bool, err error) {
	return a.askVia(nil, channel, req, msg, want, done)
}

// publishFunc publishes msg on channel; askVia's default is a plain PUBLISH.
type publishFunc func(ctx context.Context, channel string, msg []byte) error

// askVia is ask with the publish done by pub (nil: a plain PUBLISH), so that a counted
// broadcast can go through the recovery log's script and still collect its answers.
func (a *Adapter) askVia(pub publishFunc, channel string, req *wireRequest, msg []byte, want int, done func([]*wireResponse) bool) (answers []*wireResponse, complete bool, err error) {
	if pub == nil {
		pub = func(ctx context.Context, channel string, msg []byte) error {
			return a.client.Publish(ctx, channel, msg).Err()
		}
	}
	id := req.RequestID
	if id == "" {
		id = newRequestID()
		req.RequestID = id
	}
	req.UID = a.uid
	if msg == nil {
		if msg, err = json.Marshal(req); err != nil {
			return nil, false, err
		}
	}
	c := &call{notify: make(chan struct{}, 1)}
	a.callsMu.Lock()
	if len(a.calls) >= maxPendingCalls {
		a.callsMu.Unlock()
		return nil, false, errBusy
	}
	a.calls[id] = c
	a.callsMu.Unlock()
	defer func() {
		a.callsMu.Lock()
		delete(a.calls, id)
		a.callsMu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), a.reqTimeout)
	defer cancel()
	if err := pub(ctx, channel, msg); err != nil {
		return nil, false, err
	}
	for {
		c.mu.Lock()
		answers = append([]*wireResponse(nil), c.answers...)
		c.mu.Unlock()
		if len(answers) >= want || (done != nil && done(answers)) {
			return answers, true, nil
		}
		select {
		case <-c.notify:
		case <-ctx.Done():
			a.m.requests.WithLabelValues("timed_out").Inc()
			return answers, false, nil
		}
	}
}

// nodeCounts is the number of other nodes, and how many of them are of this product.
func (a *Adapter) nodeCounts() (others, ours int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.reqTimeout)
	defer cancel()
	m, err := numSub(ctx, a.client, a.reqChannel(), a.markChannel())
	if err != nil {
		return 0, 0, err
	}
	all, mine := int(m[a.reqChannel()]), int(m[a.markChannel()])
	return max(all-1, 0), min(max(mine-1, 0), max(all-1, 0)), nil
}

// others is the number of other nodes.
func (a *Adapter) others() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.reqTimeout)
	defer cancel()
	n, err := a.serverCount(ctx)
	if err != nil {
		return 0, err
	}
	return max(n-1, 0), nil
}

// defaultRequestTimeout is how long a request waits for other nodes' answers when
// Options.RequestTimeout is zero.
const defaultRequestTimeout = 2 * time.Second
