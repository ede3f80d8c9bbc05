package exec

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// eval runs f over columns parsed from JSON and returns the output as JSON.
func eval(t *testing.T, f *Function, types []arrow.DataType, cols ...string) (string, error) {
	t.Helper()
	if f.err != nil {
		t.Fatalf("construct: %v", f.err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	args := make([]arrow.Array, len(cols))
	rows := 3
	for i, js := range cols {
		arr, _, err := array.FromJSON(mem, types[i], strings.NewReader(js))
		if err != nil {
			t.Fatalf("FromJSON(%s): %v", js, err)
		}
		defer arr.Release()
		args[i] = arr
		rows = arr.Len()
	}
	out, err := f.eval(context.Background(), mem, args, rows)
	if err != nil {
		return "", err
	}
	defer out.Release()
	js, err := out.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(js), nil
}

func TestScalarForms(t *testing.T) {
	i64, str := arrow.PrimitiveTypes.Int64, arrow.BinaryTypes.String
	tests := []struct {
		name  string
		f     *Function
		types []arrow.DataType
		cols  []string
		want  string
	}{
		{"nulls skip the call", Scalar2("add", func(a, b int64) int64 { return a + b }),
			[]arrow.DataType{i64, i64}, []string{`[1,null,3]`, `[10,20,null]`}, `[11,null,null]`},
		{"nullable parameters see nulls", Scalar2("nz", func(a, b Nullable[int64]) int64 {
			if !a.Valid {
				return -1
			}
			return a.Value
		}), []arrow.DataType{i64, i64}, []string{`[1,null,3]`, `[null,null,null]`}, `[1,-1,3]`},
		{"nullable result", Scalar1("half", func(a int64) Nullable[int64] {
			if a%2 != 0 {
				return Null[int64]()
			}
			return Some(a / 2)
		}), []arrow.DataType{i64}, []string{`[4,5,null]`}, `[2,null,null]`},
		{"strings", Scalar2("concat", func(a, b string) string { return a + b }),
			[]arrow.DataType{str, str}, []string{`["a","é",null]`, `["b","ü","c"]`}, `["ab","éü",null]`},
		{"bytes", Scalar1("len", func(b []byte) int32 { return int32(len(b)) }),
			[]arrow.DataType{arrow.BinaryTypes.Binary}, []string{`["YWJj","",null]`}, `[3,0,null]`},
		{"bool out", Scalar1("pos", func(a float64) bool { return a > 0 }),
			[]arrow.DataType{arrow.PrimitiveTypes.Float64}, []string{`[1.5,-2,null]`}, `[true,false,null]`},
		{"time", Scalar1("next_day", func(ts time.Time) time.Time { return ts.Add(24 * time.Hour) }),
			[]arrow.DataType{microsUTC}, []string{`["2026-01-01T00:00:00Z"]`}, `["2026-01-02T00:00:00Z"]`},
		{"three args", Scalar3("mad", func(a, b, c int32) int64 { return int64(a)*int64(b) + int64(c) }),
			[]arrow.DataType{arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int32},
			[]string{`[2,3,null]`, `[5,6,7]`, `[1,1,1]`}, `[11,19,null]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eval(t, tt.f, tt.types, tt.cols...)
			if err != nil || got != tt.want {
				t.Errorf("%s%v = %s, %v; want %s", tt.f.udf.Name, tt.cols, got, err, tt.want)
			}
		})
	}
}

func TestScalarErrorNamesRow(t *testing.T) {
	f := Scalar1E("inv", func(a int64) (int64, error) {
		if a == 0 {
			return 0, errors.New("zero has no inverse")
		}
		return 1 / a, nil
	})
	_, err := eval(t, f, []arrow.DataType{arrow.PrimitiveTypes.Int64}, `[1,null,0]`)
	if !errors.Is(err, udfcatalog.ErrFunctionFailed) || err.Error() != "inv: row 2: zero has no inverse" {
		t.Errorf("err = %v, want ErrFunctionFailed naming row 2", err)
	}
}

// TestSlicedInput checks that offsets into sliced arrays are honoured by
// both the fixed-width fast path and the generic readers.
func TestSlicedInput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ints, _, _ := array.FromJSON(mem, arrow.PrimitiveTypes.Int64, strings.NewReader(`[1,2,null,4,5]`))
	strs, _, _ := array.FromJSON(mem, arrow.BinaryTypes.String, strings.NewReader(`["a","b",null,"d","e"]`))
	defer ints.Release()
	defer strs.Release()
	si, ss := array.NewSlice(ints, 1, 4), array.NewSlice(strs, 1, 4)
	defer si.Release()
	defer ss.Release()
	f := Scalar2("rep", func(n int64, s string) string { return strings.Repeat(s, int(n)) })
	out, err := f.eval(context.Background(), mem, []arrow.Array{si, ss}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if js, _ := out.MarshalJSON(); string(js) != `["bb",null,"dddd"]` {
		t.Errorf("rep over slice = %s", js)
	}
	g := Scalar1("twice", func(n int64) int64 { return 2 * n })
	out2, err := g.eval(context.Background(), mem, []arrow.Array{si}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer out2.Release()
	if js, _ := out2.MarshalJSON(); string(js) != `[4,null,8]` {
		t.Errorf("twice over slice = %s", js)
	}
}

func TestSignatures(t *testing.T) {
	tests := []struct {
		f    *Function
		want string
	}{
		{Scalar2("add", func(a, b int64) int64 { return a + b }, WithParamNames("a", "b")), "add(a int64, b int64) -> int64"},
		{Scalar1("f", func(Nullable[string]) []byte { return nil }), "f(arg0 utf8 null) -> binary"},
		{Scalar0("now", time.Now), "now() -> timestamp[us, tz=UTC]"},
		{Vectorized("v", []arrow.DataType{arrow.PrimitiveTypes.Float32}, arrow.PrimitiveTypes.Float32, nil), "v(arg0 float32 null) -> float32"},
	}
	for _, tt := range tests {
		if tt.f.err != nil {
			t.Errorf("construct %s: %v", tt.want, tt.f.err)
			continue
		}
		if got := tt.f.UDF().Signature(); got != tt.want {
			t.Errorf("Signature() = %s, want %s", got, tt.want)
		}
	}
}

func TestRegisterRejects(t *testing.T) {
	type point struct{ x, y int }
	tests := []struct {
		name string
		f    *Function
		want string
	}{
		{"struct parameter", Scalar1("p", func(point) int64 { return 0 }), "parameter 0: no Arrow mapping for Go type exec.point"},
		{"map result", Scalar0("m", func() map[string]int { return nil }), "result: no Arrow mapping for Go type map[string]int"},
		{"nested nullable", Scalar1("n", func(Nullable[Nullable[int64]]) int64 { return 0 }), "nested Nullable"},
		{"name count", Scalar1("c", func(int64) int64 { return 0 }, WithParamNames("a", "b")), "2 parameter names for 1 parameters"},
		{"bad name", Scalar0("a/b", func() int64 { return 0 }), `must not contain '/'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewNative(memory.NewGoAllocator()).Register(udfcatalog.NewRegistry(), tt.f)
			if !errors.Is(err, udfcatalog.ErrInvalidUDF) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Register = %v, want ErrInvalidUDF containing %q", err, tt.want)
			}
		})
	}
	reg := udfcatalog.NewRegistry()
	n := NewNative(memory.NewGoAllocator())
	if err := n.Register(reg, Builtins()...); err != nil {
		t.Fatal(err)
	}
	if err := n.Register(reg, Scalar0("pi", func() int64 { return 3 })); !errors.Is(err, udfcatalog.ErrDuplicate) {
		t.Errorf("registering pi twice = %v, want ErrDuplicate", err)
	}
}

