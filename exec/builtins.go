package exec

import (
	"context"
	"errors"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var (
	errOverflow  = errors.New("integer overflow")
	errDivByZero = errors.New("division by zero")
	int64Type    = arrow.PrimitiveTypes.Int64
	float64Type  = arrow.PrimitiveTypes.Float64
	stringType   = arrow.BinaryTypes.String
	// largeStringType is Databend's VARCHAR.
	largeStringType = arrow.BinaryTypes.LargeString
)

// Builtins returns the native functions the fletch binary serves by
// default; docs, tests and benchmarks rely on them.
func Builtins() []*Function {
	return []*Function{
		Scalar2E("add_int64", addInt64, WithParamNames("a", "b"),
			WithDoc("a + b; fails on overflow")),
		Vectorized("echo_int64", []arrow.DataType{int64Type}, int64Type, echo, WithParamNames("x"),
			WithDoc("returns its input unchanged, without copying; measures transport")),
		Vectorized("echo_utf8", []arrow.DataType{stringType}, stringType, echo, WithParamNames("s"),
			WithDoc("returns its input unchanged, without copying; measures transport")),
		// Strict, as it was when it was Scalar1, so its signature and
		// version are unchanged.
		strictVectorized("upper", []arrow.DataType{stringType}, stringType, upper, WithParamNames("s"),
			WithDoc("Unicode upper case")),
		Scalar2E("div_int64", divInt64, WithParamNames("a", "b"),
			WithDoc("a / b truncated toward zero; fails on division by zero")),
		Scalar2("coalesce_int64", coalesceInt64, WithParamNames("a", "b"),
			WithDoc("a if it is not null, else b")),
		Scalar0("pi", func() float64 { return math.Pi },
			WithDoc("π; a zero-argument function")),
		Vectorized("multiply_float64", []arrow.DataType{float64Type, float64Type}, float64Type, multiply,
			WithParamNames("a", "b"), WithDoc("a * b, as an Arrow compute kernel")),
		// Databend's client (databend-udf's UDFClient) calls these two for
		// health_check(), echo() and list_functions(), as every
		// databend-udf server serves them.
		Scalar0("builtin_healthy", func() int32 { return 1 },
			WithDoc("1: Databend's UDF client calls it for health_check()")),
		Vectorized("builtin_echo", []arrow.DataType{largeStringType}, largeStringType, echo, WithParamNames("s"),
			WithDoc("returns its input (VARCHAR, as Databend sends it): Databend's UDF client calls it for echo()")),
	}
}

func addInt64(a, b int64) (int64, error) {
	s := a + b
	if (s > a) != (b > 0) {
		return 0, errOverflow
	}
	return s, nil
}

func divInt64(a, b int64) (int64, error) {
	switch {
	case b == 0:
		return 0, errDivByZero
	case a == math.MinInt64 && b == -1:
		return 0, errOverflow
	}
	return a / b, nil
}

func coalesceInt64(a, b Nullable[int64]) Nullable[int64] {
	if a.Valid {
		return a
	}
	return b
}

func echo(_ context.Context, _ memory.Allocator, args []arrow.Array) (arrow.Array, error) {
	args[0].Retain()
	return args[0], nil
}

func multiply(ctx context.Context, mem memory.Allocator, args []arrow.Array) (arrow.Array, error) {
	out, err := compute.Multiply(compute.WithAllocator(ctx, mem), compute.ArithmeticOptions{},
		compute.NewDatumWithoutOwning(args[0]), compute.NewDatumWithoutOwning(args[1]))
	if err != nil {
		return nil, err
	}
	defer out.Release()
	return out.(*compute.ArrayDatum).MakeArray(), nil
}
