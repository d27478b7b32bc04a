package engineio

import (
	"bytes"
	"testing"
)

func TestBufferPoolKeepsNbioContract(t *testing.T) {
	p := &bufferPool{}
	b := p.Malloc(10)
	if len(*b) != 10 || cap(*b) < 10 {
		t.Fatalf("Malloc(10): len %d cap %d", len(*b), cap(*b))
	}
	copy(*b, "0123456789")
	b = p.Append(b, 'a', 'b')
	b = p.AppendString(b, "cd")
	if string(*b) != "0123456789abcd" {
		t.Fatalf("after appends: %q", *b)
	}
	b = p.Realloc(b, 3)
	if string(*b) != "012" {
		t.Fatalf("Realloc down: %q", *b)
	}
	b = p.Realloc(b, 5000)
	if len(*b) != 5000 || string((*b)[:3]) != "012" {
		t.Fatalf("Realloc up: len %d, head %q", len(*b), (*b)[:3])
	}
	p.Free(b)

	// A buffer from the pool smaller than asked for is replaced, not returned short.
	small := p.Malloc(1)
	p.Free(small)
	big := p.Malloc(4 * newBufferSize)
	if len(*big) != 4*newBufferSize {
		t.Fatalf("Malloc after a small Free: len %d", len(*big))
	}
	p.Free(big)

	if z := p.Malloc(0); z == nil || len(*z) != 0 {
		t.Fatal("Malloc(0) must give an empty buffer")
	} else {
		p.Free(z)
	}
	if n := p.Malloc(-1); n == nil || len(*n) != 0 {
		t.Fatal("Malloc(-1) must give an empty buffer")
	}
	p.Free(nil) // nbio may free a buffer it never got
}

func TestBufferPoolLeavesLargeBuffersToTheCollector(t *testing.T) {
	if raceBuild {
		t.Skip("the race detector makes sync.Pool drop what it is given")
	}
	p := &bufferPool{}
	large := p.Malloc(maxPooledBuffer + 1)
	p.Free(large)
	// Had Free kept it, the next Malloc on this goroutine would get it back (sync.Pool's
	// per-P slot), whatever the size asked.
	if b := p.Malloc(10); cap(*b) > maxPooledBuffer {
		t.Fatalf("a buffer of cap %d came back from the pool", cap(*b))
	}

	// Below the limit, what is freed is reused, and reuse costs no allocation: nbio's
	// default pool moves a slice header to the heap on every Malloc.
	b := p.Malloc(100)
	p.Free(b)
	allocs := testing.AllocsPerRun(1000, func() {
		b := p.Malloc(200)
		(*b)[199] = 1
		p.Free(b)
	})
	if allocs != 0 {
		t.Fatalf("Malloc+Free of a pooled size: %.1f allocations, want 0", allocs)
	}
}

// FuzzBufferPool runs random sequences of the allocator's operations against a plain
// byte slice and fails when a buffer's contents or length differ.
func FuzzBufferPool(f *testing.F) {
	f.Add([]byte{0, 10, 1, 3, 2, 200, 3, 0})
	f.Add([]byte{0, 255, 3, 0, 0, 255, 2, 255, 2, 255})
	f.Fuzz(func(t *testing.T, ops []byte) {
		p := &bufferPool{}
		var live []*[]byte
		var want [][]byte
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%4, int(ops[i+1])
			switch op {
			case 0: // Malloc, filled with a pattern
				b := p.Malloc(arg * 300)
				for j := range *b {
					(*b)[j] = byte(j + len(live))
				}
				live = append(live, b)
				want = append(want, bytes.Clone(*b))
			case 1: // Append
				if len(live) == 0 {
					continue
				}
				k := arg % len(live)
				more := bytes.Repeat([]byte{byte(arg)}, arg)
				live[k] = p.Append(live[k], more...)
				want[k] = append(want[k], more...)
			case 2: // Realloc
				if len(live) == 0 {
					continue
				}
				k := arg % len(live)
				n := arg * 40
				live[k] = p.Realloc(live[k], n)
				if n <= len(want[k]) {
					want[k] = want[k][:n]
				} else {
					// Realloc keeps what the buffer held; the grown part is unspecified.
					want[k] = append(want[k], (*live[k])[len(want[k]):]...)
				}
			case 3: // Free
				if len(live) == 0 {
					continue
				}
				k := arg % len(live)
				p.Free(live[k])
				live = append(live[:k], live[k+1:]...)
				want = append(want[:k], want[k+1:]...)
			}
			for k := range live {
				if !bytes.Equal(*live[k], want[k]) {
					t.Fatalf("buffer %d after op %d: len %d, want %d (or different bytes)", k, i/2, len(*live[k]), len(want[k]))
				}
			}
		}
	})
}
