package hub

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtserver/rtserver/core/internal/dispatch"
	"github.com/rtserver/rtserver/core/internal/engineio"
	"github.com/rtserver/rtserver/core/internal/rawclient"
	"github.com/rtserver/rtserver/core/internal/socketio"
)

// The hub's tests run it between a real core/socketio server (its sockets) and fakes of its
// two ports: the Adapter records the fan-out and keeps rooms in a map, the Dispatcher
// answers as each test asks.

// fakeAdapter is an Adapter that records broadcasts and keeps memberships in a map. A
// join of a socket of io is made on the socket as well: the hub reads a requesting
// socket's rooms from the socket itself.
type fakeAdapter struct {
	io       *socketio.Server
	mu       sync.Mutex
	rooms    map[string][]string // socket id -> rooms it joined
	gone     map[string]bool     // socket ids that are not connected
	reserved map[string]bool
	sent     []sent
	reach    int // what Broadcast reports
}

type sent struct {
	to    Target
	event string
	data  string
}

var _ Adapter = (*fakeAdapter)(nil)

func newFakeAdapter() *fakeAdapter {
	return &fakeAdapter{rooms: map[string][]string{}, gone: map[string]bool{}, reserved: map[string]bool{}}
}

func (f *fakeAdapter) Broadcast(to Target, event string, data json.RawMessage) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, sent{to: to, event: event, data: string(data)})
	return f.reach, nil
}

func (f *fakeAdapter) Join(id string, rooms ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone[id] {
		return ErrUnknownSocket
	}
	for _, r := range rooms {
		if !slices.Contains(f.rooms[id], r) {
			f.rooms[id] = append(f.rooms[id], r)
		}
	}
	if s := f.io.Socket(id); s != nil {
		s.Join(rooms...)
	}
	return nil
}

func (f *fakeAdapter) Leave(id string, rooms ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone[id] {
		return ErrUnknownSocket
	}
	f.rooms[id] = slices.DeleteFunc(f.rooms[id], func(r string) bool { return slices.Contains(rooms, r) })
	return nil
}

func (f *fakeAdapter) SocketRooms(id string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone[id] {
		return nil, ErrUnknownSocket
	}
	return append([]string{id}, f.rooms[id]...), nil
}

func (f *fakeAdapter) Disconnect(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone[id] {
		return ErrUnknownSocket
	}
	f.gone[id] = true
	return nil
}

func (f *fakeAdapter) Reserved(room string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reserved[room]
}

func (f *fakeAdapter) SocketCount() int { return 0 }

func (f *fakeAdapter) RoomCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	all := map[string]bool{}
	for _, rs := range f.rooms {
		for _, r := range rs {
			all[r] = true
		}
	}
	return len(all)
}

func (f *fakeAdapter) joined(id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rooms[id])
}

func (f *fakeAdapter) broadcasts() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

// call is one request the fake dispatcher received.
type call struct {
	ctx  context.Context
	req  *dispatch.Request
	done func(*dispatch.Reply, error)
}

// fakeDispatcher hands every request to the test on calls.
type fakeDispatcher struct{ calls chan call }

func newFakeDispatcher() *fakeDispatcher { return &fakeDispatcher{calls: make(chan call, 16)} }

func (d *fakeDispatcher) DispatchAsync(ctx context.Context, req *dispatch.Request, done func(*dispatch.Reply, error)) {
	d.calls <- call{ctx, req, done}
}

func (d *fakeDispatcher) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-d.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the dispatcher")
	}
	return call{}
}

func (d *fakeDispatcher) none(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case c := <-d.calls:
		t.Fatalf("unexpected request %+v", c.req)
	case <-time.After(wait):
	}
}

// fixture is a hub on a socketio server with fake ports.
type fixture struct {
	t   *testing.T
	hub *Hub
	fan *fakeAdapter
	d   *fakeDispatcher
	url string
}

// newFixture serves a hub whose sockets are admitted as the user named by the CONNECT
// auth's "user" (and "attempt"/"pid" as the connection guard would read them).
func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	f := &fixture{t: t, fan: newFakeAdapter(), d: newFakeDispatcher()}
	f.hub = New(o, f.fan, nil)
	f.hub.SetDispatcher(f.d)
	io := socketio.NewServer(socketio.Options{NonBlockingHandlers: true, ArgMembers: ArgMembers()})
	f.fan.io = io
	io.Use(func(s *socketio.Socket, raw json.RawMessage) error {
		var a struct {
			User    string `json:"user"`
			PID     string `json:"pid"`
			Attempt int    `json:"attempt"`
		}
		_ = json.Unmarshal(raw, &a)
		return Admit(s, Admission{UserID: a.User, ClientIP: "127.0.0.1",
			Reconnect: Reconnect{AskedRecovery: a.PID != "", Attempt: a.Attempt}})
	})
	io.OnConnection(f.hub.HandleConnection)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := engineio.NewHTTPServer(ln, io)
	if err := hs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = io.Close(ctx)
		_ = hs.Shutdown(ctx)
	})
	f.url = "ws://" + ln.Addr().String()
	return f
}

