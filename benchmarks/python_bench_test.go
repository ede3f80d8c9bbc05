package benchmarks

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"

	fletchpy "github.com/fletch-udf/fletch/clients/python"
	"github.com/fletch-udf/fletch/exec"
	"github.com/fletch-udf/fletch/pybridge"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// BenchmarkPythonExchange sends 1 Mi int64 rows in 64 Ki-row batches
// through Python UDFs on the embedded interpreter (one worker per core),
// beside the native add_int64 in the same server and run.
func BenchmarkPythonExchange(b *testing.B) {
	mem := memory.NewGoAllocator()
	addr := startFletchWithPython(b, mem)
	one := makeBatches(mem, 1)
	two := makeBatches(mem, 2)
	b.Cleanup(func() { release(one); release(two) })
	cases := []struct {
		name string
		in   []arrow.RecordBatch
		want func(i int64) int64
	}{
		{"add_int64", two, func(i int64) int64 { return 3 * i }},
		{"py_add", two, func(i int64) int64 { return 3 * i }},
		{"py_plus_one", one, func(i int64) int64 { return i + 1 }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { measure(b, dial(b, addr), c.name, mem, c.in, c.want) })
	}
}

func startFletchWithPython(b *testing.B, mem memory.Allocator) string {
	ctx := context.Background()
	cache, err := os.UserCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	rt, err := pybridge.OpenRuntime(ctx, pybridge.RuntimeOptions{
		StateDir: filepath.Join(cache, "fletch-test"),
		Source:   fletchpy.Source(),
	})
	if err != nil {
		b.Fatalf("%v (run `make bundle` first)", err)
	}
	b.Cleanup(func() { rt.Close() })
	dir, err := filepath.Abs("testdata/udfs")
	if err != nil {
		b.Fatal(err)
	}
	reg := udfcatalog.NewRegistry()
	native := exec.NewNative(mem)
	if err := native.Register(reg, exec.Builtins()...); err != nil {
		b.Fatal(err)
	}
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn})
	python := exec.NewPython(reg, mem, maxMsg, log)
	b.Cleanup(python.Close)
	report, err := python.Load(ctx, exec.Environment{Name: "bench", Pool: pybridge.Config{
		Interpreter: rt.Interpreter,
		Paths:       []string{dir},
		Modules:     []pybridge.Module{{Name: "bench", Path: filepath.Join(dir, "bench.py")}},
		Logger:      log,
	}})
	if err != nil {
		b.Fatal(err)
	}
	if len(report.ModuleErrors) > 0 || len(report.Rejected) > 0 {
		b.Fatalf("loading bench.py: %+v %+v", report.ModuleErrors, report.Rejected)
	}
	return serve(b, reg, exec.NewRouter(native, python), mem)
}
