package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The soak scenario runs a mix of clients against one server for a while and checks what a
// long run would reveal: lost messages, a server that stops answering, and goroutines,
// file descriptors or heap that do not come back once the clients leave. For its duration,
// concurrently:
//
//   - well-behaved clients join room "soak", receive every POST /api/room message (each
//     carries a sequence number; every 10th is ~100 KB) and send a request every 100 ms,
//     one in flight, checking each answer: client:event to the echo plugin (one request
//     in the whole run every 2 s carries ~500 KB), every 10th a chat message to the room
//     through the chat plugin;
//   - slow readers join the same room and stop reading: the server must drop them (its
//     outbound cap, "buffer full"), which POST /api/push shows (delivered: false);
//   - churning clients join, cut their TCP connection, and reconnect with the pid and
//     offset of the last event they saw, as the official client does: each must get its
//     session back (same id, system:state_recovered, still registered) and every room
//     message it missed, once and in order;
//   - a poller sends GET /health every 200 ms with a short timeout (1 s).
//
// The server's goroutines, file descriptors and heap are read after a warm-up with no
// clients, and again once the clients have left. A watchdog ends the run (FAIL) when
// /health or the HTTP API stops answering, after asking the server for a goroutine dump
// (SIGQUIT), which is kept with its log.

// soakOptions size the soak scenario.
type soakOptions struct {
	duration time.Duration
	clients  int // well-behaved
	slow     int // clients that stop reading
	churn    int // clients that drop and recover their connection
	rate     int // POST /api/room per second
	// healthTimeout is how long a GET /health may take before it counts as a miss.
	healthTimeout time.Duration
}

// extraScenarios are run only when named.
var extraScenarios = []scenario{{"soak", (*runner).soak}}

const (
	soakRoom          = "soak"
	soakLargeEvery    = 10        // every 10th room message is large
	soakLargeRoom     = 100 << 10 // bytes of padding in a large room message
	soakLargeEvent    = 500 << 10 // bytes of padding in a large client:event
	soakLargeInterval = 2 * time.Second
	soakRequestEvery  = 100 * time.Millisecond // client:event pace of a well-behaved client
	soakReplyTimeout  = 15 * time.Second       // a client:event without answer is counted lost
	healthEvery       = 200 * time.Millisecond
	// hangAfter: /health unanswered this long, or an API call unanswered within the API
	// client's timeout, and the server is taken for hung.
	hangAfter = 10 * time.Second
	// Bounds at the end, over the warm-up reading.
	goroutineSlack = 10
	fdSlack        = 5
	// heapSlack covers the recovery log, which stays after the clients left: at most
	// recovery.max_bytes_total (32 MiB by default) of packets, plus its bookkeeping.
	heapSlack = 64 << 20
)

// seqCheck follows the sequence numbers of the room messages one client receives. next is
// touched only by the client's reader goroutine (one connection at a time); the counters
// are read by others.
type seqCheck struct {
	next int64 // the sequence number expected next; -1 until the first one
	got  atomic.Int64
	gaps atomic.Int64 // numbers skipped
	dups atomic.Int64 // numbers seen again or out of order
}

func (q *seqCheck) see(seq int64) {
	switch {
	case q.next < 0 || seq == q.next:
	case seq > q.next:
		q.gaps.Add(seq - q.next)
	default:
		q.dups.Add(1)
		return
	}
	q.got.Add(1)
	q.next = seq + 1
}

// roomSeq reads the sequence number of a room message packet.
func roomSeq(pkt []byte) (int64, bool) {
	_, rest, ok := bytes.Cut(pkt, []byte(`"seq":`))
	if !ok {
		return 0, false
	}
	var n int64
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		n = n*10 + int64(rest[i]-'0')
		i++
	}
	return n, i > 0
}

// lastOffset returns the recovery offset the server appends to an event as its last
// argument (a string, `,"<offset>"]` at the end of the packet).
func lastOffset(pkt []byte) (string, bool) {
	if !bytes.HasSuffix(pkt, []byte(`"]`)) {
		return "", false
	}
	body := pkt[:len(pkt)-2]
	i := bytes.LastIndexByte(body, '"')
	if i < 1 || body[i-1] != ',' || bytes.ContainsAny(body[i+1:], `\,`) {
		return "", false
	}
	return string(body[i+1:]), true
}

