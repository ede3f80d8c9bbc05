package exec

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// The ScalarN constructors make row-wise UDFs from typed Go functions.
// Parameter and result types map to Arrow types (int64 to int64, string
// to utf8, []byte to binary, time.Time to timestamp[us, tz=UTC], ...).
// A Nullable[T] parameter receives nulls; for any other parameter a null
// input yields a null output without calling the function. The E forms
// return an error, which fails the whole batch and names the row.

// Scalar0 makes a zero-argument UDF, called once per input row.
func Scalar0[R any](name string, fn func() R, opts ...Option) *Function {
	return Scalar0E(name, func() (R, error) { return fn(), nil }, opts...)
}

// Scalar0E is Scalar0 for functions that can fail.
func Scalar0E[R any](name string, fn func() (R, error), opts ...Option) *Function {
	return build[R](name, nil, opts, func([]arrow.Array) (func(int) (R, error), error) {
		return func(int) (R, error) { return fn() }, nil
	})
}

// Scalar1 makes a one-argument UDF.
func Scalar1[A, R any](name string, fn func(A) R, opts ...Option) *Function {
	return Scalar1E(name, func(a A) (R, error) { return fn(a), nil }, opts...)
}

// Scalar1E is Scalar1 for functions that can fail.
func Scalar1E[A, R any](name string, fn func(A) (R, error), opts ...Option) *Function {
	return build[R](name, []typeProbe{probe[A]}, opts, func(args []arrow.Array) (func(int) (R, error), error) {
		if as, ok := fixedValues[A](args[0]); ok {
			return func(i int) (R, error) { return fn(as[i]) }, nil
		}
		ra, err := reader[A](args[0])
		if err != nil {
			return nil, err
		}
		return func(i int) (R, error) { return fn(ra(i)) }, nil
	})
}

// Scalar2 makes a two-argument UDF.
func Scalar2[A, B, R any](name string, fn func(A, B) R, opts ...Option) *Function {
	return Scalar2E(name, func(a A, b B) (R, error) { return fn(a, b), nil }, opts...)
}

// Scalar2E is Scalar2 for functions that can fail.
func Scalar2E[A, B, R any](name string, fn func(A, B) (R, error), opts ...Option) *Function {
	return build[R](name, []typeProbe{probe[A], probe[B]}, opts, func(args []arrow.Array) (func(int) (R, error), error) {
		as, aok := fixedValues[A](args[0])
		bs, bok := fixedValues[B](args[1])
		if aok && bok {
			return func(i int) (R, error) { return fn(as[i], bs[i]) }, nil
		}
		ra, err := reader[A](args[0])
		if err != nil {
			return nil, err
		}
		rb, err := reader[B](args[1])
		if err != nil {
			return nil, err
		}
		return func(i int) (R, error) { return fn(ra(i), rb(i)) }, nil
	})
}

// Scalar3 makes a three-argument UDF.
func Scalar3[A, B, C, R any](name string, fn func(A, B, C) R, opts ...Option) *Function {
	return Scalar3E(name, func(a A, b B, c C) (R, error) { return fn(a, b, c), nil }, opts...)
}

// Scalar3E is Scalar3 for functions that can fail.
func Scalar3E[A, B, C, R any](name string, fn func(A, B, C) (R, error), opts ...Option) *Function {
	return build[R](name, []typeProbe{probe[A], probe[B], probe[C]}, opts, func(args []arrow.Array) (func(int) (R, error), error) {
		as, aok := fixedValues[A](args[0])
		bs, bok := fixedValues[B](args[1])
		cs, cok := fixedValues[C](args[2])
		if aok && bok && cok {
			return func(i int) (R, error) { return fn(as[i], bs[i], cs[i]) }, nil
		}
		ra, err := reader[A](args[0])
		if err != nil {
			return nil, err
		}
		rb, err := reader[B](args[1])
		if err != nil {
			return nil, err
		}
		rc, err := reader[C](args[2])
		if err != nil {
			return nil, err
		}
		return func(i int) (R, error) { return fn(ra(i), rb(i), rc(i)) }, nil
	})
}

type typeProbe func() (arrow.DataType, bool, error)

func probe[T any]() (arrow.DataType, bool, error) { return goType[T]() }

// bindRows turns a batch's columns into a per-row call.
type bindRows[R any] func(args []arrow.Array) (func(int) (R, error), error)

// ctxCheckRows is how often a long row loop looks for cancellation.
const ctxCheckRows = 1 << 14

