package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// callCase is one function with the same rows in every input format and
// the exact output expected in every output format.
type callCase struct {
	fn     string
	schema *arrow.Schema // of the input
	rows   string        // the input as a JSON array of objects
	csv    string        // the input as CSV
	jsonl  string        // the input as JSON lines
	// want holds the exact text output by format; "columns" is the
	// rendering of Parquet and Arrow output by renderBatches.
	want map[string]string
}

var (
	int64Field = func(name string) arrow.Field {
		return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Int64, Nullable: true}
	}
	utf8Field = func(name string) arrow.Field {
		return arrow.Field{Name: name, Type: arrow.BinaryTypes.String, Nullable: true}
	}
)

var callCases = []callCase{{
	fn:     "add_int64",
	schema: arrow.NewSchema([]arrow.Field{int64Field("a"), int64Field("b")}, nil),
	rows:   `[{"a": 1, "b": 10}, {"a": 2, "b": null}, {"a": -3, "b": 30}, {"a": 9000000000000000000, "b": 7}]`,
	csv:    "a,b\n1,10\n2,\n-3,30\n9000000000000000000,7\n",
	jsonl:  "{\"a\": 1, \"b\": 10}\n{\"a\": 2}\n\n{\"b\": 30, \"a\": -3}\n{\"a\": 9000000000000000000, \"b\": 7}",
	want: map[string]string{
		"csv": "a,b,add_int64\n1,10,11\n2,,\n-3,30,27\n9000000000000000000,7,9000000000000000007\n",
		"jsonl": `{"a":1,"b":10,"add_int64":11}
{"a":2,"b":null,"add_int64":null}
{"a":-3,"b":30,"add_int64":27}
{"a":9000000000000000000,"b":7,"add_int64":9000000000000000007}
`,
		"table": `                  a     b            add_int64
-------------------  ----  -------------------
                  1    10                   11
                  2  null                 null
                 -3    30                   27
9000000000000000000     7  9000000000000000007
(4 rows)
`,
		"columns": `a int64 [1,2,-3,9000000000000000000]
b int64 [10,null,30,7]
add_int64 int64 [11,null,27,9000000000000000007]
`,
	},
}, {
	fn:     "upper",
	schema: arrow.NewSchema([]arrow.Field{utf8Field("s")}, nil),
	rows:   `[{"s": "héllo wörld"}, {"s": null}, {"s": "ça va"}, {"s": "日本語"}, {"s": "say \"hi\", ok"}]`,
	csv:    "s\nhéllo wörld\n\"\"\nça va\n日本語\n\"say \"\"hi\"\", ok\"\n",
	jsonl:  "{\"s\": \"héllo wörld\"}\n{\"s\": null}\n{\"s\": \"ça va\"}\n{\"s\": \"日本語\"}\n{\"s\": \"say \\\"hi\\\", ok\"}\n",
	want: map[string]string{
		"csv": "s,upper\nhéllo wörld,HÉLLO WÖRLD\n,\nça va,ÇA VA\n日本語,日本語\n\"say \"\"hi\"\", ok\",\"SAY \"\"HI\"\", OK\"\n",
		"jsonl": `{"s":"héllo wörld","upper":"HÉLLO WÖRLD"}
{"s":null,"upper":null}
{"s":"ça va","upper":"ÇA VA"}
{"s":"日本語","upper":"日本語"}
{"s":"say \"hi\", ok","upper":"SAY \"HI\", OK"}
`,
		"table": `s             upper
------------  ------------
héllo wörld   HÉLLO WÖRLD
null          null
ça va         ÇA VA
日本語        日本語
say "hi", ok  SAY "HI", OK
(5 rows)
`,
		"columns": `s utf8 ["héllo wörld",null,"ça va","日本語","say \"hi\", ok"]
upper utf8 ["HÉLLO WÖRLD",null,"ÇA VA","日本語","SAY \"HI\", OK"]
`,
	},
}}

