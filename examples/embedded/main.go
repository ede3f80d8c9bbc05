// Command embedded shows how a Go program serves its own UDFs with fletch
// as a library: build a catalog, register typed Go functions, and serve
// them over Arrow Flight until interrupted.
//
//	go run ./examples/embedded -listen 127.0.0.1:8816
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"

	"github.com/fletch-udf/fletch/exec"
	"github.com/fletch-udf/fletch/flightsrv"
	"github.com/fletch-udf/fletch/udfcatalog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	listen := flag.String("listen", "127.0.0.1:8816", "address to serve on")
	flag.Parse()
	log := hclog.New(&hclog.LoggerOptions{Name: "embedded", Level: hclog.Info})

	mem := memory.NewGoAllocator()
	catalog := udfcatalog.NewRegistry()
	native := exec.NewNative(mem)
	err := native.Register(catalog,
		// The signature comes from the Go types: (float64, float64) -> float64.
		exec.Scalar2("hypot", math.Hypot, exec.WithParamNames("x", "y"),
			exec.WithDoc("length of the vector (x, y)")),
		// A Nullable parameter receives nulls; other parameters never do.
		exec.Scalar1("initials", initials, exec.WithParamNames("name")),
		// The E forms fail the batch with an error that names the row.
		exec.Scalar1E("sqrt_checked", sqrtChecked, exec.WithParamNames("x")),
	)
	if err != nil {
		return err
	}

	srv := flightsrv.New(catalog, exec.NewRouter(native, nil).Open, mem, flightsrv.Options{Logger: log})
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	return srv.Serve(ctx, lis) // returns after draining when ctx ends
}

func initials(name exec.Nullable[string]) string {
	if !name.Valid {
		return "?"
	}
	var b strings.Builder
	for _, word := range strings.Fields(name.Value) {
		b.WriteString(strings.ToUpper(string([]rune(word)[:1])))
	}
	return b.String()
}

func sqrtChecked(x float64) (float64, error) {
	if x < 0 {
		return 0, errors.New("square root of a negative number")
	}
	return math.Sqrt(x), nil
}
