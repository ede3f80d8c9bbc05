package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/internal/arrowsafe"
	"github.com/fletch-udf/fletch/pybridge"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// Python executes UDFs in a pybridge worker pool.
type Python struct {
	pool *pybridge.Pool
	mem  memory.Allocator
	// maxDecompressed bounds what a worker's reply may decompress to.
	maxDecompressed int64
}

// NewPython returns an executor over pool whose outputs are allocated from
// mem; replies larger than maxReplyBytes once decompressed are rejected.
func NewPython(pool *pybridge.Pool, mem memory.Allocator, maxReplyBytes int64) *Python {
	return &Python{pool: pool, mem: mem, maxDecompressed: maxReplyBytes}
}

// Register adds every UDF the pool's modules define to reg. A UDF whose
// description does not parse is reported in the returned errors and
// skipped; the others are registered.
func (p *Python) Register(reg *udfcatalog.Registry) ([]*udfcatalog.UDF, []error) {
	var added []*udfcatalog.UDF
	var errs []error
	for _, f := range p.pool.Functions() {
		fn, err := describe(f)
		if err == nil {
			err = reg.Register(fn)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("module %s: %w", f.Module, err))
			continue
		}
		added = append(added, fn)
	}
	return added, errs
}

// describe turns a worker's description into a catalog entry whose version
// covers both the signature and the module's source.
func describe(f pybridge.Function) (*udfcatalog.UDF, error) {
	var fn udfcatalog.UDF
	if err := json.Unmarshal(f.Spec, &fn); err != nil {
		return nil, err
	}
	if fn.Name != f.Name || fn.Language != udfcatalog.LanguagePython {
		return nil, fmt.Errorf("%w: worker described %q as %q in %q", udfcatalog.ErrInvalidUDF, f.Name, fn.Name, fn.Language)
	}
	fn.Version = udfcatalog.Digest(fn.Name, fn.Kind, fn.Language, fn.Params, fn.Result, []byte(f.SourceSHA256))
	return &fn, nil
}

// Open starts a session for fn.
func (p *Python) Open(_ context.Context, fn *udfcatalog.UDF) (Session, error) {
	return &pythonSession{p: p, fn: fn, schema: fn.OutputSchema()}, nil
}

type pythonSession struct {
	p      *Python
	fn     *udfcatalog.UDF
	schema *arrow.Schema
}

func (s *pythonSession) Process(ctx context.Context, in arrow.RecordBatch) (arrow.RecordBatch, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(in.Schema()), ipc.WithAllocator(s.p.mem))
	if err := w.Write(in); err != nil {
		return nil, fmt.Errorf("encode input for %s: %w", s.fn.Name, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode input for %s: %w", s.fn.Name, err)
	}
	reply, err := s.p.pool.Call(ctx, s.fn.Name, buf.Bytes())
	if err != nil {
		return nil, s.classify(err)
	}
	out, err := arrowsafe.ReadBatch(reply, s.p.maxDecompressed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", udfcatalog.ErrBadOutput, s.fn.Name, err)
	}
	defer out.Release()
	switch {
	case out.NumCols() == 1:
		return array.NewRecordBatch(s.schema, out.Columns(), out.NumRows()), nil
	case out.NumCols() == 2 && s.fn.OnError == udfcatalog.OnErrorColumn:
		// Some rows failed; the worker sent their messages too.
		return array.NewRecordBatch(s.fn.ErrorOutputSchema(), out.Columns(), out.NumRows()), nil
	}
	return nil, fmt.Errorf("%w: %s returned %d columns", udfcatalog.ErrBadOutput, s.fn.Name, out.NumCols())
}

// classify maps pool failures onto the catalog's failure classes.
func (s *pythonSession) classify(err error) error {
	var ce *pybridge.CallError
	switch {
	case errors.As(err, &ce):
		return &udfcatalog.FunctionError{Function: s.fn.Name, Row: ce.Row, Err: ce}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, pybridge.ErrTimeout):
		return fmt.Errorf("%w: %w", udfcatalog.ErrTimeout, err)
	case errors.Is(err, pybridge.ErrWorkerCrashed):
		return fmt.Errorf("%w: %w", udfcatalog.ErrWorkerCrashed, err)
	case errors.Is(err, pybridge.ErrClosed):
		return fmt.Errorf("%w: %w", udfcatalog.ErrUnavailable, err)
	}
	return err
}

// Parallelism lets one exchange use every worker.
func (s *pythonSession) Parallelism() int { return s.p.pool.Size() }

func (s *pythonSession) Close() error { return nil }
