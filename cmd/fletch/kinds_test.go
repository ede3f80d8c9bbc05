package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/flightsrv"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// The test-only UDFs of the kinds native Go functions cannot have. Their
// sessions run in the in-process server, behind a real Flight exchange.

func testKindUDF(name string, kind udfcatalog.Kind, params []udfcatalog.Param, result arrow.DataType) *udfcatalog.UDF {
	res := arrow.Field{Name: name, Type: result, Nullable: true}
	return &udfcatalog.UDF{
		Name: name, Kind: kind, Language: udfcatalog.LanguageGo, Params: params, Result: res,
		Volatility: udfcatalog.Immutable,
		Version:    udfcatalog.Digest(name, kind, udfcatalog.LanguageGo, params, res, nil),
	}
}

var (
	repeatUDF = testKindUDF("repeat", udfcatalog.KindTable,
		[]udfcatalog.Param{{Name: "s", Type: arrow.BinaryTypes.String}, {Name: "n", Type: arrow.PrimitiveTypes.Int64}},
		arrow.StructOf(arrow.Field{Name: "item", Type: arrow.BinaryTypes.String}, arrow.Field{Name: "i", Type: arrow.PrimitiveTypes.Int64}))
	seriesUDF = testKindUDF("series", udfcatalog.KindTable,
		[]udfcatalog.Param{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, arrow.PrimitiveTypes.Int64)
	// backwards breaks the protocol: its rows come last input row first.
	backwardsUDF = testKindUDF("backwards", udfcatalog.KindTable,
		[]udfcatalog.Param{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, arrow.PrimitiveTypes.Int64)
	totalUDF = testKindUDF("total", udfcatalog.KindAggregate,
		[]udfcatalog.Param{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, arrow.PrimitiveTypes.Int64)
	evensUDF = testKindUDF("evens", udfcatalog.KindTransform,
		[]udfcatalog.Param{{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true}},
		arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, arrow.Field{Name: "tag", Type: arrow.BinaryTypes.String, Nullable: true}))
)

// startKindsServer serves the built-in functions and the test UDFs of
// every kind. Table outputs come in batches of at most 3 rows, so they
// do not line up with input batches. opens counts the test UDFs'
// sessions, one per exchange.
func startKindsServer(t *testing.T) (addr string, opens *atomic.Int64) {
	t.Helper()
	opens = new(atomic.Int64)
	counted := func(open func(memory.Allocator, udfcatalog.ExchangeOptions) flightsrv.Session) func(memory.Allocator, udfcatalog.ExchangeOptions) flightsrv.Session {
		return func(mem memory.Allocator, o udfcatalog.ExchangeOptions) flightsrv.Session {
			opens.Add(1)
			return open(mem, o)
		}
	}
	udfs := []testUDF{
		{repeatUDF, counted(func(mem memory.Allocator, _ udfcatalog.ExchangeOptions) flightsrv.Session {
			return &tableSession{mem: mem, fn: repeatUDF, rows: repeatRows}
		})},
		{seriesUDF, counted(func(mem memory.Allocator, _ udfcatalog.ExchangeOptions) flightsrv.Session {
			return &tableSession{mem: mem, fn: seriesUDF, rows: seriesRows}
		})},
		{backwardsUDF, counted(func(mem memory.Allocator, _ udfcatalog.ExchangeOptions) flightsrv.Session {
			return &tableSession{mem: mem, fn: backwardsUDF, rows: backwardsRows}
		})},
		{totalUDF, counted(func(mem memory.Allocator, o udfcatalog.ExchangeOptions) flightsrv.Session {
			return &totalSession{mem: mem, running: o.Running}
		})},
		{evensUDF, counted(func(mem memory.Allocator, _ udfcatalog.ExchangeOptions) flightsrv.Session {
			return &evensSession{mem: mem}
		})},
	}
	addr, _ = startServerWith(t, udfs, flightsrv.Options{MaxTableRows: 3})
	return addr, opens
}

// tableSession runs a table function: rows appends the output rows of
// input row r of in to b (after its row index), or fails.
type tableSession struct {
	mem  memory.Allocator
	fn   *udfcatalog.UDF
	rows func(b *array.RecordBuilder, in arrow.RecordBatch, r int) error
}

func (s *tableSession) Process(_ context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	b := array.NewRecordBuilder(s.mem, s.fn.OutputSchema())
	defer b.Release()
	for r := range int(in.NumRows()) {
		if err := s.rows(b, in, r); err != nil {
			return nil, &udfcatalog.FunctionError{Function: s.fn.Name, Row: int64(r), Err: err}
		}
	}
	rec := b.NewRecordBatch()
	if rec.NumRows() == 0 {
		rec.Release()
		return nil, nil
	}
	return []arrow.RecordBatch{rec}, nil
}

func (s *tableSession) Finish(context.Context) ([]arrow.RecordBatch, error) { return nil, nil }
func (s *tableSession) Parallelism() int                                    { return 4 }
func (s *tableSession) Close() error                                        { return nil }

// repeatRows: repeat(s, n) yields n rows (s followed by i, i), i from 0.
func repeatRows(b *array.RecordBuilder, in arrow.RecordBatch, r int) error {
	strs, ns := in.Column(0).(*array.String), in.Column(1).(*array.Int64)
	if strs.IsNull(r) || ns.IsNull(r) {
		return nil
	}
	if ns.Value(r) < 0 {
		return errors.New("n must not be negative")
	}
	for i := range ns.Value(r) {
		b.Field(0).(*array.Int32Builder).Append(int32(r))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("%s%d", strs.Value(r), i))
		b.Field(2).(*array.Int64Builder).Append(i)
	}
	return nil
}

// seriesRows: series(n) yields 0, 1, ..., n-1.
func seriesRows(b *array.RecordBuilder, in arrow.RecordBatch, r int) error {
	ns := in.Column(0).(*array.Int64)
	for i := range ns.Value(r) {
		b.Field(0).(*array.Int32Builder).Append(int32(r))
		b.Field(1).(*array.Int64Builder).Append(i)
	}
	return nil
}

// backwardsRows yields row r's value for input row (rows - 1 - r).
func backwardsRows(b *array.RecordBuilder, in arrow.RecordBatch, r int) error {
	ns := in.Column(0).(*array.Int64)
	last := ns.Len() - 1
	b.Field(0).(*array.Int32Builder).Append(int32(last - r))
	b.Field(1).(*array.Int64Builder).Append(ns.Value(last - r))
	return nil
}

// totalSession is the aggregate total(x): the sum of x, null for no rows.
type totalSession struct {
	mem     memory.Allocator
	running bool
	sum     int64
	rows    int64
}

func (s *totalSession) Process(_ context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	xs := in.Column(0).(*array.Int64)
	for i := range xs.Len() {
		if xs.IsValid(i) {
			s.sum += xs.Value(i)
			s.rows++
		}
	}
	if !s.running {
		return nil, nil
	}
	return s.Finish(context.Background())
}

func (s *totalSession) Finish(context.Context) ([]arrow.RecordBatch, error) {
	b := array.NewInt64Builder(s.mem)
	defer b.Release()
	if s.rows == 0 {
		b.AppendNull()
	} else {
		b.Append(s.sum)
	}
	col := b.NewArray()
	defer col.Release()
	return []arrow.RecordBatch{array.NewRecordBatch(totalUDF.OutputSchema(), []arrow.Array{col}, 1)}, nil
}

func (s *totalSession) Parallelism() int { return 1 }
func (s *totalSession) Close() error     { return nil }

// evensSession is the transform evens(x): the even values of each batch
// in batches of at most two rows, tagged "even", and at the end the
// number of values seen, tagged "count".
type evensSession struct {
	mem  memory.Allocator
	seen int64
}

func (s *evensSession) Process(_ context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	xs := in.Column(0).(*array.Int64)
	s.seen += int64(xs.Len())
	var outs []arrow.RecordBatch
	b := array.NewRecordBuilder(s.mem, evensUDF.OutputSchema())
	defer b.Release()
	flush := func() {
		if b.Field(0).Len() > 0 {
			outs = append(outs, b.NewRecordBatch())
		}
	}
	for i := range xs.Len() {
		if xs.IsNull(i) || xs.Value(i)%2 != 0 {
			continue
		}
		b.Field(0).(*array.Int64Builder).Append(xs.Value(i))
		b.Field(1).(*array.StringBuilder).Append("even")
		if b.Field(0).Len() == 2 {
			flush()
		}
	}
	flush()
	return outs, nil
}

func (s *evensSession) Finish(context.Context) ([]arrow.RecordBatch, error) {
	b := array.NewRecordBuilder(s.mem, evensUDF.OutputSchema())
	defer b.Release()
	b.Field(0).(*array.Int64Builder).Append(s.seen)
	b.Field(1).(*array.StringBuilder).Append("count")
	return []arrow.RecordBatch{b.NewRecordBatch()}, nil
}

func (s *evensSession) Parallelism() int { return 1 }
func (s *evensSession) Close() error     { return nil }

// repeatInput has 0, 1 and many output rows per input row, and ends
// with a row without any.
const repeatInput = "s,n\na,2\nb,0\nc,1\nd,5\ne,1\nf,0\n"

const repeatJoined = `s,n,item,i
a,2,a0,0
a,2,a1,1
c,1,c0,0
d,5,d0,0
d,5,d1,1
d,5,d2,2
d,5,d3,3
d,5,d4,4
e,1,e0,0
`

// TestCallKinds calls a UDF of each kind and checks the exact output.
func TestCallKinds(t *testing.T) {
	addr, _ := startKindsServer(t)
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		// Table functions: each output row after the input row it came from.
		{"table, one row per batch", []string{"repeat", "--batch-rows", "1"}, repeatInput, repeatJoined},
		{"table, batches of 2", []string{"repeat", "--batch-rows", "2"}, repeatInput, repeatJoined},
		{"table, batches of 4", []string{"repeat", "--batch-rows", "4"}, repeatInput, repeatJoined},
		{"table, one batch", []string{"repeat"}, repeatInput, repeatJoined},
		{"table, no input columns", []string{"repeat", "--batch-rows", "2", "--no-input-columns"}, repeatInput,
			"item,i\na0,0\na1,1\nc0,0\nd0,0\nd1,1\nd2,2\nd3,3\nd4,4\ne0,0\n"},
		{"table, no rows at all", []string{"repeat", "--batch-rows", "2"}, "s,n\na,0\nb,0\nc,0\n", "s,n,item,i\n"},
		{"table, empty input", []string{"repeat"}, "s,n\n", "s,n,item,i\n"},
		{"table, a result that is not a struct", []string{"series", "--batch-rows", "2", "--output-format", "jsonl"},
			"n\n3\n0\n1\n", `{"n":3,"series":0}` + "\n" + `{"n":3,"series":1}` + "\n" + `{"n":3,"series":2}` + "\n" + `{"n":1,"series":0}` + "\n"},
		{"table, many rows for one input row", []string{"series", "--output-format", "table"}, "n\n7\n",
			"n  series\n-  ------\n7       0\n7       1\n7       2\n7       3\n7       4\n7       5\n7       6\n(7 rows)\n"},

		// Scalar functions, without the input columns.
		{"scalar, no input columns", []string{"add_int64", "--no-input-columns", "--batch-rows", "1"}, "a,b\n1,2\n3,4\n", "add_int64\n3\n7\n"},

		// Aggregates: one row at the end; running, one per batch too.
		{"aggregate", []string{"total", "--batch-rows", "2"}, "x\n1\n2\n3\n4\n5\n", "total\n15\n"},
		{"aggregate, running", []string{"total", "--batch-rows", "2", "--options", `{"running": true}`}, "x\n1\n2\n3\n4\n5\n",
			"total\n3\n10\n15\n15\n"},
		{"aggregate, options spelt out", []string{"total", "--options", "{ \"running\" :\n false }"}, "x\n1\n2\n", "total\n3\n"},
		{"aggregate, empty input", []string{"total"}, "x\n", "total\n\"\"\n"},
		{"aggregate, no input columns changes nothing", []string{"total", "--no-input-columns"}, "x\n1\n", "total\n1\n"},

		// Transforms: any batches per input batch, then the end's.
		{"transform", []string{"evens", "--batch-rows", "3"}, "x\n1\n2\n4\n6\n8\n\"\"\n10\n7\n3\n", // "" is null
			"x,tag\n2,even\n4,even\n6,even\n8,even\n10,even\n9,count\n"},
		{"transform, nothing but the end", []string{"evens", "--output-format", "jsonl"}, "x\n1\n3\n",
			`{"x":2,"tag":"count"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--address", addr, "--input-format", "csv"}, tc.args...)
			r := runVerb(t, callCmd, []byte(tc.stdin), args...)
			if r.err != nil {
				t.Fatalf("call: %v", r.err)
			}
			if r.stdout != tc.want {
				t.Errorf("output:\n%s\nwant:\n%s", r.stdout, tc.want)
			}
		})
	}
}

// TestCallTableSplits: a table function's input is held until an output
// names a later row, so input without outputs goes on in new exchanges,
// at most four batches each, rather than being held without bound.
func TestCallTableSplits(t *testing.T) {
	addr, opens := startKindsServer(t)
	var in, joined strings.Builder
	in.WriteString("s,n\n")
	joined.WriteString("s,n,item,i\n")
	for i := range 20 {
		n := 0
		if i == 19 {
			n = 2
		}
		fmt.Fprintf(&in, "r%d,%d\n", i, n)
	}
	joined.WriteString("r19,2,r190,0\nr19,2,r191,1\n")
	dense := "s,n\n" + strings.Repeat("a,3\nb,0\nc,1\n", 10)
	denseWant := "s,n,item,i\n" + strings.Repeat("a,3,a0,0\na,3,a1,1\na,3,a2,2\nc,1,c0,0\n", 10)

	for _, tc := range []struct {
		name      string
		in, want  string
		args      []string
		exchanges int64 // 0: any number
	}{
		{"outputs only at the end", in.String(), joined.String(), []string{"--batch-rows", "1"}, 5},
		{"no input columns: one exchange", in.String(), "item,i\nr190,0\nr191,1\n", []string{"--batch-rows", "1", "--no-input-columns"}, 1},
		{"outputs throughout", dense, denseWant, []string{"--batch-rows", "1"}, 0},
		{"outputs throughout, larger batches", dense, denseWant, []string{"--batch-rows", "2"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := opens.Load()
			args := append([]string{"--address", addr, "repeat", "--input-format", "csv"}, tc.args...)
			r := runVerb(t, callCmd, []byte(tc.in), args...)
			if r.err != nil {
				t.Fatalf("call: %v", r.err)
			}
			if r.stdout != tc.want {
				t.Errorf("output:\n%s\nwant:\n%s", r.stdout, tc.want)
			}
			if got := opens.Load() - before; tc.exchanges > 0 && got != tc.exchanges {
				t.Errorf("%d exchanges, want %d", got, tc.exchanges)
			}
		})
	}
}

// TestCallKindErrors checks the failures particular to --options and to
// the kinds other than scalar.
func TestCallKindErrors(t *testing.T) {
	addr, _ := startKindsServer(t)
	var late strings.Builder // a failure in the fifth exchange
	late.WriteString("s,n\n")
	for i := range 20 {
		n := 0
		if i == 17 {
			n = -1
		}
		fmt.Fprintf(&late, "r%d,%d\n", i, n)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		err   string // exact
		code  int
	}{
		{"options not JSON", []string{"total", "--options", "running"}, "x\n1\n",
			`--options "running" is not valid JSON (invalid character 'r' looking for beginning of value); want an object such as '{"running": true}'`, 2},
		{"options not an object", []string{"total", "--options", "[1]"}, "x\n1\n",
			`--options "[1]" is not a JSON object; want an object such as '{"running": true}'`, 2},
		{"options null", []string{"total", "--options", "null"}, "x\n1\n",
			`--options "null" is not a JSON object; want an object such as '{"running": true}'`, 2},
		{"options empty", []string{"total", "--options", ""}, "x\n1\n",
			`--options "" is not valid JSON (unexpected end of JSON input); want an object such as '{"running": true}'`, 2},
		{"two objects", []string{"total", "--options", `{"running": true} {}`}, "x\n1\n",
			`--options "{\"running\": true} {}" is not valid JSON (invalid character '{' after top-level value); want an object such as '{"running": true}'`, 2},
		{"unknown option", []string{"total", "--options", `{"runing": true}`}, "x\n1\n",
			`total: the server refused --options: invalid exchange options: want a JSON object with keys running and phase, got "{\"runing\":true}": json: unknown field "runing"`, 1},
		{"option of another kind", []string{"repeat", "--options", `{"running": true}`}, repeatInput,
			"repeat: the server refused --options: invalid exchange options: running applies to aggregates; repeat is a table function", 1},
		{"table function fails", []string{"repeat", "--batch-rows", "4"}, "s,n\na,1\nb,1\nc,1\nd,1\ne,1\nf,-2\n",
			"repeat failed: batch 1: repeat: row 1: n must not be negative (input row 5, counting from 0)", 1},
		{"table function fails in a later exchange", []string{"repeat", "--batch-rows", "1"}, late.String(),
			"repeat failed: batch 1: repeat: row 0: n must not be negative (input row 17, counting from 0)", 1},
		{"table rows out of order", []string{"backwards", "--batch-rows", "2"}, "n\n1\n2\n3\n4\n",
			"backwards: the server broke the protocol: an output names input row 0 after one named input row 1; a table function's outputs come in input order", 1},
		{"merge phase of an aggregate without merge", []string{"total", "--options", `{"phase": "merge"}`}, "state\nAA==\n",
			"total: the server refused --options: invalid exchange options: phase merge needs an aggregate with a merge method; total has none", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--address", addr, "--input-format", "csv"}, tc.args...)
			r := runVerb(t, callCmd, []byte(tc.stdin), args...)
			if errText(r.err) != tc.err {
				t.Fatalf("err = %v\nwant  %s", errText(r.err), tc.err)
			}
			if got := exitCode(r.err); got != tc.code {
				t.Errorf("exit code %d, want %d", got, tc.code)
			}
			if r.stdout != "" && tc.code == 2 {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

// TestCallOutputFiles writes each kind's output to Arrow, where the
// column types show.
func TestCallOutputFiles(t *testing.T) {
	addr, _ := startKindsServer(t)
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"table", repeatInput, []string{"repeat", "--batch-rows", "2"}, `s utf8 ["a","a","c","d","d","d","d","d","e"]
n int64 [2,2,1,5,5,5,5,5,1]
item utf8 ["a0","a1","c0","d0","d1","d2","d3","d4","e0"]
i int64 [0,1,0,0,1,2,3,4,0]
`},
		{"aggregate", "x\n1\n2\n", []string{"total", "--options", `{"running": true}`}, "total int64 [3,3]\n"},
		{"transform", "x\n2\n3\n", []string{"evens"}, "x int64 [2,2]\ntag utf8 [\"even\",\"count\"]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.arrows")
			args := append([]string{"--address", addr, "--input-format", "csv", "--output", out}, tc.args...)
			if r := runVerb(t, callCmd, []byte(tc.stdin), args...); r.err != nil {
				t.Fatal(r.err)
			}
			if got := readOutput(t, out, "arrow"); got != tc.want {
				t.Errorf("output:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestCallTableInputTypes joins outputs with input columns of the types
// the input had, which the server converted on the way in.
func TestCallTableInputTypes(t *testing.T) {
	addr, _ := startKindsServer(t)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.StringView, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	}, nil)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.arrows")
	writeArrow(t, in, false, batchesFromJSON(t, schema, `[{"s": "a", "n": 2}, {"s": "a string longer than twelve bytes", "n": 0},
		{"s": "b", "n": 1}, {"s": "another string longer than twelve bytes", "n": 3}, {"s": null, "n": 1}]`, 2))
	out := filepath.Join(dir, "out.arrows")
	r := runVerb(t, callCmd, nil, "--address", addr, "repeat", "--input", in, "--output", out, "--batch-rows", "3")
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := `s utf8_view ["a","a","b","another string longer than twelve bytes","another string longer than twelve bytes","another string longer than twelve bytes"]
n int32 [2,2,1,3,3,3]
item utf8 ["a0","a1","b0","another string longer than twelve bytes0","another string longer than twelve bytes1","another string longer than twelve bytes2"]
i int64 [0,1,0,0,1,2]
`
	if got := readOutput(t, out, "arrow"); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

// TestDescribeKinds: the signature schema of each kind is read, and its
// output fields labelled, as the server builds them.
func TestDescribeKinds(t *testing.T) {
	addr, _ := startKindsServer(t)
	for _, tc := range []struct{ name, want string }{
		{"repeat", `signature schema (GetFlightInfo; total_records = 2 parameters):
  s     utf8   nullable  parameter 0
  n     int64  nullable  parameter 1
  row   int32  not null  input row index (table function)
  item  utf8   nullable  result column
  i     int64  nullable  result column
`},
		{"series", `  n       int64  nullable  parameter 0
  row     int32  not null  input row index (table function)
  series  int64  nullable  result
`},
		{"total", `  x      int64  nullable  parameter 0
  total  int64  nullable  result
`},
		{"evens", `  x    int64  nullable  parameter 0
  x    int64  nullable  result column
  tag  utf8   nullable  result column
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runVerb(t, describeCmd, nil, "--address", addr, tc.name)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if !strings.Contains(r.stdout, tc.want) {
				t.Errorf("output:\n%s\nwant it to contain:\n%s", r.stdout, tc.want)
			}
		})
	}
}

