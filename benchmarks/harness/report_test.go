package main

import (
	"math"
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
