package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// config is everything a run needs to know, from the command line.
type config struct {
	mode    string // "quick" or "full"
	root    string // the repository root
	fletch  string // the fletch binary
	python  string // the interpreter the peer and plot venvs are made from
	cache   string // venvs, the built echo server, state dirs
	out     string // where a run's record goes ("" in quick mode: print only)
	note    string // the machine's conditions, for the record
	servers []string
	only    []string // workloads; empty means all
	plan    plan
}

// plan is how much a mode measures.
type plan struct {
	reps          int           // repetitions of each measurement; the report quotes medians
	calibrate     bool          // size each throughput measurement to last about duration
	duration      time.Duration // the target length of one throughput measurement
	minBatches    int           // per stream in a throughput measurement (all of them when not calibrating)
	distinctRows  int           // rows of distinct input, cycled through
	batchRows     []int         // throughput batch sizes
	streams       []int         // concurrent DoExchange streams
	lockstepRows  []int         // lock-step batch sizes
	lockstepIters int           // round trips per lock-step measurement, after lockstepWarm
	lockstepWarm  int
	asyncRounds   int // rows per async batch, as a multiple of the calls in flight
	asyncBatches  int // batches per async measurement
	startReps     int // cold and warm starts per server

	memoryBytes     int64         // int64 input per memory exchange
	memoryExchanges int           // memory exchanges in a row, per server
	memoryBatchRows int           // rows per batch of a memory exchange
	memoryEvery     time.Duration // how often the server's process tree is sampled
}

func quickPlan() plan {
	return plan{
		reps: 1, minBatches: 2, distinctRows: 64 << 10,
		batchRows: []int{1 << 10, 8 << 10}, streams: []int{1, 4},
		lockstepRows: []int{1, 16, 1024}, lockstepIters: 100, lockstepWarm: 10,
		asyncRounds: 4, asyncBatches: 1, startReps: 1,
		memoryBytes: 64 << 20, memoryExchanges: 2, memoryBatchRows: 64 << 10, memoryEvery: 50 * time.Millisecond,
	}
}

func fullPlan() plan {
	return plan{
		reps: 5, calibrate: true, duration: time.Second, minBatches: 1, distinctRows: 1 << 20,
		batchRows: []int{1 << 10, 8 << 10, 64 << 10}, streams: []int{1, 4},
		lockstepRows: []int{1, 16, 1024}, lockstepIters: 2000, lockstepWarm: 200,
		asyncRounds: 64, asyncBatches: 4, startReps: 5,
		memoryBytes: 1 << 30, memoryExchanges: 10, memoryBatchRows: 64 << 10, memoryEvery: 50 * time.Millisecond,
	}
}

type csvFlag []string

func (c *csvFlag) String() string { return strings.Join(*c, ",") }
func (c *csvFlag) Set(s string) error {
	*c = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*c = append(*c, v)
		}
	}
	return nil
}

// parseFlags reads the command line. It returns flag.ErrHelp for -h.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{servers: serverNames()}
	var servers, only csvFlag = cfg.servers, nil
	var reps int
	var duration time.Duration
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.mode, "mode", "quick", "`quick` (check every server and workload, print the table) or full (write the record)")
	fs.StringVar(&cfg.root, "root", ".", "the repository `dir`")
	fs.StringVar(&cfg.fletch, "fletch", "bin/fletch", "the fletch `binary` (relative to -root); `make build` makes it")
	fs.StringVar(&cfg.python, "python", "python3", "the `interpreter` the peer and plot venvs are made from")
	fs.StringVar(&cfg.cache, "cache", "benchmarks/.cache", "`dir` for venvs, the echo server binary and state dirs (relative to -root)")
	fs.StringVar(&cfg.out, "out", "", "write the record to `dir` (default in full mode: benchmarks/results/<date>-<uname -m>)")
	fs.StringVar(&cfg.note, "note", "", "the machine's `conditions` (quiet, shared, ...), written into the record")
	fs.Var(&servers, "servers", "comma-separated `list` of servers to run: "+strings.Join(serverNames(), ","))
	fs.Var(&only, "workloads", "comma-separated `list` of workloads to run (default all): "+strings.Join(workloadNames(), ","))
	fs.IntVar(&reps, "reps", 0, "repetitions of each measurement (default: 1 quick, 5 full)")
	fs.DurationVar(&duration, "duration", 0, "target length of each throughput measurement, calibrated like testing.B (full mode; default 1s)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch cfg.mode {
	case "quick":
		cfg.plan = quickPlan()
	case "full":
		cfg.plan = fullPlan()
	default:
		return cfg, fmt.Errorf("-mode must be quick or full, got %q", cfg.mode)
	}
	if reps > 0 {
		cfg.plan.reps = reps
		cfg.plan.startReps = reps
	}
	if duration > 0 {
		cfg.plan.duration = duration
	}
	for _, s := range servers {
		if !slices.Contains(serverNames(), s) {
			return cfg, fmt.Errorf("-servers: unknown server %q (have %s)", s, strings.Join(serverNames(), ", "))
		}
	}
	for _, w := range only {
		if !slices.Contains(workloadNames(), w) {
			return cfg, fmt.Errorf("-workloads: unknown workload %q (have %s)", w, strings.Join(workloadNames(), ", "))
		}
	}
	cfg.servers, cfg.only = servers, only
	return cfg, cfg.resolve()
}

// resolve makes the paths absolute and checks that -root is the repository.
func (c *config) resolve() error {
	root, err := filepath.Abs(c.root)
	if err != nil {
		return fmt.Errorf("-root: %w", err)
	}
	c.root = root
	if _, err := os.Stat(filepath.Join(root, "benchmarks", "peers")); err != nil {
		return errors.New("run from the repository root, or pass -root")
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	c.fletch, c.cache, c.out = abs(c.fletch), abs(c.cache), abs(c.out)
	return nil
}

// wants reports whether workload name is to be run.
func (c *config) wants(name string) bool {
	return len(c.only) == 0 || slices.Contains(c.only, name)
}
