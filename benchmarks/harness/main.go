// Command harness benchmarks fletch against a bare arrow-go echo server and
// peer UDF servers (a plain pyarrow.flight server, RisingWave's arrow-udf,
// Databend's databend-udf), each its own process on loopback, driven by
// the same arrow-go Flight client. Every answer is checked by row count and
// checksum; a wrong answer fails the run.
//
//	go run ./benchmarks/harness -mode quick   # seconds: check every pair, print the tables
//	go run ./benchmarks/harness -mode full    # the record, in benchmarks/results/<date>-<uname -m>/
//
// See docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "harness:", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness: FAILED:", err)
		os.Exit(1)
	}
}
