package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/flightsrv"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// toIntUDF is a test-only scalar UDF with on_error error_column, like
// examples/udfs/kinds.py's parse_int: to_int(text utf8) -> int64.
var toIntUDF = func() *udfcatalog.UDF {
	u := testKindUDF("to_int", udfcatalog.KindScalar, []udfcatalog.Param{{Name: "text", Type: arrow.BinaryTypes.String}},
		arrow.PrimitiveTypes.Int64)
	u.OnError = udfcatalog.OnErrorColumn
	return u
}()

// toIntSession returns what the Python executor returns for an
// error_column UDF (exec/python.go, relabel): the result alone if no row
// failed, else the result and the error column. The server decides what
// goes on the wire (flightsrv/output.go).
type toIntSession struct{ mem memory.Allocator }

func (s *toIntSession) Process(_ context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	texts := in.Column(0).(*array.String)
	res := array.NewInt64Builder(s.mem)
	defer res.Release()
	errs := array.NewStringBuilder(s.mem)
	defer errs.Release()
	failed := false
	for i := range texts.Len() {
		if texts.IsNull(i) {
			res.AppendNull()
			errs.AppendNull()
			continue
		}
		n, err := strconv.ParseInt(texts.Value(i), 10, 64)
		if err != nil {
			res.AppendNull()
			errs.Append(fmt.Sprintf("ValueError: %q is not an integer", texts.Value(i)))
			failed = true
			continue
		}
		res.Append(n)
		errs.AppendNull()
	}
	resCol, errCol := res.NewArray(), errs.NewArray()
	defer resCol.Release()
	defer errCol.Release()
	if !failed {
		return []arrow.RecordBatch{array.NewRecordBatch(toIntUDF.OutputSchema(), []arrow.Array{resCol}, in.NumRows())}, nil
	}
	return []arrow.RecordBatch{array.NewRecordBatch(toIntUDF.ErrorOutputSchema(), []arrow.Array{resCol, errCol}, in.NumRows())}, nil
}

func (s *toIntSession) Finish(context.Context) ([]arrow.RecordBatch, error) { return nil, nil }
func (s *toIntSession) Parallelism() int                                    { return 4 }
func (s *toIntSession) Close() error                                        { return nil }

func startErrorColumnServer(t *testing.T) string {
	t.Helper()
	open := func(mem memory.Allocator, _ udfcatalog.ExchangeOptions) flightsrv.Session {
		return &toIntSession{mem: mem}
	}
	addr, _ := startServerWith(t, []testUDF{{toIntUDF, open}}, flightsrv.Options{})
	return addr
}

