package flightsrv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/fletch-udf/fletch/exec"
	"github.com/fletch-udf/fletch/flightsrv"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// wrongRows is a session that drops a row: a broken executor.
type wrongRows struct{ exec.Session }

func (s wrongRows) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	outs, err := s.Session.Process(ctx, in)
	if err != nil || outs[0].NumRows() == 0 {
		return outs, err
	}
	defer outs[0].Release()
	return []arrow.RecordBatch{outs[0].NewSlice(1, outs[0].NumRows())}, nil
}

func TestExchangeErrors(t *testing.T) {
	boom := exec.Scalar1("boom", func(x int64) int64 { panic(fmt.Sprintf("boom at %d", x)) }, exec.WithParamNames("x"))
	h := newHarness(t, harnessConfig{
		fns:  []*exec.Function{boom, exec.Scalar1("echo_dropping", func(x int64) int64 { return x })},
		opts: flightsrv.Options{MaxMessageBytes: 64 << 10},
		wrap: func(fn *udfcatalog.UDF, s exec.Session) exec.Session {
			if fn.Name == "echo_dropping" {
				return wrongRows{s}
			}
			return s
		},
	})
	two := schemaOf(field("a", i64), field("b", i64))
	tests := []struct {
		name   string
		fn     string
		schema *arrow.Schema
		rows   string
		code   codes.Code
		msg    string
	}{
		{"unknown function", "ad_int64", two, `[]`, codes.NotFound,
			`function "ad_int64" not found; did you mean "add_int64"`},
		{"wrong type", "add_int64", schemaOf(field("a", i64), field("b", str)), `[]`, codes.InvalidArgument,
			`add_int64: input column 1 ("b"): expected int64, got utf8`},
		{"lossy integer", "add_int64", schemaOf(field("a", arrow.PrimitiveTypes.Uint64), field("b", i64)), `[]`, codes.InvalidArgument,
			`input column 0 ("a"): expected int64, got uint64`},
		{"wrong column count", "add_int64", schemaOf(field("a", i64)), `[]`, codes.InvalidArgument,
			`add_int64 takes 2 column(s) (a int64, b int64), got 1 (int64)`},
		{"function error names the row", "div_int64", two, `[{"a":1,"b":1},{"a":1,"b":0}]`, codes.Unknown,
			`div_int64: row 1: division by zero`},
		{"overflow", "add_int64", two, `[{"a":9223372036854775807,"b":1}]`, codes.Unknown,
			`add_int64: row 0: integer overflow`},
		{"panic", "boom", schemaOf(field("x", i64)), `[{"x":7}]`, codes.Internal,
			`panic: boom at 7`},
		{"wrong row count", "echo_dropping", schemaOf(field("x", i64)), `[{"x":1},{"x":2}]`, codes.Internal,
			`batch 0: returned 1 rows for 2 input rows`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := batchFromJSON(t, h.mem, tt.schema, tt.rows)
			defer in.Release()
			out, err := h.exchange(context.Background(), tt.fn, tt.schema, in)
			release(out)
			checkStatus(t, err, tt.code, tt.msg)
			if err := addSequence(h, 0, 10); err != nil {
				t.Errorf("the next call failed: %v", err)
			}
		})
	}

	t.Run("row index counts from the client's batch", func(t *testing.T) {
		small := newHarness(t, harnessConfig{opts: flightsrv.Options{MaxBatchRows: 100}})
		in := sequence(small.mem, 0, 1000) // rows (i, 2i); row 0 is (0, 0)
		defer in.Release()
		b := array.NewInt64Builder(small.mem)
		defer b.Release()
		for i := range 1000 {
			if i == 750 {
				b.Append(0)
			} else {
				b.Append(1)
			}
		}
		den := b.NewArray()
		defer den.Release()
		rec := array.NewRecordBatch(in.Schema(), []arrow.Array{in.Column(0), den}, 1000)
		defer rec.Release()
		out, err := small.exchange(context.Background(), "div_int64", rec.Schema(), rec)
		release(out)
		checkStatus(t, err, codes.Unknown, "batch 0: div_int64: row 750: division by zero")
	})

	t.Run("exchange options", func(t *testing.T) {
		in := sequence(h.mem, 0, 3)
		defer in.Release()
		for _, tt := range []struct {
			headers []string
			code    codes.Code
			msg     string
		}{
			{[]string{`{}`}, codes.OK, ""},
			{[]string{`{"running": true}`}, codes.InvalidArgument, "invalid exchange options: running applies to aggregates; add_int64 is a scalar function"},
			{[]string{`{"phase": "partial"}`}, codes.InvalidArgument, "phase applies to aggregates"},
			{[]string{`{"speed": 11}`}, codes.InvalidArgument, `unknown field "speed"`},
			{[]string{`running`}, codes.InvalidArgument, `want a JSON object with keys running and phase, got "running"`},
			{[]string{`{}`, `{}`}, codes.InvalidArgument, "2 fletch-options headers; send one JSON object"},
		} {
			ctx := context.Background()
			for _, v := range tt.headers {
				ctx = metadata.AppendToOutgoingContext(ctx, flightsrv.OptionsHeader, v)
			}
			out, err := h.exchange(ctx, "add_int64", in.Schema(), in)
			release(out)
			if tt.code == codes.OK {
				if err != nil {
					t.Errorf("options %q: %v", tt.headers, err)
				}
				continue
			}
			checkStatus(t, err, tt.code, tt.msg)
		}
	})

	t.Run("output over the limit", func(t *testing.T) {
		long := strings.Repeat("ɐ", 30_000) // 60 kB in, upper case is 90 kB out
		in := batchFromJSON(t, h.mem, schemaOf(field("s", str)), `[{"s":"`+long+`"}]`)
		defer in.Release()
		out, err := h.exchange(context.Background(), "upper", in.Schema(), in)
		release(out)
		checkStatus(t, err, codes.ResourceExhausted, "exceeds the server's limit of 65536 bytes (--max-message-bytes)")
		if err := addSequence(h, 0, 10); err != nil {
			t.Errorf("the next call failed: %v", err)
		}
	})

	t.Run("message over the limit", func(t *testing.T) {
		in := sequence(h.mem, 0, 10_000) // 160 kB, over the 64 KiB limit
		defer in.Release()
		out, err := h.exchange(context.Background(), "add_int64", in.Schema(), in)
		release(out)
		checkStatus(t, err, codes.ResourceExhausted, "received message larger than max (160192 vs. 65536)")
		if err := addSequence(h, 0, 10); err != nil {
			t.Errorf("the next call failed: %v", err)
		}
	})
}

