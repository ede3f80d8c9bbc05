package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// run prepares the servers, measures them and reports: in quick mode the
// tables on stdout; in full mode (or with -out) also the record on disk.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (err error) {
	began, loadBefore := time.Now(), loadAvg()
	writeRecord := cfg.mode == "full" || cfg.out != ""
	e, err := prepare(ctx, cfg, writeRecord, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(e.fletch) // keep the logs, not the binary
			err = fmt.Errorf("%w\n(server logs are in %s)", err, e.logs)
			return
		}
		_ = os.RemoveAll(e.run)
	}()
	fmt.Fprintf(stderr, "harness: %s mode; starting %d servers\n", cfg.mode, len(cfg.servers))
	mem := memory.NewGoAllocator()
	b := &bench{cfg: cfg, mem: mem, h: newDigester(), rec: &record{}, log: stderr}
	b.fleet, err = startFleet(ctx, e, mem, b.h, slicesMax(cfg.plan.streams))
	if err != nil {
		return err
	}
	versions := map[string]string{}
	for _, m := range b.fleet.members {
		versions[m.spec.name] = m.versions
	}
	measured := func() error {
		if err := b.throughput(ctx); err != nil {
			return err
		}
		if err := b.lockstep(ctx); err != nil {
			return err
		}
		if err := b.async(ctx); err != nil {
			return err
		}
		return b.memory(ctx)
	}()
	if err := errors.Join(measured, b.fleet.stop()); err != nil {
		return err
	}
	if err := b.starts(ctx, e); err != nil {
		return err
	}
	b.rec.info = collectSysInfo(ctx, e, describe(versions))
	b.rec.info.load = fmt.Sprintf("%s at the start, %s at the end (1, 5, 15 min)", loadBefore, loadAvg())
	fmt.Fprintln(stdout)
	if cfg.mode == "quick" {
		fmt.Fprint(stdout, "Quick mode checks every answer of every server and workload; its runs are too short to be measurements "+
			"(two batches per stream, no repetitions). The record is `-mode full`.\n\n")
	}
	writeMarkdown(stdout, b.rec, cfg.plan)
	if writeRecord {
		if err := b.write(ctx, e, stderr); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "harness: done in %s; every answer was checked\n", time.Since(began).Round(time.Second))
	return nil
}

// describe completes the servers' own version strings with what the
// harness knows of the Go servers.
func describe(versions map[string]string) map[string]string {
	out := map[string]string{}
	for name, v := range versions {
		switch name {
		case echoServer:
			v = "arrow-go, as the harness"
		case fletchGo:
			v = "Go built-ins"
		case fletchPython:
			v = "embedded " + v
		}
		out[name] = v
	}
	return out
}

// write puts the record and its plots into the results directory.
func (b *bench) write(ctx context.Context, e *env, stderr io.Writer) error {
	dir := b.cfg.out
	if dir == "" {
		dir = filepath.Join(b.cfg.root, "benchmarks", "results", b.rec.info.date+"-"+b.rec.info.machine)
	}
	if err := writeFiles(dir, b.rec, b.cfg.plan); err != nil {
		return err
	}
	if err := command(ctx, "", e.plot, filepath.Join(b.cfg.root, "benchmarks", "harness", "plot.py"), dir); err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	fmt.Fprintf(stderr, "harness: wrote %s\n", dir)
	return nil
}

func slicesMax(xs []int) int {
	m := 1
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
