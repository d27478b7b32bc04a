package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Admin UI's channel between nodes of this product. Each node publishes its figures
// and, while someone watches, the events of its sockets on <prefix>-admin#, and re-emits
// the other nodes' to its own admin sockets, so that one UI connected to any node sees
// every node as a server of its own. Requests on it (the sockets of every node, when an
// admin logs in) are answered on the requester's response channel, as the adapter's own
// requests. The channel is apart from the adapter's: Node.js nodes never see it, and a
// node with no admin namespace never subscribes to it.

// AdminHandler is the admin side of an AdminLink.
type AdminHandler interface {
	// AdminMessage receives what another node published. It must not block.
	AdminMessage(from string, body json.RawMessage)
	// AdminRequest answers another node's request.
	AdminRequest(from string, body json.RawMessage) (json.RawMessage, error)
}

// adminEnvelope is one message on the admin channel.
type adminEnvelope struct {
	UID       string          `json:"uid"`
	RequestID string          `json:"requestId,omitempty"` // set on a request
	Body      json.RawMessage `json:"body"`
}

// maxAdminMessage bounds a message on the admin channel as read by this node.
const maxAdminMessage = 4 << 20

// adminSessionTimeout bounds a session store call made while an admin logs in.
const adminSessionTimeout = time.Second

// AdminLink carries the Admin UI's messages between nodes.
type AdminLink struct {
	a       *Adapter
	h       AdminHandler
	channel string

	mu     sync.Mutex // guards ps, done and closed
	ps     *redis.PubSub
	done   chan struct{}
	closed bool
}

// NewAdminLink returns a link for h over the adapter's Redis; nothing is subscribed until
// Start.
func (a *Adapter) NewAdminLink(h AdminHandler) *AdminLink {
	return &AdminLink{a: a, h: h, channel: a.prefix + "-admin#"}
}

// Start subscribes to the admin channel. Redis unreachable is logged, not fatal: go-redis
// keeps trying and the node reports to its own admins meanwhile.
func (l *AdminLink) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ps != nil || l.closed {
		return errors.New("cluster: admin link started twice or after Close")
	}
	cctx, cancel := context.WithTimeout(ctx, l.a.timeout)
	defer cancel()
	ps := l.a.client.Subscribe(cctx, l.channel)
	// Wait for the confirmation, so that a node started after this one reaches it.
	if _, err := ps.ReceiveTimeout(cctx, l.a.timeout); err != nil {
		l.a.log.Warn("admin channel not subscribed yet: other nodes' figures will come once Redis answers", "error", err)
	}
	l.ps = ps
	l.done = make(chan struct{})
	// Channel starts go-redis's own goroutines now rather than when the loop first runs.
	go l.receive(ps.Channel(), l.done)
	return nil
}

func (l *AdminLink) receive(ch <-chan *redis.Message, done chan struct{}) {
	defer close(done)
	for m := range ch {
		if len(m.Payload) > maxAdminMessage {
			l.a.m.requests.WithLabelValues("too_large").Inc()
			continue
		}
		var env adminEnvelope
		if json.Unmarshal([]byte(m.Payload), &env) != nil || !validID(env.UID) || len(env.RequestID) > maxIDLen {
			l.a.m.requests.WithLabelValues("malformed").Inc()
			continue
		}
		if env.UID == l.a.uid {
			continue // our own
		}
		if env.RequestID == "" {
			l.h.AdminMessage(env.UID, env.Body)
			continue
		}
		l.serve(env)
	}
}

// serve answers another node's request off the receive loop, within the adapter's bound
// on requests served at once.
func (l *AdminLink) serve(env adminEnvelope) {
	a := l.a
	a.serveBounded(func() {
		body, err := l.h.AdminRequest(env.UID, env.Body)
		if err != nil {
			a.log.Debug("admin request ignored", "error", err)
			return
		}
		b, err := json.Marshal(wireResponse{RequestID: env.RequestID, Data: body})
		if err != nil {
			return
		}
		if err := a.publishResponse(env.UID, b); err != nil {
			a.m.requests.WithLabelValues("answer_failed").Inc()
			return
		}
		a.m.requests.WithLabelValues("served").Inc()
	})
}

