package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// Session evaluates the batches of one exchange with one UDF.
type Session interface {
	// Process returns the outputs for one input batch that has the UDF's
	// input schema: one batch of as many rows for a scalar function, any
	// number for other kinds. The caller releases them.
	Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error)
	// Finish returns what the UDF emits at the end of input.
	Finish(ctx context.Context) ([]arrow.RecordBatch, error)
	// Parallelism is how many Process calls may run at once.
	Parallelism() int
	// Close releases the session's resources.
	Close() error
}

// Router opens sessions on the executor for each UDF's language.
type Router struct {
	native *Native
	python *Python
}

// NewRouter routes Go UDFs to native and Python UDFs to python, which may
// be nil when no Python runtime is configured.
func NewRouter(native *Native, python *Python) *Router {
	return &Router{native: native, python: python}
}

// Open starts a session for fn with the client's exchange options (JSON,
// or nil).
func (r *Router) Open(ctx context.Context, fn *udfcatalog.UDF, options []byte) (Session, error) {
	switch fn.Language {
	case udfcatalog.LanguageGo:
		return r.native.Open(ctx, fn)
	case udfcatalog.LanguagePython:
		if r.python != nil {
			return r.python.Open(ctx, fn, options)
		}
	}
	return nil, fmt.Errorf("%w: no executor for %s UDF %s", udfcatalog.ErrUnavailable, fn.Language, fn.Name)
}
