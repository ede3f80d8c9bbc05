package flightwire

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// Codec is a gRPC encoding.CodecV2 that encodes and decodes *Message
// without copying bodies, and hands every other message to gRPC's
// standard proto codec. Install it on a server only, with
// grpc.ForceServerCodecV2(codec); never register it globally. Its Name is
// "proto", so clients see the usual application/grpc+proto.
//
// A Codec is safe for concurrent use.
type Codec struct {
	std encoding.CodecV2
}

var _ encoding.CodecV2 = (*Codec)(nil)

// NewCodec returns a Codec that delegates to the CodecV2 registered in
// gRPC under the name "proto" (google.golang.org/grpc/encoding/proto's,
// unless a program replaced it).
func NewCodec() (*Codec, error) {
	std := encoding.GetCodecV2(grpcproto.Name)
	if std == nil {
		return nil, errors.New("flightwire: no gRPC CodecV2 is registered as \"proto\"")
	}
	return &Codec{std: std}, nil
}

// Name is "proto": on the wire a Message is an ordinary FlightData.
func (c *Codec) Name() string { return grpcproto.Name }

// Marshal encodes v. A *Message becomes [a small buffer holding every
// field but the body's bytes] followed by the body's own buffers, each
// with a new reference that gRPC frees once it has written the bytes to
// the connection (possibly after SendMsg returns). The Message keeps its
// own references.
func (c *Codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*Message); ok {
		return m.marshal()
	}
	return c.std.Marshal(v)
}

// Unmarshal decodes data into v. For a *Message it first frees what the
// Message held, then decodes the descriptor, header and app_metadata into
// new memory and makes Body reference the body's bytes in data, taking a
// reference to each buffer involved, so data stays valid after gRPC frees
// its own references. On error the Message is left empty.
func (c *Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*Message)
	if !ok {
		return c.std.Unmarshal(data, v)
	}
	return m.unmarshal(data)
}

func (m *Message) unmarshal(data mem.BufferSlice) error {
	m.Free()
	*m = Message{}
	bufs := make([][]byte, len(data))
	for i, b := range data {
		bufs[i] = b.ReadOnlyData()
	}
	body, err := decode(bufs, m)
	if err != nil {
		*m = Message{}
		return fmt.Errorf("decode FlightData: %w", err)
	}
	m.Body = slice(data, body)
	return nil
}
