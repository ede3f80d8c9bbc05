package flightwire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// wire builds protobuf wire format by hand.
type wire []byte

func (w wire) bytes(num protowire.Number, v []byte) wire {
	w = protowire.AppendTag(w, num, protowire.BytesType)
	return protowire.AppendBytes(w, v)
}

func (w wire) tag(num protowire.Number, typ protowire.Type) wire {
	return protowire.AppendTag(w, num, typ)
}

func (w wire) varint(v uint64) wire { return protowire.AppendVarint(w, v) }

func (w wire) raw(b ...byte) wire { return append(w, b...) }

func marshalDesc(t testing.TB, d *flight.FlightDescriptor) []byte {
	t.Helper()
	b, err := proto.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unmarshalCases are FlightData encodings, valid and not, with whether
// proto.Unmarshal accepts them.
func unmarshalCases(t testing.TB) []struct {
	name    string
	give    []byte
	wantErr bool
} {
	path := marshalDesc(t, &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"echo", "x"}})
	cmd := marshalDesc(t, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte("select 1")})
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000)
	badUTF8 := wire(nil).tag(1, protowire.VarintType).varint(1).bytes(3, []byte{0xff, 0xfe})
	return []struct {
		name    string
		give    []byte
		wantErr bool
	}{
		{name: "empty", give: nil},
		{name: "all fields", give: wire(nil).bytes(1, path).bytes(2, []byte("hdr")).bytes(3, []byte("meta")).bytes(1000, big)},
		{name: "fields out of order", give: wire(nil).bytes(1000, big).bytes(3, []byte("meta")).bytes(2, []byte("hdr")).bytes(1, path)},
		{name: "descriptor only", give: wire(nil).bytes(1, path)},
		{name: "empty descriptor", give: wire(nil).bytes(1, nil)},
		{name: "empty fields", give: wire(nil).bytes(2, nil).bytes(3, nil).bytes(1000, nil)},
		{name: "duplicate fields: last wins", give: wire(nil).bytes(2, []byte("a")).bytes(1000, []byte("body1")).bytes(2, []byte("bb")).bytes(1000, []byte("body2")).bytes(3, []byte("m1")).bytes(3, []byte("m2"))},
		{name: "duplicate descriptors merge", give: wire(nil).bytes(1, path).bytes(1, cmd)},
		{name: "unknown fields of every wire type", give: wire(nil).
			tag(4, protowire.VarintType).varint(1<<63).
			tag(5, protowire.Fixed32Type).raw(1, 2, 3, 4).
			tag(6, protowire.Fixed64Type).raw(1, 2, 3, 4, 5, 6, 7, 8).
			bytes(7, []byte("skip me")).
			tag(8, protowire.StartGroupType).tag(1, protowire.VarintType).varint(5).tag(9, protowire.StartGroupType).tag(9, protowire.EndGroupType).tag(8, protowire.EndGroupType).
			bytes(2, []byte("hdr")).bytes(1000, big)},
		{name: "known fields with the wrong wire type are skipped", give: wire(nil).
			tag(2, protowire.VarintType).varint(7).
			tag(1000, protowire.Fixed64Type).raw(1, 2, 3, 4, 5, 6, 7, 8).
			tag(1, protowire.StartGroupType).tag(1, protowire.EndGroupType).
			tag(3, protowire.Fixed32Type).raw(1, 2, 3, 4)},
		{name: "largest field number", give: wire(nil).tag(protowire.MaxValidNumber, protowire.VarintType).varint(1)},
		{name: "group with a large inner field number", give: wire(nil).tag(8, protowire.StartGroupType).varint(uint64(1<<31-1)<<3).varint(0).tag(8, protowire.EndGroupType)},
		{name: "non-minimal varint length", give: wire(nil).tag(2, protowire.BytesType).raw(0x83, 0x80, 0x80, 0x00).raw('a', 'b', 'c')},

		{name: "truncated tag", give: []byte{0x80}, wantErr: true},
		{name: "truncated length", give: wire(nil).tag(1000, protowire.BytesType).raw(0xff), wantErr: true},
		{name: "length past the end", give: wire(nil).tag(1000, protowire.BytesType).varint(10).raw(1, 2, 3), wantErr: true},
		{name: "huge length", give: wire(nil).tag(2, protowire.BytesType).varint(1 << 63), wantErr: true},
		{name: "varint overflow", give: wire(nil).tag(4, protowire.VarintType).raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), wantErr: true},
		{name: "eleven-byte varint", give: wire(nil).tag(4, protowire.VarintType).raw(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), wantErr: true},
		{name: "field number zero", give: []byte{0x02, 0x00}, wantErr: true},
		{name: "field number too large", give: wire(nil).varint(uint64(protowire.MaxValidNumber+1)<<3 | 2).varint(0), wantErr: true},
		{name: "reserved wire type 6", give: wire(nil).varint(4<<3 | 6), wantErr: true},
		{name: "reserved wire type 7", give: wire(nil).varint(4<<3 | 7), wantErr: true},
		{name: "end group at top level", give: wire(nil).tag(4, protowire.EndGroupType), wantErr: true},
		{name: "unterminated group", give: wire(nil).tag(4, protowire.StartGroupType).tag(5, protowire.VarintType).varint(1), wantErr: true},
		{name: "mismatched end group", give: wire(nil).tag(4, protowire.StartGroupType).tag(5, protowire.EndGroupType), wantErr: true},
		{name: "field number zero in a group", give: wire(nil).tag(4, protowire.StartGroupType).raw(0x00).tag(4, protowire.EndGroupType), wantErr: true},
		{name: "truncated fixed64", give: wire(nil).tag(4, protowire.Fixed64Type).raw(1, 2, 3), wantErr: true},
		{name: "truncated fixed32", give: wire(nil).tag(4, protowire.Fixed32Type).raw(1, 2, 3), wantErr: true},
		{name: "descriptor with invalid UTF-8 path", give: wire(nil).bytes(1, badUTF8), wantErr: true},
		{name: "malformed descriptor", give: wire(nil).bytes(1, []byte{0x80}), wantErr: true},
		{name: "valid fields then garbage", give: wire(nil).bytes(2, []byte("hdr")).bytes(1000, big).raw(0xff), wantErr: true},
	}
}

