package pybridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Interpreter says how to start Python.
type Interpreter struct {
	// Path is the python executable.
	Path string
	// Env is added to the server's environment for every worker.
	Env []string
	// PythonPath entries come first on the workers' sys.path.
	PythonPath []string
	// Version and PyArrow describe it, for logs.
	Version, PyArrow string
}

// The worker refuses to run unless started with this cookie, so running
// fletch's worker module by hand gives a clear message instead of a hang
// (as go-plugin's magic cookie does).
const (
	cookieKey   = "FLETCH_WORKER_COOKIE"
	cookieValue = "5b1cf6b0-fletch-worker"
	protocolKey = "FLETCH_WORKER_PROTOCOL"
	// shmKey tells the worker where its shared memory is: "fd:request bytes:reply bytes".
	shmKey = "FLETCH_WORKER_SHM"
)

// workerBoot starts the worker without putting the working directory on
// sys.path (-c keeps the script directory off it; the worker drops "").
const workerBoot = "import fletch._worker as w; raise SystemExit(w.main())"

// Worker failures the pool tells apart.
var (
	// ErrWorkerCrashed: the worker process died.
	ErrWorkerCrashed = errors.New("python worker died")
	// ErrTimeout: the worker did not answer in time and was killed.
	ErrTimeout = errors.New("python worker timed out")
	// ErrClosed: the pool is shut down.
	ErrClosed = errors.New("python worker pool is closed")
)

// CallError is a Python exception raised by a UDF.
type CallError struct {
	Function string
	// Row is the failing row's index within the batch, or -1 if unknown.
	Row       int64
	Type      string
	Message   string
	Traceback string
}

func (e *CallError) Error() string {
	msg := e.Type + ": " + e.Message
	if e.Traceback != "" {
		msg += "\n" + strings.TrimRight(e.Traceback, "\n")
	}
	return msg
}

// hello is the worker's first frame.
type hello struct {
	Protocol int    `json:"protocol"`
	PID      int    `json:"pid"`
	Python   string `json:"python"`
	PyArrow  string `json:"pyarrow"`
	// SharedMemory says the worker mapped the region it was given.
	SharedMemory bool `json:"shm"`
}

// Body is a call's input: it writes itself where it goes, into shared
// memory or a frame, so it is copied once.
type Body interface {
	Len() int
	Put(dst []byte)
}

// Bytes is a Body that is already bytes.
type Bytes []byte

func (b Bytes) Len() int       { return len(b) }
func (b Bytes) Put(dst []byte) { copy(dst, b) }

// Reply is a call's output: zero or more encapsulated Arrow IPC record
// batch messages, without a schema. Data may lie in shared memory, where
// the worker will not reuse it until Release.
type Reply struct {
	Data []byte
	// ErrorColumn says the batches carry an error_column UDF's error column.
	ErrorColumn bool
	release     func()
	once        sync.Once
}

// Release says Data is no longer read.
func (r *Reply) Release() {
	if r != nil && r.release != nil {
		r.once.Do(r.release)
	}
}

// worker is one Python process, the goroutines that watch it, and the
// calls it is answering.
type worker struct {
	id       int
	log      hclog.Logger
	cmd      *exec.Cmd
	ch       *channel
	shm      *region // nil when bodies cross the pipes
	maxReply int64
	tail     lineTail
	hello    hello
	helloed  chan struct{} // closed once hello arrived
	exited   chan struct{} // closed once the process has been reaped
	waitErr  error         // the process's exit status, set before exited closes
	logged   chan struct{} // closed once stdout and stderr reach end of file
	dead     chan struct{} // closed once the worker failed; calls then fail with failed
	flush    chan struct{} // wakes the flusher
	pumps    sync.WaitGroup
	stopOnce sync.Once
	onLost   func(*worker) // called once, from the reader, when the worker fails

	mu       sync.Mutex
	nextID   uint64
	pending  map[uint64]*call
	held     map[uint64]int // request spans the worker has not yet freed, by request id
	releases []uint64       // replies we are done with, to tell the worker
	failed   error
	killWhy  string // why the server killed it, for the calls that fail with it

	inflight int  // calls dispatched to it; guarded by the pool's mu
	pinned   bool // reserved for one stateful exchange; guarded by the pool's mu
}

