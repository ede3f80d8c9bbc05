package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"

	"github.com/fletch-udf/fletch/pybridge"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// testModules returns the embedded interpreter and the modules of
// testdata/udfs named.
func testModules(t *testing.T, modules ...string) (pybridge.Interpreter, string, []pybridge.Module) {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := pybridge.OpenRuntime(context.Background(), pybridge.RuntimeOptions{
		StateDir: filepath.Join(cache, "fletch-test"),
		Source:   os.DirFS("../clients/python/src"),
	})
	if err != nil {
		t.Fatalf("%v (run `make bundle` before go test)", err)
	}
	t.Cleanup(func() { rt.Close() })
	dir, err := filepath.Abs("../testdata/udfs")
	if err != nil {
		t.Fatal(err)
	}
	var mods []pybridge.Module
	for _, m := range modules {
		mods = append(mods, pybridge.Module{Name: m, Path: filepath.Join(dir, m+".py")})
	}
	return rt.Interpreter, dir, mods
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}})
}

// startPool runs modules from testdata/udfs in a bare pool.
func startPool(t *testing.T, modules ...string) *pybridge.Pool {
	t.Helper()
	interp, dir, mods := testModules(t, modules...)
	pool, err := pybridge.Start(context.Background(), pybridge.Config{
		Interpreter: interp, Paths: []string{dir}, Modules: mods, Workers: 1, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	if errs := pool.LoadErrors(); len(errs) > 0 {
		t.Fatalf("modules failed to import: %+v", errs)
	}
	return pool
}

// startPython loads modules from testdata/udfs into a Python executor,
// registering their UDFs in a new registry.
func startPython(t *testing.T, mem memory.Allocator, modules ...string) (*Python, *udfcatalog.Registry) {
	t.Helper()
	interp, dir, mods := testModules(t, modules...)
	reg := udfcatalog.NewRegistry()
	py := NewPython(reg, mem, 1<<30, testLogger(t))
	t.Cleanup(py.Close)
	report, err := py.Load(context.Background(), Environment{Name: "test", Pool: pybridge.Config{
		Interpreter: interp, Paths: []string{dir}, Modules: mods, Workers: 1, Logger: testLogger(t),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.ModuleErrors) > 0 || len(report.Rejected) > 0 {
		t.Fatalf("modules failed to load: %+v %+v", report.ModuleErrors, report.Rejected)
	}
	return py, reg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// TestFixturesGolden loads testdata/udfs/fixtures.py through a real worker.
// Python's unit tests check the same golden file in-process, so this pins
// that the worker reports exactly what inference produced, and that the Go
// catalog accepts every signature.
func TestFixturesGolden(t *testing.T) {
	pool := startPool(t, "fixtures")
	want, err := os.ReadFile("../testdata/udfs/fixtures.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden []json.RawMessage
	if err := json.Unmarshal(want, &golden); err != nil {
		t.Fatal(err)
	}
	fns := pool.Functions()
	if len(fns) != len(golden) {
		t.Fatalf("the worker reported %d functions, the golden file has %d", len(fns), len(golden))
	}
	for i, f := range fns {
		if !jsonEqual(t, f.Spec, golden[i]) {
			t.Errorf("function %d (%s): the worker reported\n%s\nthe golden file has\n%s", i, f.Name, f.Spec, golden[i])
		}
		fn, err := describe(f)
		if err == nil {
			err = fn.Validate()
		}
		if err != nil {
			t.Errorf("%s: the Go catalog refuses it: %v", f.Name, err)
			continue
		}
		// The Go catalog's JSON of the entry keeps every type the worker sent.
		var sent, kept struct {
			Params []struct{ Type string } `json:"params"`
			Return struct{ Type string }   `json:"return"`
		}
		back, err := json.Marshal(fn)
		if err != nil {
			t.Fatal(err)
		}
		if json.Unmarshal(f.Spec, &sent) != nil || json.Unmarshal(back, &kept) != nil {
			t.Fatal("unparseable JSON")
		}
		if sentJSON, keptJSON := mustJSON(sent), mustJSON(kept); sentJSON != keptJSON {
			t.Errorf("%s: types %s became %s in the Go catalog", f.Name, sentJSON, keptJSON)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		t.Fatalf("invalid JSON: %s / %s", a, b)
	}
	return mustJSON(x) == mustJSON(y)
}

func mustJSON(v any) string {
	out, _ := json.Marshal(v)
	return string(out)
}

// TestPythonSession runs batches through the executor and maps a Python
// exception to a FunctionError that keeps the row.
func TestPythonSession(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	py, reg := startPython(t, mem, "fixtures")
	fn, err := reg.Lookup("add_int")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := py.Open(context.Background(), fn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	in, _, err := array.RecordFromJSON(mem, fn.InputSchema(), bytes.NewReader([]byte(`[{"a":1,"b":2},{"a":null,"b":3}]`)))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Release()
	outs, err := sess.Process(context.Background(), in)
	if err != nil || len(outs) != 1 {
		t.Fatalf("Process = %d batches, %v", len(outs), err)
	}
	defer release(outs)
	if js, _ := outs[0].Column(0).MarshalJSON(); string(js) != "[3,null]" {
		t.Errorf("add_int = %s", js)
	}

	// A result that does not fit its type fails the batch at its row.
	big, _, err := array.RecordFromJSON(mem, fn.InputSchema(), bytes.NewReader([]byte(`[{"a":1,"b":1},{"a":9223372036854775807,"b":1}]`)))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Release()
	_, err = sess.Process(context.Background(), big)
	var fe *udfcatalog.FunctionError
	if !errors.As(err, &fe) || fe.Row != 1 || fe.Function != "add_int" || !errors.Is(err, udfcatalog.ErrFunctionFailed) {
		t.Errorf("overflowing add_int = %v, want a FunctionError at row 1", err)
	}

}
