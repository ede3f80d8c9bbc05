package pybridge

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// logBuffer collects what workers logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func startPool(t testing.TB, mode string, workers int, mutate ...func(*Config)) (*Pool, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := Config{
		Interpreter:  fakeInterpreter(t, mode),
		Workers:      workers,
		Logger:       hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}),
		StartTimeout: 10 * time.Second,
		CallTimeout:  10 * time.Second,
		StopTimeout:  200 * time.Millisecond,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start(%s): %v", mode, err)
	}
	t.Cleanup(func() { p.Close() })
	return p, logs
}

func TestPoolCalls(t *testing.T) {
	p, logs := startPool(t, "ok", 2)
	if fns := p.Functions(); len(fns) != len(fakeFunctions) || fns[0].Name != "echo" || fns[0].SourceSHA256 != "00" {
		t.Errorf("Functions() = %+v", fns)
	}
	if errs := p.LoadErrors(); len(errs) != 1 || errs[0].Module != "broken" {
		t.Errorf("LoadErrors() = %+v", errs)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			in := bytes.Repeat([]byte{byte(i)}, 100_000+i)
			out, err := p.Call(context.Background(), Request{Fn: "echo", Input: Bytes(in)})
			if err != nil || !bytes.Equal(out.Data, in) {
				t.Errorf("call %d: %v", i, err)
			}
			out.Release()
		})
	}
	wg.Wait()

	_, err := p.Call(context.Background(), Request{Fn: "raise"})
	var ce *CallError
	if !errors.As(err, &ce) || ce.Row != 2 || ce.Type != "ValueError" || !strings.Contains(err.Error(), "ValueError: bad row") {
		t.Errorf("raise = %v, want a CallError at row 2", err)
	}
	p.Close()
	for _, want := range []string{"hello from the fake", "function=none", "a plain stdout line"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("worker logs lack %q:\n%s", want, logs.String())
		}
	}
}

func TestPoolReplacesBrokenWorkers(t *testing.T) {
	tests := []struct {
		fn   string
		want error
		msg  string
	}{
		{"crash", ErrWorkerCrashed, "signal: killed"},
		{"garbage", ErrProtocol, "bad frame magic"},
		{"stray", ErrProtocol, "which no call is waiting for"},
		{"oob", ErrProtocol, "lies outside the 1048576-byte reply region"},
		{"partial", ErrWorkerCrashed, "signal: killed"},
		{"hang", ErrTimeout, "did not answer within 500ms"},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			p, _ := startPool(t, "ok", 1, func(c *Config) { c.CallTimeout = 500 * time.Millisecond; c.SharedBytes = 1 << 20 })
			_, err := p.Call(context.Background(), Request{Fn: tt.fn, Input: Bytes("x")})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Call(%s) = %v, want %v containing %q", tt.fn, err, tt.want, tt.msg)
			}
			// The only worker was replaced; the next call works.
			out, err := p.Call(context.Background(), Request{Fn: "echo", Input: Bytes("after")})
			if err != nil || string(out.Data) != "after" {
				t.Errorf("the call after %s = %v", tt.fn, err)
			}
			out.Release()
		})
	}
}

func TestCrashReportsLastOutput(t *testing.T) {
	p, _ := startPool(t, "ok", 1)
	_, err := p.Call(context.Background(), Request{Fn: "crash"})
	if err == nil || !strings.Contains(err.Error(), "Fatal Python error: Segmentation fault") {
		t.Errorf("crash error = %v, want the worker's last output", err)
	}
}

