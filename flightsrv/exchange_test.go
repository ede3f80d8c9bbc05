package flightsrv_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/flightsrv"
)

func schemaOf(fields ...arrow.Field) *arrow.Schema { return arrow.NewSchema(fields, nil) }

func field(name string, t arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true}
}

var (
	i64 = arrow.PrimitiveTypes.Int64
	f64 = arrow.PrimitiveTypes.Float64
	str = arrow.BinaryTypes.String
)

// TestExchange checks values, nulls, order and one output batch per input
// batch, for each built-in and for inputs that need a lossless cast.
func TestExchange(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	tests := []struct {
		name    string
		fn      string
		schema  *arrow.Schema
		batches []string // JSON rows, one string per input batch
		want    []string // JSON of the output column, one per output batch
	}{
		{
			name:    "add with nulls",
			fn:      "add_int64",
			schema:  schemaOf(field("p", i64), field("q", i64)),
			batches: []string{`[{"p":1,"q":2}]`},
			want:    []string{`[3]`},
		},
		{
			name:   "add several batches",
			fn:     "add_int64",
			schema: schemaOf(field("x", i64), field("y", i64)),
			batches: []string{
				`[{"x":1,"y":2},{"x":null,"y":5},{"x":-7,"y":null},{"x":40,"y":2}]`,
				`[]`,
				`[{"x":9223372036854775806,"y":1}]`,
			},
			want: []string{`[3,null,null,42]`, `[]`, `[9223372036854775807]`},
		},
		{
			name:    "add int32 and int8 widen to int64",
			fn:      "add_int64",
			schema:  schemaOf(field("a", arrow.PrimitiveTypes.Int32), field("b", arrow.PrimitiveTypes.Int8)),
			batches: []string{`[{"a":2147483647,"b":127},{"a":-5,"b":null}]`},
			want:    []string{`[2147483774,null]`},
		},
		{
			name:    "add uint32 widens to int64",
			fn:      "add_int64",
			schema:  schemaOf(field("a", arrow.PrimitiveTypes.Uint32), field("b", arrow.PrimitiveTypes.Uint8)),
			batches: []string{`[{"a":4294967295,"b":255}]`},
			want:    []string{`[4294967550]`},
		},
		{
			name:    "upper is Unicode-aware",
			fn:      "upper",
			schema:  schemaOf(field("s", str)),
			batches: []string{`[{"s":"héllo"},{"s":null},{"s":"ωmega"},{"s":""},{"s":"日本"}]`},
			want:    []string{`["HÉLLO",null,"ΩMEGA","","日本"]`},
		},
		{
			name:    "upper from large_utf8",
			fn:      "upper",
			schema:  schemaOf(field("s", arrow.BinaryTypes.LargeString)),
			batches: []string{`[{"s":"ça"}]`},
			want:    []string{`["ÇA"]`},
		},
		{
			name:    "upper from utf8_view",
			fn:      "upper",
			schema:  schemaOf(field("s", arrow.BinaryTypes.StringView)),
			batches: []string{`[{"s":"a long string that does not fit inline"},{"s":"ß"}]`},
			want:    []string{`["A LONG STRING THAT DOES NOT FIT INLINE","ß"]`},
		},
		{
			name:    "echo keeps nulls",
			fn:      "echo_int64",
			schema:  schemaOf(field("x", i64)),
			batches: []string{`[{"x":null},{"x":-1}]`, `[{"x":0}]`},
			want:    []string{`[null,-1]`, `[0]`},
		},
		{
			name:    "coalesce receives nulls",
			fn:      "coalesce_int64",
			schema:  schemaOf(field("a", i64), field("b", i64)),
			batches: []string{`[{"a":null,"b":2},{"a":1,"b":null},{"a":null,"b":null}]`},
			want:    []string{`[2,1,null]`},
		},
		{
			name:    "multiply vectorized",
			fn:      "multiply_float64",
			schema:  schemaOf(field("a", f64), field("b", f64)),
			batches: []string{`[{"a":1.5,"b":2},{"a":null,"b":2}]`},
			want:    []string{`[3,null]`},
		},
		{
			name:    "no batches",
			fn:      "add_int64",
			schema:  schemaOf(field("a", i64), field("b", i64)),
			batches: nil,
			want:    nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in []arrow.RecordBatch
			for _, js := range tt.batches {
				in = append(in, batchFromJSON(t, h.mem, tt.schema, js))
			}
			defer release(in)
			out, err := h.exchange(context.Background(), tt.fn, tt.schema, in...)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			defer release(out)
			var got []string
			for _, b := range out {
				got = append(got, columnJSON(t, []arrow.RecordBatch{b}, 0))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("%s(%v) = %v, want %v", tt.fn, tt.batches, got, tt.want)
			}
		})
	}
}

// TestZeroArgument sends zero-column batches that carry only a row count.
func TestZeroArgument(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	schema := arrow.NewSchema(nil, nil)
	var in []arrow.RecordBatch
	for _, n := range []int64{3, 0, 1} {
		in = append(in, array.NewRecordBatch(schema, nil, n))
	}
	defer release(in)
	out, err := h.exchange(context.Background(), "pi", schema, in...)
	if err != nil {
		t.Fatal(err)
	}
	defer release(out)
	var rows []int64
	for _, b := range out {
		rows = append(rows, b.NumRows())
	}
	if fmt.Sprint(rows) != "[3 0 1]" || columnJSON(t, out, 0) != "[3.141592653589793,3.141592653589793,3.141592653589793,3.141592653589793]" {
		t.Errorf("pi over rows %v = %v / %s", []int64{3, 0, 1}, rows, columnJSON(t, out, 0))
	}
}

