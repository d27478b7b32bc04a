package engineio

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/rtserver/rtserver/core/workpool"
)

// HTTPServer serves an http.Handler on a listener with nbio's event-driven engine:
// connections are read by a few poller goroutines, a handler runs on a goroutine only
// while it works, and an upgraded websocket stays with the poller (no goroutine per
// connection). Any http.Handler works: the Engine.IO server, a Fiber app through
// adaptor.FiberApp, /metrics, /health.
type HTTPServer struct {
	// Logger receives the engine's own logs; set before Start. Default: a null logger.
	Logger hclog.Logger
	// MaxBodyBytes caps a request body; set before Start. Default 8 MiB.
	MaxBodyBytes int

	ln     net.Listener
	h      http.Handler
	engine *nbhttp.Engine
	pool   workpool.Pool // runs handler jobs
}

// NewHTTPServer prepares a server for h on ln; Start begins serving.
func NewHTTPServer(ln net.Listener, h http.Handler) *HTTPServer {
	return &HTTPServer{ln: ln, h: h}
}

// countedEngines holds the nbhttp engines whose written-size hook maintains
// Conn.wsPending; only their websockets can enforce MaxOutboundBytes exactly.
var countedEngines sync.Map // *nbhttp.Engine -> struct{}

func countedEngine(e *nbhttp.Engine) bool {
	_, ok := countedEngines.Load(e)
	return ok
}

// Start begins serving in the background: it returns once the listener is being served.
func (s *HTTPServer) Start() error {
	log := s.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s.Logger = log
	setNBIOLogger(log)
	maxBody := s.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = 8 << 20
	}
	s.pool.IdleTimeout = workerIdleTimeout
	s.pool.Guard = s.runJob
	gate := newRaceGate()
	// The accept fence (fence_unix.go) keeps a stale epoll event of a closed fd from
	// closing the next connection given the same number. It sits inside the race gate:
	// its wait needs the poller, which the gate may block.
	fence := newAcceptFence(s.ln, log)
	ln := gate.wrap(fence)
	s.engine = nbhttp.NewEngine(nbhttp.Config{
		Name:    "rtserver",
		Network: "tcp",
		Addrs:   []string{ln.Addr().String()},
		// nbhttp listens by itself; hand it the listener we were given (127.0.0.1:0 in tests).
		Listen:          func(string, string) (net.Listener, error) { return ln, nil },
		Handler:         s.h,
		ServerExecutor:  s.execute,
		MaxHTTPBodySize: maxBody,
		// Small pooled read buffers: one per poller read, not per connection.
		ReadBufferSize:          16 << 10,
		ReleaseWebsocketPayload: true,
		MaxLoad:                 1 << 20,
	})
	s.engine.Engine.OnData(func(c *nbio.Conn, data []byte) {
		gate.wait()
		s.inline(c)
		c.DataHandler()(c, data)
	})
	fence.setEngine(s.engine.Engine)
	countedEngines.Store(s.engine, struct{}{})
	s.engine.Engine.OnWrittenSize(onWrittenSize)
	if err := s.engine.Start(); err != nil {
		countedEngines.Delete(s.engine)
		return fmt.Errorf("engineio: start http server: %w", err)
	}
	return nil
}

// workerIdleTimeout is how long (to twice that) a handler goroutine waits for another job
// before exiting: long enough to stay warm under steady traffic, short enough that an
// idle server soon holds none.
const workerIdleTimeout = 2 * time.Second

// execute runs a handler job on a pooled goroutine: an idle one if any, else a new one.
// nbhttp's default pool queues jobs once its goroutines are busy, and a long-polling GET
// keeps one busy for up to pingInterval: thousands of pending GETs would starve
// everything else, so ours never queues. Jobs of one connection are still run in order,
// one at a time, by nbio's per-connection job list.
func (s *HTTPServer) execute(f func()) { s.pool.Submit(f) }

// inline makes the websocket on c, once it carries a session of a Server with
// Options.InlineWebsocket, run its message jobs right here on the poller goroutine. It
// runs on the poller, the only goroutine that reads the websocket's Execute field (nbio
// calls it while parsing), so switching it here races with nothing. Jobs still queued on
// the connection (the upgrade request's own, say) keep their place: while any is
// pending, new ones queue behind it as before.
func (s *HTTPServer) inline(c *nbio.Conn) {
	ws, ok := c.Session().(*websocket.Conn)
	if !ok {
		return
	}
	// With the lock: the session was set by the upgrading request's goroutine.
	sc, ok := ws.SessionWithLock().(*Conn)
	if !ok || sc.inlineWS == ws || !sc.srv.opts.InlineWebsocket {
		return
	}
	sc.inlineWS = ws
	queued := ws.Execute
	ws.Execute = func(job func()) bool {
		if c.ExecuteLen() > 0 {
			return queued(job)
		}
		s.runJob(job)
		return true
	}
}

// runJob runs one handler job; a panic is logged, not fatal, and the worker lives on.
func (s *HTTPServer) runJob(f func()) {
	defer func() {
		if r := recover(); r != nil {
			s.Logger.Error("handler panic", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	f()
}

// onWrittenSize credits the bytes the kernel accepted to the session that queued them.
// It runs under the nbio connection's lock: only an atomic add here.
func onWrittenSize(c *nbio.Conn, _ []byte, n int) {
	ws, ok := c.Session().(*websocket.Conn)
	if !ok {
		return
	}
	if sc, ok := ws.Session().(*Conn); ok {
		sc.wsPending.Add(-int64(n))
	}
}

// Shutdown stops accepting, wakes pending long-polls (their request context ends), closes
// every connection and waits for handlers to return, up to ctx.
func (s *HTTPServer) Shutdown(ctx context.Context) error {
	if s.engine == nil {
		return nil
	}
	defer countedEngines.Delete(s.engine)
	err := s.engine.Shutdown(ctx)
	// Idle workers exit now, busy ones as their job returns.
	s.pool.Close()
	if err != nil {
		return fmt.Errorf("engineio: shutdown: %w", err)
	}
	done := make(chan struct{})
	go func() {
		s.pool.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("engineio: shutdown: handlers still running: %w", ctx.Err())
	}
}

// Addr returns the listener's address.
func (s *HTTPServer) Addr() net.Addr { return s.ln.Addr() }

// nbioLogger routes nbio's package-level logging into hclog.
type nbioLogger struct{ l hclog.Logger }

func (n nbioLogger) Debug(f string, v ...any) { n.l.Trace(fmt.Sprintf(f, v...)) }
func (n nbioLogger) Info(f string, v ...any)  { n.l.Debug(fmt.Sprintf(f, v...)) }
func (n nbioLogger) Warn(f string, v ...any)  { n.l.Warn(fmt.Sprintf(f, v...)) }
func (n nbioLogger) Error(f string, v ...any) { n.l.Error(fmt.Sprintf(f, v...)) }

var nbioLogMu sync.Mutex

// setNBIOLogger installs l as nbio's logger; nbio has one logger per process, so the
// last HTTPServer started wins.
func setNBIOLogger(l hclog.Logger) {
	nbioLogMu.Lock()
	defer nbioLogMu.Unlock()
	logging.SetLogger(nbioLogger{l.Named("nbio")})
}
