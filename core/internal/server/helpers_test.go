package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
	eioclient "github.com/zishang520/socket.io/clients/engine/v3"
	eiotransports "github.com/zishang520/socket.io/clients/engine/v3/transports"
	sio "github.com/zishang520/socket.io/clients/socket/v3"
	sioserver "github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/rtserver/rtserver/core/internal/auth"
	"github.com/rtserver/rtserver/core/internal/config"
	"github.com/rtserver/rtserver/core/internal/rawclient"
	"github.com/rtserver/rtserver/core/internal/server"
)

const (
	testSecret = "test-jwt-secret-0123456789abcdef"
	testAPIKey = "test-api-key-0123456789abcdef"
)

// env is one running server under test.
type env struct {
	t      testing.TB
	srv    *server.Server
	cfg    *config.Config
	url    string // http://127.0.0.1:port
	apiURL string
}

// with returns e for a subtest: helpers fail t and register their cleanups on it (a
// subtest must not fail its parent), the server stays the parent's.
func (e *env) with(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

// startServer runs a server on 127.0.0.1:0 with the defaults, the test secrets, generous
// rate limits and an empty plugin folder, after mutate has had its say.
func startServer(t testing.TB, mutate func(*config.Config)) *env {
	t.Helper()
	e := startServing(t, mutate)
	select { // tests start with the plugins of their folder loaded
	case <-e.srv.PluginsReady():
	case <-time.After(30 * time.Second):
		t.Fatal("plugins not loaded after 30s")
	}
	return e
}

// startServing is startServer returning as soon as the server serves, its plugins
// maybe still loading.
func startServing(t testing.TB, mutate func(*config.Config)) *env {
	t.Helper()
	cfg := config.Default()
	cfg.Environment = "test"
	cfg.Server.Host = "127.0.0.1"
	cfg.Auth.JWTSecret = testSecret
	cfg.API.Keys = []config.APIKey{{Name: "default", Secret: testAPIKey, Scopes: []string{config.ScopeAll}}}
	cfg.RateLimit.WSConnectionsPerMinute = 100000
	cfg.RateLimit.WSMessagesPerMinute = 100000
	cfg.RateLimit.HTTPRequestsPerMinute = 100000
	cfg.Plugins.Dir = t.TempDir()
	// The Go client's polling transport sends nothing while its GET is pending, and a GET
	// returns at the latest with the next ping: a short interval keeps polling tests quick.
	cfg.SocketIO.PingInterval = 500 * time.Millisecond
	cfg.SocketIO.PingTimeout = 3 * time.Second
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.LevelFromString(envOr("TEST_LOG_LEVEL", "warn")), Output: testWriter{t}})
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var apiLn net.Listener
	if cfg.API.Listen != "" {
		if apiLn, err = net.Listen("tcp", cfg.API.Listen); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Serve(context.Background(), ln, apiLn); err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			buf := make([]byte, 4<<20)
			t.Errorf("shutdown: %v\n%s", err, buf[:runtime.Stack(buf, true)])
		}
	})
	e := &env{t: t, srv: srv, cfg: cfg, url: "http://" + srv.Addr().String()}
	e.apiURL = "http://" + srv.APIAddr().String()
	return e
}

