package main

import (
	"encoding/csv"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

func TestMedianAndQuantile(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3 1 2 = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 4 1 3 2 = %v", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0: 1, 0.5: 50, 0.99: 99, 1: 100} {
		if got := quantile(ds, q); got != want {
			t.Errorf("quantile %v of 1..100 = %v, want %v", q, got, want)
		}
	}
}

func TestNum(t *testing.T) {
	for x, want := range map[float64]string{1234.5: "1234", 12.34: "12.3", 1.234: "1.23", 0.01234: "0.0123", 0.0000844: "0.0000844", 0: "0"} {
		if got := num(x); got != want {
			t.Errorf("num(%v) = %q, want %q", x, got, want)
		}
	}
	if got := si(71.4e6); got != "71.4 M" {
		t.Errorf("si(71.4e6) = %q", got)
	}
}

func TestCheckSignature(t *testing.T) {
	field := func(t arrow.DataType) arrow.Field { return arrow.Field{Name: "x", Type: t} }
	upper := workloadByName("upper")
	large := arrow.NewSchema([]arrow.Field{field(arrow.BinaryTypes.LargeString), field(arrow.BinaryTypes.LargeString)}, nil)
	types, err := checkSignature(upper, large)
	if err != nil || len(types) != 1 || types[0].ID() != arrow.LARGE_STRING {
		t.Errorf("databend-style upper: %v, %v", types, err)
	}
	for _, bad := range []*arrow.Schema{
		arrow.NewSchema([]arrow.Field{field(arrow.PrimitiveTypes.Int64), field(arrow.BinaryTypes.String)}, nil),
		arrow.NewSchema([]arrow.Field{field(arrow.BinaryTypes.String)}, nil),
	} {
		if _, err := checkSignature(upper, bad); err == nil {
			t.Errorf("upper accepted %s", bad)
		}
	}
}

