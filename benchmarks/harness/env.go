package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// env is what the servers run from: binaries, venvs and directories.
type env struct {
	cfg    config
	fletch string            // a copy of -fletch, immune to rebuilds during the run
	echo   string            // the echo server, built for this run
	python map[string]string // venv name → its interpreter
	plot   string            // the plot venv's interpreter; "" when not plotting
	run    string            // this run's scratch dir (logs, cold state dirs)
	logs   string
	state  string // the state dir the measured fletch servers share (kept between runs: warm)
}

// prepare builds and installs what the selected servers need. Venvs are
// made once and remade only when their requirements file or the
// interpreter changes.
func prepare(ctx context.Context, cfg config, plot bool, stderr io.Writer) (_ *env, err error) {
	e := &env{cfg: cfg, python: map[string]string{}}
	for _, d := range []string{"bin", "venvs", "state"} {
		if err := os.MkdirAll(filepath.Join(cfg.cache, d), 0o755); err != nil {
			return nil, fmt.Errorf("cache dir: %w", err)
		}
	}
	run, err := os.MkdirTemp(cfg.cache, "run-")
	if err != nil {
		return nil, fmt.Errorf("scratch dir: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(run)
		}
	}()
	e.run, e.logs, e.state = run, filepath.Join(run, "logs"), filepath.Join(cfg.cache, "state", "fletch")
	if err := os.MkdirAll(e.logs, 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	for _, s := range servers() {
		if !wanted(cfg, s) {
			continue
		}
		switch {
		case s.name == echoServer:
			e.echo = filepath.Join(cfg.cache, "bin", "echoserver")
			if err := command(ctx, cfg.root, "go", "build", "-o", e.echo, "./benchmarks/cmd/echoserver"); err != nil {
				return nil, fmt.Errorf("build the echo server: %w", err)
			}
		case s.name == fletchGo || s.name == fletchPython:
			if e.fletch != "" {
				continue
			}
			e.fletch = filepath.Join(run, "fletch")
			if err := copyFile(cfg.fletch, e.fletch); err != nil {
				return nil, fmt.Errorf("%w (build it with `make build`, or pass -fletch)", err)
			}
		case s.venv != "":
			req := filepath.Join(cfg.root, "benchmarks", "peers", "requirements-"+s.venv+".txt")
			py, err := ensureVenv(ctx, cfg.python, filepath.Join(cfg.cache, "venvs", s.venv), req, stderr)
			if err != nil {
				return nil, err
			}
			e.python[s.venv] = py
		}
	}
	if plot {
		req := filepath.Join(cfg.root, "benchmarks", "harness", "requirements-plot.txt")
		py, err := ensureVenv(ctx, cfg.python, filepath.Join(cfg.cache, "venvs", "plot"), req, stderr)
		if err != nil {
			return nil, err
		}
		e.plot = py
	}
	return e, nil
}

// wanted reports whether server s was selected with -servers.
func wanted(cfg config, s serverSpec) bool {
	for _, n := range cfg.servers {
		if n == s.name {
			return true
		}
	}
	return false
}

// ensureVenv makes dir a venv of python holding exactly the pins of req.
// It returns the venv's interpreter.
func ensureVenv(ctx context.Context, python, dir, req string, stderr io.Writer) (string, error) {
	pins, err := os.ReadFile(req)
	if err != nil {
		return "", fmt.Errorf("requirements: %w", err)
	}
	out, err := exec.CommandContext(ctx, python, "-c",
		"import sys; assert sys.version_info >= (3, 10), 'Python >= 3.10 needed'; print(sys.version, sys.executable)").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("interpreter %s: %w: %s (pass -python)", python, err, strings.TrimSpace(string(out)))
	}
	sum := sha256.Sum256(append(pins, out...))
	stamp := hex.EncodeToString(sum[:])
	py := filepath.Join(dir, "bin", "python")
	stampPath := filepath.Join(dir, ".installed")
	if b, err := os.ReadFile(stampPath); err == nil && string(b) == stamp {
		return py, nil
	}
	fmt.Fprintf(stderr, "harness: installing %s into %s (once)\n", filepath.Base(req), dir)
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("remove old venv: %w", err)
	}
	if err := command(ctx, "", python, "-m", "venv", dir); err != nil {
		return "", fmt.Errorf("create venv %s: %w", dir, err)
	}
	if err := command(ctx, "", py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet", "-r", req); err != nil {
		return "", fmt.Errorf("install %s: %w", req, err)
	}
	if err := os.WriteFile(stampPath, []byte(stamp), 0o644); err != nil {
		return "", fmt.Errorf("venv stamp: %w", err)
	}
	return py, nil
}

// command runs argv in dir and returns its output in the error if it fails.
func command(ctx context.Context, dir string, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// output runs argv and returns its trimmed standard output.
func output(ctx context.Context, argv ...string) (string, error) {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("open %s: %w", from, err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return fmt.Errorf("create %s: %w", to, err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("copy %s: %w", from, err)
	}
	return nil
}
