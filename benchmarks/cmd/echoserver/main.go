// Command echoserver serves benchmarks/echoserver, the bare arrow-go
// DoExchange echo, as a process of its own: the benchmark harness runs it
// beside fletch as the ceiling for the identity workloads.
//
//	echoserver -listen 127.0.0.1:8816
//
// It echoes every exchange whatever its descriptor, and serves nothing else.
// SIGINT or SIGTERM stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"

	"github.com/fletch-udf/fletch/benchmarks/echoserver"
)

// maxMessageBytes matches fletch's default --max-message-bytes.
const maxMessageBytes = 256 << 20

func main() {
	listen := flag.String("listen", "127.0.0.1:8816", "`address` to listen on (host:port)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "echoserver:", err)
		os.Exit(1)
	}
}

// serve echoes exchanges on addr until ctx ends.
func serve(ctx context.Context, addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(maxMessageBytes), grpc.MaxSendMsgSize(maxMessageBytes))
	flight.RegisterFlightServiceServer(gs, echoserver.New(memory.NewGoAllocator()))
	go func() {
		<-ctx.Done()
		gs.Stop()
	}()
	fmt.Fprintf(os.Stderr, "echoserver: listening on %s\n", lis.Addr())
	if err := gs.Serve(lis); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
