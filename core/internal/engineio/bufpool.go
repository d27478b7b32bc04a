package engineio

import "sync"

// bufferPool is the allocator nbhttp draws its buffers from: a websocket's unparsed bytes
// and every message it hands to OnMessage, request bodies, response heads. It keeps nbio's
// contract (Malloc gives len == size, Append may move the bytes, Free takes back what
// Malloc gave) with two differences from nbio's default pool. Malloc does not move a slice
// header to the heap on every call: nbio's does (the variable its large-size branch returns
// the address of escapes for all branches), which is one garbage object per inbound
// message and another per frame parse. And a buffer larger than maxPooledBuffer is left to
// the collector rather than kept for reuse: nbio's default keeps any size up to 1 GiB.
type bufferPool struct{ pool sync.Pool }

const (
	// newBufferSize is the capacity of a fresh buffer: most frames and heads fit.
	newBufferSize = 1 << 10
	// maxPooledBuffer is the largest buffer kept for reuse: a body or frame at the default
	// limits (api.max_body_bytes, socketio.max_payload: 1 MB), with the headroom append
	// leaves when it grows a buffer, still reuses its buffer; the largest inputs of a
	// raised limit do not.
	maxPooledBuffer = 2 << 20
)

var bodyBuffers = &bufferPool{}

// Malloc returns a buffer of len size. Its contents are not zeroed when it is reused.
func (p *bufferPool) Malloc(size int) *[]byte {
	if size < 0 {
		size = 0
	}
	if size <= maxPooledBuffer {
		if b, _ := p.pool.Get().(*[]byte); b != nil {
			if cap(*b) >= size {
				*b = (*b)[:size]
				return b
			}
			*b = make([]byte, size)
			return b
		}
	}
	b := make([]byte, size, max(size, newBufferSize))
	return &b
}

// Realloc resizes b, keeping its contents.
func (p *bufferPool) Realloc(b *[]byte, size int) *[]byte {
	if size <= cap(*b) {
		*b = (*b)[:size]
		return b
	}
	*b = append((*b)[:cap(*b)], make([]byte, size-cap(*b))...)[:size]
	return b
}

func (p *bufferPool) Append(b *[]byte, more ...byte) *[]byte {
	*b = append(*b, more...)
	return b
}

func (p *bufferPool) AppendString(b *[]byte, more string) *[]byte {
	*b = append(*b, more...)
	return b
}

// Free takes b back; the caller must not use it afterwards.
func (p *bufferPool) Free(b *[]byte) {
	if b == nil || cap(*b) == 0 || cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	p.pool.Put(b)
}