// acked waits for the next value on ch, at most d.
func acked(ctx context.Context, ch <-chan bool, d time.Duration, what string) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: refused", what)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%s: no answer within %s", what, d)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// joinAck forwards register:ack and room:join:ack results (success or not) to acks.
func joinAck(name, pkt []byte, acks chan<- bool) bool {
	if string(name) != "register:ack" && string(name) != "room:join:ack" {
		return false
	}
	select {
	case acks <- bytes.Contains(pkt, []byte(`"success":true`)):
	default:
	}
	return true
}

// registerAndJoin registers c as user and joins the soak room, waiting for both acks.
func registerAndJoin(ctx context.Context, c *client, user string, acks <-chan bool) error {
	if err := c.send([]byte(`42["register",{"userId":"` + user + `"}]`)); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if err := acked(ctx, acks, 10*time.Second, "register:ack"); err != nil {
		return err
	}
	if err := c.send([]byte(`42["room:join",{"room":"` + soakRoom + `"}]`)); err != nil {
		return fmt.Errorf("room:join: %w", err)
	}
	return acked(ctx, acks, 10*time.Second, "room:join:ack")
}

// sample is one reading of the server's resources.
type sample struct {
	goroutines, fds int
	heap, rss       int64
}

// sampleServer reads goroutines and heap from /metrics and fds and RSS from /proc.
func sampleServer(ctx context.Context, srv *serverProc, hc *http.Client) (sample, error) {
	var s sample
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.httpURL("/metrics"), nil)
	if err != nil {
		return s, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return s, fmt.Errorf("GET /metrics: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return s, fmt.Errorf("GET /metrics: %w", err)
	}
	g := parseMetric(bytes.NewReader(body), "go_goroutines")
	h := parseMetric(bytes.NewReader(body), "go_memstats_heap_inuse_bytes")
	if g < 0 || h < 0 {
		return s, errors.New("GET /metrics: no go_goroutines or go_memstats_heap_inuse_bytes")
	}
	s.goroutines, s.heap = int(g), int64(h)
	if s.fds, err = procFDs(srv.pid); err != nil {
		return s, err
	}
	s.rss, err = srv.rss()
	return s, err
}

// soakRun is the state of one soak run.
type soakRun struct {
	r   *runner
	o   soakOptions
	srv *serverProc
	api *apiClient
	hc  *http.Client // /health and /metrics
	t0  time.Time

	abort     context.Context // ends at a hang or at the scenario's time limit
	abortStop context.CancelFunc
	load      context.Context // ends when the load phase ends
	hangMu    sync.Mutex
	hang      string // what was found stuck; "" while nothing was
	dump      string // where the server's log with its goroutine dump was kept

	posted    atomic.Int64 // POST /api/room answered with success
	postFails atomic.Int64
	postErr   atomic.Pointer[string]
	roomBytes atomic.Int64 // room message bytes sent to each member of the room
	bigDue    atomic.Bool  // the next client:event is a large one

	health healthLog
}

// healthLog is what the /health poller saw.
type healthLog struct {
	mu     sync.Mutex
	polls  int
	misses []string // "at 12.3s: error"
	maxLat time.Duration
}

// stuck records that the server stopped answering: it asks the server for a goroutine
// dump, keeps its log, and ends the run.
func (s *soakRun) stuck(what string) {
	s.hangMu.Lock()
	if s.hang != "" {
		s.hangMu.Unlock()
		return
	}
	s.hang = fmt.Sprintf("%s (at %.1fs)", what, time.Since(s.t0).Seconds())
	s.hangMu.Unlock()
	s.r.log.Error("soak: the server looks hung; asking it for a goroutine dump (SIGQUIT)", "what", what)
	s.abortStop()
	_ = syscall.Kill(s.srv.pid, syscall.SIGQUIT)
	select {
	case <-s.srv.exited:
	case <-time.After(5 * time.Second):
	}
	kept := filepath.Join(os.TempDir(), fmt.Sprintf("rtserver-soak-hang-%d.log", s.srv.pid))
	if err := copyFile(s.srv.logPath, kept, 0o644); err != nil {
		s.r.log.Warn("soak: cannot keep the server log", "error", err)
		return
	}
	s.hangMu.Lock()
	s.dump = kept
	s.hangMu.Unlock()
	s.r.log.Error("soak: server log with its goroutine dump kept", "path", kept)
}

func (s *soakRun) hung() (string, string) {
	s.hangMu.Lock()
	defer s.hangMu.Unlock()
	return s.hang, s.dump
}