// inputFormatCases write a case's rows to a file in one format.
var inputFormatCases = []struct {
	name, ext string
	write     func(t *testing.T, c callCase, path string)
}{
	{"csv", ".csv", func(t *testing.T, c callCase, path string) { writeFile(t, path, c.csv) }},
	{"jsonl", ".jsonl", func(t *testing.T, c callCase, path string) { writeFile(t, path, c.jsonl) }},
	{"parquet", ".parquet", func(t *testing.T, c callCase, path string) {
		writeParquet(t, path, batchesFromJSON(t, c.schema, c.rows, 2))
	}},
	{"arrow-stream", ".arrows", func(t *testing.T, c callCase, path string) {
		writeArrow(t, path, false, batchesFromJSON(t, c.schema, c.rows, 2))
	}},
	{"arrow-file", ".arrow", func(t *testing.T, c callCase, path string) {
		writeArrow(t, path, true, batchesFromJSON(t, c.schema, c.rows, 3))
	}},
}

var testOutputFormats = []string{"table", "csv", "jsonl", "parquet", "arrow", "arrow-file"}

func TestCallFormats(t *testing.T) {
	addr := startServer(t)
	for _, c := range callCases {
		for _, in := range inputFormatCases {
			for _, out := range testOutputFormats {
				t.Run(fmt.Sprintf("%s/%s/%s", c.fn, in.name, out), func(t *testing.T) {
					dir := t.TempDir()
					input := filepath.Join(dir, "in"+in.ext)
					in.write(t, c, input)
					args := []string{"--address", addr, c.fn, "--input", input, "--output-format", out}
					output := ""
					if out == "parquet" || out == "arrow" || out == "arrow-file" {
						output = filepath.Join(dir, "out.bin")
						args = append(args, "--output", output)
					}
					r := runVerb(t, callCmd, nil, args...)
					if r.err != nil {
						t.Fatalf("call: %v\nstderr: %s", r.err, r.stderr)
					}
					if r.stderr != "" {
						t.Errorf("stderr = %q, want nothing (it is not a terminal)", r.stderr)
					}
					got, want := r.stdout, c.want[out]
					if output != "" {
						got, want = readOutput(t, output, out), c.want["columns"]
					}
					if got != want {
						t.Errorf("output:\n%s\nwant:\n%s", got, want)
					}
				})
			}
		}
	}
}

// TestCallStdin reads each streamable format from stdin, and writes to
// stdout in the format the --output name would imply.
func TestCallStdin(t *testing.T) {
	addr := startServer(t)
	c := callCases[0]
	for _, tc := range []struct{ format, ext string }{{"csv", ".csv"}, {"jsonl", ".jsonl"}, {"arrow", ".arrows"}} {
		t.Run(tc.format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "in"+tc.ext)
			for _, in := range inputFormatCases {
				if in.ext == tc.ext {
					in.write(t, c, path)
				}
			}
			stdin, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r := runVerb(t, callCmd, stdin, "--address", addr, "--input-format", tc.format, "--input", "-", c.fn)
			if r.err != nil || r.stdout != c.want["csv"] {
				t.Errorf("got %q, %v; want %q", r.stdout, r.err, c.want["csv"])
			}
		})
	}
}

// TestCallOutputExtension infers the output format from the file name.
func TestCallOutputExtension(t *testing.T) {
	addr := startServer(t)
	c := callCases[1]
	dir := t.TempDir()
	input := filepath.Join(dir, "in.csv")
	writeFile(t, input, c.csv)
	for ext, format := range map[string]string{".csv": "csv", ".ndjson": "jsonl", ".parquet": "parquet", ".ipc": "arrow"} {
		output := filepath.Join(dir, "out"+ext)
		r := runVerb(t, callCmd, nil, "--address", addr, c.fn, "--input", input, "--output", output)
		if r.err != nil || r.stdout != "" {
			t.Fatalf("%s: stdout %q, err %v", ext, r.stdout, r.err)
		}
		got, want := readOutput(t, output, format), c.want["columns"]
		if format == "csv" || format == "jsonl" {
			want = c.want[format]
		}
		if got != want {
			t.Errorf("%s: got\n%s\nwant\n%s", ext, got, want)
		}
	}
}

