package flightwire

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers of arrow.flight.protocol.FlightData (format/Flight.proto).
const (
	fieldDescriptor  protowire.Number = 1
	fieldDataHeader  protowire.Number = 2
	fieldAppMetadata protowire.Number = 3
	fieldDataBody    protowire.Number = 1000
)

// ErrMalformed is wrapped by every error about the bytes of a FlightData
// message.
var ErrMalformed = errors.New("malformed FlightData")

// cursor reads protobuf wire format from a list of byte slices (the
// buffers of a received message) without joining them.
type cursor struct {
	bufs [][]byte
	i    int // current slice
	off  int // offset within bufs[i]
	pos  int // absolute offset
	n    int // total length
}

func newCursor(bufs [][]byte) *cursor {
	c := &cursor{bufs: bufs}
	for _, b := range bufs {
		c.n += len(b)
	}
	c.normalize()
	return c
}

// normalize moves past exhausted (and empty) slices.
func (c *cursor) normalize() {
	for c.i < len(c.bufs) && c.off == len(c.bufs[c.i]) {
		c.i++
		c.off = 0
	}
}

func (c *cursor) remaining() int { return c.n - c.pos }

// varint decodes a varint exactly as protowire.ConsumeVarint does,
// including where it straddles two slices.
func (c *cursor) varint() (uint64, error) {
	if c.remaining() == 0 {
		return 0, fmt.Errorf("%w: truncated varint at offset %d", ErrMalformed, c.pos)
	}
	b := c.bufs[c.i][c.off:]
	if len(b) < binaryMaxVarintLen && len(b) < c.remaining() {
		// Gather the next bytes from the following slices.
		var scratch [binaryMaxVarintLen]byte
		k := 0
		for j, off := c.i, c.off; k < len(scratch) && j < len(c.bufs); j, off = j+1, 0 {
			k += copy(scratch[k:], c.bufs[j][off:])
		}
		b = scratch[:k]
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, fmt.Errorf("%w: bad varint at offset %d: %w", ErrMalformed, c.pos, protowire.ParseError(n))
	}
	c.advance(n)
	return v, nil
}

// binaryMaxVarintLen is the longest varint protowire accepts.
const binaryMaxVarintLen = 10

// advance moves n bytes forward; the caller has checked n <= remaining.
func (c *cursor) advance(n int) {
	c.pos += n
	for n > 0 {
		step := min(n, len(c.bufs[c.i])-c.off)
		c.off += step
		n -= step
		c.normalize()
	}
	c.normalize()
}

// length reads a length prefix and checks it fits in what is left.
func (c *cursor) length() (int, error) {
	v, err := c.varint()
	if err != nil {
		return 0, err
	}
	if v > uint64(c.remaining()) {
		return 0, fmt.Errorf("%w: a length of %d at offset %d runs past the end (%d bytes left)", ErrMalformed, v, c.pos, c.remaining())
	}
	return int(v), nil
}

// copyOut returns a copy of the next n bytes (n <= remaining) and moves
// past them.
func (c *cursor) copyOut(n int) []byte {
	out := make([]byte, 0, n)
	for k := n; k > 0; {
		b := c.bufs[c.i][c.off:]
		step := min(k, len(b))
		out = append(out, b[:step]...)
		k -= step
		c.advance(step)
	}
	return out
}

