package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// starts measures each server's start to its first answered call: cold
// with an empty state dir, warm with the state dir the fleet used. Servers
// without a state dir have only warm starts.
func (b *bench) starts(ctx context.Context, e *env) error {
	if !b.cfg.wants(startName) {
		return nil
	}
	probe := prober(b.mem, b.h)
	once := func(s serverSpec, state, tag string) (time.Duration, error) {
		p, err := launch(e, s, state, tag)
		if err != nil {
			return 0, err
		}
		took, err := awaitFirstAnswer(ctx, p, probe, 5*time.Minute)
		if stopErr := p.stop(10 * time.Second); err == nil {
			err = stopErr
		}
		return took, err
	}
	for _, s := range servers() {
		if !wanted(b.cfg, s) {
			continue
		}
		res := startResult{server: s.name}
		for i := range b.cfg.plan.startReps {
			if s.stateDir {
				dir := filepath.Join(e.run, fmt.Sprintf("cold-%s-%d", s.name, i))
				took, err := once(s, dir, fmt.Sprintf("cold%d", i))
				_ = os.RemoveAll(dir)
				if err != nil {
					return fmt.Errorf("cold start: %w", err)
				}
				res.cold = append(res.cold, took)
				fmt.Fprintf(b.log, "  start %-13s cold %d/%d  %s ms\n", s.name, i+1, b.cfg.plan.startReps, num(float64(took)/1e6))
			}
			took, err := once(s, e.state, fmt.Sprintf("warm%d", i))
			if err != nil {
				return fmt.Errorf("warm start: %w", err)
			}
			res.warm = append(res.warm, took)
			fmt.Fprintf(b.log, "  start %-13s warm %d/%d  %s ms\n", s.name, i+1, b.cfg.plan.startReps, num(float64(took)/1e6))
		}
		b.rec.starts = append(b.rec.starts, res)
	}
	return nil
}
