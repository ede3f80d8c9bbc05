package flightwire

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Message is one arrow.flight.protocol.FlightData message whose body is a
// list of reference-counted gRPC buffers rather than one []byte.
//
// A Message owns one reference to each buffer of Body until Free. Do not
// copy a Message that holds a body: both copies would free the same
// references.
type Message struct {
	// Descriptor is the flight_descriptor field, nil when absent.
	Descriptor *flight.FlightDescriptor
	// Header is data_header: an Arrow IPC Message flatbuffer, or empty.
	// Received headers are copies, owned by the Message.
	Header []byte
	// AppMetadata is app_metadata. Received metadata is a copy.
	AppMetadata []byte
	// Body is data_body. A received body references the buffers gRPC read
	// the message into (at most one HTTP/2 DATA frame, 16 KiB, each).
	Body mem.BufferSlice
}

// Free releases the references the Message holds on its body and clears
// Body. The other fields are kept. Free may be called more than once.
func (m *Message) Free() {
	m.Body.Free()
	m.Body = nil
}

// BodyLen is the length of the body in bytes.
func (m *Message) BodyLen() int { return m.Body.Len() }

// BodyBytes returns the body as one slice without copying when it is held
// in at most one buffer (ok == true). The slice is valid until Free and
// must not be modified. When the body spans several buffers it returns
// (nil, false): use CopyBodyTo or BodyBuffer.
func (m *Message) BodyBytes() (b []byte, ok bool) {
	switch len(m.Body) {
	case 0:
		return nil, true
	case 1:
		return m.Body[0].ReadOnlyData(), true
	}
	return nil, false
}

// CopyBodyTo copies the body into dst, which the caller chose (an
// allocator buffer, a shared-memory slot), and returns the number of
// bytes copied: min(len(dst), BodyLen()).
func (m *Message) CopyBodyTo(dst []byte) int { return m.Body.CopyTo(dst) }

// BodyBuffer returns the body as an Arrow buffer the caller releases.
//
// When the body is held in at most one gRPC buffer it is not copied: the
// Arrow buffer takes its own reference to the gRPC buffer and drops it
// when its reference count reaches zero (after the last array sliced from
// it is released), independently of m.Free. Such memory is gRPC's and is
// not counted by alloc. When the body spans several gRPC buffers it is
// copied once into a buffer from alloc; m still holds the gRPC buffers
// until m.Free.
func (m *Message) BodyBuffer(alloc memory.Allocator) *memory.Buffer {
	switch len(m.Body) {
	case 0:
		return memory.NewBufferBytes(nil)
	case 1:
		b := m.Body[0]
		b.Ref()
		return memory.NewBufferWithAllocator(b.ReadOnlyData(), grpcRef{b})
	}
	buf := memory.NewResizableBuffer(alloc)
	buf.Resize(m.Body.Len())
	m.Body.CopyTo(buf.Bytes())
	return buf
}

// grpcRef adapts a reference to a gRPC buffer to the one method of
// memory.Allocator a memory.Buffer made by NewBufferWithAllocator calls:
// Free, once its reference count reaches zero. Such a buffer is immutable,
// so Allocate and Reallocate are never called.
type grpcRef struct{ b mem.Buffer }

func (r grpcRef) Allocate(int) []byte { panic("flightwire: allocate from a received gRPC buffer") }
func (r grpcRef) Reallocate(int, []byte) []byte {
	panic("flightwire: reallocate a received gRPC buffer")
}
func (r grpcRef) Free([]byte) { r.b.Free() }

// IPCMessage builds the Arrow IPC message m carries, for an
// ipc.MessageReader. Its body is BodyBuffer(alloc), so it copies at most
// once (see BodyBuffer); it holds its own references, so m may be freed
// as soon as IPCMessage returns. ipc.NewMessage does not validate the
// header: check, if not nil, is called with the header and the
// contiguous body first (fletch passes arrowsafe's Checker.Check), and
// its error is returned as is. The caller releases the message.
func (m *Message) IPCMessage(alloc memory.Allocator, check func(header, body []byte) error) (*ipc.Message, error) {
	if len(m.Header) < 4 {
		return nil, fmt.Errorf("%w: a %d-byte data_header is no IPC message", ErrMalformed, len(m.Header))
	}
	body := m.BodyBuffer(alloc)
	defer body.Release()
	if check != nil {
		if err := check(m.Header, body.Bytes()); err != nil {
			return nil, err
		}
	}
	return ipc.NewMessage(memory.NewBufferBytes(m.Header), body), nil
}

// Size is the length of m's protobuf encoding, as proto.Size would report
// for the equivalent flight.FlightData; gRPC's message size limits apply
// to it.
func (m *Message) Size() int {
	n := 0
	if m.Descriptor != nil {
		n += protowire.SizeTag(fieldDescriptor) + protowire.SizeBytes(proto.Size(m.Descriptor))
	}
	if len(m.Header) > 0 {
		n += protowire.SizeTag(fieldDataHeader) + protowire.SizeBytes(len(m.Header))
	}
	if len(m.AppMetadata) > 0 {
		n += protowire.SizeTag(fieldAppMetadata) + protowire.SizeBytes(len(m.AppMetadata))
	}
	if l := m.Body.Len(); l > 0 {
		n += protowire.SizeTag(fieldDataBody) + protowire.SizeBytes(l)
	}
	return n
}

// marshal encodes m as [one buffer with every field but the body's bytes]
// + the body's buffers, each with a new reference for gRPC to free.
func (m *Message) marshal() (mem.BufferSlice, error) {
	var desc []byte
	if m.Descriptor != nil {
		var err error
		if desc, err = proto.Marshal(m.Descriptor); err != nil {
			return nil, fmt.Errorf("marshal flight_descriptor: %w", err)
		}
	}
	bodyLen := m.Body.Len()
	// Four tags of at most two bytes and four lengths.
	n := len(m.Header) + len(m.AppMetadata) + len(desc) + 4*(2+binaryMaxVarintLen)
	prefix := make([]byte, 0, n)
	// Fields in number order, empty ones omitted: proto.Marshal's output
	// for the same FlightData, byte for byte.
	if m.Descriptor != nil {
		prefix = protowire.AppendTag(prefix, fieldDescriptor, protowire.BytesType)
		prefix = protowire.AppendBytes(prefix, desc)
	}
	if len(m.Header) > 0 {
		prefix = protowire.AppendTag(prefix, fieldDataHeader, protowire.BytesType)
		prefix = protowire.AppendBytes(prefix, m.Header)
	}
	if len(m.AppMetadata) > 0 {
		prefix = protowire.AppendTag(prefix, fieldAppMetadata, protowire.BytesType)
		prefix = protowire.AppendBytes(prefix, m.AppMetadata)
	}
	if bodyLen == 0 {
		return mem.BufferSlice{mem.SliceBuffer(prefix)}, nil
	}
	prefix = protowire.AppendTag(prefix, fieldDataBody, protowire.BytesType)
	prefix = protowire.AppendVarint(prefix, uint64(bodyLen))
	out := make(mem.BufferSlice, 0, 1+len(m.Body))
	out = append(out, mem.SliceBuffer(prefix))
	for _, b := range m.Body {
		if b.Len() == 0 {
			continue
		}
		b.Ref()
		out = append(out, b)
	}
	return out, nil
}
