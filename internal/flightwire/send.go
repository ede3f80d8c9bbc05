package flightwire

import (
	"errors"
	"runtime"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"google.golang.org/grpc/mem"
)

// NewBody returns a message body made of data, in order, without copying
// them, and calls release exactly once when every reference to the body's
// buffers is gone: the caller's own (dropped with Free, or by freeing the
// Message whose Body holds them) and each one gRPC took to write them.
// Until release runs, data must not change.
//
// Slices of at most 1 KiB (gRPC's pooling threshold) are copied instead:
// gRPC does not reference-count buffers that small. When every slice is
// that small, release runs before NewBody returns.
//
// release may run on any goroutine: gRPC's connection writer, the one
// that frees the last reference, or the runtime's cleanup goroutine (see
// the package documentation), so it must be quick and must not block.
func NewBody(release func(), data ...[]byte) mem.BufferSlice {
	b := newBody(func(bool) {
		if release != nil {
			release()
		}
	})
	for _, d := range data {
		b.add(d)
	}
	return b.finish()
}

// NewPayloadMessage turns an Arrow IPC payload (ipc.GetSchemaPayload,
// ipc.GetRecordBatchPayload) into a Message without serializing it: Header
// is a copy of its metadata flatbuffer and Body references each of its
// body buffers in place, with the zero padding the IPC format puts after
// each buffer. Buffers of at most 1 KiB and the padding are coalesced into
// small copies.
//
// It takes over p: *p is zeroed (so a deferred p.Release() does nothing)
// and the payload is released once gRPC and the Message no longer
// reference its buffers; done, if not nil, is called right after that.
// On error the payload is released too. The caller sets Descriptor and
// AppMetadata as needed, sends the Message and frees it.
func NewPayloadMessage(p *ipc.Payload, done func()) (*Message, error) {
	return newPayloadMessage(p, func(bool) {
		if done != nil {
			done()
		}
	})
}

func newPayloadMessage(p *ipc.Payload, done func(collected bool)) (*Message, error) {
	owned := *p
	*p = ipc.Payload{}
	meta := owned.Meta()
	if meta == nil {
		owned.Release()
		return nil, errors.New("flightwire: an IPC payload without metadata")
	}
	m := &Message{Header: append([]byte(nil), meta.Bytes()...)}
	meta.Release()
	b := newBody(func(collected bool) {
		owned.Release()
		done(collected)
	})
	// SerializeBody hands each body buffer's own bytes (data.Bytes()) to
	// Write, then the padding from a package-level zero array; body keeps
	// the large slices and copies the rest. io.Writer implementations must
	// not retain p, so this depends on arrow-go's implementation: the
	// tests check that the retained slices alias the payload's buffers.
	if err := owned.SerializeBody(b); err != nil {
		b.finish().Free()
		return nil, err
	}
	m.Body = b.finish()
	return m, nil
}

// body builds a BufferSlice over caller memory that calls done once no
// reference to any of its referenced (large) slices is left.
type body struct {
	out     mem.BufferSlice
	small   []byte // pending copies of small slices, coalesced
	tracker *tracker
}

func newBody(done func(collected bool)) *body {
	t := &tracker{done: done}
	t.pending.Store(1) // the builder's own, dropped by finish
	return &body{tracker: t}
}

// Write adds p to the body; see add.
func (b *body) Write(p []byte) (int, error) {
	b.add(p)
	return len(p), nil
}

// add appends data, referenced when gRPC would reference-count a buffer
// of its size, copied otherwise.
func (b *body) add(data []byte) {
	if len(data) == 0 {
		return
	}
	if mem.IsBelowBufferPoolingThreshold(len(data)) {
		b.small = append(b.small, data...)
		return
	}
	b.flushSmall()
	b.out = append(b.out, b.tracker.buffer(data[:len(data):len(data)]))
}

func (b *body) flushSmall() {
	if len(b.small) > 0 {
		b.out = append(b.out, mem.SliceBuffer(b.small))
		b.small = nil
	}
}

// finish returns the buffers, each holding one reference for the caller.
func (b *body) finish() mem.BufferSlice {
	b.flushSmall()
	b.tracker.release(false)
	return b.out
}

// tracker counts the root buffers of one body that still have references
// and runs done when the count reaches zero.
//
// A root buffer made by mem.NewBuffer returns its *[]byte to its pool's
// Put exactly once, when its last reference is freed; that is the release
// signal. gRPC v1.85.0 does not free every reference it takes on every
// path: loopyWriter.preprocessData drops a data frame queued for a stream
// that was just cleaned up (a cancelled RPC), and a connection that fails
// leaves its streams' queued frames unfreed. As a backstop, a cleanup on
// each *[]byte handle signals the release when the garbage collector
// finds the handle unreachable, which implies no Buffer can reach the
// data any more.
type tracker struct {
	pending atomic.Int64
	done    func(collected bool)
}

func (t *tracker) buffer(data []byte) mem.Buffer {
	t.pending.Add(1)
	h := &handle{tracker: t}
	p := &data
	// h must not reference p, or p would never become unreachable.
	runtime.AddCleanup(p, func(h *handle) { h.release(true) }, h)
	return mem.NewBuffer(p, h)
}

func (t *tracker) release(collected bool) {
	if t.pending.Add(-1) == 0 {
		t.done(collected)
	}
}

// handle is the mem.BufferPool of one root buffer; gRPC only ever calls
// Put on a buffer's pool.
type handle struct {
	tracker  *tracker
	released atomic.Bool
}

func (h *handle) Get(int) *[]byte { panic("flightwire: Get from a body buffer's release hook") }

func (h *handle) Put(*[]byte) { h.release(false) }

func (h *handle) release(collected bool) {
	if !h.released.Swap(true) {
		h.tracker.release(collected)
	}
}