func TestCallZeroArguments(t *testing.T) {
	addr := startServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pi", "--rows", "3"}, "pi\n3.141592653589793\n3.141592653589793\n3.141592653589793\n"},
		{[]string{"--rows", "0", "pi"}, "pi\n"},
		{[]string{"pi", "--rows", "5", "--batch-rows", "2", "--output-format", "jsonl"}, strings.Repeat(`{"pi":3.141592653589793}`+"\n", 5)},
		{[]string{"pi", "--rows", "2", "--output-format", "table"}, "               pi\n-----------------\n3.141592653589793\n3.141592653589793\n(2 rows)\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runVerb(t, callCmd, nil, append([]string{"--address", addr}, tc.args...)...)
			if r.err != nil || r.stdout != tc.want {
				t.Errorf("got %q, %v; want %q", r.stdout, r.err, tc.want)
			}
		})
	}
}

// TestCallBatchRows checks that the input is re-chunked to --batch-rows:
// the server answers each batch with one, so the Arrow output's batches
// are the batches sent.
func TestCallBatchRows(t *testing.T) {
	addr := startServer(t)
	schema := arrow.NewSchema([]arrow.Field{int64Field("a"), int64Field("b")}, nil)
	var rows, csvText strings.Builder
	csvText.WriteString("a,b\n")
	var sums []string
	for i := range 10 {
		fmt.Fprintf(&rows, `%s{"a": %d, "b": %d}`, map[bool]string{true: "", false: ","}[i == 0], i, 100*i)
		fmt.Fprintf(&csvText, "%d,%d\n", i, 100*i)
		sums = append(sums, fmt.Sprint(101*i))
	}
	dir := t.TempDir()
	// Input batches of 2, 5 and 3 rows.
	all := batchesFromJSON(t, schema, "["+rows.String()+"]", 10)
	multi := []arrow.RecordBatch{all[0].NewSlice(0, 2), all[0].NewSlice(2, 7), all[0].NewSlice(7, 10)}
	all[0].Release()
	writeArrow(t, filepath.Join(dir, "in.arrows"), false, multi)
	writeParquet(t, filepath.Join(dir, "in.parquet"), batchesFromJSON(t, schema, "["+rows.String()+"]", 3))
	writeFile(t, filepath.Join(dir, "in.csv"), csvText.String())
	wantSums := "add_int64 int64 [" + strings.Join(sums, ",") + "]"

	for _, tc := range []struct {
		input, batchRows, want string
	}{
		{"in.arrows", "4", "4 4 2"},
		{"in.arrows", "1", "1 1 1 1 1 1 1 1 1 1"},
		{"in.arrows", "100", "10"},
		{"in.arrows", "5", "5 5"},
		{"in.csv", "3", "3 3 3 1"},
		{"in.parquet", "4", "4 4 2"},
	} {
		t.Run(tc.input+"/"+tc.batchRows, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.arrows")
			r := runVerb(t, callCmd, nil, "--address", addr, "add_int64", "--input", filepath.Join(dir, tc.input),
				"--batch-rows", tc.batchRows, "--output", out)
			if r.err != nil {
				t.Fatal(r.err)
			}
			batches := readArrow(t, out)
			var sizes []string
			for _, b := range batches {
				sizes = append(sizes, fmt.Sprint(b.NumRows()))
			}
			got := renderBatches(t, batches[0].Schema(), batches)
			release(batches)
			if strings.Join(sizes, " ") != tc.want {
				t.Errorf("batches of %s rows, want %s", strings.Join(sizes, " "), tc.want)
			}
			if !strings.Contains(got, wantSums) {
				t.Errorf("output:\n%s\nwant the column %s", got, wantSums)
			}
		})
	}
}