// TestReslice checks that batches over the row and byte limits are sliced
// for execution and still come back as one batch each, in order.
func TestReslice(t *testing.T) {
	tests := []struct {
		name string
		opts flightsrv.Options
	}{
		{"rows", flightsrv.Options{MaxBatchRows: 1000}},
		{"bytes", flightsrv.Options{MaxBatchBytes: 4096}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessConfig{opts: tt.opts})
			sizes := []int{10_000, 999, 1000, 1001, 0, 65_537}
			var in []arrow.RecordBatch
			next := int64(0)
			for _, n := range sizes {
				in = append(in, sequence(h.mem, next, n))
				next += int64(n)
			}
			defer release(in)
			out, err := h.exchange(context.Background(), "add_int64", in[0].Schema(), in...)
			if err != nil {
				t.Fatal(err)
			}
			defer release(out)
			if len(out) != len(sizes) {
				t.Fatalf("got %d output batches for %d input batches", len(out), len(sizes))
			}
			want := int64(0)
			for i, b := range out {
				if int(b.NumRows()) != sizes[i] {
					t.Errorf("batch %d has %d rows, want %d", i, b.NumRows(), sizes[i])
				}
				for _, v := range b.Column(0).(*array.Int64).Int64Values() {
					if v != 3*want {
						t.Fatalf("batch %d: value %d, want %d", i, v, 3*want)
					}
					want++
				}
			}
		})
	}
}

// sequence builds add_int64 input rows (i, 2i) for i from start.
func sequence(mem memory.Allocator, start int64, n int) arrow.RecordBatch {
	a := array.NewInt64Builder(mem)
	b := array.NewInt64Builder(mem)
	defer a.Release()
	defer b.Release()
	for i := range int64(n) {
		a.Append(start + i)
		b.Append(2 * (start + i))
	}
	ca, cb := a.NewArray(), b.NewArray()
	defer ca.Release()
	defer cb.Release()
	return array.NewRecordBatch(schemaOf(field("a", i64), field("b", i64)), []arrow.Array{ca, cb}, int64(n))
}

// TestDescriptorOnlyAndMetadataMessages speaks like a C++ or pyarrow
// client: a descriptor-only first message, then app_metadata-only messages
// between batches. It also checks that the output schema arrives before
// any input batch is sent.
func TestDescriptorOnlyAndMetadataMessages(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := h.client.DoExchange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&flight.FlightData{FlightDescriptor: path("echo_int64")}); err != nil {
		t.Fatal(err)
	}
	// Nothing but the descriptor has been sent; the schema must come anyway.
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	msg := ipc.NewMessage(memory.NewBufferBytes(first.DataHeader), memory.NewBufferBytes(first.DataBody))
	if msg.Type() != ipc.MessageSchema {
		t.Fatalf("first server message is %s, want a schema", msg.Type())
	}
	msg.Release()

	schema := schemaOf(field("x", i64))
	w := flight.NewRecordWriter(stream, ipc.WithSchema(schema), ipc.WithAllocator(h.mem))
	one, two := int64(1), int64(2)
	b1 := int64Batch(h.mem, "x", []*int64{&one})
	b2 := int64Batch(h.mem, "x", []*int64{&two, nil})
	defer b1.Release()
	defer b2.Release()
	steps := []func() error{
		func() error { return w.WriteMetadata([]byte("before the schema")) },
		func() error { return w.Write(b1) },
		func() error { return w.WriteMetadata([]byte("between batches")) },
		func() error { return w.Write(b2) },
		func() error { return w.WriteMetadata([]byte("at the end")) },
		w.Close,
		stream.CloseSend,
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	// The schema was consumed above; read the batches with a reader over
	// a stream that replays it.
	out, err := readAll(&replay{first: first, rest: stream}, h.mem)
	if err != nil {
		t.Fatal(err)
	}
	defer release(out)
	if len(out) != 2 || columnJSON(t, out, 0) != "[1,2,null]" {
		t.Errorf("got %d batches %s, want 2 batches [1,2,null]", len(out), columnJSON(t, out, 0))
	}
}

type replay struct {
	first *flight.FlightData
	rest  flight.DataStreamReader
}

func (r *replay) Recv() (*flight.FlightData, error) {
	if fd := r.first; fd != nil {
		r.first = nil
		return fd, nil
	}
	return r.rest.Recv()
}

// TestConcurrentExchanges runs exchanges side by side on one connection.
func TestConcurrentExchanges(t *testing.T) {
	h := newHarness(t, harnessConfig{opts: flightsrv.Options{MaxBatchRows: 512}})
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() { errs[g] = addSequence(h, int64(g*100_000), 10_000+g) })
	}
	wg.Wait()
	for g, err := range errs {
		if err != nil {
			t.Errorf("exchange %d: %v", g, err)
		}
	}
}

// addSequence sends rows (i, 2i) twice through add_int64 and checks 3i comes back.
func addSequence(h *harness, start int64, n int) error {
	in := sequence(h.mem, start, n)
	defer in.Release()
	out, err := h.exchange(context.Background(), "add_int64", in.Schema(), in, in)
	if err != nil {
		return err
	}
	defer release(out)
	if len(out) != 2 {
		return fmt.Errorf("%d output batches, want 2", len(out))
	}
	for _, b := range out {
		for i, v := range b.Column(0).(*array.Int64).Int64Values() {
			if want := 3 * (start + int64(i)); v != want {
				return fmt.Errorf("row %d = %d, want %d", i, v, want)
			}
		}
	}
	return nil
}