func TestCancelledCallKeepsTheWorker(t *testing.T) {
	p, logs := startPool(t, "ok", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Call(ctx, Request{Fn: "slow", Input: Bytes("x")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call with a short deadline = %v", err)
	}
	out, err := p.Call(context.Background(), Request{Fn: "echo", Input: Bytes("next")})
	if err != nil || string(out.Data) != "next" {
		t.Fatalf("next call = %v", err)
	}
	out.Release()
	if strings.Contains(logs.String(), "replacing the worker") || strings.Contains(logs.String(), "replaced worker") {
		t.Errorf("a cancelled call that finished should not cost the worker:\n%s", logs.String())
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		mode string
		want string
	}{
		{"bad-protocol", "speaks protocol 99, this fletch speaks 2"},
		{"exit-at-start", "ImportError: no module named pyarrow"},
		{"no-hello", "timed out while waiting for hello"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			_, err := Start(context.Background(), Config{
				Interpreter:  fakeInterpreter(t, tt.mode),
				Workers:      1,
				StartTimeout: 500 * time.Millisecond,
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start(%s) = %v, want an error containing %q", tt.mode, err, tt.want)
			}
		})
	}
}

func TestCloseKillsStubbornWorkers(t *testing.T) {
	p, logs := startPool(t, "slow-exit", 2)
	start := time.Now()
	p.Close()
	if !strings.Contains(logs.String(), "did not exit gracefully") {
		t.Errorf("logs lack the kill after the grace period:\n%s", logs.String())
	}
	if _, err := p.Call(context.Background(), Request{Fn: "echo"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after Close = %v, want ErrClosed", err)
	}
	t.Logf("Close took %s", time.Since(start))
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Info})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestCallsFailFastWhenWorkersCannotStart: with no worker left and
// replacements failing, calls stop waiting after a few attempts.
func TestCallsFailFastWhenWorkersCannotStart(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "started")
	p, _ := startPool(t, "start-once", 1, func(c *Config) {
		c.Interpreter.Env = append(c.Interpreter.Env, "FLETCH_FAKE_MARKER="+marker)
	})
	if _, err := p.Call(context.Background(), Request{Fn: "crash"}); !errors.Is(err, ErrWorkerCrashed) {
		t.Fatalf("crash = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := p.Call(ctx, Request{Fn: "echo"})
	if !errors.Is(err, ErrWorkerCrashed) || !strings.Contains(err.Error(), "the last 3 attempts to start one failed") ||
		!strings.Contains(err.Error(), "cannot start again") {
		t.Errorf("Call with no worker able to start = %v", err)
	}
}

// transports runs a test over shared memory and over pipes alone.
var transports = []struct {
	name  string
	bytes int
}{{"shm", 1 << 20}, {"pipe", -1}}

// TestPipelinedCalls: many concurrent calls share few workers, several in
// flight on each, and every reply goes to its own caller; bodies that do
// not fit the shared memory fall back to the pipes.
func TestPipelinedCalls(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			p, _ := startPool(t, "ok", 2, func(c *Config) { c.Pipeline = 4; c.SharedBytes = tr.bytes })
			var wg sync.WaitGroup
			for i := range 64 {
				wg.Go(func() {
					size := 1 + i*1997
					if i%16 == 0 {
						size = 2 << 20 // larger than the shared half: inline
					}
					in := bytes.Repeat([]byte{byte(i)}, size)
					out, err := p.Call(context.Background(), Request{Fn: "echo", Input: Bytes(in)})
					if err != nil {
						t.Errorf("call %d: %v", i, err)
						return
					}
					defer out.Release()
					if !bytes.Equal(out.Data, in) {
						t.Errorf("call %d: got %d bytes of %d, want %d of %d", i, len(out.Data), out.Data[0], len(in), i)
					}
				})
			}
			wg.Wait()
			for _, w := range p.workers {
				if w.shm != nil && w.shm.requests.used() != 0 {
					t.Errorf("worker %d: %d request spans still live", w.id, w.shm.requests.used())
				}
				if n := len(w.held); n != 0 {
					t.Errorf("worker %d: %d inputs still held", w.id, n)
				}
			}
		})
	}
}

