package flightsrv

import (
	"math/bits"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// bodyPool is the allocator for input bodies that arrived in several gRPC
// buffers and are joined into one: a few freed buffers of each power-of-two
// size (16 MiB in all) are kept for the next batch, so a stream of large batches does not
// allocate, zero and collect one fresh buffer per batch. The joined body
// is overwritten whole before anything reads it, so a reused buffer's old
// bytes are never seen. Everything else goes to the server's allocator.
type bodyPool struct {
	mem  memory.Allocator
	mu   sync.Mutex
	free map[int][][]byte // by size class; each slice has len == cap == its class
	kept int              // bytes in free
}

const (
	minPooled    = 64 << 10 // below, gRPC's single-buffer bodies need no join
	maxPooled    = 32 << 20
	keepPerClass = 4
	// keepBytes bounds what the pool holds in all: enough for the batches
	// in flight of a few exchanges, not a burst's high-water mark.
	keepBytes = 16 << 20
)

func newBodyPool(mem memory.Allocator) *bodyPool {
	return &bodyPool{mem: mem, free: make(map[int][][]byte)}
}

func sizeClass(n int) int {
	if n <= minPooled {
		return minPooled
	}
	return 1 << bits.Len(uint(n-1))
}

func (p *bodyPool) Allocate(size int) []byte {
	class := sizeClass(size)
	if class > maxPooled {
		return p.mem.Allocate(size)
	}
	p.mu.Lock()
	list := p.free[class]
	if n := len(list); n > 0 {
		b := list[n-1]
		p.free[class] = list[:n-1]
		p.kept -= class
		p.mu.Unlock()
		return b[:size:class]
	}
	p.mu.Unlock()
	return p.mem.Allocate(class)[:size:class]
}

func (p *bodyPool) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) && sizeClass(cap(b)) == cap(b) && cap(b) <= maxPooled {
		return b[:size]
	}
	nb := p.Allocate(size)
	copy(nb, b)
	p.Free(b)
	return nb
}

func (p *bodyPool) Free(b []byte) {
	class := cap(b)
	if class < minPooled || class > maxPooled || sizeClass(class) != class {
		p.mem.Free(b)
		return
	}
	b = b[:class]
	p.mu.Lock()
	if len(p.free[class]) < keepPerClass && p.kept+class <= keepBytes {
		p.free[class] = append(p.free[class], b)
		p.kept += class
		b = nil
	}
	p.mu.Unlock()
	if b != nil {
		p.mem.Free(b)
	}
}

// drain gives every kept buffer back to the server's allocator.
func (p *bodyPool) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for class, list := range p.free {
		for _, b := range list {
			p.mem.Free(b)
		}
		delete(p.free, class)
	}
	p.kept = 0
}
