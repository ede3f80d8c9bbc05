package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/pybridge"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// versioned writes a module whose UDF name returns version for every row.
func versioned(t *testing.T, dir, module, name string, version int) pybridge.Module {
	t.Helper()
	src := fmt.Sprintf("from fletch import udf\n\n@udf\ndef %s(x: int) -> int:\n    return %d\n", name, version)
	path := filepath.Join(dir, module+".py")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return pybridge.Module{Name: module, Path: path}
}

func callOnce(t *testing.T, mem memory.Allocator, sess Session, fn *udfcatalog.UDF) int64 {
	t.Helper()
	in, _, err := array.RecordFromJSON(mem, fn.InputSchema(), bytes.NewReader([]byte(`[{"x":1}]`)))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Release()
	outs, err := sess.Process(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	defer release(outs)
	return outs[0].Column(0).(*array.Int64).Value(0)
}

// TestReload checks that a reload leaves running sessions on their version,
// that new lookups get the new one, and that name clashes are rejected.
func TestReload(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	interp, _, _ := testModules(t)
	dir := t.TempDir()
	reg := udfcatalog.NewRegistry()
	py := NewPython(reg, mem, 1<<30, testLogger(t))
	defer py.Close()
	env := func(name string, mods ...pybridge.Module) Environment {
		return Environment{Name: name, Pool: pybridge.Config{
			Interpreter: interp, Paths: []string{dir}, Modules: mods, Workers: 1, Logger: testLogger(t),
		}}
	}
	ctx := context.Background()

	if _, err := py.Load(ctx, env("a", versioned(t, dir, "mod_a", "f", 1))); err != nil {
		t.Fatal(err)
	}
	v1, err := reg.Lookup("f")
	if err != nil {
		t.Fatal(err)
	}
	running, err := py.Open(ctx, v1, nil)
	if err != nil {
		t.Fatal(err)
	}
	looked, _ := reg.Lookup("f") // looked up, not yet opened, when the reload lands

	report, err := py.Load(ctx, env("a", versioned(t, dir, "mod_a", "f", 2)))
	if err != nil || len(report.Functions) != 1 {
		t.Fatalf("reload = %+v, %v", report, err)
	}
	v2, _ := reg.Lookup("f")
	if v2 == v1 || v2.Version == v1.Version {
		t.Fatalf("the reload kept version %s", v1.Version)
	}
	if got := callOnce(t, mem, running, v1); got != 1 {
		t.Errorf("the running session answered %d, want its version's 1", got)
	}
	fresh, err := py.Open(ctx, v2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := callOnce(t, mem, fresh, v2); got != 2 {
		t.Errorf("a new session answered %d, want 2", got)
	}
	fresh.Close()

	// The old generation closes with its last session; a lookup from
	// before the reload is then stale.
	if late, err := py.Open(ctx, looked, nil); err != nil {
		t.Errorf("opening the old version while a session holds it: %v", err)
	} else {
		late.Close()
	}
	running.Close()
	if sess, err := py.Open(ctx, looked, nil); err == nil {
		sess.Close()
		t.Error("Open(old version) after its generation closed succeeded")
	}
	if _, err := py.Open(ctx, looked, nil); !errors.Is(err, udfcatalog.ErrStale) {
		t.Errorf("Open(old version) = %v, want ErrStale", err)
	}

	// Another environment may not take f.
	report, err = py.Load(ctx, env("b", versioned(t, dir, "mod_b", "f", 3), versioned(t, dir, "mod_c", "g", 4)))
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Rejected) != 1 || report.Rejected[0].Module != "mod_b" || !errors.Is(report.Rejected[0].Err, udfcatalog.ErrDuplicate) {
		t.Errorf("rejected = %+v, want f from mod_b as a duplicate", report.Rejected)
	}
	if fn, _ := reg.Lookup("f"); fn != v2 {
		t.Error("a clash replaced f")
	}
	if fns, err := report.module("mod_c"); err != nil || len(fns) != 1 || fns[0].Name != "g" {
		t.Errorf("module(mod_c) = %v, %v", fns, err)
	}

	py.Unload("b")
	if _, err := reg.Lookup("g"); !errors.Is(err, udfcatalog.ErrNotFound) {
		t.Errorf("after Unload, Lookup(g) = %v", err)
	}
	if got := py.Environments(); len(got) != 1 || got[0] != "a" {
		t.Errorf("Environments() = %q", got)
	}
}

// TestReloadFailureKeepsServing: a pool that cannot start leaves the
// previous generation serving.
func TestReloadFailureKeepsServing(t *testing.T) {
	interp, _, _ := testModules(t)
	dir := t.TempDir()
	reg := udfcatalog.NewRegistry()
	py := NewPython(reg, memory.NewGoAllocator(), 1<<30, testLogger(t))
	defer py.Close()
	cfg := pybridge.Config{Interpreter: interp, Paths: []string{dir}, Workers: 1, Logger: testLogger(t),
		Modules: []pybridge.Module{versioned(t, dir, "m", "h", 1)}}
	if _, err := py.Load(context.Background(), Environment{Name: "e", Pool: cfg}); err != nil {
		t.Fatal(err)
	}
	before, _ := reg.Lookup("h")
	broken := cfg
	broken.Interpreter.Path = filepath.Join(dir, "no-such-python")
	if _, err := py.Load(context.Background(), Environment{Name: "e", Pool: broken}); err == nil {
		t.Fatal("Load with a missing interpreter succeeded")
	}
	if after, _ := reg.Lookup("h"); after != before {
		t.Error("a failed reload changed the catalog")
	}
	sess, err := py.Open(context.Background(), before, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
}
