package httpapi

import (
	"bytes"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
)

// memoryStats is the "memory" object of GET /api/status. Node reports V8's figures under
// these names; the Go mapping is:
//
//	rss       resident set size: /proc/self/statm field 2 × page size (Linux); elsewhere
//	          getrusage ru_maxrss, which is the peak rather than the current figure
//	heapTotal the sum of runtime/metrics /memory/classes/heap/* (objects, unused, free,
//	          released, stacks): all heap address space the runtime has mapped
//	heapUsed  /memory/classes/heap/objects:bytes: live and not yet swept objects
//	external  /memory/classes/total:bytes minus the heap classes: runtime metadata,
//	          OS stacks, profiling buckets and other memory the Go runtime maps outside
//	          the heap (closest to Node's memory held outside the JS heap)
type memoryStats struct {
	RSS       uint64 `json:"rss"`
	HeapTotal uint64 `json:"heapTotal"`
	HeapUsed  uint64 `json:"heapUsed"`
	External  uint64 `json:"external"`
}

const (
	metricHeapPrefix  = "/memory/classes/heap/"
	metricHeapObjects = "/memory/classes/heap/objects:bytes"
	metricMemoryTotal = "/memory/classes/total:bytes"
)

// memSamples lists the runtime metrics read for every status call; it is built once
// from metrics.All so heap classes added by later Go versions are counted too.
var memSampleNames = func() []string {
	names := []string{metricMemoryTotal}
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, metricHeapPrefix) && d.Kind == metrics.KindUint64 {
			names = append(names, d.Name)
		}
	}
	return names
}()

func readMemoryStats() memoryStats {
	samples := make([]metrics.Sample, len(memSampleNames))
	for i, n := range memSampleNames {
		samples[i].Name = n
	}
	metrics.Read(samples)
	var m memoryStats
	var total uint64
	for _, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			continue
		}
		v := s.Value.Uint64()
		switch {
		case s.Name == metricMemoryTotal:
			total = v
		case strings.HasPrefix(s.Name, metricHeapPrefix):
			m.HeapTotal += v
			if s.Name == metricHeapObjects {
				m.HeapUsed = v
			}
		}
	}
	if total > m.HeapTotal {
		m.External = total - m.HeapTotal
	}
	m.RSS = residentBytes()
	return m
}

// residentBytes reads the current RSS from /proc/self/statm, falling back to the peak
// RSS from getrusage where /proc is not there.
func residentBytes() uint64 {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		f := bytes.Fields(b)
		if len(f) >= 2 {
			if pages, err := strconv.ParseUint(string(f[1]), 10, 64); err == nil {
				return pages * uint64(os.Getpagesize())
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil && ru.Maxrss > 0 {
		return uint64(ru.Maxrss) * 1024 // kilobytes on Linux
	}
	return 0
}
