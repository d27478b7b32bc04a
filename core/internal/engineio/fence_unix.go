//go:build unix

package engineio

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/lesismal/nbio"
)

// Why accepted connections pass a fence before nbio sees them.
//
// nbio indexes its connections by fd number, and a poller handles the events of one
// epoll_wait batch after another. A connection can be closed on any goroutine (a handler
// whose write fails with EPIPE because the peer went away makes nbio close the fd right
// there). If its poller has already fetched an event for that fd (the peer's hang-up:
// HUP|RDHUP|IN) and not yet handled it, and meanwhile the listener accepts a connection
// that gets the same fd number, the poller finds the new connection under that fd, reads
// its request and then closes it because of the old event's HUP bits: the client's
// upgrade (or request) fails with "unexpected EOF". Under connection churn this hit about
// one dial in 2,000.
//
// The fence closes that window. The listener wrapper allocates the nbio connection (and so
// its fd number) itself, then, before handing it over for registration, writes one byte
// to a sentinel socket registered on the poller that will own the connection, and waits
// until that poller has read it. The byte is written after the fd number was freed, so the
// poller reads it in a batch fetched after the old fd was closed, and epoll reports no
// events of a closed fd: every batch that could hold a stale event for the number has been
// handled by then. The cost is one poller round trip per accepted connection whose number
// was given to an earlier one.
//
// A number the fence never handed out needs no pass: the engine's pollers only watch fds
// that came through this listener (and the sentinels, which live as long as it), so no
// poller can hold an event of an earlier connection under that number. While a server
// fills (its start, a reconnect storm after a restart) the kernel hands out ever higher
// numbers and the accepts skip the round trip; under churn, numbers come back and are
// fenced as before.
type acceptFence struct {
	net.Listener
	log hclog.Logger

	mu       sync.Mutex
	engine   *nbio.Engine
	started  bool
	closed   bool
	npoller  int
	sentinel []*fenceSentinel // by poller index; nil where none could be placed

	// handed has bit n set once fd number n was given to a connection; allReused makes
	// every number count as given. Only the listener goroutine touches them.
	handed    []uint64
	allReused bool

	// registering is the connection Accept last returned until nbhttp comes back for the
	// next one. nbhttp adds a connection to its poller and only then sets its first read
	// deadline (the keep-alive time); the poller may meanwhile have read the first
	// request and set the deadline that request calls for (the head's, or a refusal's
	// linger), which nbhttp's would then replace. settle makes the poller wait out that
	// moment before it handles a connection's data.
	registering atomic.Pointer[nbio.Conn]
}

// settleSpins is how many times settle yields before it sleeps between looks.
const settleSpins = 100

