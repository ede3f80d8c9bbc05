package flightsrv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/mem"

	"github.com/fletch-udf/fletch/internal/flightwire"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// fuzzStream replays FlightData messages decoded from fuzz input: each is
// a 4-byte header length, the header, a 4-byte body length, the body.
type fuzzStream struct{ data []byte }

// RecvMsg fills a flightwire.Message as the server's codec would, with the
// body split in 4 KiB buffers as gRPC's frames split it.
func (s *fuzzStream) RecvMsg(m any) error {
	header, ok := s.next()
	if !ok {
		return io.EOF
	}
	body, _ := s.next()
	msg := m.(*flightwire.Message)
	msg.Header = header
	for len(body) > 0 {
		n := min(len(body), 4096)
		msg.Body = append(msg.Body, mem.SliceBuffer(body[:n]))
		body = body[n:]
	}
	return nil
}

func (s *fuzzStream) SendMsg(any) error { return errors.New("a fuzz stream sends nothing") }

func (s *fuzzStream) next() ([]byte, bool) {
	if len(s.data) < 4 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint32(s.data))
	s.data = s.data[4:]
	n = min(n, len(s.data))
	part := s.data[:n]
	s.data = s.data[n:]
	return part, true
}

func encodeMessages(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(m)))
		out = append(out, m...)
	}
	return out
}

// seedStream encodes a valid input stream for a (utf8, int64) function.
func seedStream(t testing.TB) []byte {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	rec, _, err := array.RecordFromJSON(mem, schema, bytes.NewReader([]byte(`[{"s":"ab","n":1},{"s":null,"n":null}]`)))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	sp := ipc.GetSchemaPayload(schema, mem)
	rp, err := ipc.GetRecordBatchPayload(rec, ipc.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	var parts [][]byte
	for _, p := range []ipc.Payload{sp, rp} {
		meta := p.Meta()
		var body bytes.Buffer
		if err := p.SerializeBody(&body); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, bytes.Clone(meta.Bytes()), body.Bytes())
		meta.Release()
		p.Release()
	}
	return encodeMessages(parts...)
}

// FuzzExchangeDecode feeds arbitrary FlightData through the exchange's
// input path: IPC decoding, validation, schema conformance and slicing.
// It must never panic and must release everything it allocates.
func FuzzExchangeDecode(f *testing.F) {
	f.Add(seedStream(f))
	f.Add(encodeMessages([]byte("garbage"), nil))
	f.Add(encodeMessages(nil, nil, nil, []byte{1, 2, 3}))
	fn := &udfcatalog.UDF{
		Name: "f", Kind: udfcatalog.KindScalar, Language: udfcatalog.LanguageGo, Version: "v",
		Params: []udfcatalog.Param{{Name: "s", Type: arrow.BinaryTypes.LargeString}, {Name: "n", Type: arrow.PrimitiveTypes.Int64}},
		Result: arrow.Field{Name: "f", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		s := &Server{mem: mem, bodies: newBodyPool(mem), log: hclog.NewNullLogger(), opts: Options{MaxBatchRows: 1}.withDefaults()}
		q := &queue{jobs: make(chan job), budget: semaphore.NewWeighted(int64(s.opts.MaxBatchBytes))}
		ended := make(chan readEnd, 1)
		s.readers.Add(1)
		go s.readInput(context.Background(), &fuzzStream{data: data}, nil, fn, q, ended)
		for j := range q.jobs {
			q.budget.Release(j.bytes)
			j.in.Release()
		}
		<-ended
		s.bodies.drain()
		mem.AssertSize(t, 0)
	})
}