// conn is a raw Socket.IO client of the fixture.
type conn struct {
	*rawclient.Conn
	t  *testing.T
	id string
}

// connect opens a socket with that CONNECT auth object and reads up to its welcome.
func (f *fixture) connect(auth string) *conn {
	f.t.Helper()
	c := &conn{Conn: rawclient.Dial(f.t, f.url), t: f.t}
	var ok struct{ SID string }
	if r := c.Connect(auth); !strings.HasPrefix(r, "40") || json.Unmarshal([]byte(r[2:]), &ok) != nil {
		f.t.Fatalf("connect reply %q", r)
	}
	c.id = ok.SID
	c.expect("system:welcome")
	return c
}

// expect reads until the event named event and returns its first argument.
func (c *conn) expect(event string) map[string]any {
	c.t.Helper()
	f := c.Expect(event)
	var args []any
	if err := json.Unmarshal([]byte(f[2:]), &args); err != nil {
		c.t.Fatalf("frame %q", f)
	}
	m, _ := args[1].(map[string]any)
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRegister(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.connect(`{"user":"alice"}`)

	for arg, want := range map[string]string{
		`"alice"`:              "Invalid registration data",
		`{}`:                   "Missing userId",
		`{"userId":" "}`:       "Missing userId",
		`{"userId":"a\u0007"}`: "",
		`{"userId":"bob"}`:     "userId does not match the authenticated user",
	} {
		c.Emit("register", arg)
		r := c.expect("register:ack")
		if r["success"] != false || !strings.Contains(r["error"].(string), want) {
			t.Errorf("register %s: %v, want an error with %q", arg, r, want)
		}
	}
	if got := f.fan.joined(c.id); len(got) != 0 {
		t.Fatalf("refused registrations joined %q", got)
	}

	c.Emit("register", `{"userId":"alice"}`)
	if r := c.expect("register:ack"); r["success"] != true || r["userId"] != "alice" {
		t.Fatalf("register: %v", r)
	}
	c.Emit("register", `{"userId":"alice"}`) // again: still one user
	c.expect("register:ack")
	if got := f.fan.joined(c.id); !slices.Equal(got, []string{userRoom("alice")}) {
		t.Fatalf("rooms %q", got)
	}
	second := f.connect(`{"user":"alice"}`)
	second.Emit("register", `{"userId":"alice"}`)
	second.expect("register:ack")
	if st := f.hub.Stats(); st.Users != 1 {
		t.Fatalf("users %d, want 1 for two sockets of alice", st.Users)
	}

	f.hub.PushToUser("alice", "news", json.RawMessage(`{"n":1}`))
	if b := f.fan.broadcasts(); len(b) != 1 || !slices.Equal(b[0].to.Rooms, []string{userRoom("alice")}) || b[0].event != "news" {
		t.Fatalf("push went %+v", b)
	}

	c.Close()
	second.Close()
	waitFor(t, "alice to be forgotten", func() bool { return f.hub.Stats().Users == 0 })
}

func TestRooms(t *testing.T) {
	f := newFixture(t, Options{MaxRoomsPerSocket: 2, MaxRoomNameLen: 8})
	c := f.connect(`{"user":"u"}`)
	f.fan.mu.Lock()
	f.fan.reserved["someone"] = true
	f.fan.mu.Unlock()

	c.Send(`421["room:join",{"room":"a"}]`)
	if r := c.expect("room:join:ack"); r["success"] != true || r["room"] != "a" {
		t.Fatalf("join: %v", r)
	}
	if r := c.Read(); r != `431[{"success":true,"room":"a"}]` {
		t.Fatalf("join ack %q", r)
	}
	for arg, code := range map[string]string{
		`{"room":""}`:          CodeInvalidRoom,
		`{"room":"   "}`:       CodeInvalidRoom,
		`{"room":"123456789"}`: CodeInvalidRoom,
		`{"room":"a\u0000b"}`:  CodeInvalidRoom,
		`{"room":7}`:           CodeInvalidRoom,
		`["a"]`:                CodeInvalidRoom,
		`{"room":"someone"}`:   CodeInvalidRoom,
	} {
		c.Emit("room:join", arg)
		if e := c.expect("error"); e["code"] != code || e["event"] != "room:join" {
			t.Errorf("join %s: %v, want %s", arg, e, code)
		}
	}
	c.Emit("room:join", `{"room":"b"}`)
	c.expect("room:join:ack")
	c.Emit("room:join", `{"room":"c"}`)
	if e := c.expect("error"); e["code"] != CodeRoomLimit {
		t.Fatalf("third room: %v", e)
	}
	c.Emit("room:join", `{"room":"b"}`) // a room it is in does not count twice
	c.expect("room:join:ack")
	if st := f.hub.Stats(); st.Rooms != 2 {
		t.Fatalf("rooms %d", st.Rooms)
	}
	c.Emit("room:leave", `{"room":"a"}`)
	if r := c.expect("room:leave:ack"); r["success"] != true || r["room"] != "a" {
		t.Fatalf("leave: %v", r)
	}
	if got := f.fan.joined(c.id); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("rooms %q", got)
	}

	// A plugin's joins are checked alike.
	host := f.hub.PluginHost()
	ctx := context.Background()
	if err := host.JoinRoom(ctx, c.id, "c"); err != nil {
		t.Fatalf("plugin join: %v", err)
	}
	var ce *codedError
	if err := host.JoinRoom(ctx, c.id, "d"); !errors.As(err, &ce) || ce.Code != CodeRoomLimit {
		t.Fatalf("plugin join past the limit: %v", err)
	}
	f.fan.mu.Lock()
	f.fan.gone["nobody"] = true
	f.fan.reach = 3
	f.fan.mu.Unlock()
	if err := host.JoinRoom(ctx, "nobody", "c"); !errors.Is(err, ErrUnknownSocket) {
		t.Fatalf("plugin join of an unknown socket: %v", err)
	}
	if n, err := host.EmitToRoom(ctx, "c", "", nil, ""); err == nil || n != 0 {
		t.Fatalf("emit with no event name: %d %v", n, err)
	}
	if n, err := host.EmitToRoom(ctx, "c", "ev", nil, c.id); err != nil || n != 3 {
		t.Fatalf("emit: %d %v", n, err)
	}
	b := f.fan.broadcasts()
	if last := b[len(b)-1]; !slices.Equal(last.to.Rooms, []string{"c"}) || !slices.Equal(last.to.Except, []string{c.id}) || last.data != "null" {
		t.Fatalf("emit went %+v", last)
	}
}