// settle returns once nbhttp has finished registering c: at once for every connection
// but the one just accepted, whose request can arrive before nbhttp is done with it.
func (f *acceptFence) settle(c *nbio.Conn) {
	if f.registering.Load() != c {
		return
	}
	deadline := time.Now().Add(fenceWait)
	for i := 0; f.registering.Load() == c; i++ {
		if i < settleSpins {
			runtime.Gosched()
			continue
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// fenceWait bounds a wait on the sentinel: a poller that does not answer (shutting down)
// must not stop the listener; the connection is then registered unfenced.
const fenceWait = time.Second

// fenceSpins is how many times pass yields before it parks.
const fenceSpins = 50

// fenceSentinel is one end of a socket pair registered on a poller; the other end, peer,
// is written by the listener goroutine.
type fenceSentinel struct {
	conn *nbio.Conn
	peer int
	seq  uint8        // last byte written; only the listener goroutine touches it
	seen atomic.Int32 // last byte read by the poller
	wake chan struct{}
}

func newAcceptFence(ln net.Listener, log hclog.Logger) *acceptFence {
	return &acceptFence{Listener: ln, log: log}
}

// setEngine names the engine whose pollers the fence covers; call before it starts.
func (f *acceptFence) setEngine(e *nbio.Engine) {
	f.mu.Lock()
	f.engine = e
	f.mu.Unlock()
}

// Accept accepts a connection, converts it to an nbio connection (nbhttp keeps a
// *nbio.Conn as it is) and waits for the owning poller to pass the fence.
func (f *acceptFence) Accept() (net.Conn, error) {
	// nbhttp calls Accept again only once it has registered the last connection.
	f.registering.Store(nil)
	c, err := f.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !f.active() {
		return c, nil
	}
	nc, err := nbConnCloseOnExec(c)
	if err != nil {
		// NBConn has not closed c: nbhttp retries the conversion and drops it. Should it
		// succeed, the poller watches a number the fence did not see handed out: from
		// then on every number is fenced.
		f.allReused = true
		return c, nil
	}
	f.registering.Store(nc)
	fd := nc.Hash()
	if !f.handOut(fd) {
		return nc, nil
	}
	idx := fd % f.npoller
	if idx < len(f.sentinel) && f.sentinel[idx] != nil {
		f.pass(f.sentinel[idx])
	}
	return nc, nil
}

// handOut marks fd number n as given to a connection and reports whether it had been
// given before, that is whether the connection needs the fence.
func (f *acceptFence) handOut(n int) (reused bool) {
	if n < 0 || f.allReused {
		return true
	}
	w, bit := n/64, uint64(1)<<(n%64)
	if w >= len(f.handed) {
		f.handed = append(f.handed, make([]uint64, w+1-len(f.handed))...)
	}
	reused = f.handed[w]&bit != 0
	f.handed[w] |= bit
	return reused
}

// active starts the fence on the first Accept (the pollers run by then) and reports
// whether it is in force. Only the listener goroutine calls it.
func (f *acceptFence) active() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.engine == nil || f.closed {
		return false
	}
	if !f.started {
		f.started = true
		if err := f.placeSentinels(); err != nil {
			f.log.Warn("accept fence disabled", "error", err)
		}
	}
	return len(f.sentinel) > 0
}

// placeSentinels registers one sentinel socket on every poller. nbio picks the poller by
// fd number, so socket pairs are made until every poller has one; spares are closed.
func (f *acceptFence) placeSentinels() error {
	f.npoller = f.engine.NPoller
	if f.npoller <= 0 {
		return fmt.Errorf("engineio: accept fence: %d pollers", f.npoller)
	}
	f.sentinel = make([]*fenceSentinel, f.npoller)
	var spares []*fenceSentinel
	defer func() {
		for _, s := range spares {
			s.close()
		}
	}()
	placed := 0
	for try := 0; placed < f.npoller && try < 4*f.npoller+8; try++ {
		s, err := newFenceSentinel()
		if err != nil {
			f.closeSentinelsLocked()
			return err
		}
		idx := s.conn.Hash() % f.npoller
		if f.sentinel[idx] != nil {
			spares = append(spares, s)
			continue
		}
		if _, err := f.engine.AddConn(s.conn); err != nil {
			_ = syscall.Close(s.peer)
			f.closeSentinelsLocked()
			return fmt.Errorf("engineio: accept fence: register sentinel: %w", err)
		}
		f.sentinel[idx] = s
		placed++
	}
	if placed < f.npoller {
		f.closeSentinelsLocked()
		return fmt.Errorf("engineio: accept fence: placed %d of %d sentinels", placed, f.npoller)
	}
	return nil
}

func newFenceSentinel() (*fenceSentinel, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("engineio: accept fence: socketpair: %w", err)
	}
	file := os.NewFile(uintptr(fds[0]), "fence")
	uc, err := net.FileConn(file) // dups the fd
	_ = file.Close()
	if err != nil {
		_ = syscall.Close(fds[1])
		return nil, fmt.Errorf("engineio: accept fence: %w", err)
	}
	nc, err := nbConnCloseOnExec(uc) // dups again and closes uc
	if err != nil {
		_ = uc.Close()
		_ = syscall.Close(fds[1])
		return nil, fmt.Errorf("engineio: accept fence: %w", err)
	}
	s := &fenceSentinel{conn: nc, peer: fds[1], wake: make(chan struct{}, 1)}
	s.seen.Store(-1)
	nc.OnData(s.onData)
	return s, nil
}

// nbConnCloseOnExec converts c as nbhttp would (nbio dups the fd and closes c) and marks
// the new fd close-on-exec, which nbio's plain dup(2) does not: otherwise every plugin
// process started meanwhile inherits the connection, keeping the socket open after we
// close it (the peer sees no FIN) and keeping it in the poller's epoll set under a number
// that nbio may reuse. ForkLock makes dup and flag atomic with respect to fork.
func nbConnCloseOnExec(c net.Conn) (*nbio.Conn, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	nc, err := nbio.NBConn(c)
	if err != nil {
		return nil, err
	}
	if rc, err := nc.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { syscall.CloseOnExec(int(fd)) })
	}
	return nc, nil
}

// onData runs on the poller.
func (s *fenceSentinel) onData(_ *nbio.Conn, data []byte) {
	if len(data) == 0 {
		return
	}
	s.seen.Store(int32(data[len(data)-1]))
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *fenceSentinel) close() {
	_ = s.conn.Close()
	_ = syscall.Close(s.peer)
}

// pass writes the next byte to s and waits until its poller has read it.
func (f *acceptFence) pass(s *fenceSentinel) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	s.seq++
	seq := s.seq
	_, err := syscall.Write(s.peer, []byte{seq})
	f.mu.Unlock()
	if err != nil {
		return
	}
	// The poller usually answers within microseconds: yielding a few times is much
	// cheaper than parking this goroutine and being woken.
	for i := 0; i < fenceSpins; i++ {
		if s.seen.Load() == int32(seq) {
			return
		}
		runtime.Gosched()
	}
	timer := time.NewTimer(fenceWait)
	defer timer.Stop()
	for s.seen.Load() != int32(seq) {
		select {
		case <-s.wake:
		case <-timer.C:
			f.log.Warn("accept fence: poller did not answer; registering unfenced")
			return
		}
	}
}

// Close closes the listener and the sentinels' write ends (nbio closes the registered
// ends when the engine stops).
func (f *acceptFence) Close() error {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		for _, s := range f.sentinel {
			if s != nil {
				_ = syscall.Close(s.peer)
			}
		}
	}
	f.mu.Unlock()
	return f.Listener.Close()
}

func (f *acceptFence) closeSentinelsLocked() {
	for i, s := range f.sentinel {
		if s != nil {
			s.close()
			f.sentinel[i] = nil
		}
	}
	f.sentinel = nil
}
