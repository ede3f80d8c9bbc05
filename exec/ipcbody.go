package exec

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/internal/arrowsafe"
	"github.com/fletch-udf/fletch/pybridge"
)

// Batches cross to Python workers as single encapsulated Arrow IPC
// messages, without the schema, which both sides know: the worker reads
// its UDF's declared input schema, and the server decodes results with
// the declared output schema.

// ipcContinuation starts every encapsulated IPC message.
const ipcContinuation = 0xFFFFFFFF

// batchBody is one record batch as an encapsulated IPC message, which the
// pool writes where it travels (shared memory or a frame): the arrays'
// buffers are copied once, there.
type batchBody struct {
	meta    *memory.Buffer
	payload ipc.Payload
	bodyLen int
}

var _ pybridge.Body = (*batchBody)(nil)

func newBatchBody(rec arrow.RecordBatch, mem memory.Allocator) (*batchBody, error) {
	p, err := ipc.GetRecordBatchPayload(rec, ipc.WithAllocator(mem))
	if err != nil {
		return nil, fmt.Errorf("encode a batch for a worker: %w", err)
	}
	var n countingWriter
	if err := p.SerializeBody(&n); err != nil {
		p.Release()
		return nil, err
	}
	return &batchBody{meta: p.Meta(), payload: p, bodyLen: int(n)}, nil
}

func (b *batchBody) Len() int { return metaLen(b.meta.Len()) + b.bodyLen }

func (b *batchBody) Put(dst []byte) {
	n := putMeta(dst, b.meta.Bytes())
	w := sliceWriter(dst[n:n])
	// Writing to a slice with room cannot fail.
	_ = b.payload.SerializeBody(&w)
}

func (b *batchBody) Release() {
	b.meta.Release()
	b.payload.Release()
}

// messageBody is a batch that is already an encapsulated message's
// parts: a client's, forwarded as it came.
type messageBody struct {
	header, body []byte
}

func (m messageBody) Len() int { return metaLen(len(m.header)) + len(m.body) }

func (m messageBody) Put(dst []byte) {
	n := putMeta(dst, m.header)
	copy(dst[n:], m.body)
}

// inputBody is rec as a worker call's input: its own message when it has
// one, else an encoding of it. The caller releases it.
func inputBody(rec arrow.RecordBatch, mem memory.Allocator) (body pybridge.Body, release func(), err error) {
	if enc, ok := rec.(*arrowsafe.Encoded); ok {
		return messageBody{header: enc.Header, body: enc.Body.Bytes()}, func() {}, nil
	}
	b, err := newBatchBody(rec, mem)
	if err != nil {
		return nil, nil, err
	}
	return b, b.Release, nil
}

// bodies are several batches as consecutive messages in one body.
type bodies []pybridge.Body

func (bs bodies) Len() int {
	n := 0
	for _, b := range bs {
		n += b.Len()
	}
	return n
}

func (bs bodies) Put(dst []byte) {
	for _, b := range bs {
		n := b.Len()
		b.Put(dst[:n])
		dst = dst[n:]
	}
}

// schemaMessage encodes schema as an encapsulated IPC schema message.
func schemaMessage(schema *arrow.Schema, mem memory.Allocator) []byte {
	p := ipc.GetSchemaPayload(schema, mem)
	defer p.Release()
	meta := p.Meta()
	defer meta.Release()
	out := make([]byte, metaLen(meta.Len()))
	putMeta(out, meta.Bytes())
	return out
}

// metaLen is the size of a message's prefix and padded metadata.
func metaLen(n int) int { return (8 + n + 7) &^ 7 }

// putMeta writes the continuation marker, the padded metadata length and
// the metadata, and returns the bytes written.
func putMeta(dst, meta []byte) int {
	total := metaLen(len(meta))
	binary.LittleEndian.PutUint32(dst, ipcContinuation)
	binary.LittleEndian.PutUint32(dst[4:], uint32(total-8))
	copy(dst[8:], meta)
	clear(dst[8+len(meta) : total])
	return total
}

type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// sliceWriter appends into the room of its slice; it never grows it.
type sliceWriter []byte

func (w *sliceWriter) Write(p []byte) (int, error) {
	if len(*w)+len(p) > cap(*w) {
		return 0, io.ErrShortWrite
	}
	*w = append(*w, p...)
	return len(p), nil
}

// replyBuffer makes a worker's reply an Arrow buffer whose last release
// hands the reply back to the worker.
func replyBuffer(r *pybridge.Reply) *memory.Buffer {
	return memory.NewBufferWithAllocator(r.Data, replyFreer{r})
}

// replyFreer is the allocator of a reply buffer: it frees by releasing
// the reply, and allocates nothing.
type replyFreer struct{ r *pybridge.Reply }

func (f replyFreer) Allocate(int) []byte           { panic("exec: a reply buffer allocates nothing") }
func (f replyFreer) Reallocate(int, []byte) []byte { panic("exec: a reply buffer allocates nothing") }
func (f replyFreer) Free([]byte)                   { f.r.Release() }
