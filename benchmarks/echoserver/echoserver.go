// Package echoserver is a bare arrow-go Flight DoExchange echo server: it
// returns every batch it receives. It is the ceiling fletch is measured
// against, so it does nothing beyond what arrow-go's stock reader and
// writer do.
package echoserver

import (
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Server echoes DoExchange streams.
type Server struct {
	flight.BaseFlightServer
	mem memory.Allocator
}

// New returns an echo server that decodes into mem.
func New(mem memory.Allocator) *Server { return &Server{mem: mem} }

// DoExchange writes back each input batch as it is read.
func (s *Server) DoExchange(stream flight.FlightService_DoExchangeServer) error {
	rdr, err := flight.NewRecordReader(stream, ipc.WithAllocator(s.mem))
	if err != nil {
		return err
	}
	defer rdr.Release()
	w := flight.NewRecordWriter(stream, ipc.WithSchema(rdr.Schema()), ipc.WithAllocator(s.mem))
	defer w.Close()
	for rdr.Next() {
		if err := w.Write(rdr.RecordBatch()); err != nil {
			return err
		}
	}
	return rdr.Err()
}