// TestMalformedInput sends raw FlightData that no well-behaved client would.
func TestMalformedInput(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	schema := schemaOf(field("s", str))
	header, body := payload(t, h.mem, schema, nil)
	recHeader, recBody := payload(t, h.mem, schema, []string{"abc", "de"})
	corrupt := bytes.Clone(recBody)
	corrupt[4] = 0x7f // first end offset far past the data buffer
	tests := []struct {
		name string
		msgs []*flight.FlightData
		code codes.Code
		msg  string
	}{
		{"nothing at all", nil, codes.InvalidArgument, "ended before its first message"},
		{"no descriptor", []*flight.FlightData{{DataHeader: header, DataBody: body}}, codes.InvalidArgument,
			"no flight descriptor"},
		{"garbage header", []*flight.FlightData{{FlightDescriptor: path("upper"), DataHeader: []byte("not a flatbuffer at all")}},
			codes.InvalidArgument, "malformed Arrow IPC"},
		{"body without header", []*flight.FlightData{{FlightDescriptor: path("upper")}, {DataBody: []byte{1, 2, 3}}},
			codes.InvalidArgument, "3-byte body but no IPC header"},
		{"batch before schema", []*flight.FlightData{{FlightDescriptor: path("upper"), DataHeader: recHeader, DataBody: recBody}},
			codes.InvalidArgument, "malformed Arrow IPC"},
		{"offsets out of range", []*flight.FlightData{
			{FlightDescriptor: path("upper"), DataHeader: header, DataBody: body},
			{DataHeader: recHeader, DataBody: corrupt}},
			codes.InvalidArgument, "malformed Arrow IPC: batch 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkStatus(t, h.raw(tt.msgs...), tt.code, tt.msg)
			if err := addSequence(h, 0, 10); err != nil {
				t.Errorf("the next call failed: %v", err)
			}
		})
	}
}

