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
}

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
	return c
}

// Pool runs calls on a fixed number of worker processes, each of which has
// loaded every module. A call goes to whichever worker is free. A worker
// that dies, hangs or breaks the protocol is replaced.
type Pool struct {
	cfg       Config
	log       hclog.Logger
	functions []Function
	errors    []ModuleError
	idle      chan *worker
	done      chan struct{} // closed by Close

	mu       sync.Mutex
	workers  map[*worker]bool
	nextID   int
	spawnErr error // the latest failure to replace a worker
	// spawnFailures counts consecutive failed replacements; with no worker
	// left, calls fail fast once it reaches giveUpAfter.
	spawnFailures int
	changed       chan struct{} // closed and renewed when workers or spawnErr change
	closed        bool

	// background tracks respawns and the recovery of cancelled calls.
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
		idle:    make(chan *worker, cfg.Workers),
		done:    make(chan struct{}),
		workers: make(map[*worker]bool),
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
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		p.workers[r.w] = true
		p.idle <- r.w
		if i == 0 || p.functions == nil {
			p.functions, p.errors = r.load.Functions, r.load.Errors
		} else if err := sameFunctions(p.functions, r.load.Functions); err != nil {
			errs = append(errs, fmt.Errorf("worker %d: %w", i, err))
		}
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

// spawn starts one worker and loads the modules in it.
func (p *Pool) spawn(ctx context.Context, id int) (*worker, loadReply, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	w, err := startWorker(ctx, id, p.cfg.Interpreter, p.log)
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
	f, _, err := w.exchange(ctx, &frame{kind: kindLoad, header: req}, kindLoaded, 0)
	if err == nil && f.kind == kindError {
		err = fmt.Errorf("loading modules: %w", callError(f))
	}
	var load loadReply
	if err == nil {
		if jerr := json.Unmarshal(f.header, &load); jerr != nil {
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

// Size is the number of workers, and so how many calls can run at once.
func (p *Pool) Size() int { return p.cfg.Workers }

// Request is one call to a UDF in a worker.
type Request struct {
	Fn string `json:"fn"`
	// Op is empty (or "batch") to evaluate Input; stateful UDFs also take
	// "open" (with Options), "finish" and "close".
	Op string `json:"op,omitempty"`
	// Options are the client's exchange options, as JSON.
	Options json.RawMessage `json:"options,omitempty"`
	// Input is an Arrow IPC stream, or empty.
	Input []byte `json:"-"`
}

// Call runs one request on whichever worker is free and returns the reply
// body (an Arrow IPC stream of zero or more batches). A Python exception is
// a *CallError. A worker that dies or exceeds the call timeout fails the
// call with ErrWorkerCrashed or ErrTimeout and is replaced; the call is not
// retried.
func (p *Pool) Call(ctx context.Context, req Request) ([]byte, error) {
	w, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	out, healthy, err := p.callOn(ctx, w, req)
	switch healthy {
	case recovering:
		p.recoverWorker(w)
	default:
		p.release(w, healthy == ok)
	}
	return out, err
}

// Pinned is one worker reserved for a stateful exchange, which keeps its
// state in that worker between calls.
type Pinned struct {
	p      *Pool
	w      *worker
	broken error // set once the worker is lost; later calls fail with it
}

// Pin reserves a free worker until Release.
func (p *Pool) Pin(ctx context.Context) (*Pinned, error) {
	w, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &Pinned{p: p, w: w}, nil
}

// Call runs one request on the pinned worker. Once the worker is lost,
// every later call fails, since the state it held is gone.
func (s *Pinned) Call(ctx context.Context, req Request) ([]byte, error) {
	if s.broken != nil {
		return nil, s.broken
	}
	out, healthy, err := s.p.callOn(ctx, s.w, req)
	if healthy != ok && err != nil {
		s.broken = fmt.Errorf("the worker holding this exchange's state was lost: %w", err)
		if healthy == recovering {
			s.p.recoverWorker(s.w)
		} else {
			s.p.release(s.w, false)
		}
		s.w = nil
	}
	return out, err
}

// Release returns the worker to the pool.
func (s *Pinned) Release() {
	if s.w != nil {
		s.p.release(s.w, true)
		s.w = nil
	}
}

// health says what a call left of its worker.
type health int

const (
	ok         health = iota // serve more calls
	lost                     // kill and replace it
	recovering               // a cancelled call is still running; read its reply first
)

// callOn runs req on w.
func (p *Pool) callOn(ctx context.Context, w *worker, req Request) ([]byte, health, error) {
	header, err := json.Marshal(req)
	if err != nil {
		return nil, ok, err
	}
	// A timeout is the worker's fault only if the call timeout, not the
	// caller's own deadline, ran out first.
	deadline := time.Now().Add(p.cfg.CallTimeout)
	callerDeadline, hasDeadline := ctx.Deadline()
	callerFirst := hasDeadline && !callerDeadline.After(deadline)
	callCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	f, sent, err := w.exchange(callCtx, &frame{kind: kindCall, header: header, body: req.Input}, kindResult, p.cfg.MaxReplyBytes)
	switch {
	case err == nil && f.kind == kindError:
		return nil, ok, callError(f)
	case err == nil:
		return f.body, ok, nil
	case errors.Is(err, ErrTimeout) && !callerFirst:
		return nil, lost, fmt.Errorf("%w: %s did not answer within %s (the call timeout); the worker was killed",
			ErrTimeout, req.Fn, p.cfg.CallTimeout)
	case ctx.Err() != nil || errors.Is(err, ErrTimeout) || errors.Is(err, context.Canceled):
		cause := ctx.Err()
		if cause == nil {
			cause = context.DeadlineExceeded
		}
		if sent {
			// The caller gave up; the worker will still answer. Recover it
			// rather than killing a healthy process.
			return nil, recovering, cause
		}
		return nil, lost, cause // a request cut off mid-frame leaves no way back
	}
	return nil, lost, fmt.Errorf("%s: %w", req.Fn, err)
}

// acquire waits for an idle worker.
func (p *Pool) acquire(ctx context.Context) (*worker, error) {
	for {
		p.mu.Lock()
		closed, changed := p.closed, p.changed
		none := len(p.workers) == 0 && p.spawnFailures >= giveUpAfter
		spawnErr := p.spawnErr
		p.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case none:
			return nil, fmt.Errorf("%w: no Python worker is running; the last %d attempts to start one failed, the latest with: %w",
				ErrWorkerCrashed, giveUpAfter, spawnErr)
		}
		select {
		case w := <-p.idle:
			if w.alive() {
				return w, nil
			}
			p.release(w, false) // died while idle
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// release returns a worker after a call: healthy ones go back to the idle
// set, others are killed and replaced.
func (p *Pool) release(w *worker, healthy bool) {
	p.mu.Lock()
	closed := p.closed
	if !healthy || closed {
		delete(p.workers, w)
	}
	p.mu.Unlock()
	switch {
	case closed:
		w.stop(p.cfg.StopTimeout)
	case healthy && w.alive():
		p.idle <- w
	default:
		w.kill()
		p.mu.Lock()
		p.notify()
		p.mu.Unlock()
		p.background.Add(1)
		go p.respawn()
	}
}

// recoverWorker reads and discards the reply to a call its caller gave up
// on, then returns the worker; one that does not answer within the call
// timeout is killed and replaced.
func (p *Pool) recoverWorker(w *worker) {
	p.background.Add(1)
	go func() {
		defer p.background.Done()
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.CallTimeout)
		defer cancel()
		_, _, err := w.exchange(ctx, nil, kindResult, p.cfg.MaxReplyBytes)
		if err != nil {
			w.log.Warn("a cancelled call did not finish; replacing the worker", "error", err)
		}
		p.release(w, err == nil)
	}()
}

// respawn replaces a dead worker, retrying with backoff until it succeeds
// or the pool closes.
func (p *Pool) respawn() {
	defer p.background.Done()
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
			p.workers[w] = true
			p.spawnErr, p.spawnFailures = nil, 0
			p.notify()
			p.mu.Unlock()
			p.log.Info("replaced worker", "worker", id)
			p.idle <- w
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

// notify wakes callers waiting in acquire. p.mu must be held.
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
	workers := make([]*worker, 0, len(p.workers))
	for w := range p.workers {
		workers = append(workers, w)
	}
	clear(p.workers)
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.stop(p.cfg.StopTimeout) })
	}
	wg.Wait()
	p.background.Wait()
	return nil
}
