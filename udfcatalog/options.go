package udfcatalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// ErrInvalidOptions is wrapped by ForExchange errors.
var ErrInvalidOptions = errors.New("invalid exchange options")

// Phase splits an aggregate across exchanges (two-phase aggregation): a
// partial exchange turns rows into a serialised state, and merge exchanges
// fold such states together.
type Phase string

const (
	// PhaseFull turns rows into the result (the default).
	PhaseFull Phase = ""
	// PhasePartial turns rows into one state.
	PhasePartial Phase = "partial"
	// PhaseCombine turns states into one state.
	PhaseCombine Phase = "combine"
	// PhaseMerge turns states into the result.
	PhaseMerge Phase = "merge"
)

// StateColumn names the binary column that carries serialised aggregate
// states in and out of partial, combine and merge exchanges.
const StateColumn = "state"

// ExchangeOptions are what a client may ask of one exchange.
type ExchangeOptions struct {
	// Running makes an aggregate also emit its result after every batch.
	Running bool `json:"running"`
	// Phase is an aggregate's role in two-phase aggregation.
	Phase Phase `json:"phase"`
}

// ParseExchangeOptions reads a JSON object of options; empty means none.
// Unknown keys are refused, so a misspelt option is not silently ignored.
func ParseExchangeOptions(raw []byte) (ExchangeOptions, error) {
	var o ExchangeOptions
	if len(bytes.TrimSpace(raw)) == 0 {
		return o, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return o, fmt.Errorf("%w: want a JSON object with keys running and phase, got %q: %w", ErrInvalidOptions, raw, err)
	}
	if dec.More() {
		return o, fmt.Errorf("%w: want one JSON object, got %q", ErrInvalidOptions, raw)
	}
	switch o.Phase {
	case PhaseFull, PhasePartial, PhaseCombine, PhaseMerge:
	default:
		return o, fmt.Errorf("%w: phase %q is not partial, combine or merge", ErrInvalidOptions, o.Phase)
	}
	return o, nil
}

// ForExchange is u as one exchange with options o sees it: for an
// aggregate's partial, combine and merge phases, states replace the
// parameters or the result.
func (u *UDF) ForExchange(o ExchangeOptions) (*UDF, error) {
	if u.Kind != KindAggregate {
		switch {
		case o.Running:
			return nil, fmt.Errorf("%w: running applies to aggregates; %s is a %s function", ErrInvalidOptions, u.Name, u.Kind)
		case o.Phase != PhaseFull:
			return nil, fmt.Errorf("%w: phase applies to aggregates; %s is a %s function", ErrInvalidOptions, u.Name, u.Kind)
		}
		return u, nil
	}
	if o.Phase == PhaseFull {
		return u, nil
	}
	if o.Phase != PhasePartial && !u.Mergeable {
		return nil, fmt.Errorf("%w: phase %s needs an aggregate with a merge method; %s has none", ErrInvalidOptions, o.Phase, u.Name)
	}
	shaped := *u
	state := arrow.Field{Name: StateColumn, Type: arrow.BinaryTypes.Binary}
	if o.Phase == PhaseCombine || o.Phase == PhaseMerge {
		shaped.Params = []Param{{Name: StateColumn, Type: state.Type}}
	}
	if o.Phase == PhasePartial || o.Phase == PhaseCombine {
		shaped.Result = state
	}
	return &shaped, nil
}