func TestCancelledLoop(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	arr := array.MakeArrayOfNull(mem, arrow.PrimitiveTypes.Int64, 10)
	defer arr.Release()
	f := Scalar1("id", func(a Nullable[int64]) Nullable[int64] { return a })
	if _, err := f.eval(ctx, mem, []arrow.Array{arr}, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("eval with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestBuiltins(t *testing.T) {
	i64 := arrow.PrimitiveTypes.Int64
	byName := make(map[string]*Function)
	for _, f := range Builtins() {
		byName[f.udf.Name] = f
	}
	tests := []struct {
		fn   string
		cols []string
		want string
		err  string
	}{
		{"add_int64", []string{`[1,-9223372036854775808]`, `[2,-1]`}, "", "row 1: integer overflow"},
		{"add_int64", []string{`[9223372036854775806,-5]`, `[1,5]`}, `[9223372036854775807,0]`, ""},
		{"div_int64", []string{`[7,-7,-9223372036854775808]`, `[2,2,1]`}, `[3,-3,-9223372036854775808]`, ""},
		{"div_int64", []string{`[1,1]`, `[1,0]`}, "", "row 1: division by zero"},
		{"div_int64", []string{`[-9223372036854775808]`, `[-1]`}, "", "row 0: integer overflow"},
		{"coalesce_int64", []string{`[null,1,null]`, `[2,3,null]`}, `[2,1,null]`, ""},
	}
	for _, tt := range tests {
		got, err := eval(t, byName[tt.fn], []arrow.DataType{i64, i64}, tt.cols...)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s%v error = %v, want %q", tt.fn, tt.cols, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s%v = %s, %v; want %s", tt.fn, tt.cols, got, err, tt.want)
		}
	}
}