// build derives the signature from the Go types and compiles the row loop.
func build[R any](name string, params []typeProbe, opts []Option, bind bindRows[R]) *Function {
	ps := make([]udfcatalog.Param, len(params))
	strict := make([]bool, len(params))
	for i, p := range params {
		dt, isNullable, err := p()
		if err != nil {
			return &Function{err: fmt.Errorf("%w: %s: parameter %d: %w", udfcatalog.ErrInvalidUDF, name, i, err)}
		}
		ps[i] = udfcatalog.Param{Type: dt, Nullable: isNullable}
		strict[i] = !isNullable
	}
	rt, _, err := goType[R]()
	if err != nil {
		return &Function{err: fmt.Errorf("%w: %s: result: %w", udfcatalog.ErrInvalidUDF, name, err)}
	}
	loop := builderLoop[R]
	if isFixedWidth[R]() {
		loop = fixedWidthLoop[R]
	}
	eval := func(ctx context.Context, mem memory.Allocator, args []arrow.Array, rows int) (arrow.Array, error) {
		call, err := bind(args)
		if err != nil {
			return nil, err
		}
		// Only strict parameters that hold nulls need a per-row check.
		var nullArgs []arrow.Array
		for i, a := range args {
			if strict[i] && a.NullN() > 0 {
				nullArgs = append(nullArgs, a)
			}
		}
		out, row, err := loop(ctx, mem, rt, rows, nullArgs, call)
		if err != nil && ctx.Err() == nil {
			return nil, &udfcatalog.FunctionError{Function: name, Row: int64(row), Err: err}
		}
		return out, err
	}
	return newFunction(name, ps, rt, eval, opts)
}

// A rowLoop calls fn for each row not nulled by nullArgs and collects the
// results. On error it reports the failing row.
type rowLoop[R any] func(ctx context.Context, mem memory.Allocator, rt arrow.DataType, rows int,
	nullArgs []arrow.Array, call func(int) (R, error)) (arrow.Array, int, error)

func anyNull(args []arrow.Array, i int) bool {
	for _, a := range args {
		if a.IsNull(i) {
			return true
		}
	}
	return false
}

// builderLoop works for every result type.
func builderLoop[R any](ctx context.Context, mem memory.Allocator, rt arrow.DataType, rows int,
	nullArgs []arrow.Array, call func(int) (R, error)) (arrow.Array, int, error) {
	b := array.NewBuilder(mem, rt)
	defer b.Release()
	b.Reserve(rows)
	put, err := writer[R](b)
	if err != nil {
		return nil, 0, err
	}
	for i := range rows {
		if i%ctxCheckRows == 0 && ctx.Err() != nil {
			return nil, i, ctx.Err()
		}
		if anyNull(nullArgs, i) {
			b.AppendNull()
			continue
		}
		v, err := call(i)
		if err != nil {
			return nil, i, err
		}
		put(v)
	}
	return b.NewArray(), 0, nil
}

// fixedWidthLoop writes numeric results straight into the value buffer and
// makes a validity bitmap only if some row is null.
func fixedWidthLoop[R any](ctx context.Context, mem memory.Allocator, rt arrow.DataType, rows int,
	nullArgs []arrow.Array, call func(int) (R, error)) (arrow.Array, int, error) {
	values := memory.NewResizableBuffer(mem)
	defer values.Release()
	values.Resize(rows * int(unsafe.Sizeof(*new(R))))
	out := unsafe.Slice((*R)(unsafe.Pointer(unsafe.SliceData(values.Bytes()))), rows)
	var validity *memory.Buffer
	defer func() {
		if validity != nil {
			validity.Release()
		}
	}()
	nulls := 0
	for i := range rows {
		if i%ctxCheckRows == 0 && ctx.Err() != nil {
			return nil, i, ctx.Err()
		}
		if len(nullArgs) > 0 && anyNull(nullArgs, i) {
			if validity == nil {
				validity = memory.NewResizableBuffer(mem)
				validity.Resize(int(bitutil.BytesForBits(int64(rows))))
				bitutil.SetBitsTo(validity.Bytes(), 0, int64(rows), true)
			}
			bitutil.ClearBit(validity.Bytes(), i)
			var zero R // null slots are zeroed, never left uninitialised
			out[i] = zero
			nulls++
			continue
		}
		v, err := call(i)
		if err != nil {
			return nil, i, err
		}
		out[i] = v
	}
	data := array.NewData(rt, rows, []*memory.Buffer{validity, values}, nil, nulls, 0)
	defer data.Release()
	return array.MakeFromData(data), 0, nil
}

// fixedValues views arr's values as []T when T is a Go number with arr's
// Arrow layout, sparing a closure call per row.
func fixedValues[T any](arr arrow.Array) ([]T, bool) {
	dt, isNullable, err := goType[T]()
	if err != nil || isNullable || !isFixedWidth[T]() || !arrow.TypeEqual(dt, arr.DataType()) {
		return nil, false
	}
	bufs := arr.Data().Buffers()
	if arr.Len() == 0 || len(bufs) < 2 || bufs[1] == nil {
		return []T{}, true
	}
	all := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(bufs[1].Bytes()))), bufs[1].Len()/int(unsafe.Sizeof(*new(T))))
	return all[arr.Data().Offset() : arr.Data().Offset()+arr.Len()], true
}

// isFixedWidth reports whether R is a Go number laid out as Arrow lays out
// its type.
func isFixedWidth[R any]() bool {
	switch any(*new(R)).(type) {
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64:
		return true
	}
	return false
}