func TestUnmarshalAgreesWithProto(t *testing.T) {
	codec := mustCodec(t)
	for _, tt := range unmarshalCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			var fd flight.FlightData
			perr := proto.Unmarshal(tt.give, &fd)
			if (perr != nil) != tt.wantErr {
				t.Fatalf("proto.Unmarshal error = %v, want error %v (bad test case)", perr, tt.wantErr)
			}
			// Every way of cutting small inputs, a few for large ones.
			var cuts [][]int
			if len(tt.give) <= 64 {
				for i := 0; i <= len(tt.give); i++ {
					cuts = append(cuts, []int{i})
				}
				ones := make([]int, len(tt.give))
				for i := range ones {
					ones[i] = 1
				}
				cuts = append(cuts, ones)
			} else {
				cuts = [][]int{nil, {1}, {2}, {3, 0, 5}, {len(tt.give) / 2}, {16384, 16384}, {len(tt.give) - 1}}
			}
			for _, sizes := range cuts {
				pool := &countingPool{}
				data := split(pool, tt.give, sizes)
				var m Message
				err := codec.Unmarshal(data, &m)
				data.Free() // gRPC frees its references when Unmarshal returns.
				if tt.wantErr {
					if err == nil || !errors.Is(err, ErrMalformed) {
						t.Fatalf("cut %v: Unmarshal error = %v, want an ErrMalformed", sizes, err)
					}
					if m.Descriptor != nil || m.Header != nil || m.Body != nil {
						t.Errorf("cut %v: a failed Unmarshal left %+v", sizes, m)
					}
				} else {
					if err != nil {
						t.Fatalf("cut %v: Unmarshal: %v", sizes, err)
					}
					if diff := equalFlightData(&m, &fd); diff != "" {
						t.Fatalf("cut %v: %s", sizes, diff)
					}
				}
				m.Free()
				if n := pool.outstanding(); n != 0 {
					t.Fatalf("cut %v: %d buffers still referenced after Free", sizes, n)
				}
			}
		})
	}
}