// TestCallDictionary decodes dictionary-encoded input, which the server
// refuses, before sending it.
func TestCallDictionary(t *testing.T) {
	addr := startServer(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	b := array.NewDictionaryBuilder(mem, dt).(*array.BinaryDictionaryBuilder)
	for _, v := range []string{"ab", "cd", "ab"} {
		if err := b.AppendString(v); err != nil {
			t.Fatal(err)
		}
	}
	b.AppendNull()
	col := b.NewArray()
	b.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: dt, Nullable: true}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 4)
	col.Release()
	path := filepath.Join(t.TempDir(), "dict.arrows")
	writeArrow(t, path, false, []arrow.RecordBatch{rec})
	r := runVerb(t, callCmd, nil, "--address", addr, "upper", "--input", path)
	if want := "s,upper\nab,AB\ncd,CD\nab,AB\n,\n"; r.err != nil || r.stdout != want {
		t.Errorf("got %q, %v; want %q", r.stdout, r.err, want)
	}
}

// TestCallJSONLMatching matches keys by name, else by position.
func TestCallJSONLMatching(t *testing.T) {
	addr := startServer(t)
	for _, tc := range []struct{ name, in, want, err string }{
		{"by name, any order", `{"b": 2, "a": 1}`, "a,b,add_int64\n1,2,3\n", ""},
		{"by name, extra keys", `{"a": 1, "b": 2, "add_int64": 99}`, "a,b,add_int64\n1,2,3\n", ""},
		{"by name, missing is null", `{"b": 2}`, "a,b,add_int64\n,2,\n", ""},
		{"by position", `{"x": 1, "y": 2}`, "a,b,add_int64\n1,2,3\n", ""},
		{"empty object", `{}`, "a,b,add_int64\n,,\n", ""},
		{"no match", `{"x": 1}`, "", `stdin: line 1: the keys ("x") name no parameter of add_int64(a int64, b int64), and there are 1 of them, not 2 to match by position`},
		{"not an object", `[1, 2]`, "", "stdin: line 1: expected a JSON object, got [1, 2]"},
		{"bad value", "{\"a\": 1, \"b\": 2}\n{\"a\": \"x\", \"b\": 2}", "", `stdin: line 2: parameter 1 ("a"): cannot read "x" as int64`},
		{"two objects on a line", `{"a": 1, "b": 2} {"a": 1}`, "", "stdin: line 1: invalid JSON: more after the object; put one object on each line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runVerb(t, callCmd, []byte(tc.in), "--address", addr, "add_int64", "--input-format", "jsonl")
			if tc.err != "" {
				if r.err == nil || !strings.HasPrefix(r.err.Error(), tc.err) || exitCode(r.err) != 1 {
					t.Fatalf("err = %v, want %q...", r.err, tc.err)
				}
				return
			}
			if r.err != nil || r.stdout != tc.want {
				t.Errorf("got %q, %v; want %q", r.stdout, r.err, tc.want)
			}
		})
	}
}

