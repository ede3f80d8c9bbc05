package udfcatalog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ErrSchemaMismatch is wrapped when input columns cannot stand in for a
// UDF's parameters.
var ErrSchemaMismatch = errors.New("input schema does not match the function's parameters")

// conversion says what an input column needs before a UDF may see it.
type conversion int

const (
	asIs   conversion = iota // same type
	retype                   // same buffers; only field names or child nullability differ
	cast                     // a lossless compute cast
)

// InputPlan adapts batches of one input schema to a UDF's parameters.
// Columns are matched by position; their names are ignored.
type InputPlan struct {
	fn     *UDF
	schema *arrow.Schema
	noop   bool // every column already has its declared type
	// nonNull is set when some nested field is declared non-null: such
	// input is checked before the UDF sees it.
	nonNull bool
}

// PlanInput checks that got can be fed to fn. Each column must have the
// declared type or a lossless representation of it: utf8, large_utf8 and
// utf8_view for one another, likewise the binary types, list for
// large_list, a narrower integer for a wider one, and the null type (all
// nulls) for anything.
func PlanInput(fn *UDF, got *arrow.Schema) (*InputPlan, error) {
	if got.NumFields() != len(fn.Params) {
		return nil, fmt.Errorf("%w: %s takes %d column(s) (%s), got %d (%s)", ErrSchemaMismatch,
			fn.Name, len(fn.Params), paramList(fn.Params), got.NumFields(), fieldList(got.Fields()))
	}
	p := &InputPlan{fn: fn, schema: fn.InputSchema(), noop: true}
	p.nonNull = HasNonNull(p.schema)
	for i, param := range fn.Params {
		gotType := got.Field(i).Type
		conv, err := conformType(gotType, param.Type)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: input column %d (%q): expected %s, got %s%s", ErrSchemaMismatch,
				fn.Name, i, param.Name, typeText(param.Type), typeText(gotType), detail(err))
		}
		if conv != asIs {
			p.noop = false
		}
	}
	return p, nil
}

// Exact reports whether every input column already has its declared
// type, so a batch's encoding is also a valid encoding of the declared
// input (Apply changes at most its field names).
func (p *InputPlan) Exact() bool { return p.noop }

// Apply returns rec with the declared input schema. The caller releases the result.
func (p *InputPlan) Apply(ctx context.Context, mem memory.Allocator, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	out, err := p.conform(ctx, mem, rec)
	if err != nil || !p.nonNull {
		return out, err
	}
	if err := CheckNulls(p.schema, out); err != nil {
		out.Release()
		var v *NullViolation
		if errors.As(err, &v) {
			return nil, fmt.Errorf("%w: %s: input column %d (%q): %w", ErrSchemaMismatch, p.fn.Name, v.Column, p.fn.Params[v.Column].Name,
				&nullInput{v: v, want: typeText(p.fn.Params[v.Column].Type)})
		}
		return nil, err
	}
	return out, nil
}

// nullInput words a NullViolation in an input column as expected vs got.
type nullInput struct {
	v    *NullViolation
	want string
}

func (e *nullInput) Error() string {
	return fmt.Sprintf("expected %s, got a null in %q at row %d", e.want, e.v.Path, e.v.Row)
}

func (e *nullInput) Unwrap() error { return e.v }

func (p *InputPlan) conform(ctx context.Context, mem memory.Allocator, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	if p.noop && rec.Schema().Equal(p.schema) {
		rec.Retain()
		return rec, nil
	}
	cols := make([]arrow.Array, len(p.fn.Params))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		in, want := rec.Column(i), p.schema.Field(i).Type
		var err error
		if cols[i], err = convert(ctx, mem, in, want); err != nil {
			return nil, fmt.Errorf("%w: %s: input column %d: convert %s to %s: %w", ErrSchemaMismatch,
				p.fn.Name, i, typeText(in.DataType()), typeText(want), err)
		}
	}
	return array.NewRecordBatch(p.schema, cols, rec.NumRows()), nil
}

// convert returns arr as type want, which conformType accepted.
func convert(ctx context.Context, mem memory.Allocator, arr arrow.Array, want arrow.DataType) (arrow.Array, error) {
	conv, err := conformType(arr.DataType(), want)
	if err != nil {
		return nil, err
	}
	switch {
	case conv == asIs:
		arr.Retain()
		return arr, nil
	case conv == retype:
		data := retypeData(arr.Data(), want)
		defer data.Release()
		return array.MakeFromData(data), nil
	case arr.DataType().ID() == arrow.NULL:
		return array.MakeArrayOfNull(mem, want, arr.Len()), nil // all nulls fit any type
	case isListLike(arr.DataType()) && isListLike(want):
		return convertList(ctx, mem, arr.(array.ListLike), want)
	}
	return compute.CastArray(compute.WithAllocator(ctx, mem), arr, compute.SafeCastOptions(want))
}