func TestUnmarshalReferencesBody(t *testing.T) {
	codec := mustCodec(t)
	body := bytes.Repeat([]byte{7}, 3*16384)
	enc := wire(nil).bytes(2, []byte("hdr")).bytes(1000, body)
	pool := &countingPool{}
	data := split(pool, enc, []int{16384, 16384, 16384})
	received := make([][]byte, len(data))
	for i, b := range data {
		received[i] = b.ReadOnlyData()
	}
	var m Message
	if err := codec.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	data.Free()
	if got := len(m.Body); got != 4 {
		t.Fatalf("the body spans %d buffers, want 4", got)
	}
	for i, b := range m.Body {
		if !within(b.ReadOnlyData(), received[i]) {
			t.Fatalf("body buffer %d is not a view of received buffer %d", i, i)
		}
	}
	if n := pool.outstanding(); n != 4 {
		t.Fatalf("%d buffers referenced after gRPC freed its own, want the 4 holding the body", n)
	}
	if !bytes.Equal(m.Body.Materialize(), body) {
		t.Fatal("body differs")
	}
	if _, ok := m.BodyBytes(); ok {
		t.Fatal("BodyBytes claims a 4-buffer body is contiguous")
	}
	dst := make([]byte, len(body))
	if n := m.CopyBodyTo(dst); n != len(body) || !bytes.Equal(dst, body) {
		t.Fatalf("CopyBodyTo = %d, want %d equal bytes", n, len(body))
	}
	// Reusing the Message frees what it held.
	small := split(pool, wire(nil).bytes(1000, []byte("tiny")), nil)
	if err := codec.Unmarshal(small, &m); err != nil {
		t.Fatal(err)
	}
	small.Free()
	if got, ok := m.BodyBytes(); !ok || string(got) != "tiny" {
		t.Fatalf("BodyBytes = %q, %v; want \"tiny\", true", got, ok)
	}
	m.Free()
	m.Free()
	if n := pool.outstanding(); n != 0 {
		t.Fatalf("%d buffers still referenced after Free", n)
	}
}

func TestMarshalMatchesProto(t *testing.T) {
	codec := mustCodec(t)
	big := bytes.Repeat([]byte("xyz"), 40000)
	tests := []struct {
		name string
		give func(pool mem.BufferPool) *Message
	}{
		{"empty", func(mem.BufferPool) *Message { return &Message{} }},
		{"empty descriptor", func(mem.BufferPool) *Message { return &Message{Descriptor: &flight.FlightDescriptor{}} }},
		{"descriptor", func(mem.BufferPool) *Message {
			return &Message{Descriptor: &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"f"}}}
		}},
		{"header and metadata", func(mem.BufferPool) *Message {
			return &Message{Header: []byte("hdr"), AppMetadata: []byte("meta")}
		}},
		{"small body", func(pool mem.BufferPool) *Message {
			return &Message{Header: []byte("hdr"), Body: split(pool, []byte("body"), nil)}
		}},
		{"body in many buffers", func(pool mem.BufferPool) *Message {
			return &Message{
				Descriptor:  &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte("c")},
				Header:      []byte("hdr"),
				AppMetadata: []byte("meta"),
				Body:        split(pool, big, []int{1, 0, 16384, 5000}),
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := &countingPool{}
			m := tt.give(pool)
			want, err := proto.Marshal(&flight.FlightData{
				FlightDescriptor: m.Descriptor, DataHeader: m.Header, AppMetadata: m.AppMetadata, DataBody: m.Body.Materialize(),
			})
			if err != nil {
				t.Fatal(err)
			}
			out, err := codec.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if got := out.Materialize(); !bytes.Equal(got, want) {
				t.Fatalf("Marshal = %x..., want proto.Marshal's %x...", got[:min(len(got), 32)], want[:min(len(want), 32)])
			}
			if got := m.Size(); got != len(want) {
				t.Errorf("Size() = %d, want %d", got, len(want))
			}
			// The body's buffers are in the output, not copies of them.
			for i, b := range m.Body {
				if b.Len() > 0 && !containsBuffer(out, b) {
					t.Errorf("body buffer %d was copied", i)
				}
			}
			out.Free() // what gRPC does when it has written the message
			if n, want := pool.outstanding(), int64(len(m.Body)); n != want {
				t.Errorf("%d buffers referenced after gRPC freed the output, want the Message's %d", n, want)
			}
			m.Free()
			if n := pool.outstanding(); n != 0 {
				t.Errorf("%d buffers still referenced after Free", n)
			}
		})
	}
}

// within reports whether b lies inside region's memory.
func within(b, region []byte) bool {
	if len(b) == 0 || len(region) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(region)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(region))
}

func containsBuffer(s mem.BufferSlice, b mem.Buffer) bool {
	for _, x := range s {
		if x.Len() > 0 && &x.ReadOnlyData()[0] == &b.ReadOnlyData()[0] {
			return true
		}
	}
	return false
}

func TestCodecDelegates(t *testing.T) {
	codec := mustCodec(t)
	if got := codec.Name(); got != "proto" {
		t.Fatalf("Name() = %q, want \"proto\"", got)
	}
	in := &flight.FlightData{DataHeader: []byte("h"), DataBody: []byte("b")}
	out, err := codec.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	var got flight.FlightData
	if err := codec.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, in) {
		t.Fatalf("round trip through the delegate = %v, want %v", &got, in)
	}
	if _, err := codec.Marshal(struct{}{}); err == nil || !strings.Contains(err.Error(), "proto") {
		t.Fatalf("Marshal(struct{}{}) error = %v, want the proto codec's", err)
	}
}
