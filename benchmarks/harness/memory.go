package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// memoryServers are the servers whose memory is measured: fletch-python,
// whose Python workers are its child processes, and fletch-go beside it.
func memoryServers() []string { return []string{fletchGo, fletchPython} }

// memory streams the plan's memoryBytes of int64 input through echo_int64
// in one exchange, memoryExchanges times in a row, on each of
// memoryServers, while sampling the server process and all its descendants
// from /proc; it records the peak RSS and PSS of the tree per exchange.
// Every answer is checked, as in the other measurements.
func (b *bench) memory(ctx context.Context) error {
	if !b.cfg.wants(memoryName) {
		return nil
	}
	p := b.cfg.plan
	w := workloadByName("identity_int64")
	rows := p.memoryBatchRows
	bytesPerBatch := int64(rows) * int64(w.bytesPerRow())
	batches := int(max(1, p.memoryBytes/bytesPerBatch))
	var ms []*member
	for _, m := range b.fleet.serving(w.name) {
		if slices.Contains(memoryServers(), m.spec.name) {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return nil
	}
	d, err := newDataset(b.mem, b.h, w, nil, rows, max(4, p.distinctRows/rows))
	if err != nil {
		return fmt.Errorf("memory input: %w", err)
	}
	defer d.release()
	for _, m := range ms {
		pid := m.proc.cmd.Process.Pid
		idle, err := readTreeMem(procRoot, pid)
		if err != nil {
			return fmt.Errorf("%s, memory: %w", m.spec.name, err)
		}
		run := memoryRun{server: m.spec.name, batchRows: rows, batches: batches, inputBytes: int64(batches) * bytesPerBatch,
			inFlightBytes: int64(window(rows)) * bytesPerBatch, idle: idle}
		for k := range p.memoryExchanges {
			got, err := b.memoryExchange(ctx, m, d, pid, batches)
			if err != nil {
				return fmt.Errorf("%s, memory, exchange %d of %d: %w", m.spec.name, k+1, p.memoryExchanges, err)
			}
			run.exchanges = append(run.exchanges, got)
			fmt.Fprintf(b.log, "  %-15s %6d rows × 1  %-13s exchange %d/%d of %s  %9s rows/s  peak RSS %s MB, PSS %s MB; processes: %d\n",
				memoryName, rows, m.spec.name, k+1, p.memoryExchanges, bytesText(run.inputBytes),
				si(float64(got.rows)/got.elapsed.Seconds()), mb(got.peak.rss), mb(got.peak.pss), got.peak.procs)
		}
		b.rec.memory = append(b.rec.memory, run)
	}
	return nil
}

// memoryExchange streams n batches of d through one exchange while
// sampling the process tree of pid.
func (b *bench) memoryExchange(ctx context.Context, m *member, d *dataset, pid, n int) (memExchange, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	s := startSampler(procRoot, pid, b.cfg.plan.memoryEvery)
	start := time.Now()
	st, err := caller{mem: b.mem, h: b.h, fn: "echo_int64"}.pipelined(ctx, m.clients[0], d, n)
	elapsed := time.Since(start)
	peak, serr := s.finish()
	if err != nil {
		return memExchange{}, err
	}
	if serr != nil {
		return memExchange{}, fmt.Errorf("sample memory: %w", serr)
	}
	return memExchange{rows: st.rows, elapsed: elapsed, peak: peak}, nil
}

// mb formats bytes as MB (10⁶ bytes), three significant digits.
func mb(n int64) string { return num(float64(n) / 1e6) }

// bytesText is a power-of-two size: 64 MiB, 1 GiB.
func bytesText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
