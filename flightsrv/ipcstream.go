package flightsrv

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/internal/arrowsafe"
	"github.com/fletch-udf/fletch/internal/flightwire"
)

// DoExchange streams move flightwire.Messages (the server runs with its
// codec): received bodies stay in the buffers gRPC read them into, and
// sent bodies go out from the Arrow buffers that hold them.

// msgStream is the part of a DoExchange stream the exchange uses.
type msgStream interface {
	RecvMsg(m any) error
	SendMsg(m any) error
}

// messageReader feeds an IPC reader from a DoExchange stream. Unlike
// arrow-go's flight reader it skips FlightData without an IPC header: the
// descriptor-only first message that C++ and pyarrow clients send, and
// app_metadata-only messages mid-stream.
type messageReader struct {
	stream  msgStream
	pending *flightwire.Message // the first message, already received
	mem     memory.Allocator    // for bodies that arrived in several gRPC buffers
	check   arrowsafe.Checker
	msg     *ipc.Message
	// header and body are the last message's, for forwarding it as it is.
	header []byte
	body   *memory.Buffer
	refs   atomic.Int64
}

func newMessageReader(stream msgStream, first *flightwire.Message, mem memory.Allocator, maxDecompressed int64) *messageReader {
	r := &messageReader{stream: stream, pending: first, mem: mem, check: arrowsafe.Checker{MaxDecompressed: maxDecompressed}}
	r.refs.Store(1)
	return r
}

func (r *messageReader) Message() (*ipc.Message, error) {
	for {
		m := r.pending
		r.pending = nil
		if m == nil {
			m = new(flightwire.Message)
			if err := r.stream.RecvMsg(m); err != nil {
				r.releaseMsg()
				if err == io.EOF {
					return nil, io.EOF // the IPC reader's end-of-stream signal
				}
				return nil, fromRecv(err)
			}
		}
		if len(m.Header) == 0 {
			n := m.BodyLen()
			m.Free()
			if n > 0 {
				return nil, fmt.Errorf("%w: a FlightData message has a %d-byte body but no IPC header", errMalformedIPC, n)
			}
			continue
		}
		// The body stays in gRPC's buffer when it arrived in one; else it
		// is copied once, into r.mem.
		body := m.BodyBuffer(r.mem)
		m.Free()
		if err := r.check.Check(m.Header, body.Bytes()); err != nil {
			body.Release()
			return nil, fmt.Errorf("%w: %w", errMalformedIPC, err)
		}
		r.releaseMsg()
		r.header, r.body = m.Header, body
		r.msg = ipc.NewMessage(memory.NewBufferBytes(m.Header), body)
		return r.msg, nil
	}
}

func (r *messageReader) releaseMsg() {
	if r.msg != nil {
		r.msg.Release()
		r.body.Release()
		r.msg, r.header, r.body = nil, nil, nil
	}
}

func (r *messageReader) Retain() { r.refs.Add(1) }

func (r *messageReader) Release() {
	if r.refs.Add(-1) == 0 {
		r.releaseMsg()
		if r.pending != nil {
			r.pending.Free()
			r.pending = nil
		}
	}
}

// batchWriter writes one IPC stream to a DoExchange stream. Unlike
// arrow-go's flight writer it can send the schema before any batch, which
// DuckDB's client waits for.
type batchWriter struct {
	stream   msgStream
	mem      memory.Allocator
	maxBytes int
	schema   *arrow.Schema // the schema sent, or nil while it is deferred
}

func (w *batchWriter) writeSchema(schema *arrow.Schema) error {
	p := ipc.GetSchemaPayload(schema, w.mem)
	w.schema = schema
	return w.sendPayload(&p)
}

// write sends rec, preceded by its schema if no schema was sent yet. A
// batch that is still the message it was decoded from (a Python worker's
// result, decoded with the schema this stream declares) goes out as that
// message; any other is encoded, its buffers sent where they lie.
func (w *batchWriter) write(rec arrow.RecordBatch) error {
	if w.schema == nil {
		if err := w.writeSchema(rec.Schema()); err != nil {
			return err
		}
	}
	if enc, ok := rec.(*arrowsafe.Encoded); ok {
		enc.Body.Retain() // until gRPC has written it
		return w.send(&flightwire.Message{Header: enc.Header, Body: flightwire.NewBody(enc.Body.Release, enc.Body.Bytes())})
	}
	p, err := ipc.GetRecordBatchPayload(rec, ipc.WithAllocator(w.mem))
	if err != nil {
		return fmt.Errorf("encode output batch: %w", err)
	}
	return w.sendPayload(&p)
}

// sendPayload sends an IPC payload without serializing it; the payload is
// released once gRPC has written it.
func (w *batchWriter) sendPayload(p *ipc.Payload) error {
	m, err := flightwire.NewPayloadMessage(p, nil)
	if err != nil {
		return fmt.Errorf("encode output batch: %w", err)
	}
	return w.send(m)
}

func (w *batchWriter) send(m *flightwire.Message) error {
	defer m.Free()
	// Checked here because gRPC's own refusal would replace our status.
	if size := m.Size(); size > w.maxBytes {
		return fmt.Errorf("%w: an output batch of %d bytes exceeds the server's limit of %d bytes (--max-message-bytes); send smaller input batches",
			errTooLarge, size, w.maxBytes)
	}
	return w.stream.SendMsg(m)
}
