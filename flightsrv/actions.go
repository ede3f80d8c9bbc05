package flightsrv

import (
	"encoding/json"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/flight"
)

// Action types, as RisingWave's and fletch's clients call them.
const (
	actionProtocolVersion = "protocol_version"
	actionList            = "list"
)

// protocolVersion 2 is the arrow-udf protocol RisingWave speaks.
const protocolVersion = 2

func actionTypes() []*flight.ActionType {
	return []*flight.ActionType{
		{Type: actionProtocolVersion, Description: "Returns one result whose body is the protocol version byte (2, the arrow-udf protocol)."},
		{Type: actionList, Description: "Returns one result whose body is a JSON array describing every UDF, as in FlightInfo.app_metadata."},
	}
}

// ListActions describes the actions DoAction accepts.
func (s *Server) ListActions(_ *flight.Empty, stream flight.FlightService_ListActionsServer) error {
	for _, a := range actionTypes() {
		if err := stream.Send(a); err != nil {
			return err
		}
	}
	return nil
}

// DoAction runs one of the actions in actionTypes.
func (s *Server) DoAction(action *flight.Action, stream flight.FlightService_DoActionServer) error {
	var body []byte
	switch action.Type {
	case actionProtocolVersion:
		body = []byte{protocolVersion}
	case actionList:
		var err error
		if body, err = json.Marshal(s.catalog.List()); err != nil {
			return toStatus(err)
		}
	default:
		return toStatus(fmt.Errorf("%w %q; this server supports %q and %q", errUnknownAction, action.Type, actionProtocolVersion, actionList))
	}
	return stream.Send(&flight.Result{Body: body})
}