// TestSharedMemoryIsReused: sequential calls reuse the first span of the
// request half, and nothing lies in shared memory once replies are released.
func TestSharedMemoryIsReused(t *testing.T) {
	p, _ := startPool(t, "ok", 1, func(c *Config) { c.SharedBytes = 1 << 20 })
	w := p.workers[0]
	if !w.usesShm() {
		t.Fatal("the fake worker did not map its shared memory")
	}
	for i := range 100 {
		in := bytes.Repeat([]byte{byte(i)}, 2*shmMinBytes)
		out, err := p.Call(context.Background(), Request{Fn: "echo", Input: Bytes(in)})
		if err != nil || !bytes.Equal(out.Data, in) {
			t.Fatalf("call %d: %v", i, err)
		}
		if &out.Data[0] != &w.shm.mem[w.shm.reqSize] {
			t.Fatalf("call %d: the reply is not at the start of the reply half", i)
		}
		out.Release()
	}
	if w.shm.requests.used() != 0 || w.shm.requests.high != 0 {
		t.Errorf("request half: %d spans live, high-water %d", w.shm.requests.used(), w.shm.requests.high)
	}
	if refs := w.shm.refs.Load(); refs != 1 {
		t.Errorf("region references = %d, want 1 (the worker's own)", refs)
	}
}

// TestHeldInputIsNotReused: an input the worker still holds after its
// reply is not handed to another call until the worker releases it.
func TestHeldInputIsNotReused(t *testing.T) {
	p, _ := startPool(t, "ok", 1, func(c *Config) { c.SharedBytes = 1 << 20 })
	w := p.workers[0]
	out, err := p.Call(context.Background(), Request{Fn: "hold", Input: Bytes(make([]byte, shmMinBytes))})
	if err != nil {
		t.Fatal(err)
	}
	out.Release()
	w.mu.Lock()
	heldAt, held := -1, len(w.held)
	for _, off := range w.held {
		heldAt = off
	}
	w.mu.Unlock()
	if held != 1 || w.shm.requests.used() != 1 {
		t.Fatalf("after a held input: %d held, %d spans live", held, w.shm.requests.used())
	}
	// The next input goes elsewhere.
	if off, ok := w.shm.requests.alloc(1); !ok || off == heldAt {
		t.Errorf("a span at the held offset %d was free before its release", heldAt)
	} else if err := w.shm.freeRequest(off); err != nil {
		t.Fatal(err)
	}
	// The next call makes the fake release the first.
	big := bytes.Repeat([]byte("next"), shmMinBytes)
	next, err := p.Call(context.Background(), Request{Fn: "echo", Input: Bytes(big)})
	if err != nil || !bytes.Equal(next.Data, big) {
		t.Fatalf("echo = %v", err)
	}
	next.Release()
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		n := len(w.held)
		w.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker's release never freed the held input")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTimeoutFailsQueuedCalls: a call queued behind one that hangs fails
// clearly when the hung worker is killed, and the pool recovers.
func TestTimeoutFailsQueuedCalls(t *testing.T) {
	p, _ := startPool(t, "ok", 1, func(c *Config) { c.CallTimeout = 500 * time.Millisecond; c.Pipeline = 2 })
	hung := make(chan error, 1)
	go func() {
		_, err := p.Call(context.Background(), Request{Fn: "hang"})
		hung <- err
	}()
	for {
		p.mu.Lock()
		busy := p.workers[0].inflight
		p.mu.Unlock()
		if busy == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	_, err := p.Call(context.Background(), Request{Fn: "echo", Input: Bytes("queued")})
	if !errors.Is(err, ErrWorkerCrashed) && !errors.Is(err, ErrTimeout) {
		t.Errorf("the queued call = %v, want it to fail with the worker", err)
	}
	if err := <-hung; !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "hang: python worker timed out") {
		t.Errorf("the hung call = %v, want ErrTimeout naming it", err)
	}
	out, err := p.Call(context.Background(), Request{Fn: "echo", Input: Bytes("after")})
	if err != nil || string(out.Data) != "after" {
		t.Fatalf("a call after the replacement = %v", err)
	}
	out.Release()
}
