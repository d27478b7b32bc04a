package socketio

import (
	"sync"

	"github.com/rtserver/rtserver/core/internal/engineio"
)

// Broadcast writes.
//
// A broadcast queues its frames to every recipient (engineio.Conn.Queue: no system call)
// and leaves the writing to a flusher: one goroutine, started when there is work and gone
// when there is none, that writes each waiting socket's frames with one write. While it
// writes, further broadcasts queue behind: the busier the server, the more frames share a
// write, so the cost of a delivery falls as the load rises instead of the writes falling
// behind. Frames reach a socket in the order they were queued, whoever writes them.
//
// Backpressure: at most maxUnflushed broadcasts, and a quarter of MaxOutboundBytes, may
// wait for the flusher; past that a broadcast writes its own recipients before it
// returns, so a fast API caller is slowed to the pace of the sockets instead of queueing
// without bound, and the flusher's lag never pushes a socket that reads well over its cap.
//
// A broadcast to fewer than bulkFlush sockets writes at once, in the caller: a reply to
// one socket should not wait for a goroutine to be scheduled.

// bulkFlush is the recipient count from which a broadcast is written by the flusher.
const bulkFlush = 8

// maxUnflushed bounds the broadcasts queued but not yet written.
const maxUnflushed = 64

type flusher struct {
	// byteLimit bounds the bytes of the broadcasts queued but not yet written (a quarter
	// of MaxOutboundBytes), so that the flusher's lag alone never pushes a socket that
	// reads well over its cap.
	byteLimit int

	mu      sync.Mutex
	dirty   []*Socket // sockets with frames queued by bulk broadcasts
	spare   []*Socket
	running bool // the flusher goroutine exists
	// Broadcasts handed over and not yet written (count, bytes), and the part of them
	// handed over since the current round began.
	queued, queuedBytes int
	fresh, freshBytes   int
}

func (f *flusher) init(maxOutbound int) { f.byteLimit = maxOutbound / 4 }

// write has the sockets whose queues a broadcast of size bytes started written: by the
// flusher when they are many and the flusher is not too far behind, else here and now.
func (f *flusher) write(started []*Socket, size int) {
	if len(started) >= bulkFlush && f.handOver(started, size) {
		return
	}
	for _, so := range started {
		so.cl.conn.Flush()
	}
}

// handOver gives the sockets to the flusher, starting it if needed, unless that many
// broadcasts or bytes already wait for it.
func (f *flusher) handOver(started []*Socket, size int) bool {
	f.mu.Lock()
	if f.queued >= maxUnflushed || f.queuedBytes+size > f.byteLimit {
		f.mu.Unlock()
		return false
	}
	f.dirty = append(f.dirty, started...)
	f.queued++
	f.queuedBytes += size
	f.fresh++
	f.freshBytes += size
	start := !f.running
	f.running = true
	f.mu.Unlock()
	if start {
		go f.run()
	}
	return true
}

// run writes rounds until a round finds nothing to write. Each round writes every socket
// that was waiting when it began; the broadcasts handed over before it began are then
// written.
func (f *flusher) run() {
	for {
		f.mu.Lock()
		list, n, b := f.dirty, f.fresh, f.freshBytes
		if len(list) == 0 && n == 0 {
			f.running = false
			f.mu.Unlock()
			return
		}
		f.dirty, f.spare = f.spare[:0], nil
		f.fresh, f.freshBytes = 0, 0
		f.mu.Unlock()
		for _, so := range list {
			so.cl.conn.Flush()
		}
		clear(list)
		f.mu.Lock()
		f.queued -= n
		f.queuedBytes -= b
		if cap(list) <= 1<<16 {
			f.spare = list[:0]
		}
		f.mu.Unlock()
	}
}

// queueTo queues msgs to every target without writing and returns how many accepted them.
// Targets whose queue this started (they had nothing waiting) are appended to *started:
// they are owed a Flush.
func queueTo(targets []*Socket, msgs []*engineio.Message, started *[]*Socket) int {
	n := 0
	for _, so := range targets {
		first, err := so.cl.conn.Queue(msgs...)
		if err != nil {
			continue
		}
		n++
		if first {
			*started = append(*started, so)
		}
	}
	return n
}

// size is what msgs add to each recipient's queue, roughly.
func size(msgs []*engineio.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Data()) + 10
	}
	return n
}