type call struct {
	what      string // for messages: "call to f", "load"
	done      chan result
	abandoned bool
}

type result struct {
	f    frame
	data []byte // the body, inline or in shared memory
	err  error
}

// workerOptions are a pool's settings that shape each worker.
type workerOptions struct {
	interp       Interpreter
	sharedBytes  int // each half of the shared region; 0: pipes only
	maxReply     int64
	log          hclog.Logger
	onLost       func(*worker)
	startTimeout time.Duration
}

// startWorker starts a worker process and waits for its hello.
func startWorker(ctx context.Context, id int, o workerOptions) (_ *worker, err error) {
	var files []*os.File // closed before returning: ours on failure, the child's copies always
	defer func() { closeAll(files...) }()
	pipe := func() (*os.File, *os.File, error) {
		r, w, err := os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	reqR, reqW, err := pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.interp.Path, "-s", "-c", workerBoot)
	cmd.Env = workerEnv(o.interp)
	cmd.ExtraFiles = []*os.File{reqR, repW} // fd 3: requests, fd 4: replies
	cmd.Stdout, cmd.Stderr = outW, errW
	var shm *region
	if o.sharedBytes > 0 && SharedMemory {
		r, f, err := newRegion(o.sharedBytes, o.sharedBytes)
		if err != nil {
			o.log.Warn("shared memory is unavailable; bodies cross the pipes", "error", err)
		} else {
			shm = r
			files = append(files, f)
			cmd.ExtraFiles = append(cmd.ExtraFiles, f) // fd 5
			cmd.Env = append(cmd.Env, fmt.Sprintf("%s=5:%d:%d", shmKey, o.sharedBytes, o.sharedBytes))
		}
	}
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		if shm != nil {
			shm.release()
		}
		return nil, fmt.Errorf("start %s: %w", o.interp.Path, err)
	}
	// The child holds its own copies of its ends; ours stay open.
	closeAll(without(files, reqW, repR, outR, errR)...)
	files = nil
	w := &worker{
		id:       id,
		log:      o.log.With("worker", id, "pid", cmd.Process.Pid),
		cmd:      cmd,
		ch:       newChannel(reqW, repR),
		shm:      shm,
		maxReply: o.maxReply,
		helloed:  make(chan struct{}),
		exited:   make(chan struct{}),
		logged:   make(chan struct{}),
		dead:     make(chan struct{}),
		flush:    make(chan struct{}, 1),
		onLost:   o.onLost,
		pending:  make(map[uint64]*call),
		held:     make(map[uint64]int),
		nextID:   1,
	}
	var logs sync.WaitGroup
	logs.Add(2)
	w.pumps.Add(6)
	go func() { defer w.pumps.Done(); defer logs.Done(); relog(outR, "stdout", w.log, &w.tail); outR.Close() }()
	go func() { defer w.pumps.Done(); defer logs.Done(); relog(errR, "stderr", w.log, &w.tail); errR.Close() }()
	go func() { defer w.pumps.Done(); logs.Wait(); close(w.logged) }()
	go func() {
		defer w.pumps.Done()
		w.waitErr = cmd.Wait()
		close(w.exited)
	}()
	go func() { defer w.pumps.Done(); w.read() }()
	go func() { defer w.pumps.Done(); w.flusher() }()
	defer func() {
		if err != nil {
			w.kill()
		}
	}()

	select {
	case <-w.helloed:
	case <-w.dead:
		return nil, fmt.Errorf("worker %d handshake: %w", id, w.failure())
	case <-ctx.Done():
		return nil, fmt.Errorf("worker %d handshake: %w while waiting for hello", id, ErrTimeout)
	}
	if w.hello.Protocol != protocolVersion {
		return nil, fmt.Errorf("%w: worker %d speaks protocol %d, this fletch speaks %d; the fletch Python package on its path does not match this server",
			ErrProtocol, id, w.hello.Protocol, protocolVersion)
	}
	if w.shm != nil && !w.hello.SharedMemory {
		w.log.Warn("the worker could not map shared memory; bodies cross the pipes")
	}
	w.log.Debug("worker started", "python", w.hello.Python, "pyarrow", w.hello.PyArrow, "shared_memory", w.usesShm())
	return w, nil
}

