package wire

import (
	"runtime"
	"time"
)

// Bounds on one stream message, each way: a few big payloads must not delay the small
// ones behind them, nor come near the message size limit.
const (
	MaxBatch      = 256     // requests and cancellations, or replies
	MaxBatchBytes = 1 << 20 // bytes, roughly (the messages' ApproxSize)
)

// MaxMessageBytes is the largest gRPC message either side accepts (gRPC's default of
// 4 MB would turn one batch of large requests into a broken stream). A request's payload
// may be at most half of it.
const MaxMessageBytes = 64 << 20

// Fill gathers a batch that already holds items entries of size bytes: it calls take,
// which adds one queued entry to the batch without waiting and returns its size (ok
// false when nothing is queued), until the batch reaches MaxBatch entries or
// MaxBatchBytes. The first time nothing is queued it yields the processor once, so that
// goroutines about to queue join this batch (one stream message per call costs most of a
// round trip); the second time it returns.
func Fill(items, size int, take func() (n int, ok bool)) {
	yielded := false
	for items < MaxBatch && size < MaxBatchBytes {
		n, ok := take()
		if ok {
			items++
			size += n
			continue
		}
		if yielded {
			return
		}
		yielded = true
		runtime.Gosched()
	}
}

// TimeLeft is how a request carries its deadline: the time left, in nanoseconds, and at
// least 1 (0 means none). Relative, so that the two clocks need not agree; the SDK turns
// it back into its handler's deadline.
func TimeLeft(deadline time.Time) int64 {
	return max(int64(time.Until(deadline)), 1)
}
