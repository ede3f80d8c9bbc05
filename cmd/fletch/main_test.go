package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/fletch-udf/fletch/exec"
	"github.com/fletch-udf/fletch/flightsrv"
	"github.com/fletch-udf/fletch/udfcatalog"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer serves the built-in functions on a loopback port, as
// fletch serve does, until the test ends; then it checks that the server
// released every byte it allocated.
func startServer(t *testing.T) string {
	t.Helper()
	addr, _ := startServerCatalog(t)
	return addr
}

// startServerCatalog is startServer, also returning the server's catalog.
func startServerCatalog(t *testing.T) (string, *udfcatalog.Registry) {
	t.Helper()
	return startServerWith(t, nil, flightsrv.Options{})
}

// testUDF is a test-only UDF of a kind the native executor cannot run:
// open starts its sessions, allocating from mem.
type testUDF struct {
	udf  *udfcatalog.UDF
	open func(mem memory.Allocator, options udfcatalog.ExchangeOptions) flightsrv.Session
}

// startServerWith is startServerCatalog serving extra UDFs beside the
// built-in ones, with opts.
func startServerWith(t *testing.T, extra []testUDF, opts flightsrv.Options) (string, *udfcatalog.Registry) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	catalog := udfcatalog.NewRegistry()
	native := exec.NewNative(mem)
	if err := native.Register(catalog, exec.Builtins()...); err != nil {
		t.Fatal(err)
	}
	byName := make(map[string]testUDF, len(extra))
	for _, u := range extra {
		if err := catalog.Register(u.udf); err != nil {
			t.Fatal(err)
		}
		byName[u.udf.Name] = u
	}
	router := exec.NewRouter(native, nil)
	open := func(ctx context.Context, fn *udfcatalog.UDF, options []byte) (flightsrv.Session, error) {
		u, ok := byName[fn.Name]
		if !ok {
			return router.Open(ctx, fn, options)
		}
		o, err := udfcatalog.ParseExchangeOptions(options) // the server has checked them
		if err != nil {
			return nil, err
		}
		return u.open(mem, o), nil
	}
	opts.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: testLog{t}})
	srv := flightsrv.New(catalog, open, mem, opts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		mem.AssertSize(t, 0)
	})
	return lis.Addr().String(), catalog
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// unusedAddress is a loopback address nothing listens on.
func unusedAddress(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

type verb func(context.Context, []string, cliEnv) error

// result is what one run of a verb printed and returned.
type result struct {
	stdout, stderr string
	err            error
}

// runVerb runs v with args and stdin, capturing its output, and checks
// that the client released every byte it allocated.
func runVerb(t *testing.T, v verb, stdin []byte, args ...string) result {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	var stdout, stderr bytes.Buffer
	var in io.Reader = bytes.NewReader(stdin)
	err := v(context.Background(), args, cliEnv{stdin: in, stdout: &stdout, stderr: &stderr, mem: mem})
	mem.AssertSize(t, 0)
	return result{stdout.String(), stderr.String(), err}
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
