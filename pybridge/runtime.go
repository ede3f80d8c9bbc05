package pybridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/hashicorp/go-hclog"
	"github.com/kluctl/go-embed-python/embed_util"
)

// RuntimeOptions say where Python comes from.
type RuntimeOptions struct {
	// Python, if set, is an interpreter or a venv directory to use instead
	// of the embedded CPython.
	Python string
	// StateDir holds extracted files; default os.UserCacheDir()/fletch.
	StateDir string
	// Source is the fletch Python package (a tree holding fletch/__init__.py).
	Source fs.FS
	Logger hclog.Logger
}

// Runtime is a Python ready to run workers. It holds shared locks on the
// files it extracted, so no other fletch process removes them while it
// runs; Close releases them.
type Runtime struct {
	Interpreter Interpreter
	inUse       []*flock.Flock
}

// Close releases the runtime's locks.
func (r *Runtime) Close() error {
	var errs []error
	for _, l := range r.inUse {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// Version floors: workers need pyarrow's stream reader and its removal of
// PyExtensionType (CVE-2023-47248, which let IPC data run code on read).
const (
	minPython  = "3.10"
	minPyArrow = "21"
)

// ErrBadPython is wrapped when an external interpreter is unusable.
var ErrBadPython = errors.New("unusable Python interpreter")

// OpenRuntime prepares the interpreter workers will run: the embedded
// CPython and pyarrow, extracted once into the state directory, or the
// interpreter opts.Python names, checked for versions. Either way the
// fletch package is extracted from opts.Source and put on its path.
func OpenRuntime(ctx context.Context, opts RuntimeOptions) (_ *Runtime, err error) {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	state := opts.StateDir
	if state == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no state directory given and no user cache directory: %w", err)
		}
		state = filepath.Join(cache, "fletch")
	}
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	// One process extracts, compiles or cleans up at a time.
	extracting := flock.New(filepath.Join(state, "extract.lock"))
	if ok, err := extracting.TryLockContext(ctx, 50*time.Millisecond); !ok || err != nil {
		return nil, fmt.Errorf("lock %s: %w", extracting.Path(), errors.Join(err, ctx.Err()))
	}
	defer extracting.Close()

	rt := &Runtime{}
	defer func() {
		if err != nil {
			rt.Close()
		}
	}()
	start := time.Now()
	src, err := rt.extract(opts.Source, filepath.Join(state, "fletchpy"))
	if err != nil {
		return nil, fmt.Errorf("extract the fletch Python package: %w", err)
	}
	if opts.Python != "" {
		rt.Interpreter, err = external(ctx, opts.Python, src)
	} else {
		rt.Interpreter, err = rt.embedded(ctx, state, src)
	}
	if err != nil {
		return nil, err
	}
	removeStale(state, rt.inUse, log)
	log.Info("python runtime ready", "python", rt.Interpreter.Path, "version", rt.Interpreter.Version,
		"pyarrow", rt.Interpreter.PyArrow, "took", time.Since(start).Round(time.Millisecond))
	return rt, nil
}

// extract unpacks files under base (suffixed by their digest) and holds a
// shared lock on the result.
func (rt *Runtime) extract(files fs.FS, base string) (string, error) {
	ef, err := embed_util.NewEmbeddedFilesWithTmpDir(files, base, true)
	if err != nil {
		return "", err
	}
	return ef.GetExtractedPath(), rt.hold(ef.GetExtractedPath())
}

// hold takes a shared lock marking dir as in use by this process.
func (rt *Runtime) hold(dir string) error {
	l := flock.New(dir + ".inuse")
	if err := l.RLock(); err != nil {
		return fmt.Errorf("lock %s: %w", l.Path(), err)
	}
	rt.inUse = append(rt.inUse, l)
	return nil
}

func (rt *Runtime) embedded(ctx context.Context, state, src string) (Interpreter, error) {
	bundle, manifest, err := embeddedBundle()
	if err != nil {
		return Interpreter{}, err
	}
	home, exe, err := extractPython(filepath.Join(state, "python"))
	if err != nil {
		return Interpreter{}, fmt.Errorf("extract the embedded Python: %w", err)
	}
	if err := rt.hold(home); err != nil {
		return Interpreter{}, err
	}
	site, err := rt.extract(bundle, filepath.Join(state, "pyarrow"))
	if err != nil {
		return Interpreter{}, fmt.Errorf("extract the bundled packages: %w", err)
	}
	in := Interpreter{
		Path:       exe,
		Env:        []string{"PYTHONHOME=" + home},
		PythonPath: []string{src, site},
		Version:    manifest.Python,
	}
	for _, p := range manifest.Packages {
		if p.Name == "pyarrow" {
			in.PyArrow = p.Version
		}
	}
	// Compile once, right after extraction; workers never write bytecode.
	// The trees never change under a given digest, so the bytecode need not
	// be checked against the sources.
	stamp := filepath.Join(site, ".fletch-compiled")
	if _, err := os.Stat(stamp); err != nil {
		cmd := exec.CommandContext(ctx, exe, "-s", "-m", "compileall", "-q", "-j", "0",
			"--invalidation-mode", "unchecked-hash", home, site, src)
		cmd.Env = append(os.Environ(), in.Env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return Interpreter{}, fmt.Errorf("compile bytecode: %w: %s", err, lastLines(out, 10))
		}
		if err := os.WriteFile(stamp, nil, 0o644); err != nil {
			return Interpreter{}, err
		}
	}
	return in, nil
}

