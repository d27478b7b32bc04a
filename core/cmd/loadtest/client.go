package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// hooks are a scenario's reactions to what the server sends after the handshake. They run
// on the connection's reader goroutine, one packet at a time; nil ones are ignored. The byte
// slices are only valid during the call.
type hooks struct {
	// event receives an EVENT packet: name is the event name, pkt the whole packet.
	event func(c *client, name, pkt []byte)
	// ack receives an ACK packet with its id.
	ack func(c *client, id uint64, pkt []byte)
}

// client is one Socket.IO v5 connection over an Engine.IO v4 websocket: just enough of the
// protocol to load a server (no polling, no reconnection, default namespace only). One
// goroutine reads; writes are serialized by wmu.
type client struct {
	idx int
	ws  *websocket.Conn
	h   hooks

	wmu  sync.Mutex
	wbuf []byte // packet being built, guarded by wmu

	// sent is when the request in flight left (unix ns); read by the reader goroutine.
	sent atomic.Int64
	// seq numbers the acks this client asked for.
	seq atomic.Uint64

	// sid and pid are the socket id and the private session id of the CONNECT ack (pid
	// only with connection state recovery on); set by the handshake.
	sid, pid string

	rbuf    []byte
	done    chan struct{}
	readErr error // valid once done is closed
	closing atomic.Bool
}

// dialer is shared by every connection. Small buffers and a shared write-buffer pool keep
// tens of thousands of idle client connections cheap for the generator.
var dialer = &websocket.Dialer{
	NetDialContext:   dialTCP,
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   1024,
	WriteBufferSize:  1024,
	WriteBufferPool:  &sync.Pool{},
}

// Local ports are chosen here rather than by the kernel: with tens of thousands of
// connections to one address the kernel's search for a free ephemeral port in connect()
// grows with every port in use (measured: the generator spent more time in that search than
// the server in serving the connects). Ports below the ephemeral range are taken in turn;
// SO_REUSEADDR lets a port still in TIME_WAIT from an earlier scenario (whose server had
// another port) be bound again.
const (
	firstLocalPort = 10000
	lastLocalPort  = 32000
)

var nextLocalPort atomic.Uint32

func dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	var err error
	for range 20 {
		port := firstLocalPort + int(nextLocalPort.Add(1)%(lastLocalPort-firstLocalPort))
		d := net.Dialer{
			Timeout:   10 * time.Second,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port},
			Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				if err := rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
				}); err != nil {
					return err
				}
				return serr
			},
		}
		var c net.Conn
		c, err = d.DialContext(ctx, network, addr)
		if err == nil {
			return c, nil
		}
		// A port someone else holds: take the next one.
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, err
		}
	}
	return nil, err
}

// errConnectRefused is a CONNECT_ERROR from the server.
var errConnectRefused = errors.New("connect refused by the server")

// dialOptions say how far dial takes the handshake.
type dialOptions struct {
	url   string
	token string
	// auth holds CONNECT auth fields besides the token, e.g. the pid and offset of a
	// session to recover.
	auth map[string]any
	// welcome makes dial wait for the system:welcome event after the CONNECT ack.
	welcome bool
	// register (with welcome) makes dial emit `register` for the token's user after the
	// welcome and wait for its successful register:ack.
	register string
	hooks    hooks
	idx      int
}

// dial opens a websocket, reads the Engine.IO open packet, sends the Socket.IO CONNECT with
// the token and waits for the CONNECT ack (and, if asked, system:welcome). It returns the
// client with its reader running, and the time from the dial to the CONNECT ack.
func dial(ctx context.Context, o dialOptions) (*client, time.Duration, error) {
	start := time.Now()
	ws, resp, err := dialer.DialContext(ctx, o.url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, 0, fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, 0, fmt.Errorf("dial: %w", err)
	}
	c := &client{idx: o.idx, ws: ws, h: o.hooks, done: make(chan struct{}), rbuf: make([]byte, 0, 512)}
	if dl, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(dl)
	}
	lat, err := c.handshake(o, start)
	if err != nil {
		ws.Close()
		return nil, 0, err
	}
	_ = ws.SetReadDeadline(time.Time{})
	go c.readLoop()
	return c, lat, nil
}

func (c *client) handshake(o dialOptions, start time.Time) (time.Duration, error) {
	p, err := c.read()
	if err != nil {
		return 0, fmt.Errorf("read open packet: %w", err)
	}
	if len(p) < 2 || p[0] != '0' || p[1] != '{' {
		return 0, fmt.Errorf("expected an Engine.IO open packet, got %q", clip(p))
	}
	fields := map[string]any{"token": o.token}
	for k, v := range o.auth {
		fields[k] = v
	}
	auth, err := json.Marshal(fields)
	if err != nil {
		return 0, fmt.Errorf("CONNECT auth: %w", err)
	}
	if err := c.send(append([]byte("40"), auth...)); err != nil {
		return 0, fmt.Errorf("send CONNECT: %w", err)
	}
	var lat time.Duration
	connected := false
	for {
		p, err := c.read()
		if err != nil {
			if connected {
				return 0, fmt.Errorf("waiting for system:welcome: %w", err)
			}
			return 0, fmt.Errorf("waiting for the CONNECT ack: %w", err)
		}
		switch {
		case len(p) == 1 && p[0] == '2':
			if err := c.send([]byte{'3'}); err != nil {
				return 0, fmt.Errorf("send pong: %w", err)
			}
		case !connected && bytes.HasPrefix(p, []byte("40{")):
			lat = time.Since(start)
			connected = true
			var ids struct{ SID, PID string }
			if err := json.Unmarshal(p[2:], &ids); err != nil {
				return 0, fmt.Errorf("CONNECT ack %q: %w", clip(p), err)
			}
			c.sid, c.pid = ids.SID, ids.PID
			if !o.welcome {
				return lat, nil
			}
		case bytes.HasPrefix(p, []byte("44")):
			return 0, fmt.Errorf("%w: %s", errConnectRefused, clip(p[2:]))
		case connected && bytes.HasPrefix(p, []byte("42")):
			name, _ := eventName(p[2:])
			switch string(name) {
			case "system:welcome":
				if o.register == "" {
					return lat, nil
				}
				reg, err := json.Marshal([]any{"register", map[string]string{"userId": o.register}})
				if err != nil {
					return 0, fmt.Errorf("register: %w", err)
				}
				if err := c.send(append([]byte("42"), reg...)); err != nil {
					return 0, fmt.Errorf("send register: %w", err)
				}
				continue
			case "register:ack":
				if o.register != "" {
					if !bytes.Contains(p, []byte(`"success":true`)) {
						return 0, fmt.Errorf("register refused: %s", clip(p[2:]))
					}
					return lat, nil
				}
			}
			c.dispatch(p)
		case connected:
			c.dispatch(p)
		default:
			return 0, fmt.Errorf("unexpected packet before the CONNECT ack: %q", clip(p))
		}
	}
}