// Publish sends body to the other nodes' admin links. It fails at once while Redis is
// known down.
func (l *AdminLink) Publish(body json.RawMessage) error {
	if l.a.down.Load() {
		return errors.New("cluster: redis unreachable")
	}
	b, err := json.Marshal(adminEnvelope{UID: l.a.uid, Body: body})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.a.timeout)
	defer cancel()
	return l.a.client.Publish(ctx, l.channel, b).Err()
}

// Ask sends a request to the other nodes' admin links and returns their answers, waiting
// at most the request timeout; complete is false when some node did not answer in time.
func (l *AdminLink) Ask(body json.RawMessage) (answers []json.RawMessage, complete bool, err error) {
	a := l.a
	if a.down.Load() {
		return nil, false, errors.New("cluster: redis unreachable")
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.reqTimeout)
	subs, err := a.client.PubSubNumSub(ctx, l.channel).Result()
	cancel()
	if err != nil {
		return nil, false, err
	}
	others := max(int(subs[l.channel])-1, 0)
	if others == 0 {
		return nil, true, nil
	}
	req := &wireRequest{RequestID: newRequestID()}
	msg, err := json.Marshal(adminEnvelope{UID: a.uid, RequestID: req.RequestID, Body: body})
	if err != nil {
		return nil, false, err
	}
	got, complete, err := a.askVia(nil, l.channel, req, msg, others, nil)
	for _, r := range got {
		if len(r.Data) > 0 {
			answers = append(answers, r.Data)
		}
	}
	return answers, complete, err
}

// SocketIDs lists the ids of the sockets in any of rooms (every socket without rooms) on
// every other node, Node.js nodes included, with a SOCKETS request. complete is false when
// some node did not answer within the request timeout.
func (l *AdminLink) SocketIDs(rooms []string) (ids []string, complete bool, err error) {
	a := l.a
	if a.down.Load() {
		return nil, false, errors.New("cluster: redis unreachable")
	}
	others, err := a.others()
	if err != nil {
		return nil, false, err
	}
	if others == 0 {
		return nil, true, nil
	}
	if rooms == nil {
		rooms = []string{}
	}
	list, _ := json.Marshal(rooms)
	answers, complete, err := a.ask(a.reqChannel(), &wireRequest{Type: reqSockets, Rooms: list}, nil, others, nil)
	for _, r := range answers {
		var part []string
		if json.Unmarshal(r.Sockets, &part) == nil {
			ids = append(ids, part...)
		}
	}
	return ids, complete, err
}

// adminSessionKey is where the hash of an admin session id is kept.
func (l *AdminLink) adminSessionKey(hash [32]byte) string {
	return l.a.prefix + "-admin-session#" + hex.EncodeToString(hash[:])
}

// SaveSession records the hash of an admin session id for ttl, so that every node
// accepts the session.
func (l *AdminLink) SaveSession(hash [32]byte, ttl time.Duration) error {
	if l.a.down.Load() {
		return errors.New("cluster: redis unreachable")
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminSessionTimeout)
	defer cancel()
	return l.a.client.Set(ctx, l.adminSessionKey(hash), "1", ttl).Err()
}

// SessionExists reports whether another node (or this one) recorded the session.
// While Redis is known down it answers at once, so a login does not wait for it.
func (l *AdminLink) SessionExists(hash [32]byte) (bool, error) {
	if l.a.down.Load() {
		return false, errors.New("cluster: redis unreachable")
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminSessionTimeout)
	defer cancel()
	n, err := l.a.client.Exists(ctx, l.adminSessionKey(hash)).Result()
	return n == 1, err
}

// Close ends the subscription.
func (l *AdminLink) Close() error {
	l.mu.Lock()
	ps, done, closed := l.ps, l.done, l.closed
	l.ps, l.closed = nil, true
	l.mu.Unlock()
	if closed || ps == nil {
		return nil
	}
	err := ps.Close()
	<-done
	return err
}
