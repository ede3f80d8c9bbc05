package pybridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Module is one Python module to load in every worker.
type Module struct {
	Name string `json:"name"` // the import name, unique in the pool
	// Path is the module's .py file. Empty means import Name from the
	// pool's Paths: a package directory, or a module inside a zip.
	Path string `json:"path,omitempty"`
	// Digest identifies the module's source; empty means the worker
	// hashes the file at Path.
	Digest string `json:"digest,omitempty"`
}

// Function is a UDF a worker found while loading the modules.
type Function struct {
	Name string `json:"name"`
	// Spec is the UDF's JSON description (fletch's UdfSpec.describe()).
	Spec         json.RawMessage `json:"spec"`
	Module       string          `json:"module"`
	SourceSHA256 string          `json:"source_sha256"`
}

// ModuleError reports a module that failed to import.
type ModuleError struct {
	Module    string `json:"module"`
	Path      string `json:"path"`
	Error     string `json:"error"`
	Traceback string `json:"traceback"`
}

// Config describes a pool. Zero durations and sizes take the defaults shown.
type Config struct {
	Interpreter Interpreter
	// Paths are put on sys.path, so modules can import their neighbours.
	Paths   []string
	Modules []Module
	// Env is added to every worker's environment, after the interpreter's.
	Env []string
	// Workers is the number of processes; default runtime.NumCPU().
	Workers int
	Logger  hclog.Logger
	// StartTimeout bounds a worker's start and module loading; default 60 s.
	StartTimeout time.Duration
	// CallTimeout bounds one call; a worker that takes longer is killed
	// and replaced. Default 60 s.
	CallTimeout time.Duration
	// StopTimeout is how long Close waits for a worker to exit before
	// killing it; default 5 s.
	StopTimeout time.Duration
	// MaxReplyBytes bounds a reply body; default 1 GiB.
	MaxReplyBytes int64
	// Pipeline is how many calls one worker may hold at once: the one it
	// runs and those queued behind it, so it never waits for the server
	// between batches. Default 2.
	Pipeline int
	// SharedBytes is the size of each half of a worker's shared memory
	// (requests, replies), where bodies that fit travel without crossing
	// the pipes. Default 64 MiB; negative: every body crosses the pipes
	// (as on platforms without shared memory).
	SharedBytes int
}

// DefaultSharedBytes is Config.SharedBytes's default: room for a few
// batches of the largest size the server slices input to (16 MiB); pages
// are only backed once touched.
const DefaultSharedBytes = 64 << 20

func (c Config) withDefaults() Config {
	c.Interpreter.Env = append(slices.Clip(c.Interpreter.Env), c.Env...)
	if c.Workers <= 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 60 * time.Second
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 60 * time.Second
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 5 * time.Second
	}
	if c.MaxReplyBytes <= 0 {
		c.MaxReplyBytes = 1 << 30
	}
	if c.Pipeline <= 0 {
		c.Pipeline = 2
	}
	switch {
	case c.SharedBytes == 0:
		c.SharedBytes = DefaultSharedBytes
	case c.SharedBytes < 0:
		c.SharedBytes = 0
	}
	return c
}

// Pool runs calls on a fixed number of worker processes, each of which has
// loaded every module. A call goes to the least busy worker that has room
// in its pipeline. A worker that dies, hangs or breaks the protocol is
// replaced.
type Pool struct {
	cfg       Config
	log       hclog.Logger
	functions []Function
	errors    []ModuleError
	index     map[string]uint32 // function name → its index in the loaded reply
	done      chan struct{}     // closed by Close

	mu       sync.Mutex
	workers  []*worker // the live ones
	nextID   int
	spawnErr error // the latest failure to replace a worker
	// spawnFailures counts consecutive failed replacements; with no worker
	// left, calls fail fast once it reaches giveUpAfter.
	spawnFailures int
	changed       chan struct{} // closed and renewed when workers free up or change
	waiters       int           // callers waiting on changed
	closed        bool

	// background tracks the replacement of lost workers.
	background sync.WaitGroup
}

