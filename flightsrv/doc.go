// Package flightsrv is fletch's Arrow Flight surface. Every UDF is a
// flight with descriptor PATH [name]: ListFlights, GetFlightInfo and
// GetSchema describe it, and DoExchange streams record batches through it,
// one output batch per input batch, in order.
//
// The package depends only on the interfaces it declares (Catalog and
// Session) and on udfcatalog's descriptor types. It is the one place where
// errors become gRPC status codes (toStatus).
package flightsrv
