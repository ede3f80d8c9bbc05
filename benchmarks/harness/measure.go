package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// maxRowsPerStream bounds one throughput measurement whatever its duration.
const maxRowsPerStream = 1 << 28

// asyncLatency is the simulated I/O call of the async workloads.
const asyncLatency = 10 * time.Millisecond

// bench measures the fleet. Each configuration is measured on every server
// in turn, in a rotated order each repetition, so that drift on a shared
// machine spreads over all servers alike.
type bench struct {
	cfg   config
	mem   memory.Allocator
	h     digester
	fleet *fleet
	rec   *record
	log   io.Writer
}

// throughput measures each matrix workload at every batch size and stream
// count.
func (b *bench) throughput(ctx context.Context) error {
	p := b.cfg.plan
	for _, w := range workloads() {
		if !w.matrix || !b.cfg.wants(w.name) {
			continue
		}
		for _, rows := range p.batchRows {
			count := max(4, p.distinctRows/rows)
			err := b.withDatasets(w, rows, count, func(ms []*member, ds []*dataset) error {
				for _, streams := range p.streams {
					if err := b.configuration(ctx, w, rows, streams, ms, ds); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// withDatasets builds the input of w for every server computing it (their
// declared string types may differ) and calls f.
func (b *bench) withDatasets(w workload, rows, count int, f func([]*member, []*dataset) error) error {
	ms := b.fleet.serving(w.name)
	ds := make([]*dataset, len(ms))
	defer func() {
		for _, d := range ds {
			if d != nil {
				d.release()
			}
		}
	}()
	for i, m := range ms {
		d, err := newDataset(b.mem, b.h, w, m.inTypes[w.name], rows, count)
		if err != nil {
			return fmt.Errorf("%s input: %w", w.name, err)
		}
		ds[i] = d
	}
	return f(ms, ds)
}

// configuration measures one workload, batch size and stream count on
// every server.
func (b *bench) configuration(ctx context.Context, w workload, rows, streams int, ms []*member, ds []*dataset) error {
	p := b.cfg.plan
	results := make([]*result, len(ms))
	batches := make([]int, len(ms))
	for i, m := range ms {
		results[i] = b.rec.add(&result{workload: w.name, batchRows: rows, streams: streams, server: m.spec.name, bytesPerRow: w.bytesPerRow()})
		batches[i] = p.minBatches
	}
	run := func(i, n int) (rep, error) {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
		defer cancel()
		c := caller{mem: b.mem, h: b.h, fn: w.fn}
		stats, elapsed, err := c.multi(ctx, ms[i].clients[:streams], ds[i], n)
		if err != nil {
			return rep{}, fmt.Errorf("%s, %s, %d rows × %d streams: %w", ms[i].spec.name, w.name, rows, streams, err)
		}
		return summarize(stats, elapsed), nil
	}
	if p.calibrate {
		for i := range ms {
			n, err := b.calibrate(func(n int) (rep, error) { return run(i, n) }, rows, streams)
			if err != nil {
				return err
			}
			batches[i] = n
		}
	}
	for r := range p.reps {
		for k := range ms {
			i := (k + r) % len(ms)
			got, err := run(i, batches[i])
			if err != nil {
				return err
			}
			results[i].reps = append(results[i].reps, got)
			b.progress(results[i], r, got)
		}
	}
	return nil
}

// calibrate returns how many batches per stream make a run last about the
// plan's duration, as testing.B does: one batch per stream, then runs
// sized for a tenth of the duration until one lasts that long (a server
// still warming up, such as a Python worker's first calls, makes the first
// rates too low), then the size for all of it from the last rate. The runs
// are not recorded; they also warm the server up.
func (b *bench) calibrate(run func(n int) (rep, error), rows, streams int) (int, error) {
	p := b.cfg.plan
	sized := func(got rep, frac float64) int {
		rate := float64(got.rows) / got.elapsed.Seconds()
		n := int(math.Ceil(frac * p.duration.Seconds() * rate / float64(rows*streams)))
		return max(p.minBatches, min(n, maxRowsPerStream/rows))
	}
	n := 1
	got, err := run(n)
	if err != nil {
		return 0, err
	}
	for range maxCalibrations {
		if got.elapsed >= p.duration/10 || n >= maxRowsPerStream/rows {
			break
		}
		n = max(sized(got, 0.1), min(2*n, maxRowsPerStream/rows))
		if got, err = run(n); err != nil {
			return 0, err
		}
	}
	return sized(got, 1), nil
}

// maxCalibrations bounds the sizing runs of calibrate.
const maxCalibrations = 5

// summarize pools the streams of one repetition.
func summarize(stats []streamStats, elapsed time.Duration) rep {
	var all []time.Duration
	var rows int64
	for _, s := range stats {
		rows += s.rows
		all = append(all, s.latencies...)
	}
	all = sortedCopy(all)
	return rep{rows: rows, elapsed: elapsed, p50: quantile(all, 0.5), p99: quantile(all, 0.99)}
}

func (b *bench) progress(r *result, i int, got rep) {
	fmt.Fprintf(b.log, "  %-15s %6d rows × %d  %-13s rep %d/%d  %9s rows/s  p50 %s µs\n", r.workload, r.batchRows, r.streams,
		r.server, i+1, b.cfg.plan.reps, si(float64(got.rows)/got.elapsed.Seconds()), num(micros(got.p50)))
}