func TestMarkdown(t *testing.T) {
	rec := &record{}
	add := func(server string, rows int64, p50 time.Duration) {
		rec.add(&result{workload: "identity_int64", batchRows: 1024, streams: 1, server: server, bytesPerRow: 8,
			reps: []rep{{rows: rows, elapsed: time.Second, p50: p50, p99: 2 * p50}, {rows: 3 * rows, elapsed: time.Second, p50: p50, p99: 2 * p50}, {rows: rows, elapsed: time.Second, p50: p50, p99: 2 * p50}}})
	}
	add(echoServer, 100e6, 20*time.Microsecond)
	add(fletchGo, 50e6, 30*time.Microsecond)
	add(fletchPython, 25e6, 40*time.Microsecond)
	rec.add(&result{workload: "async_100", batchRows: 8192, streams: 1, server: fletchPython, status: notSupportedYet})
	rec.starts = []startResult{{server: fletchPython, cold: []time.Duration{3 * time.Second}, warm: []time.Duration{600 * time.Millisecond}}}
	var b strings.Builder
	writeMarkdown(&b, rec, fullPlan())
	md := b.String()
	for _, want := range []string{
		"| identity_int64 | 1024 | 1 | fletch-go | 50.0 M | 0.400 | 20.0 | 30.0 | 60.0 | 0.50 |", // medians: 50 M of 50, 150, 50
		"| identity_int64 | 0.50 | 0.25 | 0.50 |",
		"| async_100 | fletch-python | 8192 | not supported yet |",
		"| fletch-python | 3000 | 600 | 1 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestShellQuote(t *testing.T) {
	got := shellQuote([]string{"-mode", "full", "-note", "busy: engineers' tests"})
	if want := `-mode full -note 'busy: engineers'\'' tests'`; got != want {
		t.Errorf("shellQuote = %s, want %s", got, want)
	}
}

// one is a result of one repetition: rows in a second, p50 per batch.
func one(workload string, batchRows, streams int, server string, rows int64, p50 time.Duration) *result {
	return &result{workload: workload, batchRows: batchRows, streams: streams, server: server, bytesPerRow: 8,
		reps: []rep{{rows: rows, elapsed: time.Second, p50: p50, p99: 2 * p50}}}
}

// sampleRecord has two configurations with pyarrow and one without, the
// lock-step rows of the Python hop, and two memory runs.
func sampleRecord() *record {
	rec := &record{}
	for _, r := range []*result{
		one("identity_int64", 1024, 1, echoServer, 100e6, 100*time.Microsecond),
		one("identity_int64", 1024, 1, fletchGo, 50e6, 200*time.Microsecond),
		one("identity_int64", 1024, 1, fletchPython, 25e6, 400*time.Microsecond),
		one("identity_int64", 1024, 1, pyarrowPeer, 40e6, 250*time.Microsecond),
		one("identity_int64", 1024, 4, echoServer, 200e6, 100*time.Microsecond),
		one("identity_int64", 1024, 4, fletchGo, 150e6, 130*time.Microsecond),
		one("identity_int64", 1024, 4, fletchPython, 60e6, 330*time.Microsecond),
		one("identity_int64", 1024, 4, pyarrowPeer, 120e6, 170*time.Microsecond),
		one("plus_one", 1024, 1, fletchPython, 2e6, 500*time.Microsecond),
		one(lockstepName, 1, 1, echoServer, 10e3, 100*time.Microsecond),
		one(lockstepName, 1, 1, fletchGo, 8e3, 120*time.Microsecond),
		one(lockstepName, 1, 1, fletchPython, 2.4e3, 420*time.Microsecond),
		one(lockstepName, 1, 1, pyarrowPeer, 5e3, 200*time.Microsecond),
		one(lockstepName, 1024, 1, fletchGo, 7.9e6, 130*time.Microsecond),
		one(lockstepName, 1024, 1, fletchPython, 3.1e6, 330*time.Microsecond),
	} {
		rec.add(r)
	}
	peak := func(rss, pss int64) memPeak { return memPeak{rss: rss * 1e6, pss: pss * 1e6, procs: 3, samples: 40} }
	rec.memory = []memoryRun{
		{server: fletchGo, batchRows: 64 << 10, batches: 2048, inputBytes: 1 << 30, inFlightBytes: 2 << 20,
			idle: treeMem{rss: 30e6, pss: 28e6, procs: 1},
			exchanges: []memExchange{
				{rows: 128 << 20, elapsed: 4 * time.Second, peak: memPeak{rss: 60e6, pss: 58e6, procs: 1, samples: 81}},
				{rows: 128 << 20, elapsed: 4 * time.Second, peak: memPeak{rss: 61e6, pss: 59e6, procs: 1, samples: 80}},
			}},
		{server: fletchPython, batchRows: 64 << 10, batches: 2048, inputBytes: 1 << 30, inFlightBytes: 2 << 20,
			idle: treeMem{rss: 150e6, pss: 90e6, procs: 3},
			exchanges: []memExchange{
				{rows: 128 << 20, elapsed: 5 * time.Second, peak: peak(200, 110)},
				{rows: 128 << 20, elapsed: 5 * time.Second, peak: peak(210, 121)},
			}},
	}
	rec.starts = []startResult{{server: fletchGo, cold: []time.Duration{17 * time.Millisecond}, warm: []time.Duration{16 * time.Millisecond}}}
	return rec
}

func TestThroughputRatioColumns(t *testing.T) {
	var b strings.Builder
	writeThroughput(&b, sampleRecord(), fullPlan())
	md := b.String()
	tests := []struct {
		name string
		want string // the row's end: × echo, ÷ pyarrow
	}{
		{"echo has no ratio to itself", "| identity_int64 | 1024 | 1 | echo | 100 M | 0.800 | 10.0 | 100 | 200 | – | 2.50 |"},
		{"fletch-go", "| identity_int64 | 1024 | 1 | fletch-go | 50.0 M | 0.400 | 20.0 | 200 | 400 | 0.50 | 1.25 |"},
		{"fletch-python", "| identity_int64 | 1024 | 1 | fletch-python | 25.0 M | 0.200 | 40.0 | 400 | 800 | 0.25 | 0.62 |"},
		{"pyarrow has no ratio to itself", "| identity_int64 | 1024 | 1 | pyarrow | 40.0 M | 0.320 | 25.0 | 250 | 500 | 0.40 | – |"},
		{"four streams", "| identity_int64 | 1024 | 4 | fletch-python | 60.0 M | 0.480 | 16.7 | 330 | 660 | 0.30 | 0.50 |"},
		{"no pyarrow figure", "| plus_one | 1024 | 1 | fletch-python | 2.00 M | 0.0160 | 500 | 500 | 1000 | – | – |"},
	}
	for _, tt := range tests {
		if !strings.Contains(md, tt.want+"\n") {
			t.Errorf("%s: throughput table lacks %q:\n%s", tt.name, tt.want, md)
		}
	}
	if !strings.Contains(md, "| × echo | ÷ pyarrow |\n") {
		t.Errorf("throughput header lacks the ÷ pyarrow column:\n%s", md)
	}
}

func TestSpread(t *testing.T) {
	tests := []struct {
		give []float64
		want string
	}{
		{nil, "–"},
		{[]float64{0.5}, "0.50"},
		{[]float64{0.5, 0.3}, "0.40 (0.30–0.50)"},
		{[]float64{1.2, 0.3, 0.5}, "0.50 (0.30–1.20)"},
	}
	for _, tt := range tests {
		if got := spread(tt.give); got != tt.want {
			t.Errorf("spread(%v) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestRatioSummaries(t *testing.T) {
	var b strings.Builder
	writeRatios(&b, sampleRecord())
	md := b.String()
	for _, want := range []string{
		"| workload | fletch-go ÷ echo | fletch-python ÷ echo | fletch-python ÷ fletch-go | fletch-go ÷ pyarrow | fletch-python ÷ pyarrow |\n",
		// fletch-go ÷ pyarrow: 1.25 and 1.25; fletch-python ÷ pyarrow: 0.625 and 0.5.
		"| identity_int64 | 0.62 (0.50–0.75) | 0.28 (0.25–0.30) | 0.45 (0.40–0.50) | 1.25 (1.25–1.25) | 0.56 (0.50–0.62) |\n",
		"| lockstep | 0.80 | 0.24 | 0.35 (0.30–0.39) | 1.60 | 0.48 |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("ratios lack %q:\n%s", want, md)
		}
	}
}

func TestPythonHop(t *testing.T) {
	drop := func(server string, rows int) func(*record) {
		return func(rec *record) {
			rec.results = slices.DeleteFunc(rec.results, func(r *result) bool {
				return r.workload == lockstepName && r.server == server && r.batchRows == rows
			})
		}
	}
	tests := []struct {
		name  string
		edit  func(*record)
		want  string // "" for no line
		hop1  float64
		hopKi float64
	}{
		{"both sizes", func(*record) {}, "Python hop: 300 µs per batch at 1 row, 200 µs at 1 Ki rows (fletch-python − fletch-go, lock-step p50).\n", 300, 200},
		{"no 1 Ki rows of fletch-go", drop(fletchGo, 1024), "Python hop: 300 µs per batch at 1 row, – µs at 1 Ki rows", 300, math.NaN()},
		{"no fletch-python", func(rec *record) { drop(fletchPython, 1)(rec); drop(fletchPython, 1024)(rec) }, "", math.NaN(), math.NaN()},
	}
	same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := sampleRecord()
			tt.edit(rec)
			if got := rec.pythonHop(1); !same(got, tt.hop1) {
				t.Errorf("pythonHop(1) = %v, want %v", got, tt.hop1)
			}
			if got := rec.pythonHop(1024); !same(got, tt.hopKi) {
				t.Errorf("pythonHop(1024) = %v, want %v", got, tt.hopKi)
			}
			var b strings.Builder
			writeLockstep(&b, rec)
			md := b.String()
			if tt.want == "" && strings.Contains(md, "Python hop") || !strings.Contains(md, tt.want) {
				t.Errorf("lock-step section, want %q:\n%s", tt.want, md)
			}
		})
	}
}