// pollHealth sends GET /health every healthEvery until ctx ends, recording misses and the
// slowest answer; a server silent for hangAfter is taken for hung.
func (s *soakRun) pollHealth(ctx context.Context) {
	t := time.NewTicker(healthEvery)
	defer t.Stop()
	var silentSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t1 := time.Now()
		err := s.healthOnce(ctx)
		lat := time.Since(t1)
		if ctx.Err() != nil {
			return
		}
		s.health.mu.Lock()
		s.health.polls++
		s.health.maxLat = max(s.health.maxLat, lat)
		if err != nil {
			s.health.misses = append(s.health.misses, fmt.Sprintf("%.1fs %s", t1.Sub(s.t0).Seconds(), errClass(err)))
		}
		s.health.mu.Unlock()
		switch {
		case err == nil:
			silentSince = time.Time{}
		case silentSince.IsZero():
			silentSince = t1
		case time.Since(silentSince) >= hangAfter:
			s.stuck(fmt.Sprintf("GET /health unanswered for %s (last: %v)", time.Since(silentSince).Round(time.Second), err))
			return
		}
	}
}

func (s *soakRun) healthOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.httpURL("/health"), nil)
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// apiCall is an API call of the soak: a call the server does not answer within the API
// client's timeout means it is hung.
func (s *soakRun) apiCall(path, body string) (apiResult, error) {
	res, err := s.api.post(s.abort, path, body)
	if err != nil && s.abort.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout")) {
		s.stuck(fmt.Sprintf("POST %s unanswered within %s", path, s.api.hc.Timeout))
	}
	return res, err
}

// postRoom sends room messages at the configured rate until the load phase ends.
func (s *soakRun) postRoom() {
	t := time.NewTicker(time.Second / time.Duration(s.o.rate))
	defer t.Stop()
	pad := strings.Repeat("x", soakLargeRoom)
	for seq := int64(0); ; seq++ {
		select {
		case <-s.load.Done():
			return
		case <-t.C:
		}
		data := `{"seq":` + strconv.FormatInt(seq, 10) + `,"pad":"`
		if seq%soakLargeEvery == soakLargeEvery-1 {
			data += pad
		}
		data += `"}`
		_, err := s.apiCall("/api/room", `{"room":"`+soakRoom+`","event":"soak:room","data":`+data+`}`)
		if err != nil {
			s.postFails.Add(1)
			msg := fmt.Sprintf("seq %d: %v", seq, err)
			s.postErr.CompareAndSwap(nil, &msg)
			if s.abort.Err() != nil {
				return
			}
			continue
		}
		s.posted.Add(1)
		s.roomBytes.Add(int64(len(data)))
	}
}

// member is a well-behaved client.
type member struct {
	c       *client
	user    string
	seq     seqCheck
	acks    chan bool
	want    atomic.Pointer[string] // the token of the client:event in flight
	replies chan bool

	sent, answered, bad, unanswered, big, chat atomic.Int64
	sendErr                                    atomic.Pointer[string]
}

func (s *soakRun) newMember(ctx context.Context, idx int, token string) (*member, error) {
	// Joined before the first room message (seq 0): it expects them all.
	m := &member{user: "load-" + strconv.Itoa(idx), acks: make(chan bool, 1), replies: make(chan bool, 1)}
	respOK := []byte(`"success":true`)
	h := hooks{event: func(c *client, name, pkt []byte) {
		switch string(name) {
		case "soak:room":
			if n, ok := roomSeq(pkt); ok {
				m.seq.see(n)
			}
		case "server:response", "message:ack", "error":
			want := m.want.Load()
			ok := string(name) != "error" && want != nil &&
				bytes.Contains(pkt, respOK) && bytes.Contains(pkt, []byte(*want))
			select {
			case m.replies <- ok:
			default:
			}
		default:
			joinAck(name, pkt, m.acks)
		}
	}}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, _, err := dial(dctx, dialOptions{url: s.srv.wsURL(), token: token, welcome: true, hooks: h, idx: idx})
	if err != nil {
		return nil, fmt.Errorf("client %d: %w", idx, err)
	}
	m.c = c
	if err := registerAndJoin(ctx, c, m.user, m.acks); err != nil {
		c.close()
		return nil, fmt.Errorf("client %d: %w", idx, err)
	}
	return m, nil
}

