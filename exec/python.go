package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"

	"github.com/fletch-udf/fletch/internal/arrowsafe"
	"github.com/fletch-udf/fletch/pybridge"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// Python runs Python UDFs on worker pools, one per environment. Loading
// an environment again starts a new pool (a generation) beside the old
// one: new exchanges use the new generation's UDF versions, and the old
// pool closes once its last exchange has ended, so no exchange fails
// because of a reload.
type Python struct {
	reg *udfcatalog.Registry
	mem memory.Allocator
	// maxDecompressed bounds what a worker's reply may decompress to.
	maxDecompressed int64
	log             hclog.Logger

	loading sync.Mutex // serialises Load and Unload
	mu      sync.Mutex
	current map[string]*generation     // by environment name
	serving map[versionKey]*generation // every version whose pool is open
	closing sync.WaitGroup             // retired pools being closed
}

// Environment is one worker pool: the modules it loads, how its workers
// run, and limits for the UDFs it serves.
type Environment struct {
	// Name identifies the environment among those loaded.
	Name string
	Pool pybridge.Config
	// MaxBatchRows, if positive, bounds the input rows one call of the
	// environment's UDFs sees.
	MaxBatchRows int
}

// LoadReport says what loading an environment produced.
type LoadReport struct {
	// Functions are the UDFs the environment now serves.
	Functions []*udfcatalog.UDF
	// ModuleErrors are the modules that failed to import.
	ModuleErrors []pybridge.ModuleError
	// Rejected are the functions that were not registered.
	Rejected []Rejection
}

// Rejection is a function that was not registered, and why.
type Rejection struct {
	Module string
	Err    error
}