// TestCallErrors checks that every failure is reported clearly, with
// the exit status main would give.
func TestCallErrors(t *testing.T) {
	addr := startServer(t)
	dir := t.TempDir()
	csvBad := filepath.Join(dir, "bad.csv")
	writeFile(t, csvBad, "a,b\n1,2\n3,x\n")
	csvWide := filepath.Join(dir, "wide.csv")
	writeFile(t, csvWide, "a,b,c\n1,2,3\n")
	csvRagged := filepath.Join(dir, "ragged.csv")
	writeFile(t, csvRagged, "a,b\n1,2\n3\n")
	overflow := filepath.Join(dir, "overflow.csv")
	writeFile(t, overflow, "a,b\n1,2\n3,4\n9223372036854775807,1\n")
	mismatch := filepath.Join(dir, "mismatch.arrows")
	mixed := arrow.NewSchema([]arrow.Field{int64Field("a"), utf8Field("b")}, nil)
	writeArrow(t, mismatch, false, batchesFromJSON(t, mixed, `[{"a": 1, "b": "x"}]`, 1))
	parquetFile := filepath.Join(dir, "in.parquet")
	writeParquet(t, parquetFile, batchesFromJSON(t, callCases[0].schema, callCases[0].rows, 4))
	wideParquet := filepath.Join(dir, "wide.parquet")
	three := arrow.NewSchema([]arrow.Field{int64Field("x"), int64Field("y"), int64Field("z")}, nil)
	writeParquet(t, wideParquet, batchesFromJSON(t, three, `[{"x": 1, "y": 2, "z": 3}]`, 1))
	unreachable := unusedAddress(t)
	out := filepath.Join(dir, "out.csv")

	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		err   string // the start of the message, or with "…" a part of it
		code  int
	}{
		{"unparseable CSV value", []string{"add_int64", "--input", csvBad, "--output", out},
			"", csvBad + `: row 2 (line 3), column 2 ("b"): cannot read "x" as int64: not a number of that type`, 1},
		{"CSV with too many columns", []string{"add_int64", "--input", csvWide},
			"", csvWide + `: the CSV header has 3 column(s) ("a", "b", "c"), but add_int64(a int64, b int64) takes 2; columns match parameters by position`, 1},
		{"ragged CSV", []string{"add_int64", "--input", csvRagged},
			"", csvRagged + ": record on line 3: wrong number of fields", 1},
		{"empty CSV", []string{"add_int64", "--input-format", "csv"},
			"", "stdin: the CSV input is empty; it needs a header line and then one line per row", 1},
		{"schema mismatch", []string{"add_int64", "--input", mismatch, "--output", out},
			"", `…add_int64: input column 1 ("b"): expected int64, got utf8`, 1},
		{"parquet columns", []string{"add_int64", "--input", wideParquet},
			"", wideParquet + ` has 3 column(s) ("x", "y", "z"); add_int64(a int64, b int64) takes 2: name the columns after the parameters, or give exactly 2 to match by position`, 1},
		{"function fails", []string{"add_int64", "--input", overflow, "--batch-rows", "2", "--output", out},
			"", "add_int64 failed: batch 1: add_int64: row 0: integer overflow (input row 2, counting from 0)", 1},
		{"unknown function", []string{"ad_int64", "--input", csvBad},
			"", `function "ad_int64" not found; did you mean "add_int64" or "div_int64"?`, 1},
		{"unreachable server", []string{"--address", unreachable, "pi", "--rows", "1"},
			"", "cannot reach the fletch server at " + unreachable + ": connection error: ", 1},
		{"output directory missing", []string{"add_int64", "--input", csvBad, "--output", filepath.Join(dir, "no", "out.csv")},
			"", "cannot create the output " + filepath.Join(dir, "no", "out.csv") + ": no such file or directory", 1},
		{"input not found", []string{"add_int64", "--input", filepath.Join(dir, "nope.csv")},
			"", "cannot open the input: open " + filepath.Join(dir, "nope.csv") + ": no such file or directory", 1},
		{"not Parquet", []string{"add_int64", "--input", csvBad, "--input-format", "parquet"},
			"", csvBad + ": not a readable Parquet file: ", 1},
		{"Parquet from a pipe", []string{"add_int64", "--input-format", "parquet"},
			"", "stdin: Parquet is read from its footer, so it needs a file, not a pipe", 1},
		{"not Arrow", []string{"add_int64", "--input", csvBad, "--input-format", "arrow"},
			"", csvBad + ": not a readable Arrow IPC stream: ", 1},
		{"stdin needs a format", []string{"add_int64"},
			"", "reading the arguments of add_int64 from stdin needs --input-format (csv, jsonl, parquet, arrow), or give --input FILE", 2},
		{"unknown extension", []string{"add_int64", "--input", filepath.Join(dir, "in.txt")},
			"", `cannot tell the input format from the name "` + filepath.Join(dir, "in.txt") + `"`, 2},
		{"unknown output extension", []string{"add_int64", "--input", csvBad, "--output", "out.txt"},
			"", `cannot tell the output format from the name "out.txt"`, 2},
		{"unknown format", []string{"add_int64", "--input-format", "xml"},
			"", `--input-format "xml": want one of csv, jsonl, parquet, arrow`, 2},
		{"rows for a function with parameters", []string{"add_int64", "--rows", "3"},
			"", "--rows is for functions without parameters; add_int64(a int64, b int64) takes 2, read from --input", 2},
		{"no rows for pi", []string{"pi"},
			"", "pi() -> float64 takes no parameters: say how many results to produce with --rows N", 2},
		{"input for pi", []string{"pi", "--input", csvBad},
			"", "pi() -> float64 takes no parameters, so it reads no input: give --rows N instead of --input", 2},
		{"no name", []string{"--input", csvBad},
			"", "fletch call takes one function name, got 0 argument(s)", 2},
		{"bad batch rows", []string{"add_int64", "--batch-rows", "0"},
			"", "--batch-rows must be positive, got 0", 2},
		{"deadline", []string{"add_int64", "--input", parquetFile, "--timeout", "1ns"},
			"", "no answer from " + addr + " within 1ns (--timeout)", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--address", addr}, tc.args...)
			r := runVerb(t, callCmd, []byte(tc.stdin), args...)
			part, ok := strings.CutPrefix(tc.err, "…")
			if r.err == nil || (ok && !strings.Contains(r.err.Error(), part)) || (!ok && !strings.HasPrefix(r.err.Error(), tc.err)) {
				t.Fatalf("err = %v\nwant %s...", errText(r.err), tc.err)
			}
			if got := exitCode(r.err); got != tc.code {
				t.Errorf("exit code %d, want %d", got, tc.code)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("the output file exists after a failed call (%v)", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 7 {
				t.Errorf("the directory holds %d files, want the 7 inputs: a temporary output was left", len(entries))
			}
		})
	}
}