// request sends a request every soakRequestEvery until the load phase ends, one in
// flight, and checks each answer: client:event to the echo plugin (its server:response
// must carry the request's token back), and every 10th a chat message to the room through
// the chat plugin (message:ack).
func (s *soakRun) request(m *member) {
	bigPad := strings.Repeat("y", soakLargeEvent)
	chatOK := `"success":true`
	for k := 0; ; k++ {
		if sleep(s.load, soakRequestEvery) != nil {
			return
		}
		tok := fmt.Sprintf(`"tok":"%d-%d"`, m.c.idx, k)
		var pkt string
		if k%10 == 9 {
			// message:ack carries no token: one request in flight makes it this one's.
			m.want.Store(&chatOK)
			m.chat.Add(1)
			pkt = `42["client:message",{"type":"chat","content":"hello ` + tok[7:len(tok)-1] + `","metadata":{"room":"` + soakRoom + `"}}]`
		} else {
			m.want.Store(&tok)
			pad := ""
			if s.bigDue.CompareAndSwap(true, false) {
				pad = bigPad
				m.big.Add(1)
			}
			pkt = `42["client:event",{"type":"soak","data":{` + tok + `,"pad":"` + pad + `"}}]`
		}
		m.sent.Add(1)
		if err := m.c.send([]byte(pkt)); err != nil {
			msg := err.Error()
			m.sendErr.CompareAndSwap(nil, &msg)
			m.unanswered.Add(1)
			return
		}
		t := time.NewTimer(soakReplyTimeout)
		select {
		case ok := <-m.replies:
			t.Stop()
			if ok {
				m.answered.Add(1)
			} else {
				m.bad.Add(1)
			}
		case <-t.C:
			// Later answers would be taken for the next request's: stop here.
			m.unanswered.Add(1)
			msg := fmt.Sprintf("request %s: no answer within %s", tok, soakReplyTimeout)
			m.sendErr.CompareAndSwap(nil, &msg)
			return
		case <-s.abort.Done():
			t.Stop()
			m.unanswered.Add(1)
			return
		}
	}
}

// slowReader is a client that stops reading once it has joined the room.
type slowReader struct {
	c       *client
	user    string
	resume  chan struct{} // closed to let its reader go on
	stopped time.Time     // when it stopped reading
	dropped atomic.Int64  // ns from stopped to when the server no longer had it; 0 = still there
}

func (s *soakRun) newSlowReader(ctx context.Context, idx int, token string) (*slowReader, error) {
	sr := &slowReader{user: "load-" + strconv.Itoa(idx), resume: make(chan struct{})}
	acks := make(chan bool, 1)
	h := hooks{event: func(c *client, name, pkt []byte) {
		if joinAck(name, pkt, acks) && string(name) == "room:join:ack" {
			// Blocking the reader stops reading the socket: what the server sends
			// from now on piles up in the kernel's buffers, then in the server's queue.
			<-sr.resume
		}
	}}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, _, err := dial(dctx, dialOptions{url: s.srv.wsURL(), token: token, welcome: true, hooks: h, idx: idx})
	if err != nil {
		return nil, fmt.Errorf("slow reader %d: %w", idx, err)
	}
	sr.c = c
	if err := registerAndJoin(ctx, c, sr.user, acks); err != nil {
		close(sr.resume)
		c.close()
		return nil, fmt.Errorf("slow reader %d: %w", idx, err)
	}
	sr.stopped = time.Now()
	return sr, nil
}

// watchSlow asks the server every second, with POST /api/push, whether it still holds each
// slow reader (delivered: false once it dropped it), until ctx ends.
func (s *soakRun) watchSlow(ctx context.Context, srs []*slowReader) {
	for {
		left := 0
		for _, sr := range srs {
			if sr.dropped.Load() != 0 {
				continue
			}
			left++
			res, err := s.apiCall("/api/push", `{"userId":"`+sr.user+`","event":"soak:probe","data":{}}`)
			if err == nil && !res.Delivered {
				sr.dropped.Store(int64(max(time.Since(sr.stopped), 1)))
				s.r.log.Info("soak: the server dropped a slow reader", "user", sr.user, "after", time.Since(sr.stopped).Round(100*time.Millisecond))
			}
		}
		if left == 0 || sleep(ctx, time.Second) != nil {
			return
		}
	}
}

// churner drops its connection and recovers it until the load phase ends.
type churner struct {
	user                             string
	seq                              seqCheck
	cycles, recovered, failed, wrong atomic.Int64
	firstErr                         atomic.Pointer[string]
}

func (ch *churner) fail(format string, args ...any) {
	ch.wrong.Add(1)
	msg := fmt.Sprintf(format, args...)
	ch.firstErr.CompareAndSwap(nil, &msg)
}