// TestSignatureShape checks the signature schema's output fields against
// each kind, as udfcatalog.UDF.OutputSchema builds them.
func TestSignatureShape(t *testing.T) {
	f := func(name string, dt arrow.DataType) arrow.Field { return arrow.Field{Name: name, Type: dt} }
	i64, i32, s := arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int32, arrow.BinaryTypes.String
	for _, tc := range []struct {
		name, kind, ret string
		outs            []arrow.Field
		ok              bool
	}{
		{"scalar", "scalar", "int64", []arrow.Field{f("f", i64)}, true},
		{"scalar with two fields", "scalar", "int64", []arrow.Field{f("f", i64), f("g", i64)}, false},
		{"scalar struct is one field", "scalar", "struct<a: int64, b: utf8>", []arrow.Field{f("f", arrow.StructOf(f("a", i64), f("b", s)))}, true},
		{"aggregate", "aggregate", "float64", []arrow.Field{f("f", arrow.PrimitiveTypes.Float64)}, true},
		{"aggregate without result", "aggregate", "float64", nil, false},
		{"table", "table", "struct<a: int64, b: utf8>", []arrow.Field{f("row", i32), f("a", i64), f("b", s)}, true},
		{"table, not a struct", "table", "int64", []arrow.Field{f("row", i32), f("t", i64)}, true},
		{"table without row", "table", "struct<a: int64, b: utf8>", []arrow.Field{f("a", i64), f("b", s)}, false},
		{"table, row not int32", "table", "int64", []arrow.Field{f("row", i64), f("t", i64)}, false},
		{"table, a field missing", "table", "struct<a: int64, b: utf8>", []arrow.Field{f("row", i32), f("a", i64)}, false},
		{"transform", "transform", "struct<a: int64, b: utf8>", []arrow.Field{f("a", i64), f("b", s)}, true},
		{"transform, one field", "transform", "struct<a: int64>", []arrow.Field{f("a", i64)}, true},
		{"transform, too many", "transform", "struct<a: int64>", []arrow.Field{f("a", i64), f("b", s)}, false},
		{"transform, unreadable type", "transform", "newtype<x>", []arrow.Field{f("a", i64), f("b", s)}, true},
		{"unknown kind", "window", "int64", []arrow.Field{f("a", i64), f("b", s)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &udfInfo{Name: "f", Kind: tc.kind, Return: fieldInfo{Type: tc.ret}}
			if got := outputShape(u).fits(tc.outs); got != tc.ok {
				t.Errorf("fits = %v, want %v (%s)", got, tc.ok, outputShape(u).text)
			}
		})
	}
	// The message says what the kind calls for.
	for _, tc := range []struct{ kind, ret, want string }{
		{"scalar", "int64", "a scalar function's has the parameters, then one result field"},
		{"table", "int64", "a table function's has the parameters, then row (int32), then one result column"},
		{"table", "struct<a: int64, b: utf8>", "a table function's has the parameters, then row (int32), then 2 result column(s), one per field of its struct<a: int64, b: utf8> result"},
		{"transform", "struct<a: int64>", "a transform's has the parameters, then 1 result column(s), one per field of its struct<a: int64> result"},
	} {
		u := &udfInfo{Name: "f", Kind: tc.kind, Return: fieldInfo{Type: tc.ret}}
		if got := outputShape(u).text; got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.kind, tc.ret, got, tc.want)
		}
	}
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct{ in, header, phase string }{
		{`{"running": true}`, `{"running":true}`, ""},
		{" {\n\t\"phase\" : \"partial\" }\n", `{"phase":"partial"}`, "partial"},
		{`{"phase": 3}`, `{"phase":3}`, ""},
		{`{"phase": "é😀<>"}`, `{"phase":"\u00e9\ud83d\ude00<>"}`, "é😀<>"},
		{`{}`, `{}`, ""},
	} {
		header, phase, err := parseOptions(tc.in)
		if err != nil || header != tc.header || phase != tc.phase {
			t.Errorf("parseOptions(%q) = %q, %q, %v; want %q, %q", tc.in, header, phase, err, tc.header, tc.phase)
		}
	}
}