// TestCallPartialOutput: the rows answered before a failure are written
// to stdout in the line formats (the server, running batches in parallel,
// may end the call before answering earlier ones), and the error says
// where the function failed.
func TestCallPartialOutput(t *testing.T) {
	addr := startServer(t)
	r := runVerb(t, callCmd, []byte("a,b\n1,2\n9223372036854775807,1\n"), "--address", addr, "add_int64",
		"--input-format", "csv", "--batch-rows", "1")
	if r.stdout != "a,b,add_int64\n1,2,3\n" && r.stdout != "" {
		t.Errorf("stdout = %q, want the first row or nothing", r.stdout)
	}
	want := "add_int64 failed: batch 1: add_int64: row 0: integer overflow (input row 1, counting from 0)"
	if errText(r.err) != want {
		t.Errorf("err = %v, want %s", r.err, want)
	}
}

func TestCallTableTruncates(t *testing.T) {
	addr := startServer(t)
	var in strings.Builder
	in.WriteString("s\n")
	for i := range 120 {
		fmt.Fprintf(&in, "row %d %s\n", i, strings.Repeat("x", i))
	}
	r := runVerb(t, callCmd, []byte(in.String()), "--address", addr, "upper", "--input-format", "csv", "--output-format", "table")
	if r.err != nil {
		t.Fatal(r.err)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2+50+1 {
		t.Fatalf("%d lines, want a header, a rule, 50 rows and a count:\n%s", len(lines), r.stdout)
	}
	if want := "(first 50 of 120 rows; write them all with --output FILE or --output-format csv)"; lines[len(lines)-1] != want {
		t.Errorf("last line %q, want %q", lines[len(lines)-1], want)
	}
	if want := "row 49 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…  ROW 49 XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX…"; lines[51] != want {
		t.Errorf("row 49: %q, want %q", lines[51], want)
	}
}

// ---- helpers ----

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// batchesFromJSON builds batches of at most n rows from a JSON array.
func batchesFromJSON(t *testing.T, schema *arrow.Schema, rows string, n int64) []arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(rows))
	if err != nil {
		t.Fatalf("RecordFromJSON: %v", err)
	}
	defer rec.Release()
	var out []arrow.RecordBatch
	for off := int64(0); off < rec.NumRows(); off += n {
		out = append(out, rec.NewSlice(off, min(off+n, rec.NumRows())))
	}
	return out
}