// skipField skips the value of an unknown field, mirroring
// protowire.ConsumeFieldValue (groups included, with the same depth
// limit) so that this decoder fails exactly when proto.Unmarshal does.
func (c *cursor) skipField(num protowire.Number, typ protowire.Type, depth int) error {
	switch typ {
	case protowire.VarintType:
		_, err := c.varint()
		return err
	case protowire.Fixed32Type, protowire.Fixed64Type:
		n := 4
		if typ == protowire.Fixed64Type {
			n = 8
		}
		if c.remaining() < n {
			return fmt.Errorf("%w: truncated fixed-width field %d at offset %d", ErrMalformed, num, c.pos)
		}
		c.advance(n)
		return nil
	case protowire.BytesType:
		n, err := c.length()
		if err != nil {
			return err
		}
		c.advance(n)
		return nil
	case protowire.StartGroupType:
		if depth < 0 {
			return fmt.Errorf("%w: groups nested too deeply at offset %d", ErrMalformed, c.pos)
		}
		for {
			tag, err := c.varint()
			if err != nil {
				return err
			}
			// protowire.ConsumeTag's checks, which are looser than the
			// top level's: any number from 1 to MaxInt32.
			num2, typ2 := protowire.DecodeTag(tag)
			if num2 < protowire.MinValidNumber {
				return fmt.Errorf("%w: invalid field number in a group at offset %d", ErrMalformed, c.pos)
			}
			if typ2 == protowire.EndGroupType {
				if num2 != num {
					return fmt.Errorf("%w: group %d ended by %d at offset %d", ErrMalformed, num, num2, c.pos)
				}
				return nil
			}
			if err := c.skipField(num2, typ2, depth-1); err != nil {
				return err
			}
		}
	case protowire.EndGroupType:
		return fmt.Errorf("%w: unmatched end of group %d at offset %d", ErrMalformed, num, c.pos)
	}
	return fmt.Errorf("%w: reserved wire type %d at offset %d", ErrMalformed, typ, c.pos)
}

// span is a byte range of the received message.
type span struct{ start, n int }

// decode parses one FlightData message from bufs into m, which it resets.
// It follows proto.Unmarshal's rules: a repeated scalar field keeps its
// last value, repeated descriptors are merged, a known field with the
// wrong wire type is skipped as an unknown field, and field numbers
// outside 1..2^29-1 are errors. It returns the range of the body in bufs
// (the last data_body field) rather than the body itself.
func decode(bufs [][]byte, m *Message) (body span, err error) {
	c := newCursor(bufs)
	for c.remaining() > 0 {
		tag, err := c.varint()
		if err != nil {
			return span{}, err
		}
		n := tag >> 3
		if n < uint64(protowire.MinValidNumber) || n > uint64(protowire.MaxValidNumber) {
			return span{}, fmt.Errorf("%w: invalid field number %d at offset %d", ErrMalformed, n, c.pos)
		}
		num, typ := protowire.Number(n), protowire.Type(tag&7)
		if typ == protowire.EndGroupType {
			return span{}, fmt.Errorf("%w: end of group %d outside a group at offset %d", ErrMalformed, num, c.pos)
		}
		if typ != protowire.BytesType || (num != fieldDescriptor && num != fieldDataHeader && num != fieldAppMetadata && num != fieldDataBody) {
			if err := c.skipField(num, typ, protowire.DefaultRecursionLimit); err != nil {
				return span{}, err
			}
			continue
		}
		size, err := c.length()
		if err != nil {
			return span{}, err
		}
		switch num {
		case fieldDescriptor:
			if m.Descriptor == nil {
				m.Descriptor = new(flight.FlightDescriptor)
			}
			// An embedded message that occurs more than once is merged,
			// as proto.Unmarshal does.
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(c.copyOut(size), m.Descriptor); err != nil {
				return span{}, fmt.Errorf("%w: flight_descriptor: %w", ErrMalformed, err)
			}
		case fieldDataHeader:
			m.Header = c.copyOut(size)
		case fieldAppMetadata:
			m.AppMetadata = c.copyOut(size)
		case fieldDataBody:
			body = span{start: c.pos, n: size}
			c.advance(size)
		}
	}
	return body, nil
}

// slice returns references to the bytes of s within bufs, without
// copying: one sub-buffer per buffer the range touches. Each holds its own
// reference (mem.Buffer.Slice takes one).
func slice(bufs mem.BufferSlice, s span) mem.BufferSlice {
	if s.n == 0 {
		return nil
	}
	var out mem.BufferSlice
	start, end := s.start, s.start+s.n
	pos := 0
	for _, b := range bufs {
		l := b.Len()
		lo, hi := max(start, pos), min(end, pos+l)
		if lo < hi {
			out = append(out, b.Slice(lo-pos, hi-pos))
		}
		pos += l
		if pos >= end {
			break
		}
	}
	return out
}
