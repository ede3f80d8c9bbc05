// Command fletch serves user-defined functions over Apache Arrow Flight.
//
//	fletch serve [flags]   serve the catalog (see fletch serve -h)
//	fletch health          check a server's health service
//	fletch list            list a server's UDFs
//	fletch describe NAME   describe one UDF
//	fletch call NAME       call a UDF on every row of a file or stdin
//	fletch version         print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue *usageError
		if !errors.Is(err, flag.ErrHelp) && !(errors.As(err, &ue) && ue.reported) {
			fmt.Fprintln(os.Stderr, "fletch:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError marks errors in how fletch was invoked. reported means the
// message was already printed.
type usageError struct {
	msg      string
	reported bool
}

func (e *usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `usage: fletch <command> [flags]

commands:
  serve     serve UDFs over Arrow Flight (fletch serve -h for flags)
  health    check that a server is serving (exit 0) or not (exit 1)
  list      list the UDFs of a running server (fletch list -h)
  describe  describe one UDF: fletch describe NAME
  call      call a UDF on every row of a file: fletch call NAME --input FILE
            (CSV, JSON lines, Parquet or Arrow; fletch call -h)
  version   print the version
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{msg: "no command given"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "health":
		return health(ctx, args[1:], stdout, stderr)
	case "list":
		return listCmd(ctx, args[1:], osEnv(stdout, stderr))
	case "describe":
		return describeCmd(ctx, args[1:], osEnv(stdout, stderr))
	case "call":
		return callCmd(ctx, args[1:], osEnv(stdout, stderr))
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "fletch", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &usageError{msg: fmt.Sprintf("unknown command %q", args[0])}
}