// probeScript reports what an external interpreter offers.
const probeScript = `import json, sys
info = {"python": "%d.%d.%d" % sys.version_info[:3]}
try:
    import pyarrow
    info["pyarrow"] = pyarrow.__version__
except Exception as exc:
    info["pyarrow_error"] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(info))`

// external checks a user's interpreter or venv.
func external(ctx context.Context, path, src string) (Interpreter, error) {
	exe, err := pythonExecutable(path)
	if err != nil {
		return Interpreter{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, "-s", "-c", probeScript)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Interpreter{}, fmt.Errorf("%w: %s: %w: %s", ErrBadPython, exe, err, lastLines(stderr.Bytes(), 5))
	}
	var info struct {
		Python       string `json:"python"`
		PyArrow      string `json:"pyarrow"`
		PyArrowError string `json:"pyarrow_error"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
		return Interpreter{}, fmt.Errorf("%w: %s printed %q", ErrBadPython, exe, stdout.String())
	}
	switch {
	case !atLeast(info.Python, minPython):
		return Interpreter{}, fmt.Errorf("%w: %s is Python %s; fletch needs Python %s or newer", ErrBadPython, exe, info.Python, minPython)
	case info.PyArrow == "":
		return Interpreter{}, fmt.Errorf("%w: %s cannot import pyarrow (%s); install it with: %s -m pip install 'pyarrow>=%s'",
			ErrBadPython, exe, info.PyArrowError, exe, minPyArrow)
	case !atLeast(info.PyArrow, minPyArrow):
		return Interpreter{}, fmt.Errorf("%w: %s has pyarrow %s; fletch refuses pyarrow older than %s, which is exposed to CVE-2023-47248 "+
			"(arbitrary code execution when reading IPC data); upgrade with: %s -m pip install 'pyarrow>=%s'",
			ErrBadPython, exe, info.PyArrow, minPyArrow, exe, minPyArrow)
	}
	return Interpreter{Path: exe, PythonPath: []string{src}, Version: info.Python, PyArrow: info.PyArrow}, nil
}

// pythonExecutable accepts an interpreter or a venv directory.
func pythonExecutable(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadPython, err)
	}
	if !st.IsDir() {
		return path, nil
	}
	for _, name := range []string{"bin/python3", "bin/python", `Scripts\python.exe`} {
		exe := filepath.Join(path, name)
		if _, err := os.Stat(exe); err == nil {
			return exe, nil
		}
	}
	return "", fmt.Errorf("%w: %s is a directory but not a venv (no bin/python3 in it)", ErrBadPython, path)
}

// atLeast compares dotted versions numerically, ignoring suffixes such as "rc1".
func atLeast(version, floor string) bool {
	v, f := strings.Split(version, "."), strings.Split(floor, ".")
	for i := range f {
		if i >= len(v) {
			return false
		}
		a, _ := strconv.Atoi(strings.TrimRightFunc(v[i], func(r rune) bool { return r < '0' || r > '9' }))
		b, _ := strconv.Atoi(f[i])
		if a != b {
			return a > b
		}
	}
	return true
}

// removeStale deletes extractions left by other fletch versions, unless
// some process still holds them.
func removeStale(state string, keep []*flock.Flock, log hclog.Logger) {
	kept := make(map[string]bool)
	for _, l := range keep {
		kept[strings.TrimSuffix(l.Path(), ".inuse")] = true
	}
	entries, err := os.ReadDir(state)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(state, e.Name())
		if !e.IsDir() || kept[dir] || !isExtraction(e.Name()) {
			continue
		}
		l := flock.New(dir + ".inuse")
		if ok, err := l.TryLock(); err != nil || !ok {
			continue // in use by a running fletch
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("removing a stale extraction failed", "dir", dir, "error", err)
		} else {
			log.Info("removed a stale extraction", "dir", dir)
		}
		l.Close()
	}
}

func isExtraction(name string) bool {
	for _, prefix := range []string{"python-", "pyarrow-", "fletchpy-"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