// testWriter sends server logs to the test log, so they show only for failing tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func token(t testing.TB, userID string) string {
	t.Helper()
	tok, err := auth.Mint([]byte(testSecret), "HS256", userID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// client is a Go Socket.IO v4 client (zishang520, an implementation independent of ours)
// whose received events queue up per name.
type client struct {
	t  testing.TB
	s  *sio.Socket
	mu sync.Mutex
	ev map[string]chan []any
}

var transportSets = map[string][]string{
	"websocket": {"websocket"},
	"polling":   {"polling"},
	"upgrade":   {"polling", "websocket"},
}

// dial connects with auth {token} (no auth when tok is ""), over the named transports, and
// waits for "connect" or "connect_error" (left queued for the caller).
//
// The zishang520 manager subscribes to its engine's "open" event only after starting the
// engine, and now and then misses it when the handshake is quick: it then never sends
// CONNECT (seen in its own debug log; raw-protocol tests here connect thousands of times
// without a miss). Such an attempt is abandoned and retried with a fresh client.
func (e *env) dial(tok string, transports []string) *client {
	e.t.Helper()
	return e.dialWith(tok, transports, false)
}

// dialWith is dial with the client's automatic reconnection on or off.
func (e *env) dialWith(tok string, transports []string, reconnect bool) *client {
	e.t.Helper()
	for attempt := 1; ; attempt++ {
		c := e.dialOnce(tok, transports, reconnect)
		if c.settled(2 * time.Second) {
			return c
		}
		// The zishang520 manager subscribes to its engine's "open" after starting it
		// (manager.go, Open) and misses it when the handshake beats the subscription (a
		// loaded machine makes that common): it then never sends CONNECT. An engine
		// that is open is told again, which lets the manager go on.
		if eng := c.s.Io().Engine(); eng != nil && eng.ReadyState() == eioclient.SocketStateOpen {
			e.t.Logf("client missed its engine's open event; announcing it again (attempt %d)", attempt)
			eng.Emit("open")
			if c.settled(3 * time.Second) {
				return c
			}
		}
		c.s.Io().SetReconnection(false)
		c.s.Disconnect()
		if attempt == 3 {
			e.t.Fatal("the client never sent CONNECT, three times")
		}
		e.t.Logf("client never sent CONNECT; retrying (attempt %d)", attempt)
	}
}

// reconnected waits for the client's automatic reconnection to connect again. The
// zishang520 manager can miss its new engine's "open" on a reconnection as on a first
// dial (see dialWith); an engine that is open while the socket is not is told again.
func (c *client) reconnected() {
	c.t.Helper()
	for attempt := 1; ; attempt++ {
		select {
		case <-c.ch("connect"):
			return
		case <-time.After(4 * time.Second):
		}
		if attempt == 4 {
			c.t.Fatal("the client did not reconnect in 16 s")
		}
		if eng := c.s.Io().Engine(); eng != nil && eng.ReadyState() == eioclient.SocketStateOpen && !c.s.Connected() {
			c.t.Logf("client missed its engine's open event on reconnection; announcing it again (attempt %d)", attempt)
			eng.Emit("open")
		}
	}
}

// settled waits up to d for the CONNECT's answer (connect or connect_error), leaving it
// to be read.
func (c *client) settled(d time.Duration) bool {
	select {
	case a := <-c.ch("connect"):
		c.ch("connect") <- a
		return true
	case a := <-c.ch("connect_error"):
		c.ch("connect_error") <- a
		return true
	case <-time.After(d):
		return false
	}
}

func (e *env) dialOnce(tok string, transports []string, reconnect bool) *client {
	e.t.Helper()
	opts := sio.DefaultOptions()
	set := types.NewSet[eiotransports.TransportCtor]()
	for _, tr := range transports {
		switch tr {
		case "websocket":
			set.Add(eiotransports.WebSocket)
		case "polling":
			set.Add(eiotransports.Polling)
		}
	}
	opts.SetTransports(set)
	opts.SetReconnection(reconnect)
	if reconnect {
		opts.SetReconnectionDelay(200)
		opts.SetReconnectionDelayMax(200)
	}
	opts.SetForceNew(true)
	opts.SetTimeout(5 * time.Second)
	if tok != "" {
		opts.SetAuth(map[string]any{"token": tok})
	}
	c := &client{t: e.t, ev: make(map[string]chan []any)}
	for _, name := range []string{"connect", "connect_error", "disconnect"} {
		c.ch(name)
	}
	s, err := sio.Connect(e.url, opts)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	c.s = s
	s.OnAny(func(args ...any) {
		if len(args) == 0 {
			return
		}
		name, _ := args[0].(string)
		c.push(name, args[1:])
	})
	for _, name := range []string{"connect", "connect_error", "disconnect"} {
		name := name
		s.On(types.EventName(name), func(args ...any) { c.push(name, args) })
	}
	e.t.Cleanup(func() {
		s.Io().SetReconnection(false)
		s.Disconnect()
	})
	return c
}

// connect dials as userID and waits for the welcome.
func (e *env) connect(userID string, transports []string) *client {
	e.t.Helper()
	for attempt := 1; ; attempt++ {
		c := e.dial(token(e.t, userID), transports)
		c.next("connect")
		c.next("system:welcome")
		if len(transports) < 2 || c.upgraded(3*time.Second) {
			return c
		}
		// The zishang520 engine client sends its probe and only then subscribes to the
		// probe transport's packets; when our pong beats the subscription it never
		// finishes the upgrade and, with polling paused, stops answering pings. Such a
		// client is left for a fresh one.
		c.s.Io().SetReconnection(false)
		c.s.Disconnect()
		if attempt == 3 {
			e.t.Fatal("the client never finished its upgrade to websocket, three times")
		}
		e.t.Logf("client lost its upgrade probe; retrying (attempt %d)", attempt)
	}
}

// upgraded waits up to d for the client's engine to run on websocket.
func (c *client) upgraded(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if eng := c.s.Io().Engine(); eng != nil && eng.Transport() != nil && eng.Transport().Name() == "websocket" {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (c *client) ch(name string) chan []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.ev[name]
	if !ok {
		ch = make(chan []any, 256)
		c.ev[name] = ch
	}
	return ch
}

func (c *client) push(name string, args []any) {
	select {
	case c.ch(name) <- args:
	default:
		c.t.Errorf("event queue full for %q", name)
	}
}

// next waits for the next event with that name and returns its arguments.
func (c *client) next(name string) []any {
	c.t.Helper()
	select {
	case a := <-c.ch(name):
		return a
	case <-time.After(5 * time.Second):
		c.t.Fatalf("timed out waiting for %q", name)
		return nil
	}
}

// nextObj waits for an event whose first argument is an object.
func (c *client) nextObj(name string) map[string]any {
	c.t.Helper()
	a := c.next(name)
	if len(a) == 0 {
		c.t.Fatalf("%q arrived with no argument", name)
	}
	m, ok := a[0].(map[string]any)
	if !ok {
		c.t.Fatalf("%q argument is %T, not an object", name, a[0])
	}
	return m
}

// none asserts that no event with that name arrives within d.
func (c *client) none(name string, d time.Duration) {
	c.t.Helper()
	select {
	case a := <-c.ch(name):
		c.t.Fatalf("unexpected %q: %v", name, a)
	case <-time.After(d):
	}
}

func (c *client) emit(event string, args ...any) {
	c.t.Helper()
	if err := c.s.Emit(event, args...); err != nil {
		c.t.Fatalf("emit %s: %v", event, err)
	}
}

// emitAck emits with an acknowledgement callback and waits for its arguments.
func (c *client) emitAck(event string, args ...any) []any {
	c.t.Helper()
	done := make(chan []any, 1)
	args = append(args, sioserver.Ack(func(a []any, err error) {
		if err != nil {
			c.t.Errorf("ack %s: %v", event, err)
		}
		done <- a
	}))
	c.emit(event, args...)
	select {
	case a := <-done:
		return a
	case <-time.After(5 * time.Second):
		c.t.Fatalf("timed out waiting for the ack of %q", event)
		return nil
	}
}

// api calls the HTTP API with the test key and decodes the JSON answer.
func (e *env) api(method, path string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.apiURL+path, r)
	req.Header.Set("X-API-Key", testAPIKey)
	req.Header.Set("Content-Type", "application/json")
	return e.do(req)
}

func (e *env) do(req *http.Request) (int, map[string]any, http.Header) {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		e.t.Fatalf("%s %s: answer is not a JSON object: %q", req.Method, req.URL.Path, raw)
	}
	return res.StatusCode, m, res.Header
}

