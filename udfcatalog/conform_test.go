package udfcatalog

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func mustType(t *testing.T, text string) arrow.DataType {
	t.Helper()
	dt, err := ParseType(text)
	if err != nil {
		t.Fatal(err)
	}
	return dt
}

// TestPlanInput runs each accepted input type through PlanInput and Apply
// and checks the values arrive unchanged under the declared type.
func TestPlanInput(t *testing.T) {
	tests := []struct {
		want, got string // canonical type texts
		values    string // JSON values of the input column
	}{
		{"int64", "int64", `[1,null,3]`},
		{"int64", "int8", `[-128,null,127]`},
		{"int64", "int16", `[-32768,null,32767]`},
		{"int64", "int32", `[-2147483648,null,2147483647]`},
		{"int64", "uint8", `[0,null,255]`},
		{"int64", "uint16", `[0,null,65535]`},
		{"int64", "uint32", `[0,null,4294967295]`},
		{"int32", "int16", `[1,2,3]`},
		{"uint64", "uint32", `[1,2,3]`},
		{"utf8", "large_utf8", `["a",null,"ü"]`},
		{"utf8", "utf8_view", `["a",null,"a string longer than twelve bytes"]`},
		{"large_utf8", "utf8", `["a",null,"ü"]`},
		{"binary", "large_binary", `["YQ==",null,""]`},
		{"large_binary", "binary", `["YQ==",null,""]`},
		{"list<int64>", "large_list<int64>", `[[1,2],null,[]]`},
		{"list<int64>", "list<int32>", `[[1,2],null,[]]`},
		{"list<int64>", "list<int64 not null>", `[[1,2],null,[]]`},
		{"list<int64 not null>", "list<element: int64>", `[[1,2],null,[]]`},
		{"list<utf8>", "large_list<large_utf8>", `[["a"],null,[null]]`},
		{"struct<a: int64, b: utf8>", "struct<a: int64 not null, b: utf8>", `[{"a":1,"b":"x"},null]`},
		{"map<utf8, int64>", "map<utf8, int64 not null>", `[[{"key":"a","value":1}],null]`},
		{"timestamp[us, tz=UTC]", "timestamp[us, tz=UTC]", `["2026-01-01T00:00:00Z"]`},
		{"int64", "null", `[null,null]`},
		{"struct<a: list<utf8>>", "null", `[null]`},
		{"list<int64>", "list<null>", `[[null],null,[]]`},
	}
	for _, tt := range tests {
		t.Run(tt.want+"<-"+tt.got, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			fn := scalar("f", Param{Name: "x", Type: mustType(t, tt.want)})
			gotType := mustType(t, tt.got)
			plan, err := PlanInput(fn, arrow.NewSchema([]arrow.Field{{Name: "anything", Type: gotType, Nullable: true}}, nil))
			if err != nil {
				t.Fatalf("PlanInput: %v", err)
			}
			col, _, err := array.FromJSON(mem, gotType, strings.NewReader(tt.values))
			if err != nil {
				t.Fatalf("FromJSON: %v", err)
			}
			defer col.Release()
			rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "anything", Type: gotType, Nullable: true}}, nil),
				[]arrow.Array{col}, int64(col.Len()))
			defer rec.Release()
			out, err := plan.Apply(context.Background(), mem, rec)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			defer out.Release()
			if !out.Schema().Equal(fn.InputSchema()) {
				t.Errorf("schema = %s, want %s", out.Schema(), fn.InputSchema())
			}
			wantCol, _, err := array.FromJSON(mem, fn.Params[0].Type, strings.NewReader(tt.values))
			if err != nil {
				t.Fatalf("FromJSON: %v", err)
			}
			defer wantCol.Release()
			if !array.Equal(out.Column(0), wantCol) {
				t.Errorf("values = %s, want %s", out.Column(0), wantCol)
			}
		})
	}
}

func TestPlanInputMismatch(t *testing.T) {
	tests := []struct {
		params []string
		got    []string
		msg    string
	}{
		{[]string{"int64"}, []string{"utf8"}, `f: input column 0 ("p0"): expected int64, got utf8`},
		{[]string{"int64", "int64"}, []string{"int64", "float64"}, `f: input column 1 ("p1"): expected int64, got float64`},
		{[]string{"int64"}, []string{"uint64"}, `expected int64, got uint64`},
		{[]string{"int32"}, []string{"int64"}, `expected int32, got int64`},
		{[]string{"int64"}, []string{"uint64"}, `got uint64`},
		{[]string{"utf8"}, []string{"binary"}, `expected utf8, got binary`},
		{[]string{"float64"}, []string{"float32"}, `expected float64, got float32`},
		{[]string{"timestamp[us, tz=UTC]"}, []string{"timestamp[us]"}, `expected timestamp[us, tz=UTC], got timestamp[us]`},
		{[]string{"timestamp[us]"}, []string{"timestamp[ns]"}, `expected timestamp[us], got timestamp[ns]`},
		{[]string{"decimal128(10, 2)"}, []string{"decimal128(12, 2)"}, `expected decimal128(10, 2), got decimal128(12, 2)`},
		{[]string{"list<int64>"}, []string{"list<utf8>"}, `expected list<int64>, got list<utf8> (item: expected int64, got utf8)`},
		{[]string{"struct<a: int64>"}, []string{"struct<b: int64>"}, `field 0: expected name "a", got "b"`},
		{[]string{"struct<a: int64, b: utf8>"}, []string{"struct<a: int64>"}, `expected 2 fields, got 1`},
		{[]string{"fixed_size_list<int64, 3>"}, []string{"fixed_size_list<int64, 2>"}, `expected 3 items per list, got 2`},
		{[]string{"int64", "int64"}, []string{"int64"}, `f takes 2 column(s) (p0 int64, p1 int64), got 1 (int64)`},
		{nil, []string{"int64"}, `f takes 0 column(s) (), got 1 (int64)`},
	}
	for _, tt := range tests {
		var params []Param
		for i, p := range tt.params {
			params = append(params, Param{Name: "p" + string(rune('0'+i)), Type: mustType(t, p)})
		}
		var fields []arrow.Field
		for _, g := range tt.got {
			fields = append(fields, arrow.Field{Name: "", Type: mustType(t, g), Nullable: true})
		}
		_, err := PlanInput(scalar("f", params...), arrow.NewSchema(fields, nil))
		if !errors.Is(err, ErrSchemaMismatch) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("PlanInput(%v <- %v) = %v, want ErrSchemaMismatch containing %q", tt.params, tt.got, err, tt.msg)
		}
	}
}

// TestConvertSlicedList converts a sliced list with nulls, where offsets
// and validity do not start at zero.
func TestConvertSlicedList(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	src := mustType(t, "large_list<list<int32>>")
	want := mustType(t, "list<list<int64>>")
	arr, _, err := array.FromJSON(mem, src, strings.NewReader(`[[[1]],null,[[2,3],null,[]],[[4]],null]`))
	if err != nil {
		t.Fatal(err)
	}
	defer arr.Release()
	sliced := array.NewSlice(arr, 1, 5)
	defer sliced.Release()
	out, err := convert(context.Background(), mem, sliced, want)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if err := array.ValidateFull(out); err != nil {
		t.Fatalf("converted array is invalid: %v", err)
	}
	if got, _ := out.MarshalJSON(); strings.ReplaceAll(string(got), "\n", "") != `[null,[[2,3],null,[]],[[4]],null]` || !arrow.TypeEqual(out.DataType(), want) {
		t.Errorf("convert = %s as %s", got, out.DataType())
	}
}
