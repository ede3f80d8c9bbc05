package flightsrv_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fletch-udf/fletch/exec"
	"github.com/fletch-udf/fletch/flightsrv"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// harness is a real fletch Flight server on a loopback port and an arrow-go
// client connected to it. Everything both allocate comes from mem, which
// must be back to zero when the test ends.
type harness struct {
	t      testing.TB
	mem    *memory.CheckedAllocator
	client flight.Client
	addr   string
	cancel context.CancelFunc
	served chan error
}

type harnessConfig struct {
	opts flightsrv.Options
	// extra functions registered beside the built-ins.
	fns []*exec.Function
	// wrap, if set, replaces the session a function gets.
	wrap func(fn *udfcatalog.UDF, s exec.Session) exec.Session
	// openErr, if set, may fail an open before the executor sees it.
	openErr func(fn *udfcatalog.UDF) error
	// clientCreds, if set, replaces the client's plaintext transport.
	clientCreds credentials.TransportCredentials
}

func newHarness(t testing.TB, cfg harnessConfig) *harness {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	reg := udfcatalog.NewRegistry()
	native := exec.NewNative(mem)
	if err := native.Register(reg, append(exec.Builtins(), cfg.fns...)...); err != nil {
		t.Fatalf("register: %v", err)
	}
	router := exec.NewRouter(native, nil)
	open := func(ctx context.Context, fn *udfcatalog.UDF, options []byte) (exec.Session, error) {
		if cfg.openErr != nil {
			if err := cfg.openErr(fn); err != nil {
				return nil, err
			}
		}
		s, err := router.Open(ctx, fn, options)
		if err != nil || cfg.wrap == nil {
			return s, err
		}
		return cfg.wrap(fn, s), nil
	}
	if cfg.opts.Logger == nil {
		cfg.opts.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}})
	}
	srv := flightsrv.New(reg, open, mem, cfg.opts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, mem: mem, addr: lis.Addr().String(), cancel: cancel, served: make(chan error, 1)}
	go func() { h.served <- srv.Serve(ctx, lis) }()
	creds := cfg.clientCreds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	h.client, err = flight.NewClientWithMiddleware(h.addr, nil, nil,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.close)
	return h
}

// close stops the server, waits for all its goroutines, and checks that
// every byte allocated during the test was released.
func (h *harness) close() {
	h.client.Close()
	h.cancel()
	if err := <-h.served; err != nil {
		h.t.Errorf("Serve: %v", err)
	}
	h.mem.AssertSize(h.t, 0)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func path(name string) *flight.FlightDescriptor {
	return &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{name}}
}

// exchange sends batches to the named function, the way a careful arrow-go
// client does (a writer goroutine, then a half-close), and returns the
// output batches and the call's final error.
func (h *harness) exchange(ctx context.Context, name string, schema *arrow.Schema, batches ...arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := h.client.DoExchange(ctx)
	if err != nil {
		return nil, err
	}
	writeDone := make(chan struct{})
	go func() {
		defer close(writeDone)
		w := flight.NewRecordWriter(stream, ipc.WithSchema(schema), ipc.WithAllocator(h.mem))
		w.SetFlightDescriptor(path(name))
		for _, b := range batches {
			if err := w.Write(b); err != nil {
				break // the server ended the call; its status comes from Recv
			}
		}
		w.Close()
		stream.CloseSend()
	}()
	defer func() { <-writeDone }()
	return readAll(stream, h.mem)
}

// readAll reads output batches until the stream ends; the status is the error.
func readAll(stream flight.DataStreamReader, mem memory.Allocator) ([]arrow.RecordBatch, error) {
	rdr, err := flight.NewRecordReader(stream, ipc.WithAllocator(mem))
	if err != nil {
		return nil, err
	}
	defer rdr.Release()
	var out []arrow.RecordBatch
	for rdr.Next() {
		rec := rdr.RecordBatch()
		rec.Retain()
		out = append(out, rec)
	}
	if err := rdr.Err(); err != nil && !errors.Is(err, io.EOF) {
		release(out)
		return nil, err
	}
	return out, nil
}

func release[T interface{ Release() }](xs []T) {
	for _, x := range xs {
		x.Release()
	}
}

// int64Batch builds a one-column batch; nil entries are nulls.
func int64Batch(mem memory.Allocator, name string, vals []*int64) arrow.RecordBatch {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
		} else {
			b.Append(*v)
		}
	}
	col := b.NewArray()
	defer col.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: name, Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{col}, int64(len(vals)))
}

// batchFromJSON builds a batch of schema from a JSON array of row objects.
func batchFromJSON(t testing.TB, mem memory.Allocator, schema *arrow.Schema, rows string) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(rows))
	if err != nil {
		t.Fatalf("RecordFromJSON(%s): %v", rows, err)
	}
	return rec
}

// columnJSON renders column i of every batch as one JSON array, for comparisons.
func columnJSON(t testing.TB, batches []arrow.RecordBatch, i int) string {
	t.Helper()
	var parts []string
	for _, b := range batches {
		js, err := b.Column(i).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		s := string(js)
		if s != "[]" {
			parts = append(parts, s[1:len(s)-1])
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}