func (w *worker) usesShm() bool { return w.shm != nil && w.hello.SharedMemory }

// without returns files less those in drop, reusing its array.
func without(files []*os.File, drop ...*os.File) []*os.File {
	out := files[:0]
	for _, f := range files {
		if !slices.Contains(drop, f) {
			out = append(out, f)
		}
	}
	return out
}

func workerEnv(interp Interpreter) []string {
	env := append(os.Environ(), interp.Env...)
	path := strings.Join(interp.PythonPath, string(os.PathListSeparator))
	if existing := os.Getenv("PYTHONPATH"); existing != "" {
		path += string(os.PathListSeparator) + existing
	}
	return append(env,
		"PYTHONPATH="+path,
		"PYTHONUNBUFFERED=1",
		"PYTHONSAFEPATH=1",
		"PYTHONDONTWRITEBYTECODE=1",
		cookieKey+"="+cookieValue,
		fmt.Sprintf("%s=%d", protocolKey, protocolVersion),
	)
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// read receives every frame the worker sends and hands each reply to its
// request, until the worker fails.
func (w *worker) read() {
	for {
		f, err := w.ch.receive(w.maxReply)
		if err == nil {
			err = w.dispatch(f)
		}
		if err != nil {
			w.fail(err)
			return
		}
	}
}

func (w *worker) dispatch(f frame) error {
	switch f.kind {
	case kindHello:
		select {
		case <-w.helloed:
			return fmt.Errorf("%w: a second hello", ErrProtocol)
		default:
		}
		if err := json.Unmarshal(f.header, &w.hello); err != nil {
			return fmt.Errorf("%w: hello %q: %w", ErrProtocol, f.header, err)
		}
		close(w.helloed)
		return nil
	case kindRelease:
		ids, err := releasedIDs(f)
		if err != nil {
			return err
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, id := range ids {
			if err := w.freeInputLocked(id); err != nil {
				return err
			}
		}
		return nil
	case kindLoaded, kindResult, kindError:
	default:
		return fmt.Errorf("%w: unexpected %s frame", ErrProtocol, f.kind)
	}
	var data []byte
	if f.flags&flagShm != 0 {
		if !w.usesShm() {
			return fmt.Errorf("%w: a shared-memory body from a worker without shared memory", ErrProtocol)
		}
		var err error
		if data, err = w.shm.reply(f.shmOff, f.shmLen); err != nil {
			return err
		}
	} else {
		data = f.body
	}
	w.mu.Lock()
	c := w.pending[f.id]
	if c == nil {
		w.mu.Unlock()
		return fmt.Errorf("%w: a %s frame answers request %d, which no call is waiting for", ErrProtocol, f.kind, f.id)
	}
	delete(w.pending, f.id)
	if f.flags&flagInputFree != 0 {
		if err := w.freeInputLocked(f.id); err != nil {
			w.mu.Unlock()
			return err
		}
	}
	if c.abandoned {
		if f.flags&flagShm != 0 {
			w.releases = append(w.releases, f.id)
		}
		w.mu.Unlock()
		return nil
	}
	w.mu.Unlock()
	if f.flags&flagShm != 0 {
		w.shm.retain() // until the reply is released
	}
	c.done <- result{f: f, data: data}
	return nil
}

// freeInputLocked frees the request span of request id, if it has one.
func (w *worker) freeInputLocked(id uint64) error {
	off, ok := w.held[id]
	if !ok {
		return nil // an inline input, or freed already
	}
	delete(w.held, id)
	if err := w.shm.freeRequest(off); err != nil {
		return fmt.Errorf("%w: freeing the input of request %d: %w", ErrProtocol, id, err)
	}
	return nil
}

// fail makes the worker unusable: every waiting call, and every later
// one, fails with err. The pool learns of it once.
func (w *worker) fail(err error) {
	explained := w.explain(err)
	w.mu.Lock()
	if w.failed != nil {
		w.mu.Unlock()
		return
	}
	w.failed = explained
	pending := w.pending
	w.pending = map[uint64]*call{}
	close(w.dead)
	w.mu.Unlock()
	for _, c := range pending {
		c.done <- result{err: explained} // buffered: an abandoned call's is never read
	}
	if w.onLost != nil {
		w.onLost(w)
	}
}

// failure is why the worker failed; call it after dead is closed.
func (w *worker) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// explain turns the reader's error into what calls report.
func (w *worker) explain(err error) error {
	w.mu.Lock()
	why := w.killWhy
	w.mu.Unlock()
	if errors.Is(err, ErrProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) {
		w.log.Error("the worker broke the frame protocol; replacing it", "error", err)
		killGroup(w.cmd)
		return fmt.Errorf("worker %d (pid %d): %w", w.id, w.cmd.Process.Pid, err)
	}
	// The pipe broke or closed: the process is gone, or going.
	select {
	case <-w.exited:
	case <-time.After(2 * time.Second):
		killGroup(w.cmd)
		return fmt.Errorf("%w: worker %d (pid %d) closed its replies: %w (the process was still running; it was killed)",
			ErrWorkerCrashed, w.id, w.cmd.Process.Pid, err)
	}
	// Its last words may still be in the pipes; a child it left behind
	// could hold them open, so wait only briefly.
	select {
	case <-w.logged:
	case <-time.After(time.Second):
	}
	msg := fmt.Sprintf("%v: worker %d (pid %d) %s", ErrWorkerCrashed, w.id, w.cmd.Process.Pid, exitText(w.waitErr))
	if why != "" {
		msg += " after the server killed it: " + why
	}
	if tail := w.tail.String(); tail != "" {
		msg += "; its last output:\n" + tail
	}
	return &crashError{msg: msg}
}

// crashError carries a worker's exit and last output; it matches ErrWorkerCrashed.
type crashError struct{ msg string }

func (e *crashError) Error() string        { return e.msg }
func (e *crashError) Is(target error) bool { return target == ErrWorkerCrashed }

func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return "exited with " + ee.ProcessState.String()
	}
	if err == nil {
		return "exited with status 0"
	}
	return "exited: " + err.Error()
}