// convertList rebuilds a list or large_list array as want, converting its
// values. compute's list cast is not used: in arrow-go v18.8.0 it leaks a
// child buffer when given an allocator.
func convertList(ctx context.Context, mem memory.Allocator, arr array.ListLike, want arrow.DataType) (arrow.Array, error) {
	n := arr.Len()
	first, _ := arr.ValueOffsets(0)
	var last int64
	if n > 0 {
		_, last = arr.ValueOffsets(n - 1)
	}
	large := want.ID() == arrow.LARGE_LIST
	if !large && last-first > math.MaxInt32 {
		return nil, fmt.Errorf("%d list values do not fit 32-bit offsets", last-first)
	}
	values := array.NewSlice(arr.ListValues(), first, last)
	defer values.Release()
	child, err := convert(ctx, mem, values, listElem(want))
	if err != nil {
		return nil, err
	}
	defer child.Release()

	width := 4
	if large {
		width = 8
	}
	offsets := memory.NewResizableBuffer(mem)
	defer offsets.Release()
	offsets.Resize((n + 1) * width)
	for i := 0; i <= n; i++ {
		var off int64
		if i < n {
			off, _ = arr.ValueOffsets(i)
		} else {
			off = last
		}
		if large {
			arrow.Int64Traits.CastFromBytes(offsets.Bytes())[i] = off - first
		} else {
			arrow.Int32Traits.CastFromBytes(offsets.Bytes())[i] = int32(off - first)
		}
	}
	var validity *memory.Buffer
	if arr.NullN() > 0 {
		validity = memory.NewResizableBuffer(mem)
		defer validity.Release()
		validity.Resize(int(bitutil.BytesForBits(int64(n))))
		bitutil.CopyBitmap(arr.NullBitmapBytes(), arr.Data().Offset(), n, validity.Bytes(), 0)
	}
	data := array.NewData(want, n, []*memory.Buffer{validity, offsets}, []arrow.ArrayData{child.Data()}, arr.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data), nil
}

// mismatchDetail explains where inside a nested type two types part ways.
// specific marks messages that say more than "expected X, got Y".
type mismatchDetail struct {
	path, msg string
	specific  bool
}

func (m *mismatchDetail) Error() string { return m.path + ": " + m.msg }

func detail(err error) string {
	var d *mismatchDetail
	switch {
	case !errors.As(err, &d):
		return ""
	case d.path != "":
		return " (" + d.path + ": " + d.msg + ")"
	case d.specific:
		return " (" + d.msg + ")"
	}
	return ""
}

func mismatch(path, format string, args ...any) error {
	return &mismatchDetail{path: path, msg: fmt.Sprintf(format, args...)}
}

// mismatchWhy is a mismatch whose message is worth showing on its own.
func mismatchWhy(path, format string, args ...any) error {
	return &mismatchDetail{path: path, msg: fmt.Sprintf(format, args...), specific: true}
}

func conformType(got, want arrow.DataType) (conversion, error) {
	return conformAt("", got, want)
}

// conformAt decides the conversion from got to want; path names the
// nested position for error messages.
func conformAt(path string, got, want arrow.DataType) (conversion, error) {
	if arrow.TypeEqual(got, want) {
		return asIs, nil
	}
	if got.ID() == want.ID() {
		return conformSameID(path, got, want)
	}
	if lossless(got, want) || got.ID() == arrow.NULL {
		return cast, nil
	}
	if isListLike(got) && isListLike(want) {
		if _, err := conformAt(join(path, "item"), listElem(got), listElem(want)); err != nil {
			return 0, err
		}
		return cast, nil
	}
	return 0, mismatch(path, "expected %s, got %s", typeText(want), typeText(got))
}

// conformSameID handles parametric and nested types whose IDs agree.
func conformSameID(path string, got, want arrow.DataType) (conversion, error) {
	switch w := want.(type) {
	case *arrow.ListType:
		return conformChildren(path, []arrow.Field{got.(*arrow.ListType).ElemField()}, []arrow.Field{w.ElemField()}, true)
	case *arrow.LargeListType:
		return conformChildren(path, []arrow.Field{got.(*arrow.LargeListType).ElemField()}, []arrow.Field{w.ElemField()}, true)
	case *arrow.FixedSizeListType:
		g := got.(*arrow.FixedSizeListType)
		if g.Len() != w.Len() {
			return 0, mismatchWhy(path, "expected %d items per list, got %d", w.Len(), g.Len())
		}
		return conformChildren(path, []arrow.Field{g.ElemField()}, []arrow.Field{w.ElemField()}, true)
	case *arrow.MapType:
		g := got.(*arrow.MapType)
		return conformChildren(path, []arrow.Field{g.KeyField(), g.ItemField()}, []arrow.Field{w.KeyField(), w.ItemField()}, true)
	case *arrow.StructType:
		return conformChildren(path, got.(*arrow.StructType).Fields(), w.Fields(), false)
	}
	return 0, mismatch(path, "expected %s, got %s", typeText(want), typeText(got))
}

