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

func TestCheckNulls(t *testing.T) {
	tests := []struct {
		name     string
		field    string // type text of the one column
		build    string // the type to build values as, if FromJSON refuses field's (then relabelled)
		nullable bool   // the column itself
		values   string // JSON
		slice    [2]int64
		wantPath string
		wantRow  int64 // -1: no violation
	}{
		{"nullable flat", "int64", "", true, `[1,null,3]`, [2]int64{}, "", -1},
		{"non-null flat", "int64", "", false, `[1,2,null]`, [2]int64{}, "", 2},
		{"non-null flat, no nulls", "int64", "", false, `[1,2,3]`, [2]int64{}, "", -1},
		{"list item", "list<int64 not null>", "", true, `[[1],null,[2,null]]`, [2]int64{}, "item", 2},
		{"list item under null list", "list<int64 not null>", "", true, `[[1],null,[]]`, [2]int64{}, "", -1},
		{"list item nullable", "list<int64>", "", true, `[[1],[null]]`, [2]int64{}, "", -1},
		{"named list item", "list<element: utf8 not null>", "", true, `[["a"],[null]]`, [2]int64{}, "element", 1},
		{"large list", "large_list<int64 not null>", "", true, `[[1,null]]`, [2]int64{}, "item", 0},
		{"fixed size list", "fixed_size_list<float32 not null, 2>", "", true, `[[1,2],[3,null]]`, [2]int64{}, "item", 1},
		{"struct child", "struct<a: int64 not null, b: utf8>", "", true, `[{"a":1,"b":null},{"a":null,"b":"x"}]`, [2]int64{}, "a", 1},
		{"struct child under null struct", "struct<a: int64 not null>", "", true, `[{"a":1},null]`, [2]int64{}, "", -1},
		{"map value", "map<utf8, int64 not null>", "map<utf8, int64>", true, `[[{"key":"a","value":1}],[{"key":"b","value":null}]]`, [2]int64{}, "value", 1},
		{"map value nullable", "map<utf8, int64>", "", true, `[[{"key":"b","value":null}]]`, [2]int64{}, "", -1},
		{"deep", "list<struct<a: list<int64 not null>>>", "", true, `[[{"a":[1]}],[{"a":[2]},{"a":[3,null]}]]`, [2]int64{}, "item.a.item", 1},
		{"deep under null", "list<struct<a: list<int64 not null>>>", "", true, `[[{"a":[1]}],[null,{"a":null}]]`, [2]int64{}, "", -1},
		{"sliced: violation before the slice", "list<int64 not null>", "", true, `[[null],[1],[2,null]]`, [2]int64{1, 3}, "item", 1},
		{"sliced: violation outside", "list<int64 not null>", "", true, `[[null],[1],[2]]`, [2]int64{1, 3}, "", -1},
		{"sliced struct", "struct<a: int64 not null>", "", true, `[{"a":null},{"a":1},{"a":null}]`, [2]int64{1, 3}, "a", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			dt := mustType(t, tt.field)
			build := dt
			if tt.build != "" {
				build = mustType(t, tt.build)
			}
			built, _, err := array.FromJSON(mem, build, strings.NewReader(tt.values))
			if err != nil {
				t.Fatal(err)
			}
			defer built.Release()
			data := retypeData(built.Data(), dt)
			defer data.Release()
			arr := array.MakeFromData(data)
			defer arr.Release()
			schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: dt, Nullable: tt.nullable}}, nil)
			rec := array.NewRecordBatch(schema, []arrow.Array{arr}, int64(arr.Len()))
			defer rec.Release()
			if tt.slice != [2]int64{} {
				rec = rec.NewSlice(tt.slice[0], tt.slice[1])
				defer rec.Release()
			}
			if got := HasNonNull(schema); got != (tt.nullable == false || strings.Contains(tt.field, "not null")) {
				t.Errorf("HasNonNull(%s) = %t", tt.field, got)
			}
			err = CheckNulls(schema, rec)
			if tt.wantRow < 0 {
				if err != nil {
					t.Fatalf("CheckNulls(%s) = %v, want nil", tt.values, err)
				}
				return
			}
			var v *NullViolation
			if !errors.As(err, &v) {
				t.Fatalf("CheckNulls(%s) = %v, want a *NullViolation", tt.values, err)
			}
			if v.Column != 0 || v.Path != tt.wantPath || v.Row != tt.wantRow {
				t.Errorf("CheckNulls(%s) = column %d path %q row %d, want column 0 path %q row %d",
					tt.values, v.Column, v.Path, v.Row, tt.wantPath, tt.wantRow)
			}
		})
	}
}

// TestApplyRefusesNullsInNonNullChildren checks that input whose nested
// nulls break a parameter's declaration never reaches the UDF.
func TestApplyRefusesNullsInNonNullChildren(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fn := scalar("total", Param{Name: "xs", Type: mustType(t, "list<int64 not null>")})
	got := mustType(t, "list<int64>") // what RisingWave sends for INT[]
	arr, _, err := array.FromJSON(mem, got, strings.NewReader(`[[1,2],[3,null]]`))
	if err != nil {
		t.Fatal(err)
	}
	defer arr.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "", Type: got, Nullable: true}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{arr}, 2)
	defer rec.Release()
	plan, err := PlanInput(fn, schema)
	if err != nil {
		t.Fatal(err)
	}
	out, err := plan.Apply(context.Background(), mem, rec)
	if err == nil {
		out.Release()
		t.Fatal("Apply accepted a null item for list<int64 not null>")
	}
	if !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("Apply error %v does not wrap ErrSchemaMismatch", err)
	}
	want := `input column 0 ("xs"): expected list<int64 not null>, got a null in "item" at row 1`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Apply error = %q, want it to contain %q", err, want)
	}
}

func TestOutputSchemaIsNullable(t *testing.T) {
	result := arrow.Field{Name: "r", Type: mustType(t, "struct<a: int64 not null, b: list<int64 not null>>"), Nullable: false}
	for _, kind := range []Kind{KindScalar, KindAggregate, KindTable, KindTransform} {
		u := &UDF{Name: "f", Kind: kind, Result: result}
		for _, f := range u.OutputSchema().Fields() {
			if f.Name == RowColumn && kind == KindTable {
				if f.Nullable {
					t.Errorf("%s: the row column is nullable; it is never null", kind)
				}
				continue
			}
			if !f.Nullable {
				t.Errorf("%s: output column %q is not nullable", kind, f.Name)
			}
		}
		if kind == KindTable || kind == KindTransform {
			b := u.OutputSchema().Fields()[len(u.OutputSchema().Fields())-1]
			if b.Type.(*arrow.ListType).ElemField().Nullable {
				t.Errorf("%s: nested nullability was lost: %s", kind, b.Type)
			}
		}
	}
	if f := (&UDF{Name: "f", Kind: KindScalar, Result: result}).ErrorOutputSchema().Field(0); !f.Nullable {
		t.Error("ErrorOutputSchema's result is not nullable")
	}
}