func TestAdmission(t *testing.T) {
	f := newFixture(t, Options{MessagesPerMinute: 3, FloodDisconnectAfter: 2, MaxJSONDepth: 3})
	c := f.connect(`{"user":"u"}`)

	c.Emit("room:join", `{"room":{"a":{"b":1}}}`) // depth 3: allowed, then refused as a room
	if e := c.expect("error"); e["code"] != CodeInvalidRoom {
		t.Fatalf("depth 3: %v", e)
	}
	c.Emit("room:join", `{"room":{"a":{"b":[1]}}}`)
	if e := c.expect("error"); e["code"] != CodeInvalidPayload {
		t.Fatalf("depth 4: %v", e)
	}
	c.Emit("no:such", `{}`)
	if e := c.expect("error"); e["code"] != CodeUnknownEvent || e["event"] != "no:such" {
		t.Fatalf("unknown event: %v", e)
	}
	// The fourth event of the minute is refused, with when to retry.
	c.Emit("ping", `{}`)
	e := c.expect("error")
	if e["code"] != CodeRateLimited || e["retryAfter"].(float64) < 1 {
		t.Fatalf("over the rate: %v", e)
	}
	// A socket that keeps going is cut off.
	c.Emit("ping", `{}`)
	c.expect("error")
	c.Emit("ping", `{}`)
	c.Closed()
}