// churn runs one churning client: connect, register, join; then, over and over, hold the
// connection a while, cut it (TCP close, no DISCONNECT), stay away a while and reconnect
// with the pid and offset of the last event seen. The recovered session must have the
// same id, be told system:state_recovered, still be registered and get every room message
// it missed.
func (s *soakRun) churn(ch *churner, idx int, token string) {
	var sid, pid, offset string
	for cycle := 0; s.load.Err() == nil; cycle++ {
		acks := make(chan bool, 1)
		state := make(chan bool, 1)
		h := hooks{event: func(c *client, name, pkt []byte) {
			if off, ok := lastOffset(pkt); ok {
				offset = off
			}
			switch string(name) {
			case "soak:room":
				if n, ok := roomSeq(pkt); ok {
					ch.seq.see(n)
				}
			case "system:state_recovered":
				state <- true
			case "system:state_recovery_failed":
				// What it missed is gone: follow the room again from its next message.
				ch.seq.next = -1
				state <- false
			default:
				joinAck(name, pkt, acks)
			}
		}}
		var auth map[string]any
		if pid != "" {
			auth = map[string]any{"pid": pid, "offset": offset}
		}
		dctx, cancel := context.WithTimeout(s.abort, 15*time.Second)
		c, _, err := dial(dctx, dialOptions{url: s.srv.wsURL(), token: token, auth: auth, welcome: true, hooks: h, idx: idx})
		cancel()
		if err != nil {
			if s.abort.Err() == nil {
				ch.fail("reconnection %d: %v", cycle, err)
			}
			return
		}
		if pid != "" {
			ch.cycles.Add(1)
			recovered := false
			select {
			case recovered = <-state:
			case <-time.After(10 * time.Second):
				ch.fail("reconnection %d: neither system:state_recovered nor _failed within 10s", cycle)
			}
			switch {
			case !recovered:
				ch.failed.Add(1)
				sid, pid = "", ""
			case c.sid != sid || c.pid != pid:
				ch.fail("reconnection %d: recovered as sid %s pid %s, was %s %s", cycle, c.sid, c.pid, sid, pid)
			default:
				ch.recovered.Add(1)
				if res, err := s.apiCall("/api/push", `{"userId":"`+ch.user+`","event":"soak:probe","data":{}}`); err == nil && !res.Delivered {
					ch.fail("reconnection %d: recovered but no longer registered (push not delivered)", cycle)
				}
			}
		}
		if pid == "" {
			if err := registerAndJoin(s.abort, c, ch.user, acks); err != nil {
				if s.abort.Err() == nil {
					ch.fail("cycle %d: %v", cycle, err)
				}
				c.close()
				return
			}
			sid, pid = c.sid, c.pid
		}
		// Connected for 0.3-1.5 s, then the transport drops; away for 0.1-0.5 s.
		err = sleep(s.load, 300*time.Millisecond+rand.N(1200*time.Millisecond))
		if err != nil {
			// The end: leave for good, so that the server keeps no session.
			_ = c.send([]byte("41"))
		}
		c.close()
		if err != nil || sleep(s.load, 100*time.Millisecond+rand.N(400*time.Millisecond)) != nil {
			return
		}
	}
}