// Start launches cfg.Workers workers and loads the modules in each. It
// fails if any worker fails to start or the workers disagree about what
// the modules define. Modules that fail to import are reported by
// LoadErrors, not as an error.
func Start(ctx context.Context, cfg Config) (*Pool, error) {
	cfg = cfg.withDefaults()
	p := &Pool{
		cfg:     cfg,
		log:     cfg.Logger,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	type started struct {
		w    *worker
		load loadReply
		err  error
	}
	results := make([]started, cfg.Workers)
	var wg sync.WaitGroup
	for i := range cfg.Workers {
		wg.Go(func() {
			w, load, err := p.spawn(ctx, i)
			results[i] = started{w, load, err}
		})
	}
	wg.Wait()
	p.nextID = cfg.Workers
	var errs []error
	p.mu.Lock()
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		p.workers = append(p.workers, r.w)
		if p.functions == nil {
			p.functions, p.errors = r.load.Functions, r.load.Errors
		} else if err := sameFunctions(p.functions, r.load.Functions); err != nil {
			errs = append(errs, fmt.Errorf("worker %d: %w", i, err))
		}
	}
	p.mu.Unlock()
	p.replaceDead()
	p.index = make(map[string]uint32, len(p.functions))
	for i, f := range p.functions {
		p.index[f.Name] = uint32(i)
	}
	if len(errs) > 0 {
		p.Close()
		return nil, errors.Join(errs...)
	}
	return p, nil
}

type loadReply struct {
	Functions []Function    `json:"functions"`
	Errors    []ModuleError `json:"errors"`
}

func (p *Pool) workerOptions() workerOptions {
	return workerOptions{
		interp:      p.cfg.Interpreter,
		sharedBytes: p.cfg.SharedBytes,
		maxReply:    p.cfg.MaxReplyBytes,
		log:         p.log,
		onLost:      p.lost,
	}
}

// spawn starts one worker and loads the modules in it.
func (p *Pool) spawn(ctx context.Context, id int) (*worker, loadReply, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	w, err := startWorker(ctx, id, p.workerOptions())
	if err != nil {
		return nil, loadReply{}, err
	}
	req, err := json.Marshal(struct {
		Paths   []string `json:"paths"`
		Modules []Module `json:"modules"`
	}{p.cfg.Paths, p.cfg.Modules})
	if err != nil {
		w.kill()
		return nil, loadReply{}, err
	}
	r, err := w.request(ctx, frame{kind: kindLoad, header: req}, nil, p.cfg.StartTimeout)
	var load loadReply
	switch {
	case err != nil:
	case r.f.kind == kindError:
		err = fmt.Errorf("loading modules: %w", callError(r.f))
	case r.f.kind != kindLoaded:
		err = fmt.Errorf("%w: a %s frame answered the load", ErrProtocol, r.f.kind)
	default:
		if jerr := json.Unmarshal(r.f.header, &load); jerr != nil {
			err = fmt.Errorf("%w: loaded frame: %w", ErrProtocol, jerr)
		}
	}
	if err != nil {
		w.kill()
		return nil, loadReply{}, fmt.Errorf("worker %d: %w", id, err)
	}
	return w, load, nil
}

func sameFunctions(want, got []Function) error {
	names := func(fs []Function) []string {
		out := make([]string, len(fs))
		for i, f := range fs {
			out[i] = f.Name
		}
		return out
	}
	if !slices.Equal(names(want), names(got)) {
		return fmt.Errorf("loaded functions %q, but the first worker loaded %q; module imports must be deterministic", names(got), names(want))
	}
	return nil
}

// Functions returns the UDFs the modules define, in load order.
func (p *Pool) Functions() []Function { return p.functions }

