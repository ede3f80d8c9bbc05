package main

import (
	"context"
	"fmt"
	"time"
)

// lockstep measures the round trip of small batches of echo_int64, one at
// a time on one stream.
func (b *bench) lockstep(ctx context.Context) error {
	if !b.cfg.wants(lockstepName) {
		return nil
	}
	p := b.cfg.plan
	w := workloadByName("identity_int64")
	for _, rows := range p.lockstepRows {
		count := max(4, min(64, p.distinctRows/rows))
		err := b.withDatasets(w, rows, count, func(ms []*member, ds []*dataset) error {
			results := make([]*result, len(ms))
			pooled := make([][]time.Duration, len(ms))
			for i, m := range ms {
				results[i] = b.rec.add(&result{workload: lockstepName, batchRows: rows, streams: 1, server: m.spec.name, bytesPerRow: w.bytesPerRow()})
			}
			for r := range p.reps {
				for k := range ms {
					i := (k + r) % len(ms)
					ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
					lats, err := caller{mem: b.mem, h: b.h, fn: w.fn}.lockstep(ctx, ms[i].clients[0], ds[i], p.lockstepWarm, p.lockstepIters)
					cancel()
					if err != nil {
						return fmt.Errorf("%s, lock-step, %d rows: %w", ms[i].spec.name, rows, err)
					}
					var total time.Duration
					for _, l := range lats {
						total += l
					}
					sorted := sortedCopy(lats)
					got := rep{rows: int64(len(lats) * rows), elapsed: total, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99)}
					results[i].reps = append(results[i].reps, got)
					pooled[i] = append(pooled[i], lats...)
					b.progress(results[i], r, got)
				}
			}
			for i, m := range ms {
				b.rec.cdfs = append(b.rec.cdfs, latencies{server: m.spec.name, batchRows: rows, sorted: sortedCopy(pooled[i])})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// async measures the async UDFs where the server has them, and records
// "not supported yet" where it does not.
func (b *bench) async(ctx context.Context) error {
	p := b.cfg.plan
	for _, w := range workloads() {
		if w.matrix || !b.cfg.wants(w.name) {
			continue
		}
		// A batch many times the calls in flight keeps them in flight: a
		// worker's next batch starts only when its current one is done.
		rows := w.inFlight() * p.asyncRounds
		for _, m := range b.fleet.members {
			if m.spec.serves(w.name) && m.missing[w.name] != "" {
				b.rec.add(&result{workload: w.name, batchRows: rows, streams: 1, server: m.spec.name, status: m.missing[w.name]})
				fmt.Fprintf(b.log, "  %-15s %s: %s\n", w.name, m.spec.name, m.missing[w.name])
			}
		}
		err := b.withDatasets(w, rows, p.asyncBatches, func(ms []*member, ds []*dataset) error {
			for i, m := range ms {
				r := b.rec.add(&result{workload: w.name, batchRows: rows, streams: 1, server: m.spec.name, bytesPerRow: w.bytesPerRow()})
				for k := range p.reps {
					ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
					stats, elapsed, err := caller{mem: b.mem, h: b.h, fn: w.fn}.multi(ctx, m.clients[:1], ds[i], p.asyncBatches)
					cancel()
					if err != nil {
						return fmt.Errorf("%s, %s: %w", m.spec.name, w.name, err)
					}
					got := summarize(stats, elapsed)
					r.reps = append(r.reps, got)
					b.progress(r, k, got)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