// soak runs the soak scenario.
func (r *runner) soak(ctx context.Context) ([]row, error) {
	const name = "soak"
	var rows []row
	var verdictErr error
	err := r.withServer(ctx, []string{"echo", "chat"}, func(srv *serverProc) error {
		s := &soakRun{r: r, o: r.o.soak, srv: srv, t0: time.Now(),
			hc: &http.Client{Timeout: 2 * r.o.soak.healthTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}}
		defer s.hc.CloseIdleConnections()
		s.api = newAPIClient(srv, 4)
		defer s.api.close()
		s.abort, s.abortStop = context.WithCancel(ctx)
		defer s.abortStop()

		healthCtx, healthStop := context.WithCancel(s.abort)
		var bg sync.WaitGroup
		defer bg.Wait()
		defer healthStop()
		bg.Go(func() { s.pollHealth(healthCtx) })

		if err := waitPluginReady(s.abort, srv); err != nil {
			return err
		}
		// Warm-up: every path once (register, join, a plugin round trip, a room message
		// and a push), then the baseline with no client connected.
		if err := s.warmUp(); err != nil {
			return err
		}
		if err := sleep(s.abort, r.o.settle); err != nil {
			return err
		}
		base, err := sampleServer(s.abort, srv, s.hc)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		r.log.Info("soak: baseline", "goroutines", base.goroutines, "fds", base.fds, "heap_inuse_mb", float64(base.heap)/(1<<20))

		// Clients.
		nw, ns, nc := s.o.clients, s.o.slow, s.o.churn
		toks, err := tokens(srv.secret, 0, nw+ns+nc)
		if err != nil {
			return err
		}
		members := make([]*member, 0, nw)
		slow := make([]*slowReader, 0, ns)
		defer func() {
			for _, sr := range slow {
				close(sr.resume)
				sr.c.close()
			}
			for _, m := range members {
				m.c.close()
			}
		}()
		for i := range nw {
			m, err := s.newMember(s.abort, i, toks[i])
			if err != nil {
				return err
			}
			members = append(members, m)
		}
		for i := nw; i < nw+ns; i++ {
			sr, err := s.newSlowReader(s.abort, i, toks[i])
			if err != nil {
				return err
			}
			slow = append(slow, sr)
		}

		// A hung server stops reading: cut the clients' connections, so that no write of
		// the tool waits for it.
		toCut, slowToCut := members, slow
		cut := context.AfterFunc(s.abort, func() {
			for _, m := range toCut {
				m.c.ws.Close()
			}
			for _, sr := range slowToCut {
				sr.c.ws.Close()
			}
		})
		defer cut()

		// The load phase.
		var cancelLoad context.CancelFunc
		s.load, cancelLoad = context.WithTimeout(s.abort, s.o.duration)
		defer cancelLoad()
		r.log.Info("soak: load", "duration", s.o.duration, "clients", nw, "slow", ns, "churn", nc, "room_rate", s.o.rate)
		var peak sample
		var loadWG sync.WaitGroup
		loadWG.Go(s.postRoom)
		loadWG.Go(func() {
			for sleep(s.load, soakLargeInterval) == nil {
				s.bigDue.Store(true)
			}
		})
		loadWG.Go(func() {
			for sleep(s.load, 5*time.Second) == nil {
				if cur, err := sampleServer(s.load, srv, s.hc); err == nil {
					peak = sample{max(peak.goroutines, cur.goroutines), max(peak.fds, cur.fds), max(peak.heap, cur.heap), max(peak.rss, cur.rss)}
				}
			}
		})
		for _, m := range members {
			loadWG.Go(func() { s.request(m) })
		}
		churners := make([]*churner, nc)
		for i := range churners {
			churners[i] = &churner{user: "load-" + strconv.Itoa(nw+ns+i), seq: seqCheck{next: -1}}
			loadWG.Go(func() { s.churn(churners[i], nw+ns+i, toks[nw+ns+i]) })
		}
		slowCtx, slowStop := context.WithCancel(s.abort)
		var slowWG sync.WaitGroup
		slowWG.Go(func() { s.watchSlow(slowCtx, slow) })
		<-s.load.Done()
		loadWG.Wait()
		loadEnd := time.Now()

		// Every member must get every room message; then the clients leave.
		posted := s.posted.Load()
		wctx, wcancel := context.WithTimeout(s.abort, 20*time.Second)
		_ = waitFor(wctx, srv, nil, "every room message", func() bool {
			for _, m := range members {
				if m.seq.got.Load() < posted {
					return false
				}
			}
			return true
		})
		wcancel()
		// One more round of the slow readers' check, then they go.
		_ = sleep(s.abort, time.Second)
		slowStop()
		slowWG.Wait()
		for _, m := range members {
			_ = m.c.send([]byte("41"))
			m.c.close()
		}
		for _, sr := range slow {
			close(sr.resume)
			sr.c.close()
		}
		left, leftSlow := members, slow
		members, slow = nil, nil

		// The end reading, once the server had time to let go: the lowest of the
		// readings until the bounds hold (at most 15 s after the settle).
		var end sample
		endErr := sleep(s.abort, r.o.settle)
		if endErr == nil {
			deadline := time.Now().Add(15 * time.Second)
			for first := true; ; first = false {
				cur, err := sampleServer(s.abort, srv, s.hc)
				if err != nil {
					endErr = err
					break
				}
				if first {
					end = cur
				} else {
					end = sample{min(end.goroutines, cur.goroutines), min(end.fds, cur.fds), min(end.heap, cur.heap), cur.rss}
				}
				ok := end.goroutines <= base.goroutines+goroutineSlack && end.fds <= base.fds+fdSlack && end.heap <= base.heap+heapSlack
				if ok || time.Now().After(deadline) || sleep(s.abort, 500*time.Millisecond) != nil {
					break
				}
			}
		}
		healthStop()
		bg.Wait()

		rows = s.report(name, base, peak, end, endErr, left, leftSlow, churners, posted, loadEnd)
		missed := 0
		for _, rw := range rows {
			if rw.Verdict == "MISSED" {
				missed++
			}
		}
		hang, dump := s.hung()
		switch {
		case hang != "" && dump != "":
			verdictErr = fmt.Errorf("server hung: %s; its log with a goroutine dump: %s", hang, dump)
		case hang != "":
			verdictErr = fmt.Errorf("server hung: %s", hang)
		case missed > 0:
			verdictErr = fmt.Errorf("%d soak checks missed", missed)
		}
		verdict := "PASS"
		if verdictErr != nil {
			verdict = "FAIL: " + verdictErr.Error()
		}
		rows = append(rows, info(name, "result", verdict))
		r.log.Info("soak: " + verdict)
		if hang != "" {
			// The server was sent SIGQUIT: do not judge its exit.
			return verdictErr
		}
		return nil
	})
	if err == nil {
		err = verdictErr
	}
	return rows, err
}