// moduleRoot is the repository root, found from this file's place.
func moduleRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// buildPlugin builds examples/NAME into dir/NAME; a NAME with a slash is a package path
// from the module root, built into dir/<its last element>.
func buildPlugin(t *testing.T, name, dir string, ldflags string) string {
	t.Helper()
	pkg := "./examples/" + name
	if strings.Contains(name, "/") {
		pkg, name = "./"+name, filepath.Base(name)
	}
	out := filepath.Join(dir, name)
	args := []string{"build", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build plugin %s: %v\n%s", name, err, b)
	}
	return out
}

// waitGoroutines waits until the goroutine count is back near base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if runtime.NumGoroutine() <= base+5 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	t.Errorf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), base, buf[:n])
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// rawClient is a rawclient.Conn under the names this package's tests use.
type rawClient struct {
	*rawclient.Conn
	t  testing.TB
	ws *websocket.Conn
}

// raw connects a websocket as userID and waits for its welcome.
func (e *env) raw(t testing.TB, userID string) *rawClient {
	t.Helper()
	c, reply := e.rawAuth(t, `{"token":"`+token(t, userID)+`"}`)
	if !strings.HasPrefix(reply, `40{"sid"`) {
		t.Fatalf("connect reply %q", reply)
	}
	c.expect("system:welcome")
	return c
}

// rawAuth opens a websocket session, sends CONNECT with that auth object and returns the
// reply packet (CONNECT or CONNECT_ERROR).
func (e *env) rawAuth(t testing.TB, authJSON string) (*rawClient, string) {
	t.Helper()
	rc := rawclient.Dial(t, e.url)
	c := &rawClient{Conn: rc, t: t, ws: rc.WS()}
	return c, c.Connect(authJSON)
}

func (c *rawClient) send(frame string)          { c.t.Helper(); c.Send(frame) }
func (c *rawClient) read() string               { c.t.Helper(); return c.Read() }
func (c *rawClient) expect(event string) string { c.t.Helper(); return c.Expect(event) }
func (c *rawClient) close()                     { c.Close() }
