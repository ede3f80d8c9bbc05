package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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

// Open starts a session for fn. Scalar and table functions run batch by
// batch on whichever worker is free; aggregates and transforms keep their
// state in one worker for the whole exchange, opened with the client's
// exchange options.
func (p *Python) Open(ctx context.Context, fn *udfcatalog.UDF, options []byte) (Session, error) {
	s := &pythonSession{p: p, fn: fn, schema: fn.OutputSchema(), options: options}
	if fn.Kind != udfcatalog.KindAggregate && fn.Kind != udfcatalog.KindTransform {
		return s, nil
	}
	pinned, err := p.pool.Pin(ctx)
	if err != nil {
		return nil, s.classify(err)
	}
	if _, err := pinned.Call(ctx, pybridge.Request{Fn: fn.Name, Op: "open", Options: options}); err != nil {
		pinned.Release()
		return nil, s.classify(err)
	}
	s.pinned = pinned
	return s, nil
}

type pythonSession struct {
	p        *Python
	fn       *udfcatalog.UDF
	schema   *arrow.Schema
	options  []byte
	pinned   *pybridge.Pinned // for stateful kinds
	finished bool
}

func (s *pythonSession) call(ctx context.Context, req pybridge.Request) ([]arrow.RecordBatch, error) {
	var reply []byte
	var err error
	if s.pinned != nil {
		reply, err = s.pinned.Call(ctx, req)
	} else {
		req.Options = s.options
		reply, err = s.p.pool.Call(ctx, req)
	}
	if err != nil {
		return nil, s.classify(err)
	}
	outs, err := arrowsafe.ReadBatches(reply, s.p.maxDecompressed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", udfcatalog.ErrBadOutput, s.fn.Name, err)
	}
	for i, out := range outs {
		outs[i], err = s.relabel(out)
		if err != nil {
			release(outs[i+1:])
			return nil, err
		}
	}
	return outs, nil
}

func (s *pythonSession) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(in.Schema()), ipc.WithAllocator(s.p.mem))
	if err := w.Write(in); err != nil {
		return nil, fmt.Errorf("encode input for %s: %w", s.fn.Name, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode input for %s: %w", s.fn.Name, err)
	}
	return s.call(ctx, pybridge.Request{Fn: s.fn.Name, Input: buf.Bytes()})
}

// Finish asks a stateful UDF for what it emits at the end of input.
func (s *pythonSession) Finish(ctx context.Context) ([]arrow.RecordBatch, error) {
	if s.pinned == nil {
		return nil, nil
	}
	s.finished = true
	return s.call(ctx, pybridge.Request{Fn: s.fn.Name, Op: "finish"})
}

// relabel gives a worker's batch the declared schema, or the one with an
// error column for an error_column UDF some of whose rows failed. It takes
// ownership of out.
func (s *pythonSession) relabel(out arrow.RecordBatch) (arrow.RecordBatch, error) {
	defer out.Release()
	schema := s.schema
	if s.fn.OnError == udfcatalog.OnErrorColumn && int(out.NumCols()) == schema.NumFields()+1 {
		schema = s.fn.ErrorOutputSchema()
	}
	if int(out.NumCols()) != schema.NumFields() {
		return nil, fmt.Errorf("%w: %s returned %d columns, want %d", udfcatalog.ErrBadOutput, s.fn.Name, out.NumCols(), schema.NumFields())
	}
	for i, f := range schema.Fields() {
		if got := out.Column(i).DataType(); !arrow.TypeEqual(got, f.Type) {
			return nil, fmt.Errorf("%w: %s returned column %d as %s, want %s", udfcatalog.ErrBadOutput, s.fn.Name, i, got, f.Type)
		}
	}
	return array.NewRecordBatch(schema, out.Columns(), out.NumRows()), nil
}

func release(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
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

// Parallelism lets one exchange use every worker, unless its state lives
// in one.
func (s *pythonSession) Parallelism() int {
	if s.pinned != nil {
		return 1
	}
	return s.p.pool.Size()
}

// Close releases a pinned worker, first dropping state an unfinished
// exchange left in it.
func (s *pythonSession) Close() error {
	if s.pinned == nil {
		return nil
	}
	defer s.pinned.Release()
	if s.finished {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_, err := s.pinned.Call(ctx, pybridge.Request{Fn: s.fn.Name, Op: "close"})
	return err
}

// closeTimeout bounds dropping an abandoned exchange's state.
const closeTimeout = 5 * time.Second
