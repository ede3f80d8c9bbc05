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

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"

	fletchpy "github.com/fletch-udf/fletch/clients/python"
	"github.com/fletch-udf/fletch/exec"
	"github.com/fletch-udf/fletch/pybridge"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// pythonUDFs starts the worker pool for the modules in cfg.udfDirs and
// registers their UDFs. The returned stop ends the pool and the runtime.
func pythonUDFs(ctx context.Context, cfg *serveConfig, catalog *udfcatalog.Registry, mem memory.Allocator,
	log hclog.Logger) (_ *exec.Python, stop func(), err error) {
	modules, paths, err := findModules(cfg.udfDirs)
	if err != nil {
		return nil, nil, err
	}
	log = log.Named("python")
	rt, err := pybridge.OpenRuntime(ctx, pybridge.RuntimeOptions{
		Python:   cfg.python,
		StateDir: cfg.stateDir,
		Source:   fletchpy.Source(),
		Logger:   log,
	})
	if err != nil {
		return nil, nil, err
	}
	key, err := stateKey(cfg.stateKeyFile)
	if err != nil {
		rt.Close()
		return nil, nil, err
	}
	pool, err := pybridge.Start(ctx, pybridge.Config{
		Interpreter:   rt.Interpreter,
		Env:           []string{stateKeyEnv + "=" + hex.EncodeToString(key)},
		Paths:         paths,
		Modules:       modules,
		Workers:       cfg.workers,
		Logger:        log,
		CallTimeout:   cfg.callTimeout,
		MaxReplyBytes: int64(cfg.maxMessageBytes),
	})
	if err != nil {
		rt.Close()
		return nil, nil, fmt.Errorf("start Python workers: %w", err)
	}
	cleanup := func() {
		pool.Close()
		rt.Close()
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()

	var failed []string
	for _, me := range pool.LoadErrors() {
		log.Error("module failed to import", "module", me.Module, "path", me.Path, "error", me.Error, "traceback", me.Traceback)
		failed = append(failed, fmt.Sprintf("%s (%s)", me.Path, me.Error))
	}
	python := exec.NewPython(pool, mem, int64(cfg.maxMessageBytes))
	_, errs := python.Register(catalog)
	for _, e := range errs {
		log.Error("function not registered", "error", e)
		failed = append(failed, e.Error())
	}
	if cfg.strict && len(failed) > 0 {
		return nil, nil, fmt.Errorf("--strict: %d problem(s) loading Python UDFs:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	log.Info("python workers ready", "workers", pool.Size(), "modules", len(modules), "functions", len(pool.Functions()),
		"failed_modules", len(pool.LoadErrors()))
	return python, cleanup, nil
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

// findModules lists the *.py files of each directory, in name order, and
// returns them with the directories to put on sys.path.
func findModules(dirs []string) ([]pybridge.Module, []string, error) {
	var modules []pybridge.Module
	var paths []string
	byName := make(map[string]string)
	for _, dir := range dirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, nil, err
		}
		entries, err := os.ReadDir(abs)
		if err != nil {
			return nil, nil, &usageError{msg: fmt.Sprintf("--udf-dir %s: %v", dir, err)}
		}
		paths = append(paths, abs)
		var names []string
		for _, e := range entries {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".py") {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			name, path := strings.TrimSuffix(n, ".py"), filepath.Join(abs, n)
			if other, ok := byName[name]; ok {
				return nil, nil, &usageError{msg: fmt.Sprintf("module name %q is used by both %s and %s", name, other, path)}
			}
			byName[name] = path
			modules = append(modules, pybridge.Module{Name: name, Path: path})
		}
	}
	if len(modules) == 0 {
		return nil, nil, &usageError{msg: fmt.Sprintf("no *.py modules in --udf-dir %s", strings.Join(dirs, ", "))}
	}
	return modules, paths, nil
}
