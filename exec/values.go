package exec

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Nullable is a value that may be null. As a parameter type it makes the
// parameter receive nulls; as a result type it lets the function return them.
type Nullable[T any] struct {
	Value T
	Valid bool
}

// Some returns a valid Nullable holding v.
func Some[T any](v T) Nullable[T] { return Nullable[T]{Value: v, Valid: true} }

// Null returns a null Nullable.
func Null[T any]() Nullable[T] { return Nullable[T]{} }

// nullable lets the generic helpers see through Nullable[T] to T.
type nullable interface {
	elemType() (arrow.DataType, error)
	reader(arr arrow.Array) (any, error)
	writer(b array.Builder) (any, error)
}

func (Nullable[T]) elemType() (arrow.DataType, error) {
	dt, isNullable, err := goType[T]()
	if err == nil && isNullable {
		err = fmt.Errorf("nested Nullable types are not supported")
	}
	return dt, err
}

func (Nullable[T]) reader(arr arrow.Array) (any, error) {
	base, err := reader[T](arr)
	if err != nil {
		return nil, err
	}
	if arr.NullN() == 0 {
		return func(i int) Nullable[T] { return Nullable[T]{Value: base(i), Valid: true} }, nil
	}
	return func(i int) Nullable[T] {
		if arr.IsNull(i) {
			return Nullable[T]{}
		}
		return Nullable[T]{Value: base(i), Valid: true}
	}, nil
}

func (Nullable[T]) writer(b array.Builder) (any, error) {
	base, err := writer[T](b)
	if err != nil {
		return nil, err
	}
	return func(v Nullable[T]) {
		if v.Valid {
			base(v.Value)
		} else {
			b.AppendNull()
		}
	}, nil
}

// microsUTC is the Arrow type of time.Time values.
var microsUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// goType maps a Go type to its Arrow type and says whether it is Nullable.
func goType[T any]() (arrow.DataType, bool, error) {
	var zero T
	if n, ok := any(zero).(nullable); ok {
		dt, err := n.elemType()
		return dt, true, err
	}
	switch any(zero).(type) {
	case bool:
		return arrow.FixedWidthTypes.Boolean, false, nil
	case int8:
		return arrow.PrimitiveTypes.Int8, false, nil
	case int16:
		return arrow.PrimitiveTypes.Int16, false, nil
	case int32:
		return arrow.PrimitiveTypes.Int32, false, nil
	case int64:
		return arrow.PrimitiveTypes.Int64, false, nil
	case uint8:
		return arrow.PrimitiveTypes.Uint8, false, nil
	case uint16:
		return arrow.PrimitiveTypes.Uint16, false, nil
	case uint32:
		return arrow.PrimitiveTypes.Uint32, false, nil
	case uint64:
		return arrow.PrimitiveTypes.Uint64, false, nil
	case float32:
		return arrow.PrimitiveTypes.Float32, false, nil
	case float64:
		return arrow.PrimitiveTypes.Float64, false, nil
	case string:
		return arrow.BinaryTypes.String, false, nil
	case []byte:
		return arrow.BinaryTypes.Binary, false, nil
	case time.Time:
		return microsUTC, false, nil
	}
	return nil, false, fmt.Errorf("no Arrow mapping for Go type %T (use bool, intN, uintN, float32/64, string, []byte, time.Time or a Nullable of one)", zero)
}

// reader returns row access to arr as Go values of type T. Values of
// []byte alias arr's buffer and are valid only during the call.
func reader[T any](arr arrow.Array) (func(int) T, error) {
	var zero T
	if n, ok := any(zero).(nullable); ok {
		r, err := n.reader(arr)
		if err != nil {
			return nil, err
		}
		return r.(func(int) T), nil
	}
	var r any
	switch a := arr.(type) {
	case *array.Boolean:
		r = a.Value
	case *array.Int8:
		r = indexer(a.Int8Values())
	case *array.Int16:
		r = indexer(a.Int16Values())
	case *array.Int32:
		r = indexer(a.Int32Values())
	case *array.Int64:
		r = indexer(a.Int64Values())
	case *array.Uint8:
		r = indexer(a.Uint8Values())
	case *array.Uint16:
		r = indexer(a.Uint16Values())
	case *array.Uint32:
		r = indexer(a.Uint32Values())
	case *array.Uint64:
		r = indexer(a.Uint64Values())
	case *array.Float32:
		r = indexer(a.Float32Values())
	case *array.Float64:
		r = indexer(a.Float64Values())
	case *array.String:
		r = a.Value
	case *array.Binary:
		r = a.Value
	case *array.Timestamp:
		if arrow.TypeEqual(a.DataType(), microsUTC) {
			vals := a.TimestampValues()
			r = func(i int) time.Time { return time.UnixMicro(int64(vals[i])).UTC() }
		}
	}
	f, ok := r.(func(int) T)
	if !ok {
		return nil, fmt.Errorf("a %s column cannot be read as Go %T", arr.DataType(), zero)
	}
	return f, nil
}

func indexer[T any](vals []T) func(int) T {
	return func(i int) T { return vals[i] }
}

// writer returns an appender of Go values of type T to b. b must have
// room reserved for every value appended.
func writer[T any](b array.Builder) (func(T), error) {
	var zero T
	if n, ok := any(zero).(nullable); ok {
		w, err := n.writer(b)
		if err != nil {
			return nil, err
		}
		return w.(func(T)), nil
	}
	var w any
	switch bb := b.(type) {
	case *array.BooleanBuilder:
		w = bb.UnsafeAppend
	case *array.Int8Builder:
		w = bb.UnsafeAppend
	case *array.Int16Builder:
		w = bb.UnsafeAppend
	case *array.Int32Builder:
		w = bb.UnsafeAppend
	case *array.Int64Builder:
		w = bb.UnsafeAppend
	case *array.Uint8Builder:
		w = bb.UnsafeAppend
	case *array.Uint16Builder:
		w = bb.UnsafeAppend
	case *array.Uint32Builder:
		w = bb.UnsafeAppend
	case *array.Uint64Builder:
		w = bb.UnsafeAppend
	case *array.Float32Builder:
		w = bb.UnsafeAppend
	case *array.Float64Builder:
		w = bb.UnsafeAppend
	case *array.StringBuilder:
		w = bb.Append
	case *array.BinaryBuilder:
		w = bb.Append
	case *array.TimestampBuilder:
		w = func(t time.Time) { bb.UnsafeAppend(arrow.Timestamp(t.UnixMicro())) }
	}
	f, ok := w.(func(T))
	if !ok {
		return nil, fmt.Errorf("Go %T cannot be written to a %s column", zero, b.Type())
	}
	return f, nil
}
