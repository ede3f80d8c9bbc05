package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// VectorFunc evaluates a whole batch: one array per parameter in, one
// array of the same length out. It owns its null handling and must not
// retain args after it returns.
type VectorFunc func(ctx context.Context, mem memory.Allocator, args []arrow.Array) (arrow.Array, error)

// evalFunc is the common form every constructor compiles to.
type evalFunc func(ctx context.Context, mem memory.Allocator, args []arrow.Array, rows int) (arrow.Array, error)

// Function is a native UDF ready to register with a Native executor.
type Function struct {
	udf  *udfcatalog.UDF
	eval evalFunc
	err  error // a construction error, reported by Register
}

// UDF returns the catalog descriptor, or nil if construction failed.
func (f *Function) UDF() *udfcatalog.UDF { return f.udf }

// Option adjusts a Function's descriptor.
type Option func(*options)

type options struct {
	doc        string
	names      []string
	volatility udfcatalog.Volatility
}

// WithDoc sets the function's documentation string.
func WithDoc(doc string) Option { return func(o *options) { o.doc = doc } }

// WithParamNames names the parameters in order. Without it they are
// called arg0, arg1, and so on.
func WithParamNames(names ...string) Option { return func(o *options) { o.names = names } }

// WithVolatility overrides the default, udfcatalog.Immutable.
func WithVolatility(v udfcatalog.Volatility) Option { return func(o *options) { o.volatility = v } }

// newFunction builds the descriptor shared by every constructor.
func newFunction(name string, params []udfcatalog.Param, result arrow.DataType, eval evalFunc, opts []Option) *Function {
	o := options{volatility: udfcatalog.Immutable}
	for _, opt := range opts {
		opt(&o)
	}
	if o.names != nil && len(o.names) != len(params) {
		return &Function{err: fmt.Errorf("%w: %s: %d parameter names for %d parameters",
			udfcatalog.ErrInvalidUDF, name, len(o.names), len(params))}
	}
	for i := range params {
		params[i].Name = fmt.Sprintf("arg%d", i)
		if o.names != nil {
			params[i].Name = o.names[i]
		}
	}
	res := arrow.Field{Name: name, Type: result, Nullable: true}
	u := &udfcatalog.UDF{
		Name:       name,
		Kind:       udfcatalog.KindScalar,
		Language:   udfcatalog.LanguageGo,
		Params:     params,
		Result:     res,
		Doc:        o.doc,
		Volatility: o.volatility,
		Version:    udfcatalog.Digest(name, udfcatalog.KindScalar, udfcatalog.LanguageGo, params, res, nil),
	}
	if err := u.Validate(); err != nil {
		return &Function{err: err}
	}
	return &Function{udf: u, eval: eval}
}

// Vectorized makes a Function from a kernel over whole arrays. params
// give the Arrow types; names come from WithParamNames.
func Vectorized(name string, params []arrow.DataType, result arrow.DataType, fn VectorFunc, opts ...Option) *Function {
	return vectorized(name, params, true, result, fn, opts)
}

// strictVectorized is Vectorized for a kernel that, like the ScalarN
// forms with plain parameters, makes every row null where an argument
// is; the descriptor then lists its parameters as not taking nulls.
func strictVectorized(name string, params []arrow.DataType, result arrow.DataType, fn VectorFunc, opts ...Option) *Function {
	return vectorized(name, params, false, result, fn, opts)
}

func vectorized(name string, params []arrow.DataType, nullable bool, result arrow.DataType, fn VectorFunc, opts []Option) *Function {
	ps := make([]udfcatalog.Param, len(params))
	for i, t := range params {
		ps[i] = udfcatalog.Param{Type: t, Nullable: nullable}
	}
	eval := func(ctx context.Context, mem memory.Allocator, args []arrow.Array, rows int) (arrow.Array, error) {
		return fn(ctx, mem, args)
	}
	return newFunction(name, ps, result, eval, opts)
}
