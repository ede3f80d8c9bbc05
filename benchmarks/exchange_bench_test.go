package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fletch-udf/fletch/benchmarks/echoserver"
	"github.com/fletch-udf/fletch/exec"
	"github.com/fletch-udf/fletch/flightsrv"
	"github.com/fletch-udf/fletch/udfcatalog"
)

const (
	totalRows = 1 << 20
	batchRows = 1 << 16
	maxMsg    = 256 << 20
)

// BenchmarkExchange sends 1 Mi int64 rows in 64 Ki-row batches through one
// DoExchange and verifies every answer. The echo baselines run in the same
// process and the same run, with the same input as the fletch functions.
func BenchmarkExchange(b *testing.B) {
	mem := memory.NewGoAllocator()
	echoAddr := startEcho(b, mem)
	fletchAddr := startFletch(b, mem)
	one := makeBatches(mem, 1)
	two := makeBatches(mem, 2)
	b.Cleanup(func() { release(one); release(two) })

	cases := []struct {
		name, addr, fn string
		in             []arrow.RecordBatch
		want           func(i int64) int64
	}{
		{"baseline-echo/1col", echoAddr, "echo", one, func(i int64) int64 { return i }},
		{"fletch/echo_int64", fletchAddr, "echo_int64", one, func(i int64) int64 { return i }},
		{"baseline-echo/2col", echoAddr, "echo", two, func(i int64) int64 { return i }},
		{"fletch/add_int64", fletchAddr, "add_int64", two, func(i int64) int64 { return 3 * i }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { measure(b, dial(b, c.addr), c.fn, mem, c.in, c.want) })
	}
}

// measure runs exchanges of in through fn, checking every answer's row
// count and checksum, and reports rows/s and ns/row.
func measure(b *testing.B, client flight.Client, fn string, mem memory.Allocator, in []arrow.RecordBatch, want func(int64) int64) {
	var wantSum int64
	for i := range int64(totalRows) {
		wantSum += want(i)
	}
	b.SetBytes(int64(totalRows * 8 * in[0].NumCols()))
	b.ResetTimer()
	for b.Loop() {
		rows, sum, err := exchange(context.Background(), client, fn, mem, in)
		if err != nil {
			b.Fatal(err)
		}
		if rows != totalRows || sum != wantSum {
			b.Fatalf("got %d rows summing to %d, want %d rows summing to %d", rows, sum, totalRows, wantSum)
		}
	}
	b.ReportMetric(float64(totalRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(totalRows)/float64(b.N), "ns/row")
}

// makeBatches builds 1 Mi rows in cols int64 columns; row i holds i in
// column 0 and 2i in column 1.
func makeBatches(mem memory.Allocator, cols int) []arrow.RecordBatch {
	fields := []arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}, {Name: "b", Type: arrow.PrimitiveTypes.Int64}}
	schema := arrow.NewSchema(fields[:cols], nil)
	var out []arrow.RecordBatch
	for start := int64(0); start < totalRows; start += batchRows {
		arrs := make([]arrow.Array, cols)
		for c := range cols {
			bld := array.NewInt64Builder(mem)
			bld.Reserve(batchRows)
			for i := range int64(batchRows) {
				bld.UnsafeAppend((start + i) * int64(c+1))
			}
			arrs[c] = bld.NewArray()
			bld.Release()
		}
		out = append(out, array.NewRecordBatch(schema, arrs, batchRows))
		release(arrs)
	}
	return out
}

func release[T interface{ Release() }](xs []T) {
	for _, x := range xs {
		x.Release()
	}
}

// exchange streams batches to fn and returns the row count and the sum of
// the first output column.
func exchange(ctx context.Context, client flight.Client, fn string, mem memory.Allocator, batches []arrow.RecordBatch) (int64, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.DoExchange(ctx)
	if err != nil {
		return 0, 0, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := flight.NewRecordWriter(stream, ipc.WithSchema(batches[0].Schema()), ipc.WithAllocator(mem))
		w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{fn}})
		for _, rec := range batches {
			if w.Write(rec) != nil {
				break
			}
		}
		w.Close()
		stream.CloseSend()
	}()
	defer func() { <-done }()
	rdr, err := flight.NewRecordReader(stream, ipc.WithAllocator(mem))
	if err != nil {
		return 0, 0, err
	}
	defer rdr.Release()
	var rows, sum int64
	for rdr.Next() {
		rec := rdr.RecordBatch()
		rows += rec.NumRows()
		for _, v := range rec.Column(0).(*array.Int64).Int64Values() {
			sum += v
		}
	}
	if err := rdr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, err
	}
	return rows, sum, nil
}

func dial(b *testing.B, addr string) flight.Client {
	client, err := flight.NewClientWithMiddleware(addr, nil, nil,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close() })
	return client
}

func startEcho(b *testing.B, mem memory.Allocator) string {
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg))
	flight.RegisterFlightServiceServer(gs, echoserver.New(mem))
	lis := listen(b)
	go gs.Serve(lis)
	b.Cleanup(gs.Stop)
	return lis.Addr().String()
}

func startFletch(b *testing.B, mem memory.Allocator) string {
	reg := udfcatalog.NewRegistry()
	native := exec.NewNative(mem)
	if err := native.Register(reg, exec.Builtins()...); err != nil {
		b.Fatal(err)
	}
	return serve(b, reg, exec.NewRouter(native, nil), mem)
}

// serve runs a fletch server over reg until the benchmark ends and returns
// its address.
func serve(b *testing.B, reg *udfcatalog.Registry, router *exec.Router, mem memory.Allocator) string {
	srv := flightsrv.New(reg, router.Open, mem, flightsrv.Options{MaxMessageBytes: maxMsg})
	lis := listen(b)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	b.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			b.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

func listen(b *testing.B) net.Listener {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(fmt.Errorf("listen: %w", err))
	}
	return lis
}
