package arrowsafe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ErrMalformed is wrapped by every error about the data itself.
var ErrMalformed = errors.New("malformed Arrow IPC")

// continuation marks the start of an IPC stream message since Arrow 0.15.
const continuation = 0xFFFFFFFF

// ReadBatch decodes the only record batch of an IPC stream held in data;
// see ReadBatches.
func ReadBatch(data []byte, maxDecompressed int64) (arrow.RecordBatch, error) {
	recs, err := ReadBatches(data, maxDecompressed)
	if err != nil {
		return nil, err
	}
	if len(recs) != 1 {
		for _, r := range recs {
			r.Release()
		}
		return nil, fmt.Errorf("%w: the stream holds %d record batches, want 1", ErrMalformed, len(recs))
	}
	return recs[0], nil
}

// ReadBatches decodes every record batch of an IPC stream held in data,
// checking every message first and validating each batch fully. The
// batches reference data, which must not change afterwards. The caller
// releases them.
func ReadBatches(data []byte, maxDecompressed int64) ([]arrow.RecordBatch, error) {
	return read(memory.DefaultAllocator, []*memory.Buffer{memory.NewBufferBytes(data)}, maxDecompressed, false)
}

// ReadMessages decodes the record batch messages held in body, whose
// stream's schema message is schema (an encapsulated IPC schema message:
// what a peer that knows the schema sends without it). It checks and
// validates as ReadBatches does, and returns each batch as an *Encoded
// with its message. The batches reference body, retaining it until they
// are released; decompressed buffers come from mem.
func ReadMessages(mem memory.Allocator, schema []byte, body *memory.Buffer, maxDecompressed int64) ([]arrow.RecordBatch, error) {
	return read(mem, []*memory.Buffer{memory.NewBufferBytes(schema), body}, maxDecompressed, true)
}

func read(mem memory.Allocator, segments []*memory.Buffer, maxDecompressed int64, encoded bool) (recs []arrow.RecordBatch, err error) {
	mr := &bytesMessageReader{segments: segments, check: Checker{MaxDecompressed: maxDecompressed}}
	mr.refs.Store(1)
	defer mr.Release()
	rdr, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(mem))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	defer rdr.Release()
	defer func() {
		if err != nil {
			for _, r := range recs {
				r.Release()
			}
			recs = nil
		}
	}()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		if err := Validate(rec); err != nil {
			return recs, fmt.Errorf("%w: batch %d: %w", ErrMalformed, len(recs), err)
		}
		if encoded {
			recs = append(recs, NewEncoded(rec, mr.header, mr.body))
		} else {
			rec.Retain()
			recs = append(recs, rec)
		}
	}
	if err := rdr.Err(); err != nil {
		return recs, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return recs, nil
}

// Validate checks a decoded batch before anything reads it: the row count
// agrees with every column, and every buffer is consistent.
func Validate(rec arrow.RecordBatch) (err error) {
	rows := rec.NumRows()
	if rows < 0 {
		return fmt.Errorf("negative row count %d", rows)
	}
	for i, col := range rec.Columns() {
		if int64(col.Len()) != rows {
			return fmt.Errorf("column %d has %d rows but the batch has %d", i, col.Len(), rows)
		}
	}
	// arrow-go's validation itself can panic on bad offsets; that too is bad data.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("invalid array data: %v", p)
		}
	}()
	for i, col := range rec.Columns() {
		// A null column has no buffers to check, and arrow-go's validator
		// rejects the buffer-less null arrays its own IPC reader makes.
		if col.DataType().ID() == arrow.NULL {
			continue
		}
		if err := array.ValidateFull(col); err != nil {
			return fmt.Errorf("column %d (%s): %w", i, rec.Schema().Field(i).Name, err)
		}
	}
	return nil
}

// bytesMessageReader splits in-memory IPC messages without copying,
// checking each first. Messages do not span segments; each message's body
// is a slice of its segment, which it retains.
type bytesMessageReader struct {
	segments []*memory.Buffer
	data     []byte // what is left of segments[0]
	started  bool
	check    Checker
	msg      *ipc.Message
	// header and body are the last message's.
	header []byte
	body   *memory.Buffer
	refs   atomic.Int64
}

func (r *bytesMessageReader) Message() (*ipc.Message, error) {
	for len(r.data) == 0 {
		if r.started {
			r.segments = r.segments[1:]
		}
		if len(r.segments) == 0 {
			return nil, io.EOF
		}
		r.started = true
		r.data = r.segments[0].Bytes()
	}
	seg := r.segments[0]
	n, err := r.take32()
	if err != nil {
		return nil, err
	}
	if n == continuation {
		if n, err = r.take32(); err != nil {
			return nil, err
		}
	}
	if n == 0 {
		r.data = nil // end-of-stream marker: the rest of this segment is ignored
		return r.Message()
	}
	if int64(n) > int64(len(r.data)) {
		return nil, fmt.Errorf("message header of %d bytes runs past the %d bytes left", n, len(r.data))
	}
	header := r.data[:n]
	bodyLen, err := bodyLength(header)
	if err != nil {
		return nil, err
	}
	if bodyLen < 0 || bodyLen > int64(len(r.data))-int64(n) {
		return nil, fmt.Errorf("message body of %d bytes runs past the %d bytes left", bodyLen, len(r.data)-int(n))
	}
	start := len(seg.Bytes()) - len(r.data) + int(n)
	body := r.data[n : int64(n)+bodyLen]
	r.data = r.data[int64(n)+bodyLen:]
	if err := r.check.Check(header, body); err != nil {
		return nil, err
	}
	r.releaseMsg()
	r.header, r.body = header, memory.SliceBuffer(seg, start, len(body))
	r.msg = ipc.NewMessage(memory.NewBufferBytes(header), r.body)
	return r.msg, nil
}

func (r *bytesMessageReader) take32() (uint32, error) {
	if len(r.data) < 4 {
		return 0, fmt.Errorf("stream ends inside a message prefix")
	}
	v := binary.LittleEndian.Uint32(r.data)
	r.data = r.data[4:]
	return v, nil
}

func (r *bytesMessageReader) releaseMsg() {
	if r.msg != nil {
		r.msg.Release()
		r.body.Release()
		r.msg, r.header, r.body = nil, nil, nil
	}
}

func (r *bytesMessageReader) Retain() { r.refs.Add(1) }

func (r *bytesMessageReader) Release() {
	if r.refs.Add(-1) == 0 {
		r.releaseMsg()
	}
}

// bodyLength reads Message.bodyLength from a message header.
func bodyLength(header []byte) (int64, error) {
	c := &fbCheck{buf: header, budget: len(header)}
	msg, err := c.root()
	if err != nil {
		return 0, err
	}
	p, ok, err := msg.field(3, 8)
	if err != nil || !ok {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(header[p:])), nil
}
