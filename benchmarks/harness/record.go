package main

import (
	"math"
	"time"
)

// rep is one repetition of a measurement.
type rep struct {
	rows     int64
	elapsed  time.Duration
	p50, p99 time.Duration // per batch
}

// result is one server on one workload configuration: a line of the report.
type result struct {
	workload    string
	batchRows   int
	streams     int
	server      string
	status      string // "" when measured; else why not (notSupportedYet)
	bytesPerRow float64
	reps        []rep
}

// rowsPerSec is the median over the repetitions.
func (r *result) rowsPerSec() float64 {
	xs := make([]float64, len(r.reps))
	for i, p := range r.reps {
		xs[i] = float64(p.rows) / p.elapsed.Seconds()
	}
	return median(xs)
}

// gbPerSec is the input payload rate at the median rows/s.
func (r *result) gbPerSec() float64 { return r.rowsPerSec() * r.bytesPerRow / 1e9 }

// nsPerRow is the wall time per row at the median rows/s.
func (r *result) nsPerRow() float64 { return 1e9 / r.rowsPerSec() }

// p50 and p99 are the medians over the repetitions of each one's per-batch
// percentiles, in µs.
func (r *result) p50() float64 { return r.medianOf(func(p rep) time.Duration { return p.p50 }) }
func (r *result) p99() float64 { return r.medianOf(func(p rep) time.Duration { return p.p99 }) }

func (r *result) medianOf(f func(rep) time.Duration) float64 {
	xs := make([]float64, len(r.reps))
	for i, p := range r.reps {
		xs[i] = micros(f(p))
	}
	return median(xs)
}

// startResult is one server's start to its first answered call.
type startResult struct {
	server     string
	cold, warm []time.Duration // cold is empty for servers without a state dir
}

func medianMillis(ds []time.Duration) float64 {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d) / float64(time.Millisecond)
	}
	return median(xs)
}

// latencies are a server's pooled lock-step round trips at one batch size,
// for the CDF plot.
type latencies struct {
	server    string
	batchRows int
	sorted    []time.Duration
}

// memoryRun is one server's memory exchanges, one after another.
type memoryRun struct {
	server        string
	batchRows     int
	batches       int     // per exchange
	inputBytes    int64   // int64 payload per exchange
	inFlightBytes int64   // the most input bytes a stream keeps sent and not yet answered
	idle          treeMem // the process tree just before the first exchange
	exchanges     []memExchange
}

// memExchange is one exchange of a memory run.
type memExchange struct {
	rows    int64
	elapsed time.Duration
	peak    memPeak
}

// record is everything a run measured.
type record struct {
	results []*result
	starts  []startResult
	cdfs    []latencies
	memory  []memoryRun
	info    sysInfo
}

func (rec *record) add(r *result) *result {
	rec.results = append(rec.results, r)
	return r
}

// find returns the measured result of server on a configuration, or nil.
func (rec *record) find(workload string, batchRows, streams int, server string) *result {
	for _, r := range rec.results {
		if r.workload == workload && r.batchRows == batchRows && r.streams == streams && r.server == server && r.status == "" && len(r.reps) > 0 {
			return r
		}
	}
	return nil
}

// ratio of the median rows/s of server a to server b on one configuration;
// NaN when either is missing.
func (rec *record) ratio(workload string, batchRows, streams int, a, b string) float64 {
	ra, rb := rec.find(workload, batchRows, streams, a), rec.find(workload, batchRows, streams, b)
	if ra == nil || rb == nil {
		return math.NaN()
	}
	return ra.rowsPerSec() / rb.rowsPerSec()
}

// versus is r's median rows/s ÷ server ref's on the same configuration;
// NaN for ref itself, and when ref has no figure.
func (rec *record) versus(r *result, ref string) float64 {
	if r.server == ref {
		return math.NaN()
	}
	return rec.ratio(r.workload, r.batchRows, r.streams, r.server, ref)
}

// pythonHop is what a trip through a Python worker adds to a batch of rows
// rows: fletch-python's lock-step p50 minus fletch-go's, in µs; NaN when
// either is missing.
func (rec *record) pythonHop(rows int) float64 {
	py, native := rec.find(lockstepName, rows, 1, fletchPython), rec.find(lockstepName, rows, 1, fletchGo)
	if py == nil || native == nil {
		return math.NaN()
	}
	return py.p50() - native.p50()
}