func TestRequests(t *testing.T) {
	f := newFixture(t, Options{MaxPending: 1})
	c := f.connect(`{"user":"u"}`)
	c.Emit("room:join", `{"room":"r"}`)
	c.expect("room:join:ack")

	c.Send(`421["client:event",{"type":"greet","data":{"x":1}}]`)
	first := f.d.next(t)
	if r := first.req; r.Kind != dispatch.KindEvent || r.Name != "greet" || r.UserID != "u" || r.SocketID != c.id ||
		!slices.Equal(r.Rooms, []string{"r"}) || string(r.Payload) != `{"type":"greet","data":{"x":1}}` {
		t.Fatalf("request %+v", r)
	}
	if _, ok := first.ctx.Deadline(); ok {
		t.Fatal("the hub set a deadline: the dispatcher owns them")
	}
	// Requests run one at a time: the next waits for the first's answer.
	c.Emit("client:action", `{"action":"go"}`)
	f.d.none(t, 50*time.Millisecond)
	c.Emit("client:message", `{"content":"hi"}`) // one waits already (MaxPending 1)
	if e := c.expect("error"); e["code"] != CodeTooManyPending {
		t.Fatalf("past MaxPending: %v", e)
	}
	first.done(&dispatch.Reply{Data: json.RawMessage(`{"ok":1}`)}, nil)
	r := c.expect("server:response")
	if r["success"] != true || r["requestId"] != first.req.RequestID || r["data"].(map[string]any)["ok"] != float64(1) {
		t.Fatalf("response %v", r)
	}
	if a := c.Read(); !strings.HasPrefix(a, `431[{"success":true`) {
		t.Fatalf("ack %q", a)
	}
	second := f.d.next(t)
	if second.req.Kind != dispatch.KindAction || second.req.Name != "go" {
		t.Fatalf("second %+v", second.req)
	}
	second.done(nil, dispatch.Errorf(dispatch.CodePluginTimeout, "slow"))
	if r := c.expect("action:result"); r["success"] != false || r["code"] != dispatch.CodePluginTimeout || r["error"] != "slow" {
		t.Fatalf("failure %v", r)
	}
	c.Emit("client:message", `{"content":"hi","type":"chat"}`)
	m := f.d.next(t)
	m.done(nil, errors.New("boom"))
	if r := c.expect("message:ack"); r["success"] != false || r["code"] != CodeInternal || r["messageId"] != m.req.MessageID {
		t.Fatalf("internal failure %v", r)
	}

	for event, bad := range map[string]string{
		"client:event":   `{"type":"  "}`,
		"client:message": `{"type":"x"}`,
		"client:action":  `{"action":7}`,
	} {
		c.Emit(event, bad)
		if e := c.expect("error"); !strings.HasPrefix(e["code"].(string), "INVALID_") || e["event"] != event {
			t.Errorf("%s %s: %v", event, bad, e)
		}
	}
	f.d.none(t, 50*time.Millisecond)

	// A socket that goes away ends its running request and drops the queued one.
	c.Emit("client:event", `{"type":"slow"}`)
	running := f.d.next(t)
	c.Emit("client:event", `{"type":"queued"}`)
	c.Close()
	select {
	case <-running.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the request of a gone socket was not cancelled")
	}
	running.done(nil, running.ctx.Err())
	f.d.none(t, 100*time.Millisecond)
}

func TestSystemEvents(t *testing.T) {
	f := newFixture(t, Options{Version: "v9", Environment: "test"})
	c := &conn{Conn: rawclient.Dial(t, f.url), t: t}
	c.Connect(`{"user":"u","pid":"gone-session","attempt":3}`)
	w := c.expect("system:welcome")
	info, _ := w["serverInfo"].(map[string]any)
	if w["socketId"] == "" || info["version"] != "v9" || info["environment"] != "test" {
		t.Fatalf("welcome %v", w)
	}
	if r := c.expect("system:state_recovery_failed"); r["message"] == "" {
		t.Fatalf("recovery failed %v", r)
	}
	if r := c.expect("system:reconnect_status"); r["attempt"] != float64(3) {
		t.Fatalf("reconnect status %v", r)
	}
	c.Send(`425["ping",{"timestamp":1}]`)
	if a := c.Read(); a != "435[]" {
		t.Fatalf("ping ack %q", a)
	}
}

func TestFanOut(t *testing.T) {
	f := newFixture(t, Options{})
	f.hub.Broadcast("all", nil)
	f.hub.EmitToRoom("r", "some", json.RawMessage(`[1]`))
	b := f.fan.broadcasts()
	if len(b) != 2 || len(b[0].to.Rooms) != 0 || b[0].data != "null" ||
		!slices.Equal(b[1].to.Rooms, []string{"r"}) || b[1].to.Except != nil || b[1].data != "[1]" {
		t.Fatalf("fan-out %+v", b)
	}
	if err := f.hub.PluginHost().DisconnectSocket(context.Background(), "nobody"); err != nil {
		t.Fatalf("disconnect through the adapter: %v", err) // the fake knows every id
	}
}
