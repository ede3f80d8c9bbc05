package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ratioPairs are the ratios the report quotes: numerator ÷ denominator.
func ratioPairs() [][2]string {
	return [][2]string{
		{fletchGo, echoServer},
		{fletchPython, echoServer},
		{fletchPython, fletchGo},
		{fletchGo, pyarrowPeer},
		{fletchPython, pyarrowPeer},
		{fletchPython, arrowUDFPeer},
		{fletchPython, databendPeer},
	}
}

// si formats x with an SI suffix and three significant digits.
func si(x float64) string {
	switch {
	case math.IsNaN(x):
		return "–"
	case x >= 1e9:
		return num(x/1e9) + " G"
	case x >= 1e6:
		return num(x/1e6) + " M"
	case x >= 1e3:
		return num(x/1e3) + " k"
	}
	return num(x)
}

// num formats x with three significant digits.
func num(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "–"
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case x >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	case x <= 0:
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
	return strconv.FormatFloat(x, 'f', 2-int(math.Floor(math.Log10(x))), 64)
}

func ratioText(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

// writeMarkdown writes the report's tables.
func writeMarkdown(w io.Writer, rec *record, p plan) {
	writeThroughput(w, rec, p)
	writeRatios(w, rec)
	writeLockstep(w, rec)
	writeAsync(w, rec)
	writeMemory(w, rec, p)
	writeStarts(w, rec)
}

func hasWorkload(rec *record, match func(string) bool) bool {
	return slices.ContainsFunc(rec.results, func(r *result) bool { return match(r.workload) })
}

func isMatrix(name string) bool {
	return slices.ContainsFunc(workloads(), func(w workload) bool { return w.name == name && w.matrix })
}

func isAsync(name string) bool { return strings.HasPrefix(name, "async") }

func writeThroughput(w io.Writer, rec *record, p plan) {
	if !hasWorkload(rec, isMatrix) {
		return
	}
	fmt.Fprintf(w, "### Throughput\n\nMedians of %d repetitions. GB/s counts the input payload (8 B per int64, string bytes + 4 B per string); "+
		"ns/row is wall time per row, all streams together; p50/p99 are per batch, from writing it to reading its answer, "+
		"while each stream keeps up to 256 Ki rows (2 to 64 batches) in flight, so they include queueing: "+
		"see the lock-step table for unloaded round trips. × echo is the ratio of rows/s to the echo server's on the same input; "+
		"÷ pyarrow is the ratio of rows/s to the plain pyarrow server's on the same workload, batch size and streams "+
		"(– where there is no pyarrow figure).\n\n", p.reps)
	fmt.Fprintln(w, "| workload | rows/batch | streams | server | rows/s | GB/s | ns/row | p50 µs | p99 µs | × echo | ÷ pyarrow |")
	fmt.Fprintln(w, "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rec.results {
		if !isMatrix(r.workload) || len(r.reps) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.workload, r.batchRows, r.streams, r.server,
			si(r.rowsPerSec()), num(r.gbPerSec()), num(r.nsPerRow()), num(r.p50()), num(r.p99()),
			ratioText(rec.versus(r, echoServer)), ratioText(rec.versus(r, pyarrowPeer)))
	}
	fmt.Fprintln(w)
}

// config is one workload, batch size and stream count.
type configKey struct {
	workload           string
	batchRows, streams int
}