// request sends f with input and waits for its reply until ctx ends or,
// if the worker takes longer than timeout, kills the worker. A caller that
// gives up leaves the worker running: its late reply is dropped.
func (w *worker) request(ctx context.Context, f frame, input Body, timeout time.Duration) (result, error) {
	c := &call{what: f.kind.String(), done: make(chan result, 1)}
	if f.kind == kindCall {
		c.what = "call"
	}
	w.mu.Lock()
	if w.failed != nil {
		err := w.failed
		w.mu.Unlock()
		return result{}, err
	}
	f.id = w.nextID
	w.nextID++
	var span int
	shm := false
	if input != nil && input.Len() >= shmMinBytes && w.usesShm() {
		span, shm = w.shm.requests.alloc(input.Len())
		if shm {
			w.held[f.id] = span
		}
	}
	w.pending[f.id] = c
	releases := w.releases
	w.releases = nil
	w.mu.Unlock()

	switch {
	case shm:
		n := input.Len()
		input.Put(w.shm.request(span, n))
		f.flags |= flagShm
		f.shmOff, f.shmLen = uint64(span), uint64(n)
	case input != nil:
		f.body = make([]byte, input.Len())
		input.Put(f.body)
	}
	deadline := time.Now().Add(timeout)
	frames := []frame{f}
	if len(releases) > 0 {
		frames = []frame{{kind: kindRelease, body: releaseBody(releases)}, f}
	}
	sendDeadline := deadline
	if d, ok := ctx.Deadline(); ok && d.Before(sendDeadline) {
		sendDeadline = d
	}
	if err := w.ch.send(sendDeadline, frames...); err != nil {
		// A frame cut off mid-way leaves no way back.
		w.killBecause("sending a " + c.what + " failed: " + err.Error())
		<-w.dead
		return result{}, w.failure()
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case r := <-c.done:
		return r, r.err
	case <-ctx.Done():
		w.abandon(f.id, c)
		return result{}, ctx.Err()
	case <-timer.C:
		why := fmt.Sprintf("a %s did not answer within %s (the call timeout)", c.what, timeout)
		w.killBecause(why)
		// Failed now, not when the reader notices, so no call picks it meanwhile.
		w.fail(errors.New(why))
		w.abandon(f.id, c)
		return result{}, fmt.Errorf("%w: did not answer within %s (the call timeout); the worker was killed", ErrTimeout, timeout)
	}
}