// LoadErrors returns the modules that failed to import.
func (p *Pool) LoadErrors() []ModuleError { return p.errors }

// Slots is how many calls the pool takes at once: every worker's pipeline.
func (p *Pool) Slots() int { return p.cfg.Workers * p.cfg.Pipeline }

// Request is one call to a UDF in a worker.
type Request struct {
	Fn string
	Op Op
	// Options are the client's exchange options, as JSON.
	Options json.RawMessage
	// Input is one encapsulated Arrow IPC record batch message of the
	// function's input schema (OpBatch), the input schema as an
	// encapsulated schema message (OpOpen), or nil.
	Input Body
	// Messages, when more than 1, says Input holds that many record
	// batch messages, which the worker joins into one batch (OpBatch of a
	// scalar UDF only).
	Messages int
}

// Call runs one request on the least busy worker and returns its reply,
// which the caller releases. A Python exception is a *CallError. A worker
// that dies or exceeds the call timeout fails the call with
// ErrWorkerCrashed or ErrTimeout and is replaced; the call is not retried.
func (p *Pool) Call(ctx context.Context, req Request) (*Reply, error) {
	fn, err := p.lookup(req.Fn)
	if err != nil {
		return nil, err
	}
	w, err := p.pick(ctx, false)
	if err != nil {
		return nil, err
	}
	defer p.finished(w)
	return p.callOn(ctx, w, fn, req)
}

func (p *Pool) lookup(name string) (uint32, error) {
	fn, ok := p.index[name]
	if !ok {
		return 0, fmt.Errorf("%w: the worker pool has no UDF %q", ErrProtocol, name)
	}
	return fn, nil
}

func (p *Pool) callOn(ctx context.Context, w *worker, fn uint32, req Request) (*Reply, error) {
	f := frame{kind: kindCall, fn: fn, flags: uint16(req.Op) << opShift, header: req.Options}
	if req.Messages > 1 {
		f.flags |= flagSeveral
	}
	r, err := w.request(ctx, f, req.Input, p.cfg.CallTimeout)
	switch {
	case errors.Is(err, ErrTimeout):
		return nil, fmt.Errorf("%s: %w", req.Fn, err)
	case err != nil:
		return nil, err
	case r.f.kind == kindError:
		return nil, callError(r.f)
	case r.f.kind != kindResult:
		w.killBecause(fmt.Sprintf("a %s frame answered a call", r.f.kind))
		return nil, fmt.Errorf("%w: worker %d answered a call with a %s frame", ErrProtocol, w.id, r.f.kind)
	}
	return w.reply(r), nil
}

// Pinned is one worker reserved for a stateful exchange, which keeps its
// state in that worker between calls.
type Pinned struct {
	p      *Pool
	w      *worker
	broken error // set once the worker is lost; later calls fail with it
}

// Pin reserves a worker with nothing in flight until Release.
func (p *Pool) Pin(ctx context.Context) (*Pinned, error) {
	w, err := p.pick(ctx, true)
	if err != nil {
		return nil, err
	}
	return &Pinned{p: p, w: w}, nil
}

// Call runs one request on the pinned worker. Once the worker is lost,
// every later call fails, since the state it held is gone.
func (s *Pinned) Call(ctx context.Context, req Request) (*Reply, error) {
	if s.broken != nil {
		return nil, s.broken
	}
	fn, err := s.p.lookup(req.Fn)
	if err != nil {
		return nil, err
	}
	r, err := s.p.callOn(ctx, s.w, fn, req)
	if err != nil && !s.w.alive() {
		s.broken = fmt.Errorf("the worker holding this exchange's state was lost: %w", err)
	}
	return r, err
}

// Release returns the worker to the pool.
func (s *Pinned) Release() {
	if s.w == nil {
		return
	}
	s.p.mu.Lock()
	s.w.pinned = false
	s.p.mu.Unlock()
	s.p.finished(s.w)
	s.w = nil
}

