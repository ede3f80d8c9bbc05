package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"

	fletchpy "github.com/fletch-udf/fletch/clients/python"
	"github.com/fletch-udf/fletch/exec"
	"github.com/fletch-udf/fletch/pybridge"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// pythonUDFs loads the Python projects of cfg.udfDirs into catalog, one
// worker pool per environment. The returned stop ends the pools and the
// runtimes; projects is the admin surface for live registration.
func pythonUDFs(ctx context.Context, cfg *serveConfig, catalog *udfcatalog.Registry, mem memory.Allocator,
	log hclog.Logger) (_ *exec.Python, _ *exec.Projects, stop func(), err error) {
	dirs, err := absDirs(cfg.udfDirs)
	if err != nil {
		return nil, nil, nil, err
	}
	log = log.Named("python")
	key, err := stateKey(cfg.stateKeyFile)
	if err != nil {
		return nil, nil, nil, err
	}
	runtimes := &runtimes{opts: pybridge.RuntimeOptions{
		Python:   cfg.python,
		StateDir: cfg.stateDir,
		Source:   fletchpy.Source(),
		Logger:   log,
	}}
	python := exec.NewPython(catalog, mem, int64(cfg.maxMessageBytes), log)
	var registerDir string
	cleanup := func() {
		python.Close()
		runtimes.Close()
		if registerDir != "" {
			os.RemoveAll(registerDir)
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	if cfg.liveRegistration {
		// Registered modules live as long as the process.
		if registerDir, err = os.MkdirTemp("", "fletch-registered-"); err != nil {
			return nil, nil, nil, err
		}
	}
	projects := exec.NewProjects(python, exec.ProjectsConfig{
		Dirs:        dirs,
		RegisterDir: registerDir,
		Interpreter: runtimes.Interpreter,
		Base: pybridge.Config{
			Env:           []string{stateKeyEnv + "=" + hex.EncodeToString(key)},
			Workers:       cfg.workers,
			CallTimeout:   cfg.callTimeout,
			MaxReplyBytes: int64(cfg.maxMessageBytes),
			SharedBytes:   sharedBytes(cfg.workerTransport),
		},
		Log: log,
	})
	report, err := projects.Sync(ctx)
	if err != nil {
		return nil, nil, nil, &usageError{msg: err.Error()}
	}
	report.Log(log)
	if len(report.Failed) > 0 {
		var msgs []string
		for env, ferr := range report.Failed {
			msgs = append(msgs, fmt.Sprintf("%s: %v", env, ferr))
		}
		sort.Strings(msgs)
		return nil, nil, nil, fmt.Errorf("start Python workers: %s", strings.Join(msgs, "; "))
	}
	if len(report.Loaded) == 0 && !cfg.watch && !cfg.liveRegistration {
		return nil, nil, nil, &usageError{msg: fmt.Sprintf("no UDF modules (*.py files, packages or *.zip) in --udf-dir %s", strings.Join(cfg.udfDirs, ", "))}
	}
	if problems := report.Problems(); cfg.strict && len(problems) > 0 {
		return nil, nil, nil, fmt.Errorf("--strict: %d problem(s) loading Python UDFs:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return python, projects, cleanup, nil
}

// absDirs makes the UDF directories absolute, so workers and the watcher
// do not depend on the working directory.
func absDirs(dirs []string) ([]string, error) {
	out := make([]string, len(dirs))
	for i, dir := range dirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		out[i] = abs
	}
	return out, nil
}

// runtimes opens each Python runtime once: the server's, and those that
// project settings name.
type runtimes struct {
	opts pybridge.RuntimeOptions
	mu   sync.Mutex
	open map[string]*pybridge.Runtime
}

// Interpreter returns the interpreter at python, or the server's for "".
func (r *runtimes) Interpreter(ctx context.Context, python string) (pybridge.Interpreter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt, ok := r.open[python]; ok {
		return rt.Interpreter, nil
	}
	opts := r.opts
	if python != "" {
		opts.Python = python
	}
	rt, err := pybridge.OpenRuntime(ctx, opts)
	if err != nil {
		return pybridge.Interpreter{}, err
	}
	if r.open == nil {
		r.open = make(map[string]*pybridge.Runtime)
	}
	r.open[python] = rt
	return rt.Interpreter, nil
}

func (r *runtimes) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rt := range r.open {
		rt.Close()
	}
	r.open = nil
}

// stateKeyEnv passes the key that signs aggregate states to the workers.
const stateKeyEnv = "FLETCH_STATE_KEY"

// stateKey reads the key that signs aggregate states, or makes a random
// one: then only this process can read back the states it hands out.
func stateKey(file string) ([]byte, error) {
	if file == "" {
		key := make([]byte, 32)
		_, err := rand.Read(key)
		return key, err
	}
	key, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--state-key-file: %w", err)
	}
	if key = bytes.TrimSpace(key); len(key) < 16 {
		return nil, &usageError{msg: fmt.Sprintf("--state-key-file %s: the key must be at least 16 bytes, got %d", file, len(key))}
	}
	return key, nil
}

// sharedBytes is the pool's SharedBytes for a --worker-transport.
func sharedBytes(transport string) int {
	if transport == "pipe" {
		return -1
	}
	return 0 // the default size
}
