package pybridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
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
}

// worker is one Python process and the goroutines that watch it.
type worker struct {
	id       int
	log      hclog.Logger
	cmd      *exec.Cmd
	conn     transport
	tail     lineTail
	hello    hello
	exited   chan struct{} // closed once the process has been reaped
	waitErr  error         // the process's exit status, set before exited closes
	logged   chan struct{} // closed once stdout and stderr reach end of file
	pumps    sync.WaitGroup
	stopOnce sync.Once
}

// startWorker starts a worker process and completes the handshake.
func startWorker(ctx context.Context, id int, interp Interpreter, log hclog.Logger) (_ *worker, err error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(reqR, reqW, repR, repW)
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(reqR, reqW, repR, repW, outR, outW)
		return nil, err
	}
	cmd := exec.Command(interp.Path, "-s", "-c", workerBoot)
	cmd.Env = workerEnv(interp)
	cmd.ExtraFiles = []*os.File{reqR, repW} // fd 3: requests, fd 4: replies
	cmd.Stdout, cmd.Stderr = outW, errW
	setProcAttr(cmd)
	startErr := cmd.Start()
	closeAll(reqR, repW, outW, errW) // the child holds its own copies
	if startErr != nil {
		closeAll(reqW, repR, outR, errR)
		return nil, fmt.Errorf("start %s: %w", interp.Path, startErr)
	}
	w := &worker{
		id:     id,
		log:    log.With("worker", id, "pid", cmd.Process.Pid),
		cmd:    cmd,
		conn:   newPipeTransport(reqW, repR),
		exited: make(chan struct{}),
		logged: make(chan struct{}),
	}
	var logs sync.WaitGroup
	logs.Add(2)
	w.pumps.Add(4)
	go func() { defer w.pumps.Done(); defer logs.Done(); relog(outR, "stdout", w.log, &w.tail); outR.Close() }()
	go func() { defer w.pumps.Done(); defer logs.Done(); relog(errR, "stderr", w.log, &w.tail); errR.Close() }()
	go func() { defer w.pumps.Done(); logs.Wait(); close(w.logged) }()
	go func() {
		defer w.pumps.Done()
		w.waitErr = cmd.Wait()
		close(w.exited)
	}()
	defer func() {
		if err != nil {
			w.kill()
		}
	}()

	f, _, err := w.exchange(ctx, nil, kindHello, 1<<10)
	if err != nil {
		return nil, fmt.Errorf("worker %d handshake: %w", id, err)
	}
	if err := json.Unmarshal(f.header, &w.hello); err != nil {
		return nil, fmt.Errorf("%w: worker %d hello %q: %w", ErrProtocol, id, f.header, err)
	}
	if w.hello.Protocol != protocolVersion {
		return nil, fmt.Errorf("%w: worker %d speaks protocol %d, this fletch speaks %d; the fletch Python package on its path does not match this server",
			ErrProtocol, id, w.hello.Protocol, protocolVersion)
	}
	w.log.Debug("worker started", "python", w.hello.Python, "pyarrow", w.hello.PyArrow)
	return w, nil
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

// exchange sends req (unless nil) and reads one reply of kind want (or an
// error frame), within ctx. sent reports whether req went out whole. Any
// failure leaves the worker unusable unless the caller recovers it.
func (w *worker) exchange(ctx context.Context, req *frame, want frameKind, maxBody int64) (f frame, sent bool, err error) {
	d, _ := ctx.Deadline() // the zero time means no deadline
	if err := w.conn.setDeadline(d); err != nil {
		return frame{}, false, err
	}
	// Ending ctx interrupts blocked I/O. Should that have begun, wait for it
	// before returning, or it could cut off whoever talks to the worker next.
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = w.conn.setDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	defer func() {
		if !stop() {
			<-interrupted
		}
	}()
	if req != nil {
		if err := w.conn.send(*req); err != nil {
			return frame{}, false, w.failure(ctx, "sending "+req.kind.String(), err)
		}
	}
	if f, err = w.conn.receive(maxBody); err != nil {
		return frame{}, true, w.failure(ctx, "waiting for "+want.String(), err)
	}
	if f.kind != want && f.kind != kindError {
		return frame{}, true, fmt.Errorf("%w: expected a %s frame, got %s", ErrProtocol, want, f.kind)
	}
	return f, true, nil
}

// failure explains why talking to the worker failed.
func (w *worker) failure(ctx context.Context, doing string, err error) error {
	switch {
	case errors.Is(err, ErrProtocol):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		// Deadlines come only from ctx: its deadline, or its cancellation.
		if errors.Is(ctx.Err(), context.Canceled) {
			return ctx.Err()
		}
		return fmt.Errorf("%w while %s", ErrTimeout, doing)
	}
	// The pipe broke or closed: the process is gone, or going.
	select {
	case <-w.exited:
	case <-time.After(2 * time.Second):
		return fmt.Errorf("%w: %s: %w (the process is still running)", ErrWorkerCrashed, doing, err)
	}
	// Its last words may still be in the pipes; a child it left behind
	// could hold them open, so wait only briefly.
	select {
	case <-w.logged:
	case <-time.After(time.Second):
	}
	msg := fmt.Sprintf("%v: worker %d (pid %d) %s while %s", ErrWorkerCrashed, w.id, w.cmd.Process.Pid, exitText(w.waitErr), doing)
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

// stop ends the worker gracefully: closing its input makes it exit; after
// grace it is killed. Either way its goroutines are joined.
func (w *worker) stop(grace time.Duration) {
	w.stopOnce.Do(func() {
		_ = w.conn.close()
		select {
		case <-w.exited:
		case <-time.After(grace):
			w.log.Warn("worker did not exit gracefully; killing it", "after", grace)
			killGroup(w.cmd)
		}
		<-w.exited
		w.pumps.Wait()
	})
}

// kill ends the worker at once.
func (w *worker) kill() {
	w.stopOnce.Do(func() {
		killGroup(w.cmd)
		_ = w.conn.close()
		<-w.exited
		w.pumps.Wait()
	})
}

// alive reports whether the process is still running.
func (w *worker) alive() bool {
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}
