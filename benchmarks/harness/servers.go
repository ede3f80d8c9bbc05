package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverSpec says how to run one server and what it computes.
type serverSpec struct {
	name      string // in tables and -servers
	what      string // for the report
	venv      string // its venv (benchmarks/peers/requirements-<venv>.txt); "" when it needs none
	workloads []string
	stateDir  bool // takes --state-dir, so a cold start differs from a warm one
	declares  bool // answers GetFlightInfo with its signatures
	versions  bool // serves `versions`, which says what it runs
	argv      func(e *env, addr, stateDir string) []string
}

// asyncWorkersEnv tells benchmarks/workloads/fletch/async_workloads.py how
// many workers share each workload's calls in flight.
const asyncWorkersEnv = "BENCH_ASYNC_WORKERS"

const (
	echoServer   = "echo"
	fletchGo     = "fletch-go"
	fletchPython = "fletch-python"
	pyarrowPeer  = "pyarrow"
	arrowUDFPeer = "arrow-udf"
	databendPeer = "databend"
)

// servers lists every server in report order.
func servers() []serverSpec {
	compute := []string{"identity_int64", "identity_utf8", "add_int64", "upper"}
	python := append(compute[:len(compute):len(compute)], "plus_one")
	peer := func(venv, script string) func(e *env, addr, _ string) []string {
		return func(e *env, addr, _ string) []string {
			return []string{e.python[venv], filepath.Join(e.cfg.root, "benchmarks", "peers", script), "--listen", addr}
		}
	}
	return []serverSpec{
		{name: echoServer, what: "bare arrow-go DoExchange echo (benchmarks/cmd/echoserver)",
			workloads: []string{"identity_int64", "identity_utf8"},
			argv:      func(e *env, addr, _ string) []string { return []string{e.echo, "-listen", addr} }},
		{name: fletchGo, what: "fletch serve, built-in Go functions", workloads: compute, stateDir: true, declares: true,
			argv: func(e *env, addr, state string) []string {
				return []string{e.fletch, "serve", "--listen", addr, "--state-dir", state, "--log-level", "warn"}
			}},
		{name: fletchPython, what: "fletch serve --no-builtins --udf-dir benchmarks/workloads/fletch --workers <cores> (embedded CPython)",
			workloads: append(python, "async_100", "async_1000"), stateDir: true, declares: true, versions: true,
			argv: func(e *env, addr, state string) []string {
				return []string{e.fletch, "serve", "--listen", addr, "--state-dir", state, "--log-level", "warn",
					"--no-builtins", "--udf-dir", filepath.Join(e.cfg.root, "benchmarks", "workloads", "fletch"),
					"--workers", strconv.Itoa(pythonWorkers())}
			}},
		{name: pyarrowPeer, what: "plain pyarrow.flight server, computing in-process (benchmarks/peers/pyarrow_server.py)",
			venv: "pyarrow", workloads: python, declares: true, versions: true, argv: peer("pyarrow", "pyarrow_server.py")},
		{name: arrowUDFPeer, what: "RisingWave arrow-udf UdfServer, batch=True; plus_one row-wise (benchmarks/peers/arrowudf_server.py)",
			venv: "arrowudf", workloads: python, declares: true, versions: true, argv: peer("arrowudf", "arrowudf_server.py")},
		{name: databendPeer, what: "Databend databend-udf UDFServer, batch_mode=True; plus_one row-wise, io_threads=None (benchmarks/peers/databend_server.py)",
			venv: "databend", workloads: python, declares: true, versions: true, argv: peer("databend", "databend_server.py")},
	}
}

// pythonWorkers is the --workers fletch-python runs with: one per core,
// fletch's default, given explicitly because the async workloads divide
// their calls in flight among the workers.
func pythonWorkers() int { return runtime.NumCPU() }

func serverNames() []string {
	var names []string
	for _, s := range servers() {
		names = append(names, s.name)
	}
	return names
}

// serves reports whether s computes workload w.
func (s serverSpec) serves(w string) bool {
	for _, x := range s.workloads {
		if x == w {
			return true
		}
	}
	return false
}

// process is one running server.
type process struct {
	name    string
	addr    string
	cmd     *exec.Cmd
	log     string // its stdout and stderr
	started time.Time
	done    chan struct{}
	waitErr error // set before done is closed
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := lis.Addr().String()
	return addr, lis.Close()
}

// startProcess starts argv in its own process group, its output to logPath.
func startProcess(name string, argv []string, logPath, addr string) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	// asyncWorkersEnv lets the async workloads split their calls in flight
	// across fletch-python's workers.
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", asyncWorkersEnv+"="+strconv.Itoa(pythonWorkers()))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &process{name: name, addr: addr, cmd: cmd, log: logPath, done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, argv[0], err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, and SIGKILL after grace. It
// returns an error if the server had already exited on its own.
func (p *process) stop(grace time.Duration) error {
	if p.exited() {
		return fmt.Errorf("%s exited early (%v); its log ends:\n%s", p.name, p.waitErr, p.tail())
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	return nil
}

// tail is the end of the process's log.
func (p *process) tail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.log, err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return "  " + strings.ReplaceAll(string(bytes.Join(lines, []byte("\n"))), "\n", "\n  ")
}

// launch starts server s on a free port.
func launch(e *env, s serverSpec, stateDir, tag string) (*process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(e.logs, fmt.Sprintf("%s-%s.log", s.name, tag))
	return startProcess(s.name, s.argv(e, addr, stateDir), logPath, addr)
}

// errNotReady marks a failed probe worth retrying: nothing listens yet.
var errNotReady = errors.New("not ready")

// awaitFirstAnswer calls the server's identity function with one row until
// it answers correctly, and returns the time from the process's start. A
// wrong answer, or any failure other than nothing listening yet, ends the
// wait at once.
func awaitFirstAnswer(ctx context.Context, p *process, probe func(ctx context.Context, addr string) error, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	for {
		if p.exited() {
			return 0, fmt.Errorf("%s exited while starting (%v); its log ends:\n%s", p.name, p.waitErr, p.tail())
		}
		err := probe(ctx, p.addr)
		if err == nil {
			return time.Since(p.started), nil
		}
		if !errors.Is(err, errNotReady) {
			return 0, fmt.Errorf("%s: first call: %w", p.name, err)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: no answer within %v: %w; its log ends:\n%s", p.name, timeout, err, p.tail())
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