// read returns the next websocket message in the client's reused buffer.
func (c *client) read() ([]byte, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	buf := c.rbuf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			c.rbuf = buf
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (c *client) readLoop() {
	defer close(c.done)
	for {
		p, err := c.read()
		if err != nil {
			c.readErr = err
			return
		}
		if len(p) == 1 && p[0] == '2' {
			if err := c.send([]byte{'3'}); err != nil {
				c.readErr = err
				return
			}
			continue
		}
		if len(p) >= 2 && p[0] == '4' && p[1] == '1' {
			c.readErr = errors.New("disconnected by the server (DISCONNECT packet)")
			c.ws.Close()
			return
		}
		c.dispatch(p)
	}
}

// dispatch hands Socket.IO EVENT and ACK packets to the hooks.
func (c *client) dispatch(p []byte) {
	if len(p) < 2 || p[0] != '4' {
		return
	}
	switch p[1] {
	case '2':
		if c.h.event != nil {
			if name, ok := eventName(p[2:]); ok {
				c.h.event(c, name, p)
			}
		}
	case '3':
		if c.h.ack != nil {
			if id, ok := ackID(p[2:]); ok {
				c.h.ack(c, id, p)
			}
		}
	}
}

// send writes one packet as a text frame.
func (c *client) send(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, p)
}

// sendTimed builds a packet with build (into a buffer reused under the write lock), notes
// the send time for the latency of the reply, and writes it.
func (c *client) sendTimed(build func(b []byte) []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = build(c.wbuf[:0])
	c.sent.Store(time.Now().UnixNano())
	return c.ws.WriteMessage(websocket.TextMessage, c.wbuf)
}

// sendPing emits a `ping` event that asks for an ack, numbered by the client's sequence.
func (c *client) sendPing() error {
	id := c.seq.Add(1)
	return c.sendTimed(func(b []byte) []byte {
		b = append(b, "42"...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, `["ping",{"timestamp":`...)
		b = strconv.AppendInt(b, time.Now().UnixMilli(), 10)
		return append(b, "}]"...)
	})
}

// since is the time elapsed since the last timed send.
func (c *client) since() time.Duration {
	return time.Duration(time.Now().UnixNano() - c.sent.Load())
}

// close cuts the connection and waits for the reader to stop.
func (c *client) close() {
	c.closing.Store(true)
	c.ws.Close()
	<-c.done
}

// alive reports whether the reader is still running, and its error if not.
func (c *client) alive() (bool, error) {
	select {
	case <-c.done:
		return false, c.readErr
	default:
		return true, nil
	}
}

// eventName extracts the event name from an EVENT packet body (after "42"): an optional ack
// id, then `["name"`. It does not handle escaped quotes in names; no event here has any.
func eventName(p []byte) ([]byte, bool) {
	i := 0
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	if i+2 > len(p) || p[i] != '[' || p[i+1] != '"' {
		return nil, false
	}
	rest := p[i+2:]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return nil, false
	}
	return rest[:j], true
}

// ackID reads the id of an ACK packet body (after "43").
func ackID(p []byte) (uint64, bool) {
	var id uint64
	n := 0
	for n < len(p) && p[n] >= '0' && p[n] <= '9' {
		id = id*10 + uint64(p[n]-'0')
		n++
	}
	return id, n > 0 && n < len(p) && p[n] == '['
}

// clip shortens a packet for an error message.
func clip(p []byte) string {
	const max = 200
	if len(p) > max {
		return string(p[:max]) + "..."
	}
	return string(p)
}

// closeAll closes clients in parallel.
func closeAll(cs []*client) {
	const workers = 32
	var wg sync.WaitGroup
	ch := make(chan *client)
	for range workers {
		wg.Go(func() {
			for c := range ch {
				c.close()
			}
		})
	}
	for _, c := range cs {
		if c != nil {
			ch <- c
		}
	}
	close(ch)
	wg.Wait()
}

// deadClients counts clients whose reader stopped without being closed by us, with the
// first error seen.
func deadClients(cs []*client) (int, error) {
	n := 0
	var first error
	for _, c := range cs {
		if c == nil || c.closing.Load() {
			continue
		}
		if ok, err := c.alive(); !ok {
			n++
			if first == nil {
				first = err
			}
		}
	}
	return n, first
}
