package admin

import (
	"encoding/json"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtserver/rtserver/core/internal/hub"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// aggregatedEvent counts one kind of event within one second, as the UI charts them.
type aggregatedEvent struct {
	Timestamp int64  `json:"timestamp"` // ms, at the start of the second
	Type      string `json:"type"`
	SubType   string `json:"subType,omitempty"`
	Count     int    `json:"count"`
}

type bufKey struct {
	second       int64
	typ, subType string
}

// eventBuffer collects the counts reported with the next server_stats. Its lock is held
// only to add or take counts.
type eventBuffer struct {
	mu     sync.Mutex
	counts map[bufKey]int
}

// maxBufferKeys bounds the buffer should nobody take it for a while (disconnection
// reasons are the only open-ended part of a key, and they come from a short list).
const maxBufferKeys = 4096

func (b *eventBuffer) add(typ, subType string, n int) {
	k := bufKey{second: time.Now().Unix(), typ: typ, subType: subType}
	b.mu.Lock()
	if b.counts == nil {
		b.counts = make(map[bufKey]int)
	}
	if _, ok := b.counts[k]; ok || len(b.counts) < maxBufferKeys {
		b.counts[k] += n
	}
	b.mu.Unlock()
}

func (b *eventBuffer) take() []aggregatedEvent {
	b.mu.Lock()
	counts := b.counts
	b.counts = nil
	b.mu.Unlock()
	out := make([]aggregatedEvent, 0, len(counts))
	for k, n := range counts {
		out = append(out, aggregatedEvent{Timestamp: k.second * 1000, Type: k.typ, SubType: k.subType, Count: n})
	}
	return out
}

// timestamp is how the UI receives a date: a JSON Date string.
func timestamp() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

// socketInfo is what the UI is told of a socket beyond what the socket itself knows.
type socketInfo struct {
	since     time.Time
	transport atomic.Value // string: the transport last reported
}

// transportUpdates tells the UI of the sockets whose transport changed (polling upgraded
// to websocket) since it was last reported.
func (a *Admin) transportUpdates() {
	if a.o.Production {
		return
	}
	a.since.Range(func(k, v any) bool {
		s, info := k.(*socketio.Socket), v.(*socketInfo)
		if t := s.Transport(); info.transport.Swap(t) != t {
			a.broadcast("socket_updated", map[string]string{"id": s.ID(), "nsp": "/", "transport": t})
		}
		return true
	})
}

// SocketConnected is called for every accepted socket of the main namespace.
func (a *Admin) SocketConnected(s *socketio.Socket) {
	info := &socketInfo{since: time.Now()}
	info.transport.Store(s.Transport())
	a.since.Store(s, info)
	s.OnDisconnect(a.socketDisconnected)
	if !a.watched() {
		return
	}
	a.buf.add("rawConnection", "", 1)
	if !a.o.Production {
		a.broadcast("socket_connected", a.serialize(s), timestamp())
	}
}

func (a *Admin) socketDisconnected(s *socketio.Socket, reason string) {
	a.since.Delete(s)
	if !a.watched() {
		return
	}
	a.buf.add("rawDisconnection", reason, 1)
	if !a.o.Production {
		a.broadcast("socket_disconnected", "/", s.ID(), reason, timestamp())
	}
}

var _ socketio.Observer = (*Admin)(nil)

// EventIn reports an event a client of the main namespace sent.
func (a *Admin) EventIn(s *socketio.Socket, event string, args socketio.Args) {
	if !a.watched() {
		return
	}
	a.buf.add("packetsIn", "", 1)
	a.buf.add("bytesIn", "", argsSize(event, args))
	if !a.o.Production {
		a.broadcast("event_received", "/", s.ID(), eventArgs(event, args.Raw), timestamp())
	}
}

// EventOut reports an event emitted to one socket of the main namespace.
func (a *Admin) EventOut(s *socketio.Socket, event string, args []any) {
	if !a.watched() {
		return
	}
	a.buf.add("packetsOut", "", 1)
	a.buf.add("bytesOut", "", valuesSize(event, args))
	if !a.o.Production {
		a.broadcast("event_sent", "/", s.ID(), append([]any{event}, args...), timestamp())
	}
}

// packetOverhead approximates what an EVENT packet adds to its event name and arguments
// (type digit, brackets, quotes, commas).
const packetOverhead = 6

// argsSize is the size of an event received: its name and arguments as the client sent
// them, binary attachments included.
func argsSize(event string, args socketio.Args) int {
	n := len(event) + packetOverhead
	for _, r := range args.Raw {
		n += len(r) + 1
	}
	for _, b := range args.Attachments {
		n += len(b)
	}
	return n
}

// valuesSize is the size of an event sent to one socket. Arguments already encoded are
// measured as they are; others are encoded to be measured, which only happens while an
// admin watches.
func valuesSize(event string, args []any) int {
	n := len(event) + packetOverhead
	for _, v := range args {
		switch v := v.(type) {
		case json.RawMessage:
			n += len(v)
		case []byte:
			n += len(v)
		case string:
			n += len(v) + 2
		case nil:
			n += 4
		default:
			if b, err := json.Marshal(v); err == nil {
				n += len(b)
			}
		}
		n++
	}
	return n
}

func eventArgs[T any](event string, args []T) []any {
	out := make([]any, 0, len(args)+1)
	out = append(out, event)
	for _, a := range args {
		out = append(out, a)
	}
	return out
}

// serializedSocket is the shape of a socket the UI reads.
type serializedSocket struct {
	ID        string    `json:"id"`
	ClientID  string    `json:"clientId"`
	Transport string    `json:"transport"`
	Nsp       string    `json:"nsp"`
	Data      struct{}  `json:"data"`
	Handshake handshake `json:"handshake"`
	Rooms     []string  `json:"rooms"`
}

type handshake struct {
	Address string            `json:"address"`
	Headers map[string]string `json:"headers"`
	Query   map[string]string `json:"query"`
	Issued  int64             `json:"issued"`
	Secure  bool              `json:"secure"`
	Time    string            `json:"time"`
	URL     string            `json:"url"`
	XDomain bool              `json:"xdomain"`
}

// hiddenHeaders and hiddenQuery carry credentials: the UI shows that they were sent, not
// what they hold.
var (
	hiddenHeaders = map[string]bool{"authorization": true, "cookie": true, "proxy-authorization": true, "x-api-key": true}
	hiddenQuery   = map[string]bool{"token": true, "access_token": true}
)

const hidden = "[hidden]"

func (a *Admin) serialize(s *socketio.Socket) serializedSocket {
	since := time.Now()
	if v, ok := a.since.Load(s); ok {
		since = v.(*socketInfo).since
	}
	h := s.Header()
	headers := make(map[string]string, len(h))
	for k, v := range h {
		lk := strings.ToLower(k)
		if hiddenHeaders[lk] {
			headers[lk] = hidden
			continue
		}
		headers[lk] = strings.Join(v, ", ")
	}
	query := map[string]string{}
	for k, v := range s.Query() {
		if hiddenQuery[k] {
			query[k] = hidden
			continue
		}
		query[k] = strings.Join(v, ",")
	}
	url, secure := "", false
	if hs := s.Handshake(); !hs.IsZero() {
		u := hs.URL()
		url = u.RequestURI()
		if hiddenQueryIn(u) {
			url = u.Path
		}
		secure = hs.Secure()
	}
	clientID := s.ClientID()
	if len(clientID) > 12 {
		clientID = clientID[:12] // enough to tell sessions apart; the full id is a secret of the session
	}
	return serializedSocket{
		ID:        s.ID(),
		ClientID:  clientID,
		Transport: s.Transport(),
		Nsp:       "/",
		Handshake: handshake{
			Address: a.o.ClientIP(s),
			Headers: headers,
			Query:   query,
			Issued:  since.UnixMilli(),
			Secure:  secure,
			Time:    since.UTC().Format(time.RFC1123),
			URL:     url,
			XDomain: h.Get("Origin") != "",
		},
		Rooms: visibleRooms(s.Rooms()),
	}
}

func hiddenQueryIn(u *neturl.URL) bool {
	for k := range u.Query() {
		if hiddenQuery[k] {
			return true
		}
	}
	return false
}

// visibleRooms drops the hub's internal rooms (a NUL first byte): they are not names a
// client chose nor one the UI can act on.
func visibleRooms(rooms []string) []string {
	out := make([]string, 0, len(rooms))
	for _, r := range rooms {
		if !internalRoom(r) {
			out = append(out, r)
		}
	}
	return out
}

func internalRoom(r string) bool { return len(r) > 0 && r[0] == 0 }

func (a *Admin) allSockets() []serializedSocket {
	socks := a.o.IO.Sockets()
	out := make([]serializedSocket, 0, len(socks))
	for _, s := range socks {
		out = append(out, a.serialize(s))
	}
	return out
}

// Wrap returns fan reporting joins, leaves and room emits to the admin sockets; the hub
// and the UI's actions both go through it.
func (a *Admin) Wrap(fan hub.Adapter) hub.Adapter {
	w := &watchedAdapter{Adapter: fan, a: a}
	a.fan = w
	return w
}

type watchedAdapter struct {
	hub.Adapter
	a *Admin
}

func (w *watchedAdapter) Join(socketID string, rooms ...string) error {
	err := w.Adapter.Join(socketID, rooms...)
	if err == nil {
		w.a.rooms("room_joined", socketID, rooms)
	}
	return err
}

func (w *watchedAdapter) Leave(socketID string, rooms ...string) error {
	err := w.Adapter.Leave(socketID, rooms...)
	if err == nil {
		w.a.rooms("room_left", socketID, rooms)
	}
	return err
}

func (w *watchedAdapter) Broadcast(to hub.Target, event string, data json.RawMessage) (int, error) {
	n, err := w.Adapter.Broadcast(to, event, data)
	if n > 0 && w.a.watched() {
		w.a.buf.add("packetsOut", "", n)
		w.a.buf.add("bytesOut", "", n*(len(event)+len(data)+packetOverhead))
	}
	return n, err
}

func (a *Admin) rooms(event, socketID string, rooms []string) {
	if !a.watched() || a.o.Production {
		return
	}
	for _, r := range rooms {
		if !internalRoom(r) && r != socketID {
			a.broadcast(event, "/", r, socketID, timestamp())
		}
	}
}
