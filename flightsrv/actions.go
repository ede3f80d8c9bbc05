package flightsrv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/flight"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// Action types, as RisingWave's and fletch's clients call them.
const (
	actionProtocolVersion = "protocol_version"
	actionList            = "list"
	actionRegister        = "register"
	actionUnregister      = "unregister"
	actionReload          = "reload"
)

// protocolVersion 2 is the arrow-udf protocol RisingWave speaks.
const protocolVersion = 2

// Admin changes the served UDFs at run time (live registration).
type Admin interface {
	// Register serves module from source (Python text, or a zip's bytes)
	// and returns the UDFs it defines.
	Register(ctx context.Context, module string, source []byte, zip bool) ([]*udfcatalog.UDF, error)
	// Unregister stops serving a registered module.
	Unregister(ctx context.Context, module string) error
	// Reload imports module again, or every module if module is "", and
	// returns the UDFs they serve.
	Reload(ctx context.Context, module string) ([]*udfcatalog.UDF, error)
}

func (s *Server) actionTypes() []*flight.ActionType {
	types := []*flight.ActionType{
		{Type: actionProtocolVersion, Description: "Returns one result whose body is the protocol version byte (2, the arrow-udf protocol)."},
		{Type: actionList, Description: "Returns one result whose body is a JSON array describing every UDF, as in FlightInfo.app_metadata."},
	}
	if s.opts.Admin != nil {
		types = append(types,
			&flight.ActionType{Type: actionRegister, Description: `Body {"module": name, "source": Python text} or {"module": name, "zip": base64}: serve the module. Returns a JSON array of its UDFs.`},
			&flight.ActionType{Type: actionUnregister, Description: `Body {"module": name}: stop serving a registered module. Returns an empty JSON array.`},
			&flight.ActionType{Type: actionReload, Description: `Body {"module": name}, or empty for every module: import again. Returns a JSON array of the UDFs served.`},
		)
	}
	return types
}

// ListActions describes the actions DoAction accepts.
func (s *Server) ListActions(_ *flight.Empty, stream flight.FlightService_ListActionsServer) error {
	for _, a := range s.actionTypes() {
		if err := stream.Send(a); err != nil {
			return err
		}
	}
	return nil
}

// DoAction runs one of the actions in actionTypes.
func (s *Server) DoAction(action *flight.Action, stream flight.FlightService_DoActionServer) error {
	body, err := s.doAction(stream.Context(), action)
	if err != nil {
		return toStatus(err)
	}
	return stream.Send(&flight.Result{Body: body})
}

func (s *Server) doAction(ctx context.Context, action *flight.Action) ([]byte, error) {
	switch action.Type {
	case actionProtocolVersion:
		return []byte{protocolVersion}, nil
	case actionList:
		return json.Marshal(s.catalog.List())
	case actionRegister, actionUnregister, actionReload:
		if s.opts.Admin == nil {
			return nil, fmt.Errorf("%w: %s: live registration is off on this server (start it with --live-registration)", errDisabled, action.Type)
		}
		if c := callerFrom(ctx); !c.Admin {
			return nil, fmt.Errorf("%w: %s needs a token with the admin scope; %q has only call", errForbidden, action.Type, c.Name)
		}
		body, err := s.admin(ctx, action)
		s.log.Info("admin action", "action", action.Type, "caller", callerFrom(ctx).Name, "peer", peerAddr(ctx), "ok", err == nil)
		return body, err
	}
	var names []string
	for _, a := range s.actionTypes() {
		names = append(names, fmt.Sprintf("%q", a.Type))
	}
	return nil, fmt.Errorf("%w %q; this server supports %s", errUnknownAction, action.Type, strings.Join(names, ", "))
}

// adminRequest is the JSON body of the live-registration actions.
type adminRequest struct {
	Module string `json:"module"`
	Source string `json:"source"`
	Zip    []byte `json:"zip"`
}

func (s *Server) admin(ctx context.Context, action *flight.Action) ([]byte, error) {
	var req adminRequest
	if len(bytes.TrimSpace(action.Body)) > 0 || action.Type != actionReload { // reload's body is optional
		dec := json.NewDecoder(bytes.NewReader(action.Body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, fmt.Errorf("%w: %s: the body must be a JSON object with module and source or zip: %w", errBadRequest, action.Type, err)
		}
		if req.Module == "" && action.Type != actionReload {
			return nil, fmt.Errorf("%w: %s: module is empty", errBadRequest, action.Type)
		}
	}
	var fns []*udfcatalog.UDF
	var err error
	switch action.Type {
	case actionRegister:
		switch {
		case (req.Source == "") == (req.Zip == nil):
			return nil, fmt.Errorf("%w: register: give exactly one of source and zip", errBadRequest)
		case req.Zip != nil:
			fns, err = s.opts.Admin.Register(ctx, req.Module, req.Zip, true)
		default:
			fns, err = s.opts.Admin.Register(ctx, req.Module, []byte(req.Source), false)
		}
	case actionUnregister:
		err = s.opts.Admin.Unregister(ctx, req.Module)
	case actionReload:
		fns, err = s.opts.Admin.Reload(ctx, req.Module)
	}
	if err != nil {
		return nil, err
	}
	if fns == nil {
		fns = []*udfcatalog.UDF{}
	}
	return json.Marshal(fns)
}