// module returns the UDFs module defines, or why it serves none.
func (r LoadReport) module(name string) ([]*udfcatalog.UDF, error) {
	for _, me := range r.ModuleErrors {
		if me.Module == name {
			return nil, fmt.Errorf("%w: %s: %s\n%s", udfcatalog.ErrModuleFailed, name, me.Error, me.Traceback)
		}
	}
	var errs []error
	for _, rj := range r.Rejected {
		if rj.Module == name {
			errs = append(errs, rj.Err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("module %s: %w", name, errors.Join(errs...))
	}
	var fns []*udfcatalog.UDF
	for _, fn := range r.Functions {
		if fn.Module == name {
			fns = append(fns, fn)
		}
	}
	return fns, nil
}

// versionKey identifies a UDF version: the entry looked up may be a copy
// shaped for one exchange (see udfcatalog.UDF.ForExchange).
type versionKey struct{ name, version string }

func keyOf(fn *udfcatalog.UDF) versionKey { return versionKey{fn.Name, fn.Version} }

type generation struct {
	env      string
	pool     *pybridge.Pool
	fns      []*udfcatalog.UDF
	sessions int
	retired  bool
	closed   bool
}

// NewPython returns an executor that registers the UDFs of the
// environments it loads in reg. Outputs are allocated from mem; replies
// larger than maxReplyBytes once decompressed are rejected.
func NewPython(reg *udfcatalog.Registry, mem memory.Allocator, maxReplyBytes int64, log hclog.Logger) *Python {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Python{
		reg: reg, mem: mem, maxDecompressed: maxReplyBytes, log: log,
		current: make(map[string]*generation),
		serving: make(map[versionKey]*generation),
	}
}

// Load starts env's pool and makes its UDFs the ones served, replacing
// those of a previous Load of the same name. A function whose name another
// environment (or a Go UDF) holds is rejected; the rest are served. If the
// pool does not start, the previous generation keeps serving.
func (p *Python) Load(ctx context.Context, env Environment) (LoadReport, error) {
	p.loading.Lock()
	defer p.loading.Unlock()
	pool, err := pybridge.Start(ctx, env.Pool)
	if err != nil {
		return LoadReport{}, fmt.Errorf("environment %s: %w", env.Name, err)
	}
	p.mu.Lock()
	old := p.current[env.Name]
	p.mu.Unlock()
	var oldFns []*udfcatalog.UDF
	if old != nil {
		oldFns = old.fns
	}
	report := LoadReport{ModuleErrors: pool.LoadErrors()}
	for _, f := range pool.Functions() {
		fn, err := describe(f)
		if err == nil {
			err = fn.Validate()
		}
		if err == nil {
			err = p.checkFree(fn.Name, oldFns)
		}
		if err != nil {
			report.Rejected = append(report.Rejected, Rejection{Module: f.Module, Err: err})
			continue
		}
		fn.MaxBatchRows = env.MaxBatchRows
		report.Functions = append(report.Functions, fn)
	}
	if err := p.reg.Replace(oldFns, report.Functions); err != nil {
		pool.Close()
		return LoadReport{}, fmt.Errorf("environment %s: %w", env.Name, err)
	}
	gen := &generation{env: env.Name, pool: pool, fns: report.Functions}
	p.mu.Lock()
	p.current[env.Name] = gen
	for _, fn := range gen.fns {
		p.serving[keyOf(fn)] = gen
	}
	if old != nil {
		p.retireLocked(old)
	}
	p.mu.Unlock()
	return report, nil
}

// checkFree fails if name is registered by anything but the entries of old.
func (p *Python) checkFree(name string, old []*udfcatalog.UDF) error {
	cur, err := p.reg.Lookup(name)
	if err != nil || slices.Contains(old, cur) {
		return nil
	}
	return fmt.Errorf("%w: %s (%s, version %s)", udfcatalog.ErrDuplicate, name, cur.Language, cur.Version)
}

// Unload stops serving env's UDFs; its pool closes after its last exchange.
func (p *Python) Unload(env string) {
	p.loading.Lock()
	defer p.loading.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	gen := p.current[env]
	if gen == nil {
		return
	}
	delete(p.current, env)
	// Only this generation's own entries are removed, so this cannot fail.
	_ = p.reg.Replace(gen.fns, nil)
	p.retireLocked(gen)
}

// Environments lists the loaded environments' names.
func (p *Python) Environments() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, 0, len(p.current))
	for name := range p.current {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Close unloads every environment and closes every pool, even those a
// session still holds (their calls then fail), and waits for them.
func (p *Python) Close() {
	for _, env := range p.Environments() {
		p.Unload(env)
	}
	p.mu.Lock()
	for _, gen := range p.serving {
		gen.sessions = 0
		p.closeIfIdleLocked(gen)
	}
	p.mu.Unlock()
	p.closing.Wait()
}

// retireLocked marks gen as replaced and closes it if no session uses it.
func (p *Python) retireLocked(gen *generation) {
	gen.retired = true
	p.closeIfIdleLocked(gen)
}

func (p *Python) closeIfIdleLocked(gen *generation) {
	if !gen.retired || gen.sessions > 0 || gen.closed {
		return
	}
	gen.closed = true
	for _, fn := range gen.fns {
		if p.serving[keyOf(fn)] == gen { // a reload of unchanged source reuses the key
			delete(p.serving, keyOf(fn))
		}
	}
	p.closing.Add(1)
	go func() {
		defer p.closing.Done()
		if err := gen.pool.Close(); err != nil {
			p.log.Warn("closing a replaced worker pool", "environment", gen.env, "error", err)
		}
	}()
}

// acquire returns the open generation serving fn, counting a session on
// it, or ErrStale if fn's generation has closed since fn was looked up.
func (p *Python) acquire(fn *udfcatalog.UDF) (*generation, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	gen := p.serving[keyOf(fn)]
	if gen == nil {
		return nil, fmt.Errorf("%w: %s version %s", udfcatalog.ErrStale, fn.Name, fn.Version)
	}
	gen.sessions++
	return gen, nil
}

func (p *Python) release(gen *generation) {
	p.mu.Lock()
	defer p.mu.Unlock()
	gen.sessions = max(0, gen.sessions-1) // Close may have zeroed it
	p.closeIfIdleLocked(gen)
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
	fn.Module = f.Module
	fn.Version = udfcatalog.Digest(fn.Name, fn.Kind, fn.Language, fn.Params, fn.Result, []byte(f.SourceSHA256))
	return &fn, nil
}

// Open starts a session for fn on the generation that serves its
// version. Scalar and table functions run batch by batch on whichever
// worker is least busy; aggregates and transforms keep their state in one
// worker for the whole exchange, opened with the client's exchange options.
func (p *Python) Open(ctx context.Context, fn *udfcatalog.UDF, options []byte) (_ Session, err error) {
	gen, err := p.acquire(fn)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			p.release(gen)
		}
	}()
	s := &pythonSession{p: p, gen: gen, fn: fn, output: schemaMessage(fn.OutputSchema(), p.mem)}
	if fn.OnError == udfcatalog.OnErrorColumn {
		s.errorOutput = schemaMessage(fn.ErrorOutputSchema(), p.mem)
	}
	if fn.Kind != udfcatalog.KindAggregate && fn.Kind != udfcatalog.KindTransform {
		return s, nil
	}
	pinned, err := gen.pool.Pin(ctx)
	if err != nil {
		return nil, s.classify(err)
	}
	open := pybridge.Request{Fn: fn.Name, Op: pybridge.OpOpen, Options: options,
		Input: pybridge.Bytes(schemaMessage(fn.InputSchema(), p.mem))}
	reply, err := pinned.Call(ctx, open)
	if err != nil {
		pinned.Release()
		return nil, s.classify(err)
	}
	reply.Release()
	s.pinned = pinned
	return s, nil
}