// TestCallErrorColumn: an error_column UDF's output always has an error
// column, holding the server's messages when its exchange's first batch
// failed, and nulls otherwise (the server then sends no column and only
// logs later failures).
func TestCallErrorColumn(t *testing.T) {
	addr := startErrorColumnServer(t)
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"failure in the first batch", []string{"--batch-rows", "2"}, "text\n1\nx\n3\n4\n",
			"text,to_int,error\n1,1,\nx,,\"ValueError: \"\"x\"\" is not an integer\"\n3,3,\n4,4,\n"},
		{"failures in the first and a later batch", []string{"--batch-rows", "2"}, "text\nx\n2\n3\ny\n",
			"text,to_int,error\nx,,\"ValueError: \"\"x\"\" is not an integer\"\n2,2,\n3,3,\ny,,\"ValueError: \"\"y\"\" is not an integer\"\n"},
		{"failure only in a later batch: no message", []string{"--batch-rows", "2"}, "text\n1\n2\nx\n4\n",
			"text,to_int,error\n1,1,\n2,2,\nx,,\n4,4,\n"},
		{"one batch", nil, "text\n1\n2\nx\n4\n",
			"text,to_int,error\n1,1,\n2,2,\nx,,\"ValueError: \"\"x\"\" is not an integer\"\n4,4,\n"},
		{"no failures", []string{"--batch-rows", "1"}, "text\n1\n2\n", "text,to_int,error\n1,1,\n2,2,\n"},
		{"a null is no failure", nil, "text\n\"\"\nx\n", "text,to_int,error\n,,\nx,,\"ValueError: \"\"x\"\" is not an integer\"\n"},
		{"empty input", nil, "text\n", "text,to_int,error\n"},
		{"no input columns", []string{"--batch-rows", "2", "--no-input-columns"}, "text\nx\n2\n3\n",
			"to_int,error\n,\"ValueError: \"\"x\"\" is not an integer\"\n2,\n3,\n"},
		{"no input columns, failure only in a later batch", []string{"--batch-rows", "1", "--no-input-columns", "--output-format", "jsonl"}, "text\n1\nx\n",
			`{"to_int":1,"error":null}` + "\n" + `{"to_int":null,"error":null}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--address", addr, "to_int", "--input-format", "csv"}, tc.args...)
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

// TestCallErrorColumnFormats writes the error column in every output
// format, whether the server sent it or not.
func TestCallErrorColumnFormats(t *testing.T) {
	addr := startErrorColumnServer(t)
	for _, tc := range []struct {
		name, stdin string
		want        map[string]string // by format; "columns" for Parquet and Arrow
	}{{
		name:  "sent",
		stdin: "text\n1\nx\n3\n",
		want: map[string]string{
			"csv": "text,to_int,error\n1,1,\nx,,\"ValueError: \"\"x\"\" is not an integer\"\n3,3,\n",
			"jsonl": `{"text":"1","to_int":1,"error":null}
{"text":"x","to_int":null,"error":"ValueError: \"x\" is not an integer"}
{"text":"3","to_int":3,"error":null}
`,
			"table": `text  to_int  error
----  ------  ---------------------------------
1          1  null
x       null  ValueError: "x" is not an integer
3          3  null
(3 rows)
`,
			"columns": `text utf8 ["1","x","3"]
to_int int64 [1,null,3]
error utf8 [null,"ValueError: \"x\" is not an integer",null]
`,
		},
	}, {
		name:  "not sent",
		stdin: "text\n1\n2\nx\n",
		want: map[string]string{
			"csv": "text,to_int,error\n1,1,\n2,2,\nx,,\n",
			"jsonl": `{"text":"1","to_int":1,"error":null}
{"text":"2","to_int":2,"error":null}
{"text":"x","to_int":null,"error":null}
`,
			"table": `text  to_int  error
----  ------  -----
1          1  null
2          2  null
x       null  null
(3 rows)
`,
			"columns": `text utf8 ["1","2","x"]
to_int int64 [1,2,null]
error utf8 [null,null,null]
`,
		},
	}} {
		for _, format := range testOutputFormats {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				args := []string{"--address", addr, "to_int", "--input-format", "csv", "--batch-rows", "2", "--output-format", format}
				output := ""
				if format == "parquet" || format == "arrow" || format == "arrow-file" {
					output = filepath.Join(t.TempDir(), "out.bin")
					args = append(args, "--output", output)
				}
				r := runVerb(t, callCmd, []byte(tc.stdin), args...)
				if r.err != nil {
					t.Fatalf("call: %v", r.err)
				}
				got, want := r.stdout, tc.want[format]
				if output != "" {
					got, want = readOutput(t, output, format), tc.want["columns"]
				}
				if got != want {
					t.Errorf("output:\n%s\nwant:\n%s", got, want)
				}
			})
		}
	}
}

// TestDescribeErrorColumn shows the on_error policy.
func TestDescribeErrorColumn(t *testing.T) {
	addr := startErrorColumnServer(t)
	for _, tc := range []struct{ name, want string }{
		{"to_int", "on_error:    error_column (a failing row is null, and a column named error says why)\n"},
		{"add_int64", "on_error:    raise (a failing row fails the call)\n"},
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

// TestPlanErrorColumn: only a scalar function with on_error error_column
// writes an error column and lets the server send one.
func TestPlanErrorColumn(t *testing.T) {
	i64 := arrow.PrimitiveTypes.Int64
	for _, tc := range []struct {
		kind, onError string
		outputs       []arrow.Field
		want          bool
	}{
		{kindScalar, onErrorColumn, []arrow.Field{{Name: "f", Type: i64}}, true},
		{kindScalar, onErrorRaise, []arrow.Field{{Name: "f", Type: i64}}, false},
		{kindScalar, onErrorNull, []arrow.Field{{Name: "f", Type: i64}}, false},
		{kindScalar, "", []arrow.Field{{Name: "f", Type: i64}}, false},
		{kindTable, onErrorColumn, []arrow.Field{{Name: rowColumn, Type: arrow.PrimitiveTypes.Int32}, {Name: "f", Type: i64}}, false},
		{kindAggregate, onErrorColumn, []arrow.Field{{Name: "f", Type: i64}}, false},
	} {
		t.Run(tc.kind+"/"+tc.onError, func(t *testing.T) {
			d := &udfDescription{info: udfInfo{Name: "f", Kind: tc.kind, OnError: tc.onError}, outputs: tc.outputs}
			p, err := planCall(d, "")
			if err != nil {
				t.Fatal(err)
			}
			last := p.results[len(p.results)-1]
			if got := last.Name == errorColumn && last.Type.ID() == arrow.STRING; got != tc.want || p.errors != tc.want {
				t.Errorf("results %v (errors %v), want an error column: %v", p.results, p.errors, tc.want)
			}
			if got := len(p.spec("f", "", false).extra) == 1; got != tc.want {
				t.Errorf("spec lets the server send an error column: %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCheckSchemaErrorColumn: the error column is accepted only where the
// spec allows it, and then only as utf8.
func TestCheckSchemaErrorColumn(t *testing.T) {
	f := func(name string, dt arrow.DataType) arrow.Field {
		return arrow.Field{Name: name, Type: dt, Nullable: true}
	}
	i64, s := arrow.PrimitiveTypes.Int64, arrow.BinaryTypes.String
	result, errCol := f("f", i64), errorField()
	for _, tc := range []struct {
		name  string
		extra []arrow.Field
		got   []arrow.Field
		err   string // exact; "" for none
	}{
		{"without", nil, []arrow.Field{result}, ""},
		{"unexpected error column", nil, []arrow.Field{result, errCol},
			"the server broke the protocol: its output schema has 2 field(s) (f int64, error utf8), not 1 (f int64)"},
		{"error_column, without", []arrow.Field{errCol}, []arrow.Field{result}, ""},
		{"error_column, with", []arrow.Field{errCol}, []arrow.Field{result, errCol}, ""},
		{"error_column, named otherwise", []arrow.Field{errCol}, []arrow.Field{result, f("why", s)}, ""},
		{"error_column, too many", []arrow.Field{errCol}, []arrow.Field{result, errCol, errCol},
			"the server broke the protocol: its output schema has 3 field(s) (f int64, error utf8, error utf8), not 1 (f int64) or 2 (f int64, error utf8)"},
		{"error_column, none", []arrow.Field{errCol}, nil,
			"the server broke the protocol: its output schema has 0 field(s) (), not 1 (f int64) or 2 (f int64, error utf8)"},
		{"error_column, not utf8", []arrow.Field{errCol}, []arrow.Field{result, f("error", i64)},
			"the server broke the protocol: it sent the error column as int64, not utf8"},
		{"error_column, wrong result", []arrow.Field{errCol}, []arrow.Field{f("f", s), errCol},
			"the server returned utf8 for f, which declares int64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := &exchangeRun{spec: exchangeSpec{name: "f", output: []arrow.Field{result}, extra: tc.extra}}
			got := ""
			if err := x.checkSchema(arrow.NewSchema(tc.got, nil)); err != nil {
				got = err.Error()
			}
			if got != tc.err {
				t.Errorf("err = %q, want %q", got, tc.err)
			}
		})
	}
}

// TestScalarPairsExchanges: each exchange's schema decides anew whether
// its batches carry the error column, so outputs of exchanges with and
// without it are written alike.
func TestScalarPairsExchanges(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	inSchema := arrow.NewSchema([]arrow.Field{{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	withErr := arrow.NewSchema([]arrow.Field{{Name: "f", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, errorField()}, nil)
	without := arrow.NewSchema(withErr.Fields()[:1], nil)
	batch := func(schema *arrow.Schema, rows string) arrow.RecordBatch {
		rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(rows))
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	for _, tc := range []struct {
		name    string
		noInput bool
		want    string
	}{
		{"input columns", false, `text utf8 ["x","1","2","y"]
f int64 [null,1,2,null]
error utf8 ["bad x",null,null,null]
`},
		{"no input columns", true, `f int64 [null,1,2,null]
error utf8 ["bad x",null,null,null]
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &callPlan{kind: kindScalar, results: withErr.Fields(), errors: true}
			schema := p.outputSchema(inSchema, tc.noInput)
			var written []arrow.RecordBatch
			defer func() { release(written) }()
			h := p.handler(schema, tc.noInput, mem, func(rec arrow.RecordBatch) error {
				rec.Retain()
				written = append(written, rec)
				return nil
			})
			// The first exchange's first batch failed, so it has the
			// column; the second's did not, so it has none.
			for _, ex := range []struct {
				in, out string
				schema  *arrow.Schema
			}{
				{`[{"text": "x"}, {"text": "1"}]`, `[{"f": null, "error": "bad x"}, {"f": 1, "error": null}]`, withErr},
				{`[{"text": "2"}, {"text": "y"}]`, `[{"f": 2}, {"f": null}]`, without},
			} {
				seg := &segment{pending: make(chan arrow.RecordBatch, 1)}
				seg.pending <- batch(inSchema, ex.in)
				out := batch(ex.schema, ex.out)
				err := h.output(seg, out)
				out.Release()
				if err != nil {
					t.Fatal(err)
				}
				if err := h.ended(seg); err != nil {
					t.Fatal(err)
				}
			}
			if got := renderBatches(t, schema, written); got != tc.want {
				t.Errorf("output:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
