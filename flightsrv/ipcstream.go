package flightsrv

import (
	"bytes"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/proto"

	"github.com/fletch-udf/fletch/internal/arrowsafe"
)

// messageReader feeds an IPC reader from a DoExchange stream. Unlike
// arrow-go's flight reader it skips FlightData without an IPC header: the
// descriptor-only first message that C++ and pyarrow clients send, and
// app_metadata-only messages mid-stream.
type messageReader struct {
	stream  flight.DataStreamReader
	pending *flight.FlightData // the first message, already received
	check   arrowsafe.Checker
	msg     *ipc.Message
	refs    atomic.Int64
}

func newMessageReader(stream flight.DataStreamReader, first *flight.FlightData, maxDecompressed int64) *messageReader {
	r := &messageReader{stream: stream, pending: first, check: arrowsafe.Checker{MaxDecompressed: maxDecompressed}}
	r.refs.Store(1)
	return r
}

func (r *messageReader) Message() (*ipc.Message, error) {
	for {
		fd := r.pending
		r.pending = nil
		if fd == nil {
			var err error
			if fd, err = r.stream.Recv(); err != nil {
				r.releaseMsg()
				if err == io.EOF {
					return nil, io.EOF // the IPC reader's end-of-stream signal
				}
				return nil, fromRecv(err)
			}
		}
		if len(fd.DataHeader) == 0 {
			if len(fd.DataBody) > 0 {
				return nil, fmt.Errorf("%w: a FlightData message has a %d-byte body but no IPC header", errMalformedIPC, len(fd.DataBody))
			}
			continue
		}
		if err := r.check.Check(fd.DataHeader, fd.DataBody); err != nil {
			return nil, fmt.Errorf("%w: %w", errMalformedIPC, err)
		}
		r.releaseMsg()
		r.msg = ipc.NewMessage(memory.NewBufferBytes(fd.DataHeader), memory.NewBufferBytes(fd.DataBody))
		return r.msg, nil
	}
}

func (r *messageReader) releaseMsg() {
	if r.msg != nil {
		r.msg.Release()
		r.msg = nil
	}
}

func (r *messageReader) Retain() { r.refs.Add(1) }

func (r *messageReader) Release() {
	if r.refs.Add(-1) == 0 {
		r.releaseMsg()
	}
}

// batchWriter writes one IPC stream to a DoExchange stream. Unlike
// arrow-go's flight writer it can send the schema before any batch, which
// DuckDB's client waits for.
type batchWriter struct {
	stream   flight.DataStreamWriter
	mem      memory.Allocator
	maxBytes int
	body     bytes.Buffer
	schema   *arrow.Schema // the schema sent, or nil while it is deferred
}

func (w *batchWriter) writeSchema(schema *arrow.Schema) error {
	p := ipc.GetSchemaPayload(schema, w.mem)
	defer p.Release()
	w.schema = schema
	return w.send(&p)
}

// write sends rec, preceded by its schema if no schema was sent yet.
func (w *batchWriter) write(rec arrow.RecordBatch) error {
	if w.schema == nil {
		if err := w.writeSchema(rec.Schema()); err != nil {
			return err
		}
	}
	p, err := ipc.GetRecordBatchPayload(rec, ipc.WithAllocator(w.mem))
	if err != nil {
		return fmt.Errorf("encode output batch: %w", err)
	}
	defer p.Release()
	return w.send(&p)
}

func (w *batchWriter) send(p *ipc.Payload) error {
	meta := p.Meta()
	defer meta.Release()
	w.body.Reset()
	if err := p.SerializeBody(&w.body); err != nil {
		return fmt.Errorf("serialize output batch: %w", err)
	}
	fd := &flight.FlightData{DataHeader: meta.Bytes(), DataBody: w.body.Bytes()}
	// Checked here because gRPC's own refusal would replace our status.
	if size := proto.Size(fd); size > w.maxBytes {
		return fmt.Errorf("%w: an output batch of %d bytes exceeds the server's limit of %d bytes (--max-message-bytes); send smaller input batches",
			errTooLarge, size, w.maxBytes)
	}
	return w.stream.Send(fd)
}
