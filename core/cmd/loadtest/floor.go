package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// floor measures what the kernel and Go's network poller alone cost on this machine, with no
// protocol at all, to read the other figures against: a plain TCP echo over loopback (the
// shape of an ack round trip) and one small write to each of many sockets (the shape of a
// room delivery). Both ends run in this process.
func (r *runner) floor(ctx context.Context) ([]row, error) {
	const name = "floor"
	busy0, _ := machineBusy()
	self0, start := selfCPU(), time.Now()
	defer func() {
		busy1, _ := machineBusy()
		r.otherLoad = float64(busy1-busy0-(selfCPU()-self0)) / float64(time.Since(start))
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	var accepted []net.Conn
	var amu sync.Mutex
	var wg sync.WaitGroup
	defer func() {
		ln.Close()
		amu.Lock()
		for _, c := range accepted {
			c.Close()
		}
		amu.Unlock()
		wg.Wait()
	}()
	// The echo side: a goroutine per connection, like a blocking server.
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			amu.Lock()
			accepted = append(accepted, c)
			amu.Unlock()
			wg.Go(func() {
				b := make([]byte, 512)
				for {
					n, err := c.Read(b)
					if err != nil {
						return
					}
					if _, err := c.Write(b[:n]); err != nil {
						return
					}
				}
			})
		}
	})
	conns := make([]net.Conn, r.o.roomSize)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		if conns[i], err = dialTCP(ctx, "tcp", ln.Addr().String()); err != nil {
			return nil, fmt.Errorf("dial: %w", err)
		}
	}

	// Echo round trips on ackConns connections, one in flight each.
	echoConns := conns[:min(r.o.ackConns, len(conns))]
	var stop atomic.Bool
	var trips atomic.Int64
	var cwg sync.WaitGroup
	msg := []byte(`42["ping",{"timestamp":1700000000000}]`)
	for _, c := range echoConns {
		cwg.Go(func() {
			b := make([]byte, 512)
			for !stop.Load() {
				if _, err := c.Write(msg); err != nil {
					return
				}
				if _, err := io.ReadFull(c, b[:len(msg)]); err != nil {
					return
				}
				trips.Add(1)
			}
		})
	}
	if err := sleep(ctx, r.o.warmup); err != nil {
		stop.Store(true)
		cwg.Wait()
		return nil, err
	}
	cpu0, n0, t0 := selfCPU(), trips.Load(), time.Now()
	err = sleep(ctx, r.o.window)
	cpu1, n1, elapsed := selfCPU(), trips.Load(), time.Since(t0)
	stop.Store(true)
	cwg.Wait()
	if err != nil {
		return nil, err
	}
	n := float64(n1 - n0)
	rows := []row{
		info(name, "TCP echo round trips/s", fmt.Sprintf("%.0f (%d connections, 1 in flight each)", n/elapsed.Seconds(), len(echoConns))),
		info(name, "CPU per echo round trip, per side", fmt.Sprintf("%.2f µs", us(cpu1-cpu0)/n/2)),
	}

	// One small write to each socket, from one thread, counted on that thread alone. The
	// echo side sends the bytes back; they are drained so that no buffer fills.
	for _, c := range conns {
		cwg.Go(func() {
			b := make([]byte, 4096)
			for {
				if _, err := c.Read(b); err != nil {
					return
				}
			}
		})
	}
	// An unmasked server text frame, as a delivery would write it.
	payload := `42["bench",{"n":1,"text":"hello, room"},"offset-1"]`
	frame := append([]byte{0x81, byte(len(payload))}, payload...)
	writes, perWrite, err := threadWrites(conns, frame, r.o.roomMsgs/10+1)
	for _, c := range conns {
		c.Close()
	}
	cwg.Wait()
	if err != nil {
		return nil, err
	}
	r.smallWrite = us(perWrite)
	rows = append(rows, info(name, "CPU per small write to one of many sockets", fmt.Sprintf("%.2f µs (%d writes)", us(perWrite), writes)))
	return rows, nil
}

