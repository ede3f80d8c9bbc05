package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	in := `goos: linux
BenchmarkExchange/base-2    10  100 ns/op  10.0 rows/s
BenchmarkExchange/base-2    10  100 ns/op  30.0 rows/s
BenchmarkExchange/base-2    10  100 ns/op  20.0 rows/s
BenchmarkExchange/fast-2    10  100 ns/op  45.0 rows/s
BenchmarkExchange/fast-2    10  100 ns/op  35.0 rows/s
PASS`
	var out bytes.Buffer
	if err := run(strings.NewReader(in), &out, "rows/s", pairs{"Exchange/fast=Exchange/base"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| Exchange/base | 3 | 20.00 | 10.00 | 30.00 |", "| Exchange/fast | 2 | 40.00 |", "| Exchange/fast / Exchange/base | 2.00 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(strings.NewReader(in), &out, "MB/s", nil); err == nil {
		t.Error("a metric no benchmark reports should be an error")
	}
}
