package exec

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// Native executes compiled-in Go UDFs in the server process.
type Native struct {
	mem memory.Allocator
	mu  sync.RWMutex
	fns map[string]*Function
}

// NewNative returns an executor whose outputs are allocated from mem.
func NewNative(mem memory.Allocator) *Native {
	return &Native{mem: mem, fns: make(map[string]*Function)}
}

// Register adds fns to the executor and their descriptors to reg. It
// stops at the first function that failed to construct or register.
func (n *Native) Register(reg *udfcatalog.Registry, fns ...*Function) error {
	for _, f := range fns {
		if f.err != nil {
			return f.err
		}
		if err := reg.Register(f.udf); err != nil {
			return err
		}
		n.mu.Lock()
		n.fns[f.udf.Name] = f
		n.mu.Unlock()
	}
	return nil
}

// Open starts a session for fn, which must have been registered here.
func (n *Native) Open(_ context.Context, fn *udfcatalog.UDF) (Session, error) {
	n.mu.RLock()
	f, ok := n.fns[fn.Name]
	n.mu.RUnlock()
	if !ok || f.udf.Version != fn.Version {
		return nil, fmt.Errorf("%w: native function %s version %s is not loaded", udfcatalog.ErrUnavailable, fn.Name, fn.Version)
	}
	return &nativeSession{fn: f, mem: n.mem, schema: fn.OutputSchema()}, nil
}

type nativeSession struct {
	fn     *Function
	mem    memory.Allocator
	schema *arrow.Schema
}

func (s *nativeSession) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	rows := int(in.NumRows())
	out, err := s.fn.eval(ctx, s.mem, in.Columns(), rows)
	if err != nil {
		return nil, err
	}
	defer out.Release()
	want := s.schema.Field(0).Type
	if out.Len() != rows || !arrow.TypeEqual(out.DataType(), want) {
		return nil, fmt.Errorf("%w: %s returned %d %s values for %d rows, want %s",
			udfcatalog.ErrBadOutput, s.fn.udf.Name, out.Len(), out.DataType(), rows, want)
	}
	return []arrow.RecordBatch{array.NewRecordBatch(s.schema, []arrow.Array{out}, int64(rows))}, nil
}

// Finish emits nothing: native functions are scalar.
func (s *nativeSession) Finish(context.Context) ([]arrow.RecordBatch, error) { return nil, nil }

// Parallelism lets one exchange use every core: native functions are
// safe for concurrent use.
func (s *nativeSession) Parallelism() int { return runtime.GOMAXPROCS(0) }

func (s *nativeSession) Close() error { return nil }
