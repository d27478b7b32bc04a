package engineio

import (
	"errors"
	"io"
	"net/http"
	"strconv"
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
		closers := c.shutdownLocked(ReasonTransportError, true)
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
	if c.posting {
		closers := c.shutdownLocked(ReasonTransportError, true)
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
		c.closeWith(ReasonTransportError, false)
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
		c.closeWith(ReasonParseError, false)
	}
	// The reference server answers ok even when the payload closed the session.
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}

// errStop ends payload decoding once the session closed.
var errStop = errors.New("engineio: session closed while decoding")

// payloadTooLarge answers 413 and closes the session: the client cannot resend the body,
// and the reference client treats a failed POST as a transport error anyway.
func (c *Conn) payloadTooLarge(w http.ResponseWriter) {
	c.closeWith(ReasonTransportError, false)
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