// pick waits for a worker with room: the least busy one, or for a pin,
// one with nothing in flight, which it reserves.
func (p *Pool) pick(ctx context.Context, pin bool) (*worker, error) {
	limit := p.cfg.Pipeline
	if pin {
		limit = 1
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if len(p.workers) == 0 && p.spawnFailures >= giveUpAfter {
			err := p.spawnErr
			p.mu.Unlock()
			return nil, fmt.Errorf("%w: no Python worker is running; the last %d attempts to start one failed, the latest with: %w",
				ErrWorkerCrashed, giveUpAfter, err)
		}
		var best *worker
		for _, w := range p.workers {
			if w.pinned || w.inflight >= limit || !w.alive() {
				continue
			}
			if best == nil || w.inflight < best.inflight {
				best = w
			}
		}
		if best != nil {
			best.inflight++
			best.pinned = pin
			p.mu.Unlock()
			return best, nil
		}
		changed := p.changed
		p.waiters++
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
		}
		p.mu.Lock()
		p.waiters--
		p.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// finished ends a call's hold on its worker.
func (p *Pool) finished(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.inflight--
	if p.waiters > 0 {
		p.notify()
	}
}

// lost takes a failed worker out of service and starts its replacement.
// The worker calls it once, from its reader.
func (p *Pool) lost(w *worker) {
	p.mu.Lock()
	i := slices.Index(p.workers, w)
	if i < 0 || p.closed {
		p.mu.Unlock()
		return // still starting (spawn reaps it), or being shut down
	}
	p.workers = slices.Delete(p.workers, i, i+1)
	p.notify()
	p.background.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.background.Done()
		w.kill()
		p.respawn()
	}()
}

// replaceDead replaces workers that died before they joined the pool,
// when their reader's report could not find them in it.
func (p *Pool) replaceDead() {
	p.mu.Lock()
	var dead []*worker
	for _, w := range p.workers {
		if !w.alive() {
			dead = append(dead, w)
		}
	}
	p.mu.Unlock()
	for _, w := range dead {
		p.lost(w)
	}
}

// respawn replaces a dead worker, retrying with backoff until it succeeds
// or the pool closes.
func (p *Pool) respawn() {
	backoff := 100 * time.Millisecond
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		id := p.nextID
		p.nextID++
		p.mu.Unlock()

		w, load, err := p.spawnUntilClosed(id)
		if err == nil {
			err = sameFunctions(p.functions, load.Functions)
			if err != nil {
				w.kill()
			}
		}
		p.mu.Lock()
		if err == nil && !p.closed {
			p.workers = append(p.workers, w)
			p.spawnErr, p.spawnFailures = nil, 0
			p.notify()
			p.mu.Unlock()
			p.log.Info("replaced worker", "worker", id)
			p.replaceDead()
			return
		}
		closed := p.closed
		if err != nil {
			p.spawnErr = err
			p.spawnFailures++
			p.notify()
		}
		p.mu.Unlock()
		if closed {
			if w != nil && err == nil {
				w.kill()
			}
			return
		}
		p.log.Error("starting a replacement worker failed", "error", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-p.done:
			return
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// giveUpAfter is how many replacements in a row must fail before calls
// stop waiting for one.
const giveUpAfter = 3

// spawnUntilClosed is spawn, abandoned if the pool closes meanwhile.
func (p *Pool) spawnUntilClosed(id int) (*worker, loadReply, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() { cancel(); <-watching }()
	return p.spawn(ctx, id)
}

// notify wakes callers waiting in pick. p.mu must be held.
func (p *Pool) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Close stops every worker (gracefully, then by force after StopTimeout)
// and waits for all of the pool's goroutines.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	p.notify()
	workers := p.workers
	p.workers = nil
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.stop(p.cfg.StopTimeout) })
	}
	wg.Wait()
	p.background.Wait()
	return nil
}
