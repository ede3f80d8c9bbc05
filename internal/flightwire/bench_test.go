package flightwire

import (
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// defaultEcho is the echo every arrow-go Flight server writes: FlightData
// through gRPC's proto codec, decoded and re-encoded by arrow-go's Flight
// reader and writer.
func defaultEcho(alloc memory.Allocator) func(flight.FlightService_DoExchangeServer) error {
	return func(stream flight.FlightService_DoExchangeServer) error {
		rdr, err := flight.NewRecordReader(stream, ipc.WithAllocator(alloc))
		if err != nil {
			return err
		}
		defer rdr.Release()
		w := flight.NewRecordWriter(stream, ipc.WithSchema(rdr.Schema()), ipc.WithAllocator(alloc))
		defer w.Close()
		for rdr.Next() {
			if err := w.Write(rdr.RecordBatch()); err != nil {
				return err
			}
		}
		return rdr.Err()
	}
}

// BenchmarkEcho streams batches of int64 rows through a DoExchange echo
// on a loopback server, with the arrow-go Flight client on the other end
// (in the same process, so both share the CPUs; cpu-ns/op is the CPU time
// both used per batch). "default" is arrow-go's
// echo over gRPC's proto codec; "flightwire" decodes and re-encodes the
// batches too, through Message (IPCMessage, NewPayloadMessage); "raw"
// sends each received Message straight back, the codec's floor.
func BenchmarkEcho(b *testing.B) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)
	codec := mustCodec(b)
	servers := []struct {
		name  string
		codec *Codec
		echo  func(alloc memory.Allocator) func(flight.FlightService_DoExchangeServer) error
	}{
		{"default", nil, defaultEcho},
		{"flightwire", codec, func(alloc memory.Allocator) func(flight.FlightService_DoExchangeServer) error {
			return arrowEcho(alloc, nil, nil, nil, 0)
		}},
		{"raw", codec, func(memory.Allocator) func(flight.FlightService_DoExchangeServer) error {
			return rawEcho(nil, nil)
		}},
	}
	for _, rows := range []int{1 << 10, 1 << 16, 1 << 20} {
		bld := array.NewInt64Builder(memory.NewGoAllocator())
		for i := range rows {
			bld.Append(int64(i))
		}
		col := bld.NewArray()
		bld.Release()
		batch := array.NewRecordBatch(schema, []arrow.Array{col}, int64(rows))
		col.Release()
		for _, srv := range servers {
			b.Run(fmt.Sprintf("codec=%s/rows=%d", srv.name, rows), func(b *testing.B) {
				client := startServer(b, srv.codec, srv.echo(memory.NewGoAllocator()))
				b.SetBytes(int64(rows) * 8)
				b.ReportAllocs()
				b.ResetTimer()
				cpu0, ok := cpuTime()
				if err := echoN(client, schema, batch, b.N); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				// CPU time per batch, client and server together: less
				// sensitive than wall time to other processes on the machine.
				if cpu1, ok1 := cpuTime(); ok && ok1 {
					b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
				}
			})
		}
		batch.Release()
	}
}
