package engineio

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// Defaults of HTTPServer's request limits.
const (
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	defaultMaxBodyBytes      = 8 << 20
)

// refusalLinger is how long a refused connection is still read (and what it sends
// dropped) before it is closed: closing with unread data would reset the connection,
// and the peer could lose the answer.
const refusalLinger = time.Second

// allowedMethods answers a method the HTTP parser does not know (405 needs an Allow).
const allowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// headGuard enforces HTTPServer's request-head limits on one connection: the bytes of a
// request line and headers, the time they take to arrive, and the request framing
// headers nbhttp would accept ambiguously. It wraps the connection's nbhttp processor
// from its first read until the connection is upgraded (the parser, and this with it,
// is then dropped) or closed. Only the connection's poller goroutine touches it: the
// scan runs in the data hook, the callbacks inside Parse, both on the poller.
type headGuard struct {
	nbhttp.Processor
	srv *HTTPServer

	inHead    bool      // between requests or reading a head: bytes count as head bytes
	headBytes int       // of the current head so far
	headStart time.Time // first byte of the current head; zero before it
	crlf      uint8     // how much of "\r\n\r\n" the bytes seen so far end with

	contentLengths int  // Content-Length headers of the current head
	chunked        bool // the current head has Transfer-Encoding
	method, uri    string
	postSID        string // the sid of the polling POST being read, counted by postArriving
	refusal        int    // status decided inside Parse; answered once Parse returns
	refused        bool   // answered: what the peer sends now is dropped
}

// OnMethod notes the request's method (see OnContentLength).
func (g *headGuard) OnMethod(p *nbhttp.Parser, method string) {
	g.method = method
	g.Processor.OnMethod(p, method)
}

// OnURL notes the request's target (see OnContentLength).
func (g *headGuard) OnURL(p *nbhttp.Parser, uri string) error {
	g.uri = uri
	return g.Processor.OnURL(p, uri)
}

// OnHeader counts the framing headers: two Content-Lengths, or one with a
// Transfer-Encoding, make the body's end ambiguous (request smuggling), so such a
// request is refused instead of framed by the first header as nbhttp would.
func (g *headGuard) OnHeader(p *nbhttp.Parser, key, value string) {
	switch key {
	case "Content-Length":
		g.contentLengths++
	case "Transfer-Encoding":
		g.chunked = true
	}
	g.Processor.OnHeader(p, key, value)
}

// OnContentLength runs when the head is complete: a body announced over the limit is
// refused before it is read (nbhttp would buffer it whole first).
func (g *headGuard) OnContentLength(p *nbhttp.Parser, n int) {
	switch {
	case g.contentLengths > 1 || (g.contentLengths > 0 && g.chunked):
		g.refusal = http.StatusBadRequest
	case n > g.srv.maxBody:
		g.refusal = http.StatusRequestEntityTooLarge
	}
	if g.refusal == 0 {
		// A polling POST is counted from its head on: a POST of the same session that
		// arrives whole meanwhile is an overlap (Conn.serveData).
		if sid := pollingPostSID(g.method, g.uri); sid != "" {
			g.postSID = sid
			postArriving(sid, 1)
		}
	}
	g.Processor.OnContentLength(p, n)
}

// postDone ends the count of the polling POST being read, if any.
func (g *headGuard) postDone() {
	if g.postSID != "" {
		postArriving(g.postSID, -1)
		g.postSID = ""
	}
}

// Close ends the count of a POST cut short.
func (g *headGuard) Close(p *nbhttp.Parser, err error) {
	g.postDone()
	g.Processor.Close(p, err)
}

// OnComplete hands a whole request to the handler, unless it was refused, and starts
// counting the next head.
func (g *headGuard) OnComplete(p *nbhttp.Parser) {
	g.postDone()
	g.inHead, g.headBytes, g.headStart, g.crlf = true, 0, time.Time{}, 0
	g.contentLengths, g.chunked = 0, false
	if g.refusal != 0 {
		g.Processor.Clean(p) // releases the request without running it
		return
	}
	g.Processor.OnComplete(p)
}

