package udfcatalog

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// A field declared non-null never holds a null where it is reachable: in
// a row that is itself valid, under a valid parent. Engines decode with
// arrow-rs, which rejects a whole batch otherwise, so both what a UDF
// receives and what it returns are checked against the declaration.

// HasNonNull reports whether any field of schema, at any depth, is
// declared non-null, so CheckNulls has something to check.
func HasNonNull(schema *arrow.Schema) bool {
	for _, f := range schema.Fields() {
		if fieldHasNonNull(f) {
			return true
		}
	}
	return false
}

func fieldHasNonNull(f arrow.Field) bool {
	if !f.Nullable {
		return true
	}
	return typeHasNonNull(f.Type)
}

func typeHasNonNull(t arrow.DataType) bool {
	switch t := t.(type) {
	case *arrow.MapType:
		return !t.ItemField().Nullable || typeHasNonNull(t.KeyType()) || typeHasNonNull(t.ItemType())
	case arrow.ListLikeType:
		return fieldHasNonNull(t.ElemField())
	case *arrow.StructType:
		for _, f := range t.Fields() {
			if fieldHasNonNull(f) {
				return true
			}
		}
	}
	return false
}

// NullViolation names the first null found where a field is declared
// non-null.
type NullViolation struct {
	Column int    // the batch column
	Path   string // the nested position, as in docs/types.md: "item", "a.item", or "" for the column itself
	Row    int64  // the batch row that holds it
}

func (v *NullViolation) Error() string {
	where := "the column"
	if v.Path != "" {
		where = fmt.Sprintf("its field %q", v.Path)
	}
	return fmt.Sprintf("column %d: %s is declared not null but holds a null in row %d", v.Column, where, v.Row)
}

// CheckNulls returns a *NullViolation for the first null that rec holds
// where schema declares a field non-null, or nil.
func CheckNulls(schema *arrow.Schema, rec arrow.RecordBatch) error {
	for i, f := range schema.Fields() {
		if i >= int(rec.NumCols()) || !fieldHasNonNull(f) {
			continue
		}
		col := rec.Column(i)
		if path, row, ok := firstNull("", f, col, []span{{lo: 0, hi: col.Len(), row: -1}}); ok {
			return &NullViolation{Column: i, Path: path, Row: row}
		}
	}
	return nil
}

// span is a run of positions [lo, hi) of an array that belong to one
// batch row, or, when row is -1, positions that are batch rows.
type span struct {
	lo, hi int
	row    int64
}

func (s span) rowOf(i int) int64 {
	if s.row < 0 {
		return int64(i)
	}
	return s.row
}

// firstNull searches the positions of arr in spans for a null that f's
// declarations forbid. Below a null position nothing is searched.
func firstNull(path string, f arrow.Field, arr arrow.Array, spans []span) (string, int64, bool) {
	if !f.Nullable && arr.NullN() > 0 {
		for _, s := range spans {
			for i := s.lo; i < s.hi; i++ {
				if arr.IsNull(i) {
					return path, s.rowOf(i), true
				}
			}
		}
	}
	if !typeHasNonNull(f.Type) {
		return "", 0, false
	}
	switch a := arr.(type) {
	case *array.Map:
		t := f.Type.(*arrow.MapType)
		entries := a.ListValues().(*array.Struct)
		within := childSpans(a, spans)
		if p, r, ok := firstNull(join(path, "key"), t.KeyField(), entries.Field(0), within); ok {
			return p, r, true
		}
		return firstNull(join(path, t.ItemField().Name), t.ItemField(), entries.Field(1), within)
	case array.ListLike:
		elem := f.Type.(arrow.ListLikeType).ElemField()
		return firstNull(join(path, elem.Name), elem, a.ListValues(), childSpans(a, spans))
	case *array.Struct:
		st := f.Type.(*arrow.StructType)
		valid := validSpans(a, spans)
		for k, child := range st.Fields() {
			if !fieldHasNonNull(child) {
				continue
			}
			if p, r, ok := firstNull(join(path, child.Name), child, a.Field(k), valid); ok {
				return p, r, true
			}
		}
	}
	return "", 0, false
}

// childSpans maps the valid positions of a list-like array in spans to
// the ranges of its values they hold.
func childSpans(a array.ListLike, spans []span) []span {
	var out []span
	for _, s := range spans {
		for i := s.lo; i < s.hi; i++ {
			if a.IsNull(i) {
				continue
			}
			if lo, hi := a.ValueOffsets(i); hi > lo {
				out = append(out, span{lo: int(lo), hi: int(hi), row: s.rowOf(i)})
			}
		}
	}
	return out
}

// validSpans cuts spans down to the positions where arr is valid.
func validSpans(arr arrow.Array, spans []span) []span {
	if arr.NullN() == 0 {
		return spans
	}
	var out []span
	for _, s := range spans {
		for i := s.lo; i < s.hi; i++ {
			if arr.IsValid(i) {
				out = append(out, span{lo: i, hi: i + 1, row: s.rowOf(i)})
			}
		}
	}
	return out
}
