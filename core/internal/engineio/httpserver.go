package engineio

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/rtserver/rtserver/core/internal/workpool"
)

// HTTPServer serves an http.Handler on a listener with nbio's event-driven engine:
// connections are read by a few poller goroutines, a handler runs on a goroutine only
// while it works, and an upgraded websocket stays with the poller (no goroutine per
// connection). Any http.Handler works: the Engine.IO server, a Fiber app through
// adaptor.FiberApp, /metrics, /health.
type HTTPServer struct {
	// Logger receives the engine's own logs; set before Start. Default: a null logger.
	Logger hclog.Logger
	// MaxBodyBytes caps a request body; set before Start. Default 8 MiB. A larger body
	// is answered 413 and the connection closed.
	MaxBodyBytes int
	// MaxHeaderBytes caps a request's line and headers; set before Start. Default 16 KiB.
	// A larger head is answered 431 and the connection closed.
	MaxHeaderBytes int
	// ReadHeaderTimeout is how long a request's line and headers may take to arrive, from
	// their first byte; set before Start. Default 10s. A slower head closes the connection.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a connection that sends no request for this long, and bounds
	// the time a request's body (or a handler that waits, such as a long poll) may take;
	// set before Start. Default 120s. Upgraded websockets are not subject to it.
	IdleTimeout time.Duration
	// RefusalBody, when set, makes the body (JSON) and extra headers of the answer to a
	// request refused before any handler saw it: status is 400 (malformed), 405 (unknown
	// method), 413 (body too large) or 431 (headers too large), message says which in
	// words. Default: {"message": message}.
	RefusalBody func(status int, message string) ([]byte, http.Header)
	// Inline, when set, is asked about the request line of a connection's first request
	// (without its line end): true runs that request's handler right on the network
	// poller's goroutine instead of handing it to a worker, which saves a goroutine
	// hand-off per connect. The handler must then not block: while it runs, no other
	// connection of that poller is read. Later requests of the connection are handed
	// off as usual. Set before Start. See WebsocketRequestLine.
	Inline func(requestLine []byte) bool

	maxBody           int
	maxHeader         int
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration

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
	s.maxBody, s.maxHeader = s.MaxBodyBytes, s.MaxHeaderBytes
	s.readHeaderTimeout, s.idleTimeout = s.ReadHeaderTimeout, s.IdleTimeout
	if s.maxBody <= 0 {
		s.maxBody = defaultMaxBodyBytes
	}
	if s.maxHeader <= 0 {
		s.maxHeader = DefaultMaxHeaderBytes
	}
	if s.readHeaderTimeout <= 0 {
		s.readHeaderTimeout = DefaultReadHeaderTimeout
	}
	if s.idleTimeout <= 0 {
		s.idleTimeout = DefaultIdleTimeout
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
		MaxHTTPBodySize: s.maxBody,
		// What the parser may hold of one unfinished request: its head and body. nbhttp's
		// default is 64 MiB; serveHTTPData refuses heads and announced bodies over their
		// limits before this, so it only bounds what a chunked body buffers.
		ReadLimit:     s.maxBody + s.maxHeader,
		KeepaliveTime: s.idleTimeout,
		// Small pooled read buffers: one per poller read, not per connection.
		ReadBufferSize:          16 << 10,
		ReleaseWebsocketPayload: true,
		BodyAllocator:           bodyBuffers,
		MaxLoad:                 1 << 20,
	})
	s.engine.Engine.OnData(func(c *nbio.Conn, data []byte) {
		gate.wait()
		switch sess := c.Session().(type) {
		case *nbhttp.Parser:
			fence.settle(c)
			s.serveHTTPData(c, sess, data)
			return
		case *websocket.Conn:
			// With the lock: the session was set by the upgrading request's goroutine.
			if sc, ok := sess.SessionWithLock().(*Conn); ok {
				if !sc.countInbound(len(data)) {
					return
				}
				s.inline(c, sess, sc)
			}
		}
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
func (s *HTTPServer) inline(c *nbio.Conn, ws *websocket.Conn, sc *Conn) {
	if sc.inlineWS == ws || !sc.srv.opts.InlineWebsocket {
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

// inlineFirst makes the next request job of p, if no job of c is pending, run on the
// poller. It runs on the poller before p parses its first bytes, and nbhttp reads
// p.Execute on the poller while parsing, so the swap races with nothing; the first job
// puts the connection's own executor back.
func (s *HTTPServer) inlineFirst(c *nbio.Conn, p *nbhttp.Parser) {
	queued := p.Execute
	p.Execute = func(job func()) bool {
		p.Execute = queued
		if c.ExecuteLen() > 0 {
			return queued(job)
		}
		s.runJob(job)
		return true
	}
}

// WebsocketRequestLine reports whether requestLine (an HTTP request line without its
// line end) is a GET of path (with or without its trailing slash) asking for the
// websocket transport: an Engine.IO websocket handshake or the upgrade of a polling
// session.
func WebsocketRequestLine(requestLine []byte, path string) bool {
	rest, ok := bytes.CutPrefix(requestLine, []byte("GET "))
	if !ok {
		return false
	}
	target, _, _ := bytes.Cut(rest, []byte(" "))
	p, query, _ := bytes.Cut(target, []byte("?"))
	if string(p) != path && string(p) != strings.TrimSuffix(path, "/") {
		return false
	}
	for len(query) > 0 {
		var kv []byte
		kv, query, _ = bytes.Cut(query, []byte("&"))
		if bytes.Equal(kv, []byte("transport=websocket")) {
			return true
		}
	}
	return false
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

// nbioLogger routes nbio's package-level logging into the hclog.Logger held by target.
type nbioLogger struct{ target *atomic.Pointer[hclog.Logger] }

func (n nbioLogger) l() hclog.Logger          { return *n.target.Load() }
func (n nbioLogger) Debug(f string, v ...any) { n.l().Trace(fmt.Sprintf(f, v...)) }
func (n nbioLogger) Info(f string, v ...any)  { n.l().Debug(fmt.Sprintf(f, v...)) }
func (n nbioLogger) Warn(f string, v ...any)  { n.l().Warn(fmt.Sprintf(f, v...)) }
func (n nbioLogger) Error(f string, v ...any) { n.l().Error(fmt.Sprintf(f, v...)) }

var (
	nbioLogOnce   sync.Once
	nbioLogTarget atomic.Pointer[hclog.Logger]
)

// setNBIOLogger makes l receive nbio's logs; nbio has one logger per process, so the
// last HTTPServer started wins. nbio's global is written once: the pollers of servers
// already running read it without a lock, so only the target behind it changes.
func setNBIOLogger(l hclog.Logger) {
	named := l.Named("nbio")
	nbioLogTarget.Store(&named)
	nbioLogOnce.Do(func() { logging.SetLogger(nbioLogger{&nbioLogTarget}) })
}