// payload encodes a schema message (values == nil) or a utf8 batch.
func payload(t *testing.T, mem memory.Allocator, schema *arrow.Schema, values []string) (header, body []byte) {
	t.Helper()
	var p ipc.Payload
	if values == nil {
		p = ipc.GetSchemaPayload(schema, mem)
	} else {
		b := array.NewStringBuilder(mem)
		b.AppendValues(values, nil)
		col := b.NewArray()
		b.Release()
		rec := array.NewRecordBatch(schema, []arrow.Array{col}, int64(len(values)))
		col.Release()
		var err error
		p, err = ipc.GetRecordBatchPayload(rec, ipc.WithAllocator(mem))
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	defer p.Release()
	meta := p.Meta()
	defer meta.Release()
	var buf bytes.Buffer
	if err := p.SerializeBody(&buf); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(meta.Bytes()), buf.Bytes()
}

// raw sends msgs as they are, half-closes, and returns the call's status.
func (h *harness) raw(msgs ...*flight.FlightData) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := h.client.DoExchange(ctx)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			break
		}
	}
	stream.CloseSend()
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// TestRowsWithoutData: a zero-column batch claims rows without carrying
// data, so its row count is bounded.
func TestRowsWithoutData(t *testing.T) {
	h := newHarness(t, harnessConfig{opts: flightsrv.Options{MaxBatchRows: 10, MaxMessageBytes: 8000}})
	schema := arrow.NewSchema(nil, nil)
	for _, tt := range []struct {
		rows int64
		code codes.Code
	}{{900, codes.OK}, {1001, codes.InvalidArgument}} {
		in := array.NewRecordBatch(schema, nil, tt.rows)
		out, err := h.exchange(context.Background(), "pi", schema, in)
		in.Release()
		release(out)
		if tt.code == codes.OK && err != nil {
			t.Errorf("pi over %d rows: %v", tt.rows, err)
		}
		if tt.code != codes.OK {
			checkStatus(t, err, tt.code, "1001 rows with only 0 bytes of data; such batches may have at most 1000 rows")
		}
	}
}

// TestLongErrorsKeepTheirStatus: an error message far longer than a
// status should carry (every column of a 2,500-column batch named in a
// signature mismatch) is cut, and the client still gets its code.
func TestLongErrorsKeepTheirStatus(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	fields := make([]arrow.Field, 2500)
	cols := make([]arrow.Array, len(fields))
	for i := range fields {
		fields[i] = field(fmt.Sprintf("a_rather_long_column_name_%04d", i), i64)
		b := array.NewInt64Builder(h.mem)
		b.Append(int64(i))
		cols[i] = b.NewArray()
		b.Release()
		defer cols[i].Release()
	}
	schema := schemaOf(fields...)
	rec := array.NewRecordBatch(schema, cols, 1)
	defer rec.Release()
	outs, err := h.exchange(context.Background(), "add_int64", schema, rec)
	release(outs)
	checkStatus(t, err, codes.InvalidArgument, "add_int64 takes 2 column(s)")
	msg := status.Convert(err).Message()
	if len(msg) > 4200 || !strings.Contains(msg, "bytes more (the server's log has the whole message)") {
		t.Errorf("message of %d bytes: %.300q", len(msg), msg)
	}
}
