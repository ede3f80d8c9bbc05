package flightwire

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/proto"
)

// FuzzUnmarshalFlightData feeds arbitrary bytes, cut into buffers at
// arbitrary places (one cut after each byte of cuts, as a length), to the
// decoder. It must not panic, must hold no reference after Free, and must
// agree with proto.Unmarshal into flight.FlightData: both fail, or both
// succeed with the same descriptor, header, app_metadata and body. When
// they succeed, re-encoding the Message must give proto.Marshal's bytes
// for the FlightData without its unknown fields (which a Message drops).
func FuzzUnmarshalFlightData(f *testing.F) {
	for _, tt := range unmarshalCases(f) {
		if len(tt.give) > 8<<10 {
			continue // large seeds slow every mutation down
		}
		f.Add(tt.give, []byte{})
		f.Add(tt.give, []byte{1, 2, 3})
	}
	// Real encodings: what arrow-go's Flight writer sends.
	alloc := memory.NewGoAllocator()
	for _, rows := range []int{0, 3, 300} {
		rec := makeBatch(alloc, rows, 2)
		p, err := ipc.GetRecordBatchPayload(rec, ipc.WithAllocator(alloc))
		if err != nil {
			f.Fatal(err)
		}
		var body bytes.Buffer
		if err := p.SerializeBody(&body); err != nil {
			f.Fatal(err)
		}
		meta := p.Meta()
		enc, err := proto.Marshal(&flight.FlightData{FlightDescriptor: echoDesc, DataHeader: meta.Bytes(), AppMetadata: []byte("m"), DataBody: body.Bytes()})
		if err != nil {
			f.Fatal(err)
		}
		meta.Release()
		p.Release()
		rec.Release()
		f.Add(enc, []byte{})
		f.Add(enc, []byte{5, 0, 200, 7})
	}
	codec, err := NewCodec()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		sizes := make([]int, len(cuts))
		for i, c := range cuts {
			sizes[i] = int(c)
		}
		pool := &countingPool{}
		bufs := split(pool, data, sizes)
		var m Message
		err := codec.Unmarshal(bufs, &m)
		bufs.Free()
		defer func() {
			m.Free()
			if n := pool.outstanding(); n != 0 {
				t.Fatalf("%d buffers still referenced after Free", n)
			}
		}()

		var fd flight.FlightData
		perr := proto.Unmarshal(data, &fd)
		if (err == nil) != (perr == nil) {
			t.Fatalf("Unmarshal error = %v, proto.Unmarshal error = %v", err, perr)
		}
		if err != nil {
			return
		}
		if diff := equalFlightData(&m, &fd); diff != "" {
			t.Fatal(diff)
		}
		out, err := codec.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		got := out.Materialize()
		out.Free()
		fd.ProtoReflect().SetUnknown(nil)
		want, err := proto.Marshal(&fd)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("re-encoded = %x, want %x", got, want)
		}
	})
}