// threadWrites writes frame to every conn, rounds times, on one locked OS thread, and
// returns the thread's CPU per write.
func threadWrites(conns []net.Conn, frame []byte, rounds int) (int, time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, after syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	if err := syscall.Getrusage(rusageThread, &before); err != nil {
		return 0, 0, fmt.Errorf("getrusage: %w", err)
	}
	writes := 0
	for range rounds {
		for _, c := range conns {
			if _, err := c.Write(frame); err != nil {
				return 0, 0, fmt.Errorf("write: %w", err)
			}
			writes++
		}
	}
	if err := syscall.Getrusage(rusageThread, &after); err != nil {
		return 0, 0, fmt.Errorf("getrusage: %w", err)
	}
	used := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
	return writes, used / time.Duration(writes), nil
}

// loopback is n TCP connections over loopback to an echo server in this process: what
// the floor's figures are measured on, kept open so that they can be measured in slices
// between the steps of a scenario. A floor taken in the same seconds as the figure it is
// set beside is moved by a host whose speed drifts (other tenants, frequency) as much as
// that figure is.
type loopback struct {
	ln    net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

// newLoopback dials n connections; with drain, this side reads and drops the echo (the
// floor's small writes), otherwise the caller reads it (the echo round trips).
func newLoopback(ctx context.Context, n int, drain bool) (*loopback, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	l := &loopback{ln: ln}
	l.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	for range n {
		c, err := dialTCP(ctx, "tcp", ln.Addr().String())
		if err != nil {
			l.close()
			return nil, fmt.Errorf("dial: %w", err)
		}
		l.conns = append(l.conns, c)
		if drain {
			l.wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		}
	}
	return l, nil
}

func (l *loopback) close() {
	l.ln.Close()
	for _, c := range l.conns {
		c.Close()
	}
	l.wg.Wait()
}

// writeRig measures the floor's small write to one of many sockets in slices.
type writeRig struct {
	*loopback
	frame []byte

	writes int
	cpu    time.Duration
}

func newWriteRig(ctx context.Context, n int) (*writeRig, error) {
	l, err := newLoopback(ctx, n, true)
	if err != nil {
		return nil, err
	}
	payload := `42["bench",{"n":1,"text":"hello, room"},"offset-1"]`
	return &writeRig{loopback: l, frame: append([]byte{0x81, byte(len(payload))}, payload...)}, nil
}

// slice writes the frame to every connection rounds times and adds the writing thread's
// CPU to the totals.
func (w *writeRig) slice(rounds int) error {
	n, per, err := threadWrites(w.conns, w.frame, rounds)
	if err != nil {
		return err
	}
	w.writes += n
	w.cpu += per * time.Duration(n)
	return nil
}

// perWrite is the CPU per write over every slice so far, in µs.
func (w *writeRig) perWrite() float64 {
	if w.writes == 0 {
		return 0
	}
	return us(w.cpu) / float64(w.writes)
}

// echoRig measures the floor's TCP echo in slices.
type echoRig struct {
	*loopback

	trips int64
	cpu   time.Duration
}

func newEchoRig(ctx context.Context, n int) (*echoRig, error) {
	l, err := newLoopback(ctx, n, false)
	if err != nil {
		return nil, err
	}
	return &echoRig{loopback: l}, nil
}

// slice runs the echo, one round trip in flight per connection, for d and adds this
// process's CPU and the round trips to the totals.
func (e *echoRig) slice(ctx context.Context, d time.Duration) error {
	var stop atomic.Bool
	var trips atomic.Int64
	var wg sync.WaitGroup
	msg := []byte(`42["ping",{"timestamp":1700000000000}]`)
	cpu0 := selfCPU()
	for _, c := range e.conns {
		wg.Go(func() {
			b := make([]byte, len(msg))
			for !stop.Load() {
				if _, err := c.Write(msg); err != nil {
					return
				}
				if _, err := io.ReadFull(c, b); err != nil {
					return
				}
				trips.Add(1)
			}
		})
	}
	err := sleep(ctx, d)
	stop.Store(true)
	wg.Wait()
	e.cpu += selfCPU() - cpu0
	e.trips += trips.Load()
	return err
}

// perSide is the CPU per round trip and side over every slice so far, in µs.
func (e *echoRig) perSide() float64 {
	if e.trips == 0 {
		return 0
	}
	return us(e.cpu) / float64(e.trips) / 2
}
