package pybridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gofrs/flock"
)

// fakePython writes an "interpreter" that answers the version probe with
// the given JSON, as an old or broken Python would.
func fakePython(t *testing.T, probe string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "python3")
	script := fmt.Sprintf("#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n", probe)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

var emptySource = fstest.MapFS{"fletch/__init__.py": &fstest.MapFile{Data: []byte("")}}

func TestExternalInterpreterChecks(t *testing.T) {
	venv := t.TempDir()
	if err := os.MkdirAll(filepath.Join(venv, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	good := fakePython(t, `{"python": "3.12.1", "pyarrow": "26.0.1"}`)
	if err := os.Symlink(good, filepath.Join(venv, "bin", "python3")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		python string
		want   string // empty: accepted
	}{
		{"good interpreter", good, ""},
		{"venv directory", venv, ""},
		{"old python", fakePython(t, `{"python": "3.9.18", "pyarrow": "26.0.1"}`), "is Python 3.9.18; fletch needs Python 3.10 or newer"},
		{"old pyarrow", fakePython(t, `{"python": "3.11.7", "pyarrow": "14.0.0"}`), "has pyarrow 14.0.0; fletch refuses pyarrow older than 21, which is exposed to CVE-2023-47248"},
		{"release candidate", fakePython(t, `{"python": "3.13.0rc2", "pyarrow": "21.0.0rc1"}`), ""},
		{"no pyarrow", fakePython(t, `{"python": "3.11.7", "pyarrow_error": "ModuleNotFoundError: No module named 'pyarrow'"}`), "cannot import pyarrow (ModuleNotFoundError"},
		{"missing", filepath.Join(t.TempDir(), "nope"), "no such file"},
		{"not a venv", t.TempDir(), "is a directory but not a venv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := OpenRuntime(context.Background(), RuntimeOptions{Python: tt.python, StateDir: t.TempDir(), Source: emptySource})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("OpenRuntime(%s) = %v", tt.python, err)
				}
				rt.Close()
				return
			}
			if !errors.Is(err, ErrBadPython) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenRuntime(%s) = %v, want ErrBadPython containing %q", tt.python, err, tt.want)
			}
		})
	}
}

func TestAtLeast(t *testing.T) {
	tests := []struct {
		v, floor string
		want     bool
	}{
		{"3.10.0", "3.10", true}, {"3.9.18", "3.10", false}, {"3.14.6", "3.10", true}, {"4.0", "3.10", true},
		{"21.0.0", "21", true}, {"20.0.1", "21", false}, {"26.0.1", "21", true}, {"21.0.0rc1", "21", true}, {"", "21", false},
	}
	for _, tt := range tests {
		if got := atLeast(tt.v, tt.floor); got != tt.want {
			t.Errorf("atLeast(%q, %q) = %v, want %v", tt.v, tt.floor, got, tt.want)
		}
	}
}

// TestStaleExtractionsRespectLocks: an extraction another process still
// holds survives cleanup; an abandoned one is removed.
func TestStaleExtractionsRespectLocks(t *testing.T) {
	state := t.TempDir()
	held, abandoned := filepath.Join(state, "python-0000aaaa"), filepath.Join(state, "pyarrow-0000bbbb")
	other := filepath.Join(state, "notes")
	for _, d := range []string{held, abandoned, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l := flock.New(held + ".inuse")
	if err := l.RLock(); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Locks are per open file, so a second handle in this process stands
	// in for another fletch.
	removeStale(state, nil, testLogger(t))
	for dir, want := range map[string]bool{held: true, abandoned: false, other: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", dir, err == nil, want)
		}
	}
}

// TestEmbeddedRuntime extracts the real embedded CPython and pyarrow and
// runs a UDF module through a worker pool. It needs the bundle that `make
// build` (or `make bundle`) generates.
func TestEmbeddedRuntime(t *testing.T) {
	if _, _, err := embeddedBundle(); err != nil {
		t.Fatalf("%v\nrun `make bundle` before go test", err)
	}
	state := testStateDir(t)
	source := os.DirFS("../clients/python/src")
	start := time.Now()
	rt, err := OpenRuntime(context.Background(), RuntimeOptions{StateDir: state, Source: source, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("OpenRuntime: %v", err)
	}
	t.Logf("runtime (cold on a machine's first run) in %s", time.Since(start))
	defer rt.Close()

	// A second process opening the same state directory finds it extracted.
	start = time.Now()
	rt2, err := OpenRuntime(context.Background(), RuntimeOptions{StateDir: state, Source: source})
	if err != nil {
		t.Fatalf("second OpenRuntime: %v", err)
	}
	t.Logf("warm runtime in %s", time.Since(start))
	rt2.Close()

	dir := t.TempDir()
	module := filepath.Join(dir, "m.py")
	src := "from fletch import udf\n\n@udf\ndef plus_one(x: int) -> int:\n    return x + 1\n"
	if err := os.WriteFile(module, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	pool, err := Start(context.Background(), Config{
		Interpreter: rt.Interpreter,
		Paths:       []string{dir},
		Modules:     []Module{{Name: "m", Path: module}},
		Workers:     2,
		Logger:      testLogger(t),
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer pool.Close()
	if fns := pool.Functions(); len(fns) != 1 || fns[0].Name != "plus_one" || !strings.Contains(string(fns[0].Spec), `"type":"int64"`) &&
		!strings.Contains(string(fns[0].Spec), `"type": "int64"`) {
		t.Fatalf("Functions() = %+v", fns)
	}
	if _, err := pool.Call(context.Background(), Request{Fn: "plus_one", Input: Bytes("not an IPC stream")}); err == nil {
		t.Error("a call with a malformed body should fail")
	}
}

// testStateDir is shared by the tests that extract the real runtime, so a
// machine pays for the cold extraction (slow under -race) once.
func testStateDir(t *testing.T) string {
	cache, err := os.UserCacheDir()
	if err != nil {
		return t.TempDir()
	}
	return filepath.Join(cache, "fletch-test")
}
