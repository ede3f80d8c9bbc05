package flightsrv

import (
	"context"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// databendInputCount is the schema metadata key databend-udf clients read
// to split a signature schema into inputs and output.
const databendInputCount = "x-databend-udf-input-count"

// ListFlights returns one FlightInfo per UDF. pyarrow's
// wait_for_available polls it as a health check.
func (s *Server) ListFlights(_ *flight.Criteria, stream flight.FlightService_ListFlightsServer) error {
	for _, fn := range s.catalog.List() {
		info, err := s.flightInfo(fn)
		if err != nil {
			return toStatus(err)
		}
		if err := stream.Send(info); err != nil {
			return err
		}
	}
	return nil
}

// GetFlightInfo describes the UDF named by a PATH [name] descriptor.
func (s *Server) GetFlightInfo(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	fn, err := s.lookup(desc)
	if err != nil {
		return nil, toStatus(err)
	}
	info, err := s.flightInfo(fn)
	return info, toStatus(err)
}

// GetSchema returns the UDF's signature schema: inputs, then output.
func (s *Server) GetSchema(_ context.Context, desc *flight.FlightDescriptor) (*flight.SchemaResult, error) {
	fn, err := s.lookup(desc)
	if err != nil {
		return nil, toStatus(err)
	}
	return &flight.SchemaResult{Schema: flight.SerializeSchema(signatureSchema(fn), s.mem)}, nil
}

// flightInfo follows the arrow-udf convention RisingWave reads: the schema
// is the input fields followed by the output field, and total_records is
// the number of input fields.
func (s *Server) flightInfo(fn *udfcatalog.UDF) (*flight.FlightInfo, error) {
	meta, err := fn.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return &flight.FlightInfo{
		Schema:           flight.SerializeSchema(signatureSchema(fn), s.mem),
		FlightDescriptor: &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{fn.Name}},
		TotalRecords:     int64(len(fn.Params)),
		TotalBytes:       -1,
		AppMetadata:      meta,
	}, nil
}

func signatureSchema(fn *udfcatalog.UDF) *arrow.Schema {
	md := arrow.NewMetadata([]string{databendInputCount}, []string{strconv.Itoa(len(fn.Params))})
	return arrow.NewSchema(fn.SignatureSchema().Fields(), &md)
}
