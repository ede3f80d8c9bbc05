// Command benchratio reads `go test -bench` output on stdin and prints the
// median of a metric for each benchmark, and the ratio of the medians of
// named pairs. Benchmarks on shared machines are noisy; medians of several
// runs (-count) and ratios within one run are what to quote.
//
//	go test -bench . -count 6 ./benchmarks | benchratio -metric rows/s \
//	    -pair fletch/add_int64=baseline-echo/2col
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

type pairs []string

func (p *pairs) String() string     { return strings.Join(*p, ",") }
func (p *pairs) Set(s string) error { *p = append(*p, s); return nil }

func main() {
	metric := flag.String("metric", "rows/s", "metric to summarise")
	var ps pairs
	flag.Var(&ps, "pair", "`name=baseline` ratio to report (repeatable); names omit the Benchmark prefix and -N suffix")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *metric, ps); err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(1)
	}
}

// benchLine matches "BenchmarkName-8  10  123 ns/op  45 rows/s".
var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+(.*)$`)

func run(in io.Reader, out io.Writer, metric string, ps pairs) error {
	samples := make(map[string][]float64)
	var order []string
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		fields := strings.Fields(m[3])
		for i := 1; i < len(fields); i += 2 {
			if fields[i] != metric {
				continue
			}
			v, err := strconv.ParseFloat(fields[i-1], 64)
			if err != nil {
				return fmt.Errorf("%q: %w", sc.Text(), err)
			}
			if _, ok := samples[m[1]]; !ok {
				order = append(order, m[1])
			}
			samples[m[1]] = append(samples[m[1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(order) == 0 {
		return fmt.Errorf("no benchmark reported %q", metric)
	}
	fmt.Fprintf(out, "| benchmark | runs | median %s | min | max |\n|---|---|---|---|---|\n", metric)
	for _, name := range order {
		s := samples[name]
		fmt.Fprintf(out, "| %s | %d | %s | %s | %s |\n", name, len(s), human(median(s)), human(slices.Min(s)), human(slices.Max(s)))
	}
	if len(ps) > 0 {
		fmt.Fprintf(out, "\n| ratio | median / median |\n|---|---|\n")
	}
	for _, p := range ps {
		name, base, ok := strings.Cut(p, "=")
		if !ok || samples[name] == nil || samples[base] == nil {
			return fmt.Errorf("pair %q: want name=baseline with both in the input", p)
		}
		fmt.Fprintf(out, "| %s / %s | %.2f |\n", name, base, median(samples[name])/median(samples[base]))
	}
	return nil
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func human(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.2fk", v/1e3)
	}
	return fmt.Sprintf("%.2f", v)
}