// warmUp runs every path of the soak once with one client, which then leaves.
func (s *soakRun) warmUp() error {
	const idx = 1_000_001
	tok, err := tokens(s.srv.secret, idx, idx+1)
	if err != nil {
		return err
	}
	m, err := s.newMember(s.abort, idx, tok[0])
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	defer m.c.close()
	tokField := `"tok":"warm"`
	m.want.Store(&tokField)
	if err := m.c.send([]byte(`42["client:event",{"type":"soak","data":{` + tokField + `}}]`)); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if err := acked(s.abort, m.replies, 10*time.Second, "warm-up server:response"); err != nil {
		return err
	}
	if _, err := s.apiCall("/api/room", `{"room":"`+soakRoom+`","event":"soak:warm","data":{}}`); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if _, err := s.apiCall("/api/push", `{"userId":"`+m.user+`","event":"soak:warm","data":{}}`); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return m.c.send([]byte("41"))
}

// report turns what the run saw into rows.
func (s *soakRun) report(name string, base, peak, end sample, endErr error, members []*member, slow []*slowReader,
	churners []*churner, posted int64, loadEnd time.Time) []row {
	o := s.o
	var rows []row
	rows = append(rows,
		info(name, "clients", fmt.Sprintf("%d well-behaved, %d slow-reading, %d churning, for %s", o.clients, o.slow, o.churn, o.duration)),
		info(name, "traffic", fmt.Sprintf("POST /api/room %d/s (every %dth ~%d KB); client:event every %s per client (one ~%d KB every %s)",
			o.rate, soakLargeEvery, soakLargeRoom>>10, soakRequestEvery, soakLargeEvent>>10, soakLargeInterval)),
		info(name, "server settings", filepath.Base(s.r.o.spec.config)),
	)

	// Room messages to the well-behaved clients.
	var dups, lost int64
	for _, m := range members {
		dups += m.seq.dups.Load()
		lost += max(posted-m.seq.got.Load(), 0)
	}
	rows = append(rows,
		info(name, "room messages posted", fmt.Sprintf("%d (%.1f MB to each member of the room)", posted, float64(s.roomBytes.Load())/(1<<20))),
		atMost(name, "POST /api/room failures", float64(s.postFails.Load()), 0, "%.0f"),
		atMost(name, "room messages lost, well-behaved clients", float64(lost), 0, "%.0f"),
		atMost(name, "room messages repeated or out of order", float64(dups), 0, "%.0f"),
	)
	if p := s.postErr.Load(); p != nil {
		rows = append(rows, info(name, "first POST /api/room failure", *p))
	}

	// Plugin round trips.
	var sent, answered, bad, unanswered, big, chat int64
	var reqErr string
	for _, m := range members {
		sent += m.sent.Load()
		answered += m.answered.Load()
		bad += m.bad.Load()
		unanswered += m.unanswered.Load()
		big += m.big.Load()
		chat += m.chat.Load()
		if p := m.sendErr.Load(); p != nil && reqErr == "" {
			reqErr = *p
		}
	}
	rows = append(rows,
		info(name, "requests sent / answered", fmt.Sprintf("%d / %d (%d client:event to echo, %d of them ~%d KB; %d client:message to chat)",
			sent, answered, sent-chat, big, soakLargeEvent>>10, chat)),
		atMost(name, "requests failed or unanswered", float64(bad+unanswered), 0, "%.0f"),
	)
	if reqErr != "" {
		rows = append(rows, info(name, "first request failure", reqErr))
	}

	// Slow readers.
	if len(slow) > 0 {
		var drops []string
		dropped := 0
		for _, sr := range slow {
			if d := sr.dropped.Load(); d != 0 {
				dropped++
				drops = append(drops, fmt.Sprintf("%.1fs", time.Duration(d).Seconds()))
			}
		}
		v := fmt.Sprintf("%d of %d", dropped, len(slow))
		if dropped > 0 {
			v += ", after " + strings.Join(drops, " ") + " of not reading (ping timeout: 45 s)"
		}
		// Within the run, the heartbeat alone drops them (ping interval + timeout, 45 s
		// by default); a shorter run may end before their buffers fill.
		if hang, _ := s.hung(); o.duration >= 60*time.Second && hang == "" {
			rows = append(rows, judged(name, "slow readers dropped by the server", dropped == len(slow), v, fmt.Sprint(len(slow))))
		} else {
			rows = append(rows, info(name, "slow readers dropped by the server", v))
		}
	}

	// Churn.
	if len(churners) > 0 {
		var cycles, recovered, failed, wrong, cgaps, cdups int64
		var first string
		for _, ch := range churners {
			cycles += ch.cycles.Load()
			recovered += ch.recovered.Load()
			failed += ch.failed.Load()
			wrong += ch.wrong.Load()
			cgaps += ch.seq.gaps.Load()
			cdups += ch.seq.dups.Load()
			if p := ch.firstErr.Load(); p != nil && first == "" {
				first = *p
			}
		}
		rows = append(rows,
			info(name, "churn reconnections / recovered", fmt.Sprintf("%d / %d", cycles, recovered)),
			atMost(name, "recoveries refused (state_recovery_failed)", float64(failed), 0, "%.0f"),
			atMost(name, "recoveries wrong (sid, registration, errors)", float64(wrong), 0, "%.0f"),
			atMost(name, "room messages lost across recoveries", float64(cgaps), 0, "%.0f"),
			atMost(name, "room messages repeated across recoveries", float64(cdups), 0, "%.0f"),
		)
		if first != "" {
			rows = append(rows, info(name, "first churn failure", first))
		}
	}

	// /health.
	s.health.mu.Lock()
	misses := s.health.misses
	rows = append(rows,
		atMost(name, fmt.Sprintf("GET /health misses (%d polls, %s timeout)", s.health.polls, s.o.healthTimeout), float64(len(misses)), 0, "%.0f"),
		info(name, "GET /health slowest answer", fmt.Sprintf("%.1f ms", ms(s.health.maxLat))),
	)
	s.health.mu.Unlock()
	if len(misses) > 0 {
		shown := misses[:min(len(misses), 5)]
		rows = append(rows, info(name, "GET /health missed at (s since start)", strings.Join(shown, ", ")))
		s.r.log.Warn("soak: /health misses", "count", len(misses), "all", strings.Join(misses, "\n"))
	}

	// Resources.
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	rows = append(rows, info(name, "server goroutines / fds / heap in use, warm-up",
		fmt.Sprintf("%d / %d / %.1f MB (RSS %.1f MB)", base.goroutines, base.fds, mb(base.heap), mb(base.rss))))
	if peak.goroutines > 0 {
		rows = append(rows, info(name, "  peak during the load (5 s samples)",
			fmt.Sprintf("%d / %d / %.1f MB (RSS %.1f MB)", peak.goroutines, peak.fds, mb(peak.heap), mb(peak.rss))))
	}
	if hang, _ := s.hung(); hang != "" {
		return append(rows, info(name, "  after the clients left", "not read: the server hung"))
	}
	if endErr != nil {
		return append(rows, failed(name, fmt.Errorf("end reading: %w", endErr)))
	}
	rows = append(rows,
		info(name, "  after the clients left", fmt.Sprintf("%d / %d / %.1f MB (RSS %.1f MB), %.0f s after the load",
			end.goroutines, end.fds, mb(end.heap), mb(end.rss), time.Since(loadEnd).Seconds())),
		atMost(name, "server goroutines over warm-up", float64(end.goroutines-base.goroutines), goroutineSlack, "%.0f"),
		atMost(name, "server fds over warm-up", float64(end.fds-base.fds), fdSlack, "%.0f"),
		atMost(name, "server heap in use over warm-up", mb(end.heap-base.heap), mb(heapSlack), "%.1f MB"),
	)
	return rows
}