func configs(rec *record, match func(string) bool) []configKey {
	var out []configKey
	for _, r := range rec.results {
		k := configKey{r.workload, r.batchRows, r.streams}
		if match(r.workload) && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// writeRatios writes the ratio of each pair per configuration, and per
// workload the median over its configurations.
func writeRatios(w io.Writer, rec *record) {
	keys := configs(rec, func(n string) bool { return isMatrix(n) || n == lockstepName })
	var pairs [][2]string
	for _, p := range ratioPairs() {
		if slices.ContainsFunc(keys, func(k configKey) bool {
			return !math.IsNaN(rec.ratio(k.workload, k.batchRows, k.streams, p[0], p[1]))
		}) {
			pairs = append(pairs, p)
		}
	}
	if len(pairs) == 0 {
		return
	}
	header := func(first string) {
		fmt.Fprint(w, first)
		for _, p := range pairs {
			fmt.Fprintf(w, " %s ÷ %s |", p[0], p[1])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "### Ratios\n\nMedian rows/s ÷ median rows/s, measured in the same run (lock-step: the rows/s of one batch in flight). "+
		"By workload, the median of the ratios over its batch sizes and stream counts, and in brackets their range:\n\n")
	header("| workload |")
	fmt.Fprintln(w, "|---|"+strings.Repeat("--:|", len(pairs)))
	var names []string
	for _, k := range keys {
		if !slices.Contains(names, k.workload) {
			names = append(names, k.workload)
		}
	}
	for _, n := range names {
		fmt.Fprintf(w, "| %s |", n)
		for _, p := range pairs {
			var xs []float64
			for _, k := range keys {
				if x := rec.ratio(k.workload, k.batchRows, k.streams, p[0], p[1]); k.workload == n && !math.IsNaN(x) {
					xs = append(xs, x)
				}
			}
			fmt.Fprintf(w, " %s |", spread(xs))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "\nBy configuration:\n\n")
	header("| workload | rows/batch | streams |")
	fmt.Fprintln(w, "|---|--:|--:|"+strings.Repeat("--:|", len(pairs)))
	for _, k := range keys {
		fmt.Fprintf(w, "| %s | %d | %d |", k.workload, k.batchRows, k.streams)
		for _, p := range pairs {
			fmt.Fprintf(w, " %s |", ratioText(rec.ratio(k.workload, k.batchRows, k.streams, p[0], p[1])))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

func writeLockstep(w io.Writer, rec *record) {
	if !hasWorkload(rec, func(n string) bool { return n == lockstepName }) {
		return
	}
	fmt.Fprint(w, "### Small batches in lock-step\n\n`echo_int64` on one stream, one batch in flight: write a batch, read its answer, repeat. "+
		"Round trip per batch, medians over the repetitions of each one's p50 and p99.\n\n")
	fmt.Fprintln(w, "| rows/batch | server | p50 µs | p99 µs | rows/s | p50 × echo |")
	fmt.Fprintln(w, "|--:|---|--:|--:|--:|--:|")
	for _, r := range rec.results {
		if r.workload != lockstepName || len(r.reps) == 0 {
			continue
		}
		x := math.NaN()
		if e := rec.find(lockstepName, r.batchRows, 1, echoServer); e != nil && r.server != echoServer {
			x = r.p50() / e.p50()
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s |\n", r.batchRows, r.server, num(r.p50()), num(r.p99()), si(r.rowsPerSec()), ratioText(x))
	}
	fmt.Fprintln(w)
	one, ki := rec.pythonHop(1), rec.pythonHop(1024)
	if !math.IsNaN(one) || !math.IsNaN(ki) {
		fmt.Fprintf(w, "Python hop: %s µs per batch at 1 row, %s µs at 1 Ki rows (%s − %s, lock-step p50).\n\n", num(one), num(ki), fletchPython, fletchGo)
	}
}

// spread is the median of xs and, when there are several, their range in
// brackets: "0.95 (0.75–1.00)".
func spread(xs []float64) string {
	if len(xs) < 2 {
		return ratioText(median(xs))
	}
	return fmt.Sprintf("%s (%s–%s)", ratioText(median(xs)), ratioText(slices.Min(xs)), ratioText(slices.Max(xs)))
}

func writeAsync(w io.Writer, rec *record) {
	if !hasWorkload(rec, isAsync) {
		return
	}
	fmt.Fprintf(w, "### Async UDF (simulated 10 ms I/O per row)\n\n"+
		"async_N keeps N calls in flight: fletch-python's %d workers each run N ÷ %d at once (max_concurrency), so the "+
		"ideal is N ÷ 10 ms (Little's law). Each batch holds %s N rows. p50/p99 are per batch.\n\n", pythonWorkers(), pythonWorkers(), "a multiple of")
	fmt.Fprintln(w, "| workload | server | rows/batch | rows/s | ideal rows/s | of ideal | p50 ms | p99 ms |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|")
	for _, r := range rec.results {
		if !isAsync(r.workload) {
			continue
		}
		if r.status != "" {
			fmt.Fprintf(w, "| %s | %s | %d | %s | | | | |\n", r.workload, r.server, r.batchRows, r.status)
			continue
		}
		ideal := float64(workloadByName(r.workload).inFlight()) / asyncLatency.Seconds()
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", r.workload, r.server, r.batchRows, si(r.rowsPerSec()), si(ideal),
			ratioText(r.rowsPerSec()/ideal), num(r.p50()/1000), num(r.p99()/1000))
	}
	fmt.Fprintln(w)
}

// memoryBar is the bound the memory figures are read against: 100 MB
// plus four times the input bytes a stream keeps in flight.
func memoryBar(inFlight int64) int64 { return 100e6 + 4*inFlight }

func writeMemory(w io.Writer, rec *record, p plan) {
	if len(rec.memory) == 0 {
		return
	}
	m := rec.memory[0]
	fmt.Fprintf(w, "### Memory\n\n`echo_int64` on one stream: %s of int64 input in one exchange (%d batches of %d rows), %d exchanges in a row per server, "+
		"while the server process and all its descendants (fletch-python's workers) are sampled from /proc every %d ms. "+
		"RSS adds up each process's resident set, so a page two processes share (a worker's shared memory with the server, libraries) counts in both; "+
		"PSS (from smaps_rollup) splits each shared page among the processes mapping it, so the tree's PSS counts it once. "+
		"A peak is the highest tree total over an exchange's samples, idle the tree before the first exchange; MB = 10⁶ bytes. "+
		"In flight: the input bytes the client keeps sent and not yet answered, at most %d batches (256 Ki rows) per stream. "+
		"The bar to read the peaks against is 100 MB + 4 × in flight; "+
		"last ÷ first compares the last exchange's peak PSS with the first's.\n\n",
		bytesText(m.inputBytes), m.batches, m.batchRows, len(m.exchanges), p.memoryEvery.Milliseconds(), window(m.batchRows))
	fmt.Fprintln(w, "| server | processes | idle RSS / PSS MB | first peak RSS / PSS MB | last peak RSS / PSS MB | highest peak PSS MB | highest − idle PSS MB | last ÷ first PSS | in flight MB | bar MB |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rec.memory {
		if len(r.exchanges) == 0 {
			continue
		}
		first, last := r.exchanges[0].peak, r.exchanges[len(r.exchanges)-1].peak
		var highest int64
		procs := r.idle.procs
		for _, e := range r.exchanges {
			highest, procs = max(highest, e.peak.pss), max(procs, e.peak.procs)
		}
		fmt.Fprintf(w, "| %s | %d | %s / %s | %s / %s | %s / %s | %s | %s | %s | %s | %s |\n", r.server, procs,
			mb(r.idle.rss), mb(r.idle.pss), mb(first.rss), mb(first.pss), mb(last.rss), mb(last.pss), mb(highest), mb(highest-r.idle.pss),
			ratioText(float64(last.pss)/float64(first.pss)), mb(r.inFlightBytes), mb(memoryBar(r.inFlightBytes)))
	}
	fmt.Fprint(w, "\nPeak per exchange:\n\n")
	fmt.Fprintln(w, "| server | exchange | rows/s | peak RSS MB | peak PSS MB | samples |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|")
	for _, r := range rec.memory {
		for i, e := range r.exchanges {
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %d |\n", r.server, i+1, si(float64(e.rows)/e.elapsed.Seconds()), mb(e.peak.rss), mb(e.peak.pss), e.peak.samples)
		}
	}
	fmt.Fprintln(w)
}

func writeStarts(w io.Writer, rec *record) {
	if len(rec.starts) == 0 {
		return
	}
	fmt.Fprint(w, "### Start to the first answered call\n\n"+
		"From starting the process to the first correct answer of `echo_int64` (1 row), median ms. "+
		"Cold: an empty `--state-dir` (fletch extracts its embedded Python); warm: the state dir reused. "+
		"The other servers keep no state, so they have only one kind of start.\n\n")
	fmt.Fprintln(w, "| server | cold ms | warm ms | starts |")
	fmt.Fprintln(w, "|---|--:|--:|--:|")
	for _, s := range rec.starts {
		cold := "–"
		if len(s.cold) > 0 {
			cold = num(medianMillis(s.cold))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d |\n", s.server, cold, num(medianMillis(s.warm)), len(s.warm))
	}
	fmt.Fprintln(w)
}

// writeHeader writes what the run was measured on.
func writeHeader(w io.Writer, rec *record) {
	in := rec.info
	fmt.Fprintf(w, "# fletch benchmark record: %s, %s\n\n", in.date, in.machine)
	fmt.Fprintf(w, "Reproduce from the repository root (after `make build`):\n\n```sh\n%s\n```\n\n", in.command)
	fmt.Fprintln(w, "| | |\n|---|---|")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "| %s | %s |\n", k, v)
		}
	}
	row("mode", in.mode)
	row("conditions", in.note)
	row("load average", in.load)
	row("CPU", in.cpu)
	row("cores", strconv.Itoa(in.cores))
	row("kernel", in.kernel)
	row("`uname -m`", in.machine)
	row("Go (harness, echo server)", in.goVersion)
	row("arrow-go", in.arrowGo)
	row("fletch", in.fletch)
	row("host Python (peer venvs)", in.hostPython)
	for _, s := range servers() {
		row("`"+s.name+"`", in.servers[s.name])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Servers:")
	fmt.Fprintln(w)
	for _, s := range servers() {
		if _, ok := in.servers[s.name]; ok {
			fmt.Fprintf(w, "- `%s`: %s\n", s.name, s.what)
		}
	}
	fmt.Fprintln(w)
}

// writeFiles writes the record into dir: README.md and the CSV files.
func writeFiles(dir string, rec *record, p plan) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results dir: %w", err)
	}
	var md strings.Builder
	writeHeader(&md, rec)
	writeMarkdown(&md, rec, p)
	md.WriteString("### Plots\n\n")
	for _, k := range plotNames(rec) {
		fmt.Fprintf(&md, "![%s](%s)\n\n", strings.TrimSuffix(k, ".png"), k)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write README.md: %w", err)
	}
	files := map[string]func(*csv.Writer){
		"results.csv": func(c *csv.Writer) { resultsCSV(c, rec) },
		"samples.csv": func(c *csv.Writer) { samplesCSV(c, rec) },
		"latency.csv": func(c *csv.Writer) { latencyCSV(c, rec) },
		"starts.csv":  func(c *csv.Writer) { startsCSV(c, rec) },
		"memory.csv":  func(c *csv.Writer) { memoryCSV(c, rec) },
	}
	for name, fill := range files {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		c := csv.NewWriter(f)
		fill(c)
		c.Flush()
		if err := c.Error(); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// plotNames lists the PNG files plot.py makes for rec.
func plotNames(rec *record) []string {
	var names []string
	for _, w := range workloads() {
		if w.matrix && hasWorkload(rec, func(n string) bool { return n == w.name }) {
			names = append(names, "throughput-"+w.name+".png")
		}
	}
	if len(rec.cdfs) > 0 {
		names = append(names, "latency-cdf.png")
	}
	return names
}

func f64(x float64) string {
	if math.IsNaN(x) {
		return ""
	}
	return strconv.FormatFloat(x, 'g', 6, 64)
}

func resultsCSV(c *csv.Writer, rec *record) {
	c.Write([]string{"workload", "batch_rows", "streams", "server", "status", "reps", "rows_per_s", "gb_per_s", "ns_per_row", "p50_us", "p99_us", "x_echo", "div_pyarrow"})
	for _, r := range rec.results {
		status := r.status
		if status == "" {
			status = "ok"
		}
		row := []string{r.workload, strconv.Itoa(r.batchRows), strconv.Itoa(r.streams), r.server, status, strconv.Itoa(len(r.reps))}
		if len(r.reps) == 0 {
			c.Write(append(row, "", "", "", "", "", "", ""))
			continue
		}
		echo, pyarrow := math.NaN(), math.NaN()
		if isMatrix(r.workload) {
			echo, pyarrow = rec.versus(r, echoServer), rec.versus(r, pyarrowPeer)
		}
		c.Write(append(row, f64(r.rowsPerSec()), f64(r.gbPerSec()), f64(r.nsPerRow()), f64(r.p50()), f64(r.p99()), f64(echo), f64(pyarrow)))
	}
}

func samplesCSV(c *csv.Writer, rec *record) {
	c.Write([]string{"workload", "batch_rows", "streams", "server", "rep", "rows", "elapsed_s", "rows_per_s", "p50_us", "p99_us"})
	for _, r := range rec.results {
		for i, p := range r.reps {
			c.Write([]string{r.workload, strconv.Itoa(r.batchRows), strconv.Itoa(r.streams), r.server, strconv.Itoa(i + 1),
				strconv.FormatInt(p.rows, 10), f64(p.elapsed.Seconds()), f64(float64(p.rows) / p.elapsed.Seconds()),
				f64(micros(p.p50)), f64(micros(p.p99))})
		}
	}
}

// latencyCSV writes 201 quantiles of each pooled lock-step distribution.
func latencyCSV(c *csv.Writer, rec *record) {
	c.Write([]string{"server", "batch_rows", "quantile", "us"})
	for _, l := range rec.cdfs {
		for i := 0; i <= 200; i++ {
			q := float64(i) / 200
			c.Write([]string{l.server, strconv.Itoa(l.batchRows), f64(q), f64(micros(quantile(l.sorted, q)))})
		}
	}
}

func startsCSV(c *csv.Writer, rec *record) {
	c.Write([]string{"server", "kind", "rep", "ms"})
	for _, s := range rec.starts {
		for _, k := range []struct {
			kind string
			ds   []time.Duration
		}{{"cold", s.cold}, {"warm", s.warm}} {
			for i, d := range k.ds {
				c.Write([]string{s.server, k.kind, strconv.Itoa(i + 1), f64(float64(d) / 1e6)})
			}
		}
	}
}

// memoryCSV writes one row per memory exchange; sizes in bytes.
func memoryCSV(c *csv.Writer, rec *record) {
	c.Write([]string{"server", "exchange", "batch_rows", "batches", "input_bytes", "in_flight_bytes", "rows", "elapsed_s", "rows_per_s",
		"peak_rss_bytes", "peak_pss_bytes", "processes", "samples", "idle_rss_bytes", "idle_pss_bytes"})
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	for _, r := range rec.memory {
		for i, e := range r.exchanges {
			c.Write([]string{r.server, strconv.Itoa(i + 1), strconv.Itoa(r.batchRows), strconv.Itoa(r.batches), i64(r.inputBytes), i64(r.inFlightBytes),
				i64(e.rows), f64(e.elapsed.Seconds()), f64(float64(e.rows) / e.elapsed.Seconds()),
				i64(e.peak.rss), i64(e.peak.pss), strconv.Itoa(e.peak.procs), strconv.Itoa(e.peak.samples), i64(r.idle.rss), i64(r.idle.pss)})
		}
	}
}
