//go:build race

package engineio

import (
	"net"
	"sync"
)

// raceBuild: the race detector makes sync.Pool drop a share of what it is given.
const raceBuild = true

// nbio hands an accepted connection from the listener goroutine to a poller goroutine
// through epoll, which the race detector cannot see, so it reports the poller's first
// reads of what the listener goroutine wrote. In race builds the listener goroutine holds
// a mutex from Accept until it comes back for the next connection (i.e. across nbhttp's
// registration of the connection), and the poller takes it before handling data: the
// real ordering becomes visible. Release builds do none of this.

type raceGate struct {
	mu   sync.Mutex
	held bool // only touched by the single listener goroutine
}

func newRaceGate() *raceGate { return &raceGate{} }

func (g *raceGate) wait() {
	g.mu.Lock()
	g.mu.Unlock() //nolint:staticcheck // an empty critical section is the point
}

type raceListener struct {
	net.Listener
	g *raceGate
}

func (g *raceGate) wrap(ln net.Listener) net.Listener { return raceListener{ln, g} }

func (l raceListener) Accept() (net.Conn, error) {
	if l.g.held {
		l.g.held = false
		l.g.mu.Unlock()
	}
	c, err := l.Listener.Accept()
	if err == nil {
		l.g.mu.Lock()
		l.g.held = true
	}
	return c, err
}