func release(batches []arrow.RecordBatch) {
	for _, b := range batches {
		b.Release()
	}
}

// writeParquet writes batches (and releases them), one row group each.
func writeParquet(t *testing.T, path string, batches []arrow.RecordBatch) {
	t.Helper()
	defer release(batches)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := pqarrow.NewFileWriter(batches[0].Schema(), f, parquet.NewWriterProperties(),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := fw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeArrow writes batches (and releases them) as an IPC stream or file.
func writeArrow(t *testing.T, path string, fileFormat bool, batches []arrow.RecordBatch) {
	t.Helper()
	defer release(batches)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w interface {
		Write(arrow.RecordBatch) error
		Close() error
	}
	if fileFormat {
		if w, err = ipc.NewFileWriter(f, ipc.WithSchema(batches[0].Schema())); err != nil {
			t.Fatal(err)
		}
	} else {
		w = ipc.NewWriter(f, ipc.WithSchema(batches[0].Schema()))
	}
	for _, b := range batches {
		if err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// readArrow reads an IPC stream or file's batches.
func readArrow(t *testing.T, path string) []arrow.RecordBatch {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []arrow.RecordBatch
	if fr, err := ipc.NewFileReader(f); err == nil {
		defer fr.Close()
		for i := range fr.NumRecords() {
			rec, err := fr.RecordBatchAt(i)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rec)
		}
		return out
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	rdr, err := ipc.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		rec.Retain()
		out = append(out, rec)
	}
	if err := rdr.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readOutput renders an output file: text formats as they are, Parquet
// and Arrow by renderBatches.
func readOutput(t *testing.T, path, format string) string {
	t.Helper()
	switch format {
	case "csv", "jsonl", "table":
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	case "parquet":
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		pf, err := file.NewParquetReader(f)
		if err != nil {
			t.Fatal(err)
		}
		defer pf.Close()
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 20}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		rr, err := fr.GetRecordReader(context.Background(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer rr.Release()
		var batches []arrow.RecordBatch
		for rr.Next() {
			rec := rr.RecordBatch()
			rec.Retain()
			batches = append(batches, rec)
		}
		defer release(batches)
		return renderBatches(t, rr.Schema(), batches)
	}
	batches := readArrow(t, path)
	defer release(batches)
	schema := arrow.NewSchema(nil, nil)
	if len(batches) > 0 {
		schema = batches[0].Schema()
	}
	return renderBatches(t, schema, batches)
}

// renderBatches writes each column as "name type [values as JSON]".
func renderBatches(t *testing.T, schema *arrow.Schema, batches []arrow.RecordBatch) string {
	t.Helper()
	var b strings.Builder
	for c, f := range schema.Fields() {
		var parts []string
		for _, rec := range batches {
			js, err := rec.Column(c).MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if s := string(js); s != "[]" {
				parts = append(parts, s[1:len(s)-1])
			}
		}
		fmt.Fprintf(&b, "%s %s [%s]\n", f.Name, typeName(f.Type), strings.Join(parts, ","))
	}
	return b.String()
}
