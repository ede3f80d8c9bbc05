package flightwire

import (
	"bytes"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// countingPool stands in for gRPC's buffer pool. Its buffers have a
// capacity above gRPC's pooling threshold, so mem.NewBuffer makes them
// reference-counted whatever their length, and it counts the ones
// returned: a test sees every reference dropped.
type countingPool struct{ got, put atomic.Int64 }

func (p *countingPool) Get(n int) *[]byte {
	p.got.Add(1)
	b := make([]byte, n, max(n, 4096))
	return &b
}

func (p *countingPool) Put(*[]byte) { p.put.Add(1) }

// outstanding is how many buffers were not returned.
func (p *countingPool) outstanding() int64 { return p.got.Load() - p.put.Load() }

// split copies data into reference-counted buffers from pool, cut after
// each length in sizes (a zero size makes an empty buffer); the rest of
// data goes in a last buffer.
func split(pool mem.BufferPool, data []byte, sizes []int) mem.BufferSlice {
	var out mem.BufferSlice
	add := func(part []byte) {
		b := pool.Get(len(part))
		copy(*b, part)
		out = append(out, mem.NewBuffer(b, pool))
	}
	for _, n := range sizes {
		n = min(n, len(data))
		add(data[:n])
		data = data[n:]
	}
	if len(data) > 0 || len(out) == 0 {
		add(data)
	}
	return out
}

// equalFlightData reports how m differs from fd, or "" if it agrees.
func equalFlightData(m *Message, fd *flight.FlightData) string {
	switch {
	case !bytes.Equal(m.Header, fd.DataHeader):
		return fmt.Sprintf("header = %x, want %x", m.Header, fd.DataHeader)
	case !bytes.Equal(m.AppMetadata, fd.AppMetadata):
		return fmt.Sprintf("app_metadata = %x, want %x", m.AppMetadata, fd.AppMetadata)
	case !bytes.Equal(m.Body.Materialize(), fd.DataBody):
		return fmt.Sprintf("body = %d bytes, want %d", m.BodyLen(), len(fd.DataBody))
	case (m.Descriptor == nil) != (fd.FlightDescriptor == nil):
		return fmt.Sprintf("descriptor = %v, want %v", m.Descriptor, fd.FlightDescriptor)
	case m.Descriptor != nil && !proto.Equal(m.Descriptor, fd.FlightDescriptor):
		return fmt.Sprintf("descriptor = %v, want %v", m.Descriptor, fd.FlightDescriptor)
	}
	return ""
}

func mustCodec(t testing.TB) *Codec {
	t.Helper()
	c, err := NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// errEndOfTest ends a recvReader's stream in tests without gRPC.
var errEndOfTest = io.EOF

// recvReader is an ipc.MessageReader over received Messages, the shape
// flightsrv's messageReader takes on top of this package: it skips
// messages without an IPC header (a descriptor-only first message,
// app_metadata-only ones) and builds each IPC message with IPCMessage.
type recvReader struct {
	recv  func(*Message) error
	alloc memory.Allocator
	// last is the latest message; its header, descriptor and app_metadata
	// stay after its body was handed to the IPC message.
	last Message
	msg  *ipc.Message
	refs atomic.Int64
}

func (r *recvReader) Message() (*ipc.Message, error) {
	r.releaseMsg()
	for {
		if err := r.recv(&r.last); err != nil {
			return nil, err
		}
		if len(r.last.Header) == 0 {
			if r.last.BodyLen() > 0 {
				return nil, fmt.Errorf("a %d-byte body without an IPC header", r.last.BodyLen())
			}
			continue
		}
		msg, err := r.last.IPCMessage(r.alloc, nil)
		r.last.Free() // the IPC message holds what it needs
		if err != nil {
			return nil, err
		}
		r.msg = msg
		return msg, nil
	}
}

func (r *recvReader) releaseMsg() {
	if r.msg != nil {
		r.msg.Release()
		r.msg = nil
	}
}

func (r *recvReader) Retain() { r.refs.Add(1) }

func (r *recvReader) Release() {
	if r.refs.Add(-1) <= 0 {
		r.releaseMsg()
		r.last.Free()
	}
}
