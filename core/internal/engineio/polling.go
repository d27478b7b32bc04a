package engineio

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pausedPollWait is how long a GET waits for news while polling is paused for an upgrade.
const pausedPollWait = 100 * time.Millisecond

// servePolling answers a GET (deliver queued packets) or a POST (receive packets) of a
// polling session.
func (c *Conn) servePolling(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		c.servePoll(w, r)
	case http.MethodPost:
		c.serveData(w, r)
	default:
		writeError(w, http.StatusBadRequest, codeBadRequest)
	}
}

// servePoll blocks until something is queued, the session pauses for an upgrade or
// closes, then writes the queue as one payload. A second concurrent GET is a protocol
// violation: it gets 400 and the session closes (the first GET receives the close packet).
func (c *Conn) servePoll(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.transport != transportPolling {
		c.mu.Unlock()
		writeError(w, http.StatusBadRequest, codeBadRequest)
		return
	}
	if c.polling {
		if c.closed {
			c.mu.Unlock()
			writeError(w, http.StatusBadRequest, codeUnknownSID)
			return
		}
		closers := c.shutdownLocked(ReasonTransportError, closeGraceful)
		c.mu.Unlock()
		writeError(w, http.StatusBadRequest, codeBadRequest)
		c.finishClose(ReasonTransportError, closers)
		return
	}
	if c.closed && len(c.queue) == 0 {
		c.mu.Unlock()
		c.srv.forget(c)
		writeError(w, http.StatusBadRequest, codeUnknownSID)
		return
	}
	c.polling = true
	if len(c.queue) == 0 && !c.closed {
		wake := make(chan struct{})
		c.pollWake = wake
		// While a probe is answered, polling is paused: a GET still arriving gets a noop,
		// after a short wait (as the reference server does), so that a client that misses
		// its pong and keeps polling does not spin until the probe times out.
		var paused <-chan time.Time
		if c.upgrading {
			t := time.NewTimer(pausedPollWait)
			defer t.Stop()
			paused = t.C
		}
		c.mu.Unlock()
		select {
		case <-wake:
		case <-paused:
		case <-r.Context().Done():
		}
		c.mu.Lock()
		if c.pollWake == wake {
			c.pollWake = nil
		}
	}
	msgs := c.queue
	c.queue, c.queued = nil, 0
	c.polling = false
	closed := c.closed
	c.mu.Unlock()
	if closed {
		// The close packet (if any) is in msgs: this GET was the last one.
		c.srv.forget(c)
	}
	if len(msgs) == 0 {
		// Woken for an upgrade, a shutdown or a close without close packet: a noop ends
		// the poll cycle so the client can move on.
		msgs = []*Message{msgNoop}
	}
	writePayload(w, encodePayload(msgs))
}

// serveData reads a POST payload and hands its packets to the session in order.
func (c *Conn) serveData(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		writeError(w, http.StatusBadRequest, codeUnknownSID)
		return
	}
	if c.transport != transportPolling {
		c.mu.Unlock()
		writeError(w, http.StatusBadRequest, codeBadRequest)
		return
	}
	// Another POST of the session being handled, or still arriving (its head was read,
	// its body not yet: HTTPServer hands a request over whole), means two writers: the
	// reference server answers 400 and ends the session, and so do we, instead of handling
	// this payload before one sent earlier.
	if c.posting || postsArriving(c.id) > 0 {
		closers := c.shutdownLocked(ReasonTransportError, closeAbort)
		c.mu.Unlock()
		writeError(w, http.StatusBadRequest, codeBadRequest)
		c.finishClose(ReasonTransportError, closers)
		return
	}
	c.posting = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.posting = false
		c.mu.Unlock()
	}()

	max := c.srv.opts.MaxPayload
	if r.ContentLength > int64(max) {
		c.payloadTooLarge(w)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
	if err != nil {
		c.closeWith(ReasonTransportError, closeAbort)
		writeError(w, http.StatusBadRequest, codeBadRequest)
		return
	}
	if len(body) > max {
		c.payloadTooLarge(w)
		return
	}
	var perr error
	c.deliver(func() {
		perr = decodePayload(body, func(p packet) error {
			if !c.onPacket(p) {
				return errStop
			}
			return nil
		})
	})
	if perr != nil && !errors.Is(perr, errStop) {
		c.closeWith(ReasonParseError, closeAbort)
	}
	// The reference server answers ok even when the payload closed the session.
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}

// arriving counts, per sid, the polling POSTs whose head HTTPServer has read and whose
// body it has not handed over yet. Sids are random and unique across servers, so one
// table serves every Server of the process; an entry lives only while such a POST does.
// Its mutex is a leaf, taken under Conn.mu by serveData and alone by the poller.
var arriving struct {
	mu sync.Mutex
	n  map[string]int
}

// postsArriving returns how many POSTs for sid are still arriving.
func postsArriving(sid string) int {
	arriving.mu.Lock()
	defer arriving.mu.Unlock()
	return arriving.n[sid]
}

// postArriving counts a POST for sid whose head was read (delta 1), or whose body
// arrived or whose connection closed (delta -1).
func postArriving(sid string, delta int) {
	arriving.mu.Lock()
	defer arriving.mu.Unlock()
	if arriving.n == nil {
		arriving.n = map[string]int{}
	}
	if n := arriving.n[sid] + delta; n > 0 {
		arriving.n[sid] = n
	} else {
		delete(arriving.n, sid)
	}
}

// pollingPostSID returns the sid of a polling POST's request URI, or "".
func pollingPostSID(method, uri string) string {
	if method != http.MethodPost || !strings.Contains(uri, "sid=") {
		return ""
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return ""
	}
	q := u.Query()
	if q.Get("transport") != TransportPolling {
		return ""
	}
	return q.Get("sid")
}

// errStop ends payload decoding once the session closed.
var errStop = errors.New("engineio: session closed while decoding")

// payloadTooLarge answers 413 and closes the session: the client cannot resend the body,
// and the reference client treats a failed POST as a transport error anyway.
func (c *Conn) payloadTooLarge(w http.ResponseWriter) {
	c.closeWith(ReasonTransportError, closeAbort)
	w.Header().Set("Content-Length", "0")
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
}

// writePayload writes a polling response body.
func writePayload(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