// scan accounts data read while a head is expected, before the parser sees it, and
// reports whether it may be parsed. The head's read deadline is set at its first byte
// and checked as bytes arrive, so a head sent a byte at a time is cut too; once the
// head is complete, the deadline becomes the idle timeout, which bounds the body and
// lets a long-polling handler wait.
func (g *headGuard) scan(c *nbio.Conn, data []byte) bool {
	if !g.inHead {
		return true
	}
	s := g.srv
	now := time.Now()
	if g.headStart.IsZero() {
		g.headStart = now
		_ = c.SetReadDeadline(now.Add(s.readHeaderTimeout))
	} else if now.Sub(g.headStart) > s.readHeaderTimeout {
		s.Logger.Debug("request head too slow", "remote", c.RemoteAddr().String())
		_ = c.Close()
		g.refused = true
		return false
	}
	end := g.headEnd(data)
	n := len(data)
	if end >= 0 {
		n = end
	}
	g.headBytes += n
	if g.headBytes > s.maxHeader {
		s.refuse(c, g, http.StatusRequestHeaderFieldsTooLarge)
		return false
	}
	if end >= 0 {
		g.inHead = false
		_ = c.SetReadDeadline(now.Add(s.idleTimeout))
	}
	return true
}

// headEnd returns the index just past the "\r\n\r\n" that ends the head, or -1 when
// data does not complete it; the state carries over between reads.
func (g *headGuard) headEnd(data []byte) int {
	st := g.crlf
	for i, b := range data {
		switch {
		case b == '\r' && (st == 0 || st == 2):
			st++
		case b == '\n' && (st == 1 || st == 3):
			st++
			if st == 4 {
				g.crlf = 0
				return i + 1
			}
		case b == '\r':
			st = 1
		default:
			st = 0
		}
	}
	g.crlf = st
	return -1
}

// serveHTTPData is the data hook of a connection still speaking HTTP: the head limits,
// then nbhttp's parser, then an answer to whatever the parser or the limits refused.
func (s *HTTPServer) serveHTTPData(c *nbio.Conn, p *nbhttp.Parser, data []byte) {
	g, ok := p.Processor.(*headGuard)
	if !ok {
		// The connection's first read: nothing has parsed yet, so the swap races with
		// nothing.
		g = &headGuard{Processor: p.Processor, srv: s, inHead: true}
		p.Processor = g
		if s.Inline != nil {
			if line, _, ok := bytes.Cut(data, []byte("\n")); ok && s.Inline(bytes.TrimSuffix(line, []byte("\r"))) {
				s.inlineFirst(c, p)
			}
		}
	}
	if g.refused || !g.scan(c, data) {
		return
	}
	err := p.Parse(data)
	switch {
	case g.refusal != 0:
		s.refuse(c, g, g.refusal)
	case err == nil:
	case c.Session() != any(p):
		// Upgraded meanwhile: a websocket error, not an HTTP one.
		_ = c.CloseWithError(err)
	case errors.Is(err, nbhttp.ErrTooLong):
		s.refuse(c, g, http.StatusRequestEntityTooLarge)
	case errors.Is(err, nbhttp.ErrInvalidMethod):
		s.refuse(c, g, http.StatusMethodNotAllowed)
	default:
		s.Logger.Debug("malformed request", "remote", c.RemoteAddr().String(), "error", err)
		s.refuse(c, g, http.StatusBadRequest)
	}
}

// refusalMessages are the messages of the answers refuse writes.
var refusalMessages = map[int]string{
	http.StatusBadRequest:                  "Malformed request",
	http.StatusMethodNotAllowed:            "Method not allowed",
	http.StatusRequestEntityTooLarge:       "Request body too large",
	http.StatusRequestHeaderFieldsTooLarge: "Request headers too large",
}

// refuse answers a request no handler will see with a minimal HTTP/1.1 response that
// closes the connection, then reads and drops what the peer still sends for
// refusalLinger before closing.
func (s *HTTPServer) refuse(c *nbio.Conn, g *headGuard, status int) {
	g.refused = true
	g.postDone()
	msg := refusalMessages[status]
	var body []byte
	var hdr http.Header
	if s.RefusalBody != nil {
		body, hdr = s.RefusalBody(status, msg)
	} else {
		body = []byte(`{"message":` + strconv.Quote(msg) + `}`)
	}
	b := make([]byte, 0, 256+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	if status == http.StatusMethodNotAllowed {
		b = append(b, "Allow: "+allowedMethods+"\r\n"...)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	_, _ = c.Write(b)
	_ = c.SetReadDeadline(time.Now().Add(refusalLinger))
}