// conformChildren compares nested fields. Child nullability and, where
// positional, child names do not matter; struct field names do.
func conformChildren(path string, got, want []arrow.Field, positional bool) (conversion, error) {
	if len(got) != len(want) {
		return 0, mismatchWhy(path, "expected %d fields, got %d", len(want), len(got))
	}
	conv := retype
	for i := range want {
		name := want[i].Name
		if !positional && got[i].Name != name {
			return 0, mismatchWhy(path, "field %d: expected name %q, got %q", i, name, got[i].Name)
		}
		c, err := conformAt(join(path, name), got[i].Type, want[i].Type)
		if err != nil {
			return 0, err
		}
		if c == cast {
			conv = cast
		}
	}
	return conv, nil
}

// lossless reports whether every value of got has an exact counterpart in want.
func lossless(got, want arrow.DataType) bool {
	g, w := got.ID(), want.ID()
	switch {
	case isString(g) && isString(w), isBinary(g) && isBinary(w):
		return true
	case isSigned(g) && isSigned(w):
		return bitWidth(g) < bitWidth(w)
	case isUnsigned(g) && isUnsigned(w):
		return bitWidth(g) < bitWidth(w)
	case isUnsigned(g) && isSigned(w):
		return bitWidth(g) < bitWidth(w)
	}
	return false
}

func isString(id arrow.Type) bool {
	return id == arrow.STRING || id == arrow.LARGE_STRING || id == arrow.STRING_VIEW
}

func isBinary(id arrow.Type) bool {
	return id == arrow.BINARY || id == arrow.LARGE_BINARY || id == arrow.BINARY_VIEW
}

func isSigned(id arrow.Type) bool {
	return id == arrow.INT8 || id == arrow.INT16 || id == arrow.INT32 || id == arrow.INT64
}

func isUnsigned(id arrow.Type) bool {
	return id == arrow.UINT8 || id == arrow.UINT16 || id == arrow.UINT32 || id == arrow.UINT64
}

func bitWidth(id arrow.Type) int {
	switch id {
	case arrow.INT8, arrow.UINT8:
		return 8
	case arrow.INT16, arrow.UINT16:
		return 16
	case arrow.INT32, arrow.UINT32:
		return 32
	}
	return 64
}

func isListLike(t arrow.DataType) bool {
	return t.ID() == arrow.LIST || t.ID() == arrow.LARGE_LIST
}

func listElem(t arrow.DataType) arrow.DataType {
	return t.(arrow.ListLikeType).Elem()
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// retypeData relabels data with want, which differs from data's type
// only in field names, nullability or metadata.
func retypeData(data arrow.ArrayData, want arrow.DataType) arrow.ArrayData {
	children := data.Children()
	var wantChildren []arrow.DataType
	switch w := want.(type) {
	case *arrow.ListType:
		wantChildren = []arrow.DataType{w.Elem()}
	case *arrow.LargeListType:
		wantChildren = []arrow.DataType{w.Elem()}
	case *arrow.FixedSizeListType:
		wantChildren = []arrow.DataType{w.Elem()}
	case *arrow.MapType:
		wantChildren = []arrow.DataType{w.Elem()}
	case *arrow.StructType:
		for _, f := range w.Fields() {
			wantChildren = append(wantChildren, f.Type)
		}
	}
	newChildren := make([]arrow.ArrayData, len(children))
	for i, c := range children {
		if i < len(wantChildren) && !arrow.TypeEqual(c.DataType(), wantChildren[i]) {
			newChildren[i] = retypeData(c, wantChildren[i])
			defer newChildren[i].Release()
		} else {
			newChildren[i] = c
		}
	}
	return array.NewData(want, data.Len(), data.Buffers(), newChildren, data.NullN(), data.Offset())
}

func paramList(ps []Param) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = strings.TrimSpace(p.Name + " " + typeText(p.Type))
	}
	return strings.Join(parts, ", ")
}

func fieldList(fs []arrow.Field) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = typeText(f.Type)
	}
	return strings.Join(parts, ", ")
}
