package flightwire

import (
	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc"
)

// The generated DoExchange stream embeds grpc.ServerStream, and its
// handler passes gRPC's stream through unchanged (after interceptors), so
// a FlightServer's DoExchange can skip the generated Recv, which
// allocates a flight.FlightData, and call RecvMsg and SendMsg with
// Messages on the same stream:
//
//	func (s *Server) DoExchange(stream flight.FlightService_DoExchangeServer) error {
//		var in flightwire.Message
//		defer in.Free()
//		if err := stream.RecvMsg(&in); err != nil { ... }
//		...
//		out, err := flightwire.NewPayloadMessage(&payload, nil)
//		...
//		err = stream.SendMsg(out)
//		out.Free()
//	}
//
// This needs the server's codec to be a Codec (ServerOption); with gRPC's
// own, RecvMsg(*Message) fails with codes.Internal. Nothing else about
// the service changes: the generated ServiceDesc is registered as usual
// and every other method keeps its generated handler.
//
// These assertions stop the build if arrow-go's generated code changes
// shape: the DoExchange method must still take a stream that is a
// grpc.ServerStream.
var (
	_ grpc.ServerStream                                                      = flight.FlightService_DoExchangeServer(nil)
	_ func(flight.FlightServer, flight.FlightService_DoExchangeServer) error = flight.FlightServer.DoExchange
)

// ServerOption installs c as the server's codec for every method
// (grpc.ForceServerCodecV2). Messages other than *Message go to the
// standard proto codec, so other services, health and reflection are
// unaffected.
func (c *Codec) ServerOption() grpc.ServerOption { return grpc.ForceServerCodecV2(c) }
