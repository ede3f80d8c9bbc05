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

func startPool(t *testing.T, mode string, workers int, mutate ...func(*Config)) (*Pool, *logBuffer) {
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
	if fns := p.Functions(); len(fns) != 1 || fns[0].Name != "echo" || fns[0].SourceSHA256 != "00" {
		t.Errorf("Functions() = %+v", fns)
	}
	if errs := p.LoadErrors(); len(errs) != 1 || errs[0].Module != "broken" {
		t.Errorf("LoadErrors() = %+v", errs)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			in := bytes.Repeat([]byte{byte(i)}, 100_000+i)
			out, err := p.Call(context.Background(), Request{Fn: "echo", Input: in})
			if err != nil || !bytes.Equal(out, in) {
				t.Errorf("call %d: %d bytes, %v", i, len(out), err)
			}
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
		{"hang", ErrTimeout, "did not answer within 500ms"},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			p, _ := startPool(t, "ok", 1, func(c *Config) { c.CallTimeout = 500 * time.Millisecond })
			_, err := p.Call(context.Background(), Request{Fn: tt.fn, Input: []byte("x")})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Call(%s) = %v, want %v containing %q", tt.fn, err, tt.want, tt.msg)
			}
			// The only worker was replaced; the next call works.
			out, err := p.Call(context.Background(), Request{Fn: "echo", Input: []byte("after")})
			if err != nil || string(out) != "after" {
				t.Errorf("the call after %s = %q, %v", tt.fn, out, err)
			}
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
	if _, err := p.Call(ctx, Request{Fn: "slow", Input: []byte("x")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call with a short deadline = %v", err)
	}
	out, err := p.Call(context.Background(), Request{Fn: "echo", Input: []byte("next")})
	if err != nil || string(out) != "next" {
		t.Fatalf("next call = %q, %v", out, err)
	}
	if strings.Contains(logs.String(), "replacing the worker") || strings.Contains(logs.String(), "replaced worker") {
		t.Errorf("a cancelled call that finished should not cost the worker:\n%s", logs.String())
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		mode string
		want string
	}{
		{"bad-protocol", "speaks protocol 99, this fletch speaks 1"},
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