func TestMemorySection(t *testing.T) {
	var b strings.Builder
	writeMemory(&b, sampleRecord(), fullPlan())
	md := b.String()
	for _, want := range []string{
		"1 GiB of int64 input in one exchange (2048 batches of 65536 rows), 2 exchanges in a row per server",
		"every 50 ms",
		"at most 4 batches (256 Ki rows) per stream",
		// fletch-go: one process; 2 MiB in flight = 2.10 MB, bar 100 + 8.39 MB.
		"| fletch-go | 1 | 30.0 / 28.0 | 60.0 / 58.0 | 61.0 / 59.0 | 59.0 | 31.0 | 1.02 | 2.10 | 108 |\n",
		"| fletch-python | 3 | 150 / 90.0 | 200 / 110 | 210 / 121 | 121 | 31.0 | 1.10 | 2.10 | 108 |\n",
		"| fletch-python | 2 | 26.8 M | 210 | 121 | 40 |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("memory section lacks %q:\n%s", want, md)
		}
	}
	b.Reset()
	writeMemory(&b, &record{}, fullPlan())
	if b.Len() != 0 {
		t.Errorf("memory section without memory runs:\n%s", b.String())
	}
}

func TestBytesText(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1 GiB", 64 << 20: "64 MiB", 512 << 10: "512 KiB", 1000: "1000 B", 3 << 29: "1536 MiB"} {
		if got := bytesText(n); got != want {
			t.Errorf("bytesText(%d) = %q, want %q", n, got, want)
		}
	}
}

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// The report of sampleRecord, its results.csv and memory.csv, against
// testdata/report/*; go test -update rewrites them.
func TestReportGolden(t *testing.T) {
	rec := sampleRecord()
	csvOf := func(fill func(*csv.Writer, *record)) string {
		var b strings.Builder
		c := csv.NewWriter(&b)
		fill(c, rec)
		c.Flush()
		return b.String()
	}
	var md strings.Builder
	writeMarkdown(&md, rec, fullPlan())
	for name, got := range map[string]string{
		"report.md":   md.String(),
		"results.csv": csvOf(resultsCSV),
		"memory.csv":  csvOf(memoryCSV),
	} {
		path := filepath.Join("testdata", "report", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test with -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
		}
	}
}