// abandon drops a request's reply: when it comes, or now if it came as
// the caller gave up.
func (w *worker) abandon(id uint64, c *call) {
	w.mu.Lock()
	_, waiting := w.pending[id]
	c.abandoned = true
	w.mu.Unlock()
	if !waiting {
		if r := <-c.done; r.err == nil {
			w.reply(r).Release()
		}
	}
}

// killBecause kills the process; calls waiting on it fail naming why.
func (w *worker) killBecause(why string) {
	w.mu.Lock()
	if w.killWhy == "" {
		w.killWhy = why
	}
	w.mu.Unlock()
	w.log.Warn("killing the worker", "reason", why)
	killGroup(w.cmd)
}

// reply wraps a result as a Reply whose release hands a shared-memory
// body back to the worker.
func (w *worker) reply(r result) *Reply {
	out := &Reply{Data: r.data, ErrorColumn: r.f.flags&flagErrorColumn != 0}
	if r.f.flags&flagShm != 0 {
		id := r.f.id
		out.release = func() { w.releaseReply(id) }
	}
	return out
}

// releaseReply tells the worker it may reuse a reply's span: with the
// next request, or, if none is in flight, from the flusher at once. It
// never blocks: gRPC's connection writer calls it once it has written a
// batch that lay in shared memory.
func (w *worker) releaseReply(id uint64) {
	defer w.shm.release()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		return
	}
	w.releases = append(w.releases, id)
	if len(w.pending) == 0 || len(w.releases) >= 64 {
		select {
		case w.flush <- struct{}{}:
		default: // a flush is due already
		}
	}
}

// flusher sends the releases no request took along, until the worker fails.
func (w *worker) flusher() {
	for {
		select {
		case <-w.flush:
		case <-w.dead:
			return
		}
		w.mu.Lock()
		ids := w.releases
		w.releases = nil
		w.mu.Unlock()
		if len(ids) > 0 {
			// A worker that cannot take it is failing, and the reader will say so.
			_ = w.ch.send(time.Now().Add(time.Second), frame{kind: kindRelease, body: releaseBody(ids)})
		}
	}
}

// callError decodes an error frame.
func callError(f frame) error {
	var e struct {
		Function  string `json:"function"`
		Row       *int64 `json:"row"`
		Type      string `json:"type"`
		Message   string `json:"message"`
		Traceback string `json:"traceback"`
	}
	if err := json.Unmarshal(f.header, &e); err != nil {
		return fmt.Errorf("%w: error frame %q: %w", ErrProtocol, f.header, err)
	}
	ce := &CallError{Function: e.Function, Row: -1, Type: e.Type, Message: e.Message, Traceback: e.Traceback}
	if e.Row != nil {
		ce.Row = *e.Row
	}
	return ce
}

// stop ends the worker gracefully: closing its input makes it exit once it
// has answered what it read; after grace it is killed. Either way its
// goroutines are joined and its shared memory let go.
func (w *worker) stop(grace time.Duration) {
	w.stopOnce.Do(func() {
		_ = w.ch.closeRequests()
		select {
		case <-w.exited:
		case <-time.After(grace):
			w.log.Warn("worker did not exit gracefully; killing it", "after", grace)
			killGroup(w.cmd)
		}
		w.join()
	})
}

// kill ends the worker at once.
func (w *worker) kill() {
	w.stopOnce.Do(func() {
		killGroup(w.cmd)
		w.join()
	})
}

func (w *worker) join() {
	<-w.exited
	w.ch.close() // ends the reader if the pipe is still open
	w.pumps.Wait()
	if w.shm != nil {
		w.shm.release()
	}
}

// alive reports whether the process is still running and usable.
func (w *worker) alive() bool {
	select {
	case <-w.dead:
		return false
	case <-w.exited:
		return false
	default:
		return true
	}
}
