package pybridge

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// A worker's shared memory is one region mapped by the server and the
// worker: the request half, where the server writes call inputs, and the
// reply half, where the worker writes results. Each half has one writer,
// which allocates in it; the reader tells the writer (with release frames
// or flagInputFree) when it is done with a span, and only then may the
// span be reused. Allocation is first fit from the start of the half, so
// a steady stream of batches keeps reusing the same few pages.

// shmMinBytes is the smallest body sent through shared memory: below it,
// one pipe write costs no more than the copy, and needs no release.
// fletch/_protocol.py has the same threshold for replies.
const shmMinBytes = 16 << 10

// spanAlign keeps every body 64-byte aligned, as Arrow prefers.
const spanAlign = 64

// arena allocates spans of one half of a region.
type arena struct {
	mu   sync.Mutex
	size int
	live []span // sorted by offset
	// high is the end of the highest span allocated since the arena was
	// last empty: what trim may give back to the kernel.
	high int
}

type span struct{ off, n int }

func newArena(size int) *arena { return &arena{size: size} }

// alloc reserves n bytes and returns their offset, or false if no gap is
// large enough (the caller then sends the body inline).
func (a *arena) alloc(n int) (int, bool) {
	n = (n + spanAlign - 1) &^ (spanAlign - 1)
	if n <= 0 || n > a.size {
		return 0, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	at, prev := len(a.live), 0 // insert before live[at], at the end of live[at-1]
	for i, s := range a.live {
		if s.off-prev >= n {
			at = i
			break
		}
		prev = s.off + s.n
	}
	if at == len(a.live) && a.size-prev < n {
		return 0, false
	}
	a.live = append(a.live, span{})
	copy(a.live[at+1:], a.live[at:])
	a.live[at] = span{off: prev, n: n}
	a.high = max(a.high, prev+n)
	return prev, true
}

// free gives a span back. It reports whether the arena is now empty, and
// if so the high-water mark since it was last empty.
func (a *arena) free(off int) (empty bool, high int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, s := range a.live {
		if s.off == off {
			a.live = append(a.live[:i], a.live[i+1:]...)
			if len(a.live) == 0 {
				high, a.high = a.high, 0
				return true, high, nil
			}
			return false, 0, nil
		}
	}
	return false, 0, fmt.Errorf("no span at offset %d", off)
}

// used is the number of live spans, for tests and metrics.
func (a *arena) used() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.live)
}

// keepWarm is how much of an emptied half keeps its pages; above it,
// pages a burst of large batches touched are given back.
const keepWarm = 4 << 20

// region is a worker's shared memory, mapped into the server. It stays
// mapped until the worker is gone and the last reply that lies in it has
// been released: output batches read from it may outlive the worker.
type region struct {
	mem      []byte // the whole mapping
	reqSize  int    // the request half is mem[:reqSize]; the reply half follows
	requests *arena
	refs     atomic.Int64
	unmap    func() error
	trim     func(off, n int) // gives pages of the request half back to the kernel
}

func (r *region) request(off, n int) []byte { return r.mem[off : off+n] }

// reply returns the reply half's span, or an error if the worker named
// bytes outside it.
func (r *region) reply(off, n uint64) ([]byte, error) {
	half := uint64(len(r.mem) - r.reqSize)
	if off > half || n > half-off {
		return nil, fmt.Errorf("%w: a reply body of %d bytes at offset %d lies outside the %d-byte reply region", ErrProtocol, n, off, half)
	}
	start := uint64(r.reqSize) + off
	return r.mem[start : start+n : start+n], nil
}

func (r *region) retain() { r.refs.Add(1) }

func (r *region) release() {
	if r.refs.Add(-1) == 0 && r.unmap != nil {
		_ = r.unmap()
	}
}

// freeRequest gives a request span back, returning pages a burst touched
// once the half is empty again.
func (r *region) freeRequest(off int) error {
	empty, high, err := r.requests.free(off)
	if err == nil && empty && high > keepWarm && r.trim != nil {
		r.trim(keepWarm, high-keepWarm)
	}
	return err
}
