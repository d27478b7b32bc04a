package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// roomSubs keeps this node subscribed to the channel of each room that has a member here
// (a socket's own id room and a user's room included), so that a broadcast to exactly one
// room, which is published on that room's channel, reaches only the nodes that need it.
// It is the socketio.RoomWatcher of the node's sockets.
//
// A join waits until Redis confirms the room's subscription (at most the connect timeout),
// so a broadcast published once the join returned is received. A room's last member
// leaving does not unsubscribe at once: the sweeper unsubscribes rooms idle for at least
// linger, in batches, so a room that empties and fills again costs no churn and many
// rooms cost few commands.
//
// Locks: subMu is taken before mu, and held while a SUBSCRIBE or UNSUBSCRIBE is written,
// so that the commands reach Redis in the order of the decisions behind them. Neither is
// held while waiting for a confirmation. The adapter's mu is taken before subMu (Start).
type roomSubs struct {
	a *Adapter

	subMu sync.Mutex
	mu    sync.Mutex // guards ps, rooms, stop
	ps    *redis.PubSub
	rooms map[string]*roomSub // by channel
	stop  chan struct{}
}

type roomSub struct {
	n          int // members opened minus closed; may dip below 0 while reports race
	subscribed bool
	ready      chan struct{} // closed once Redis confirmed the subscription (or gave up)
	confirmed  bool
	idleSince  time.Time
}

const (
	roomLinger = time.Second
	subBatch   = 500 // channels per SUBSCRIBE / UNSUBSCRIBE
)

func newRoomSubs(a *Adapter) *roomSubs {
	return &roomSubs{a: a, rooms: make(map[string]*roomSub), stop: make(chan struct{})}
}

func (r *roomSubs) channel(room string) string { return broadcastChannel(r.a.prefix, []string{room}) }

// RoomsOpened counts a member in each room and waits for their subscriptions.
func (r *roomSubs) RoomsOpened(rooms []string) {
	r.subMu.Lock()
	r.mu.Lock()
	var fresh []string
	var waits []chan struct{}
	for _, room := range rooms {
		ch := r.channel(room)
		e := r.rooms[ch]
		if e == nil {
			e = &roomSub{}
			r.rooms[ch] = e
		}
		e.n++
		if !e.subscribed {
			e.subscribed, e.confirmed, e.ready = true, false, make(chan struct{})
			fresh = append(fresh, ch)
		}
		if !e.confirmed {
			waits = append(waits, e.ready)
		}
	}
	ps := r.ps
	if ps == nil {
		// Not started: Start subscribes to every room counted by then.
		r.confirmLocked(fresh)
		waits = nil
	}
	r.mu.Unlock()
	down := r.a.down.Load()
	if ps != nil && len(fresh) > 0 {
		timeout := r.a.timeout
		if down {
			timeout = 50 * time.Millisecond // go-redis keeps the channels and resubscribes
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := batched(fresh, func(chs []string) error { return ps.Subscribe(ctx, chs...) })
		cancel()
		if err != nil {
			down = true
		}
	}
	r.subMu.Unlock()
	if down {
		// Nothing from other nodes arrives now; what is missed is counted by the
		// publisher (publish_failed) or kept by recovery.
		r.mu.Lock()
		r.confirmLocked(fresh)
		r.mu.Unlock()
		return
	}
	r.wait(waits)
}

func (r *roomSubs) wait(waits []chan struct{}) {
	if len(waits) == 0 {
		return
	}
	t := time.NewTimer(r.a.timeout)
	defer t.Stop()
	for _, w := range waits {
		select {
		case <-w:
		case <-t.C:
			r.a.log.Warn("room subscription not confirmed in time: a broadcast to the room may be missed",
				"timeout", r.a.timeout)
			return
		}
	}
}

// RoomsClosed counts a member out of each room; the sweeper unsubscribes idle rooms.
func (r *roomSubs) RoomsClosed(rooms []string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, room := range rooms {
		ch := r.channel(room)
		e := r.rooms[ch]
		if e == nil {
			e = &roomSub{}
			r.rooms[ch] = e
		}
		e.n--
		if e.n == 0 {
			e.idleSince = now
		}
	}
}

// confirmed marks a channel's subscription as confirmed by Redis.
func (r *roomSubs) confirmed(ch string) {
	r.mu.Lock()
	r.confirmLocked([]string{ch})
	r.mu.Unlock()
}

func (r *roomSubs) confirmLocked(chs []string) {
	for _, ch := range chs {
		if e := r.rooms[ch]; e != nil && e.subscribed && !e.confirmed {
			e.confirmed = true
			close(e.ready)
		}
	}
}

// start hands the subscription over and returns the room channels to subscribe to with
// the node's own. Caller holds subMu.
func (r *roomSubs) start(ps *redis.PubSub) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ps = ps
	var chs []string
	for ch, e := range r.rooms {
		if e.subscribed {
			chs = append(chs, ch)
		}
	}
	return chs
}

// sweep unsubscribes rooms that have had no member for roomLinger.
func (r *roomSubs) sweep() {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	now := time.Now()
	var idle []string
	r.mu.Lock()
	for ch, e := range r.rooms {
		if e.n != 0 || now.Sub(e.idleSince) < roomLinger {
			continue
		}
		if e.subscribed {
			idle = append(idle, ch)
			if !e.confirmed {
				e.confirmed = true
				close(e.ready)
			}
		}
		delete(r.rooms, ch)
	}
	ps := r.ps
	r.mu.Unlock()
	if ps == nil || len(idle) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.a.timeout)
	defer cancel()
	if err := batched(idle, func(chs []string) error { return ps.Unsubscribe(ctx, chs...) }); err != nil {
		r.a.log.Debug("room unsubscription not sent: Redis resubscribes only the rooms kept", "error", err)
	}
}

// run sweeps until stop is closed.
func (r *roomSubs) run(done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(roomLinger)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.sweep()
		}
	}
}

// subscribed lists the room channels subscribed to now (tests).
func (r *roomSubs) subscribedChannels() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.rooms))
	for ch, e := range r.rooms {
		if e.subscribed {
			out[ch] = e.n
		}
	}
	return out
}

func batched(chs []string, fn func([]string) error) error {
	var first error
	for len(chs) > 0 {
		k := min(len(chs), subBatch)
		if err := fn(chs[:k]); err != nil && first == nil {
			first = err
		}
		chs = chs[k:]
	}
	return first
}

// roomNodes is the number of other nodes subscribed to a room's channel: only nodes of
// this product subscribe to one (Node.js nodes match the pattern, which PUBSUB NUMSUB does
// not count). A node joining or sweeping the room meanwhile makes a count answer more or
// one missing (then partial after the request timeout), never a wrong delivery.
func (a *Adapter) roomNodes(channel string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.reqTimeout)
	defer cancel()
	m, err := numSub(ctx, a.client, channel)
	if err != nil {
		return 0, err
	}
	n := int(m[channel])
	a.rooms.mu.Lock()
	if e := a.rooms.rooms[channel]; e != nil && e.subscribed && e.confirmed {
		n--
	}
	a.rooms.mu.Unlock()
	return max(n, 0), nil
}