type pythonSession struct {
	p   *Python
	gen *generation
	fn  *udfcatalog.UDF
	// output and errorOutput (error_column UDFs only) are the schemas
	// replies are decoded with, as encapsulated IPC schema messages.
	output, errorOutput []byte
	pinned              *pybridge.Pinned // for stateful kinds
	finished            bool
}

func (s *pythonSession) call(ctx context.Context, req pybridge.Request) ([]arrow.RecordBatch, error) {
	var reply *pybridge.Reply
	var err error
	if s.pinned != nil {
		reply, err = s.pinned.Call(ctx, req)
	} else {
		reply, err = s.gen.pool.Call(ctx, req)
	}
	if err != nil {
		return nil, s.classify(err)
	}
	schema := s.output
	if reply.ErrorColumn {
		if s.fn.OnError != udfcatalog.OnErrorColumn {
			reply.Release()
			return nil, fmt.Errorf("%w: %s returned an error column, but its on_error is %q", udfcatalog.ErrBadOutput, s.fn.Name, s.fn.OnError)
		}
		schema = s.errorOutput
	}
	body := replyBuffer(reply)
	defer body.Release() // the batches hold it while they live
	outs, err := arrowsafe.ReadMessages(s.p.mem, schema, body, s.p.maxDecompressed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", udfcatalog.ErrBadOutput, s.fn.Name, err)
	}
	return outs, nil
}

func (s *pythonSession) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	body, done, err := inputBody(in, s.p.mem)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.fn.Name, err)
	}
	defer done()
	return s.call(ctx, pybridge.Request{Fn: s.fn.Name, Input: body})
}

// ProcessAll evaluates several batches of a scalar UDF in one worker call:
// they cross as consecutive IPC messages, the worker joins them, and it
// answers with one output batch per input batch.
func (s *pythonSession) ProcessAll(ctx context.Context, ins []arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	all := make(bodies, len(ins))
	for i, in := range ins {
		body, done, err := inputBody(in, s.p.mem)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.fn.Name, err)
		}
		defer done()
		all[i] = body
	}
	outs, err := s.call(ctx, pybridge.Request{Fn: s.fn.Name, Input: all, Messages: len(all)})
	if err != nil {
		return nil, err
	}
	if len(outs) != len(ins) {
		release(outs)
		return nil, fmt.Errorf("%w: %s returned %d batches for %d input batches", udfcatalog.ErrBadOutput, s.fn.Name, len(outs), len(ins))
	}
	return outs, nil
}

// Finish asks a stateful UDF for what it emits at the end of input.
func (s *pythonSession) Finish(ctx context.Context) ([]arrow.RecordBatch, error) {
	if s.pinned == nil {
		return nil, nil
	}
	s.finished = true
	return s.call(ctx, pybridge.Request{Fn: s.fn.Name, Op: pybridge.OpFinish})
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

// Parallelism lets one exchange fill every worker's pipeline, unless its
// state lives in one worker.
func (s *pythonSession) Parallelism() int {
	if s.pinned != nil {
		return 1
	}
	return s.gen.pool.Slots()
}

// Close releases a pinned worker, first dropping state an unfinished
// exchange left in it, and then the session's hold on its generation.
func (s *pythonSession) Close() error {
	defer s.p.release(s.gen)
	if s.pinned == nil {
		return nil
	}
	defer s.pinned.Release()
	if s.finished {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	reply, err := s.pinned.Call(ctx, pybridge.Request{Fn: s.fn.Name, Op: pybridge.OpClose})
	reply.Release()
	return err
}

// closeTimeout bounds dropping an abandoned exchange's state.
const closeTimeout = 5 * time.Second
