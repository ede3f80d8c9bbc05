package arrowsafe

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Encoded is a record batch together with the IPC record batch message it
// was decoded from, so a peer that knows its schema can be sent the
// message as it is instead of an encoding made again (fletch forwards
// client batches to Python workers, and worker results to clients, so).
// Anything that changes the batch (a slice, new columns, a relabelled
// schema) makes a plain batch, without the message.
type Encoded struct {
	arrow.RecordBatch
	// Header is the message's flatbuffer metadata, which the Checker
	// verified; Body is its body. Both stay valid while the Encoded lives.
	Header []byte
	Body   *memory.Buffer
}

// NewEncoded pairs rec with its message; it takes a reference to each.
func NewEncoded(rec arrow.RecordBatch, header []byte, body *memory.Buffer) *Encoded {
	rec.Retain()
	body.Retain()
	return &Encoded{RecordBatch: rec, Header: header, Body: body}
}

// Retain adds a reference to the batch and its message.
func (e *Encoded) Retain() {
	e.RecordBatch.Retain()
	e.Body.Retain()
}

// Release drops a reference to the batch and its message.
func (e *Encoded) Release() {
	e.Body.Release()
	e.RecordBatch.Release()
}
