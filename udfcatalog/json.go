package udfcatalog

import (
	"encoding/json"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// udfJSON is the JSON form of a UDF: the Flight app_metadata, the list
// action's entries, and what Python introspection reports.
type udfJSON struct {
	Name       string      `json:"name"`
	Kind       Kind        `json:"kind"`
	Language   string      `json:"language"`
	Params     []fieldJSON `json:"params"`
	Return     fieldJSON   `json:"return"`
	Doc        string      `json:"doc"`
	Volatility Volatility  `json:"volatility"`
	OnError    string      `json:"on_error"`
	Mergeable  bool        `json:"mergeable,omitempty"`
	// MaxBatchRows is a per-UDF slicing limit, when lower than the server's.
	MaxBatchRows int    `json:"max_batch_rows,omitempty"`
	Module       string `json:"module,omitempty"`
	Version      string `json:"version"`
}

type fieldJSON struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
}

// MarshalJSON writes u with its types in canonical text.
func (u *UDF) MarshalJSON() ([]byte, error) {
	out := udfJSON{
		Name:         u.Name,
		Kind:         u.Kind,
		Language:     u.Language,
		Params:       make([]fieldJSON, len(u.Params)),
		Doc:          u.Doc,
		Volatility:   u.Volatility,
		OnError:      u.OnError,
		Mergeable:    u.Mergeable,
		MaxBatchRows: u.MaxBatchRows,
		Module:       u.Module,
		Version:      u.Version,
	}
	if out.OnError == "" {
		out.OnError = OnErrorRaise
	}
	for i, p := range u.Params {
		t, err := FormatType(p.Type)
		if err != nil {
			return nil, fmt.Errorf("%s: parameter %q: %w", u.Name, p.Name, err)
		}
		out.Params[i] = fieldJSON{Name: p.Name, Type: t, Nullable: p.Nullable}
	}
	t, err := FormatType(u.Result.Type)
	if err != nil {
		return nil, fmt.Errorf("%s: result: %w", u.Name, err)
	}
	out.Return = fieldJSON{Name: u.Result.Name, Type: t, Nullable: u.Result.Nullable}
	return json.Marshal(out)
}

// UnmarshalJSON reads the form MarshalJSON writes, parsing the types.
// Registering the result validates the rest.
func (u *UDF) UnmarshalJSON(data []byte) error {
	var in udfJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidUDF, err)
	}
	params := make([]Param, len(in.Params))
	for i, p := range in.Params {
		t, err := ParseType(p.Type)
		if err != nil {
			return fmt.Errorf("%s: parameter %d (%q): %w", in.Name, i, p.Name, err)
		}
		params[i] = Param{Name: p.Name, Type: t, Nullable: p.Nullable}
	}
	rt, err := ParseType(in.Return.Type)
	if err != nil {
		return fmt.Errorf("%s: return: %w", in.Name, err)
	}
	name := in.Return.Name
	if name == "" {
		name = in.Name
	}
	*u = UDF{
		Name:         in.Name,
		Kind:         in.Kind,
		Language:     in.Language,
		Params:       params,
		Result:       arrow.Field{Name: name, Type: rt, Nullable: in.Return.Nullable},
		Doc:          in.Doc,
		Volatility:   in.Volatility,
		OnError:      in.OnError,
		Mergeable:    in.Mergeable,
		MaxBatchRows: in.MaxBatchRows,
		Module:       in.Module,
		Version:      in.Version,
	}
	return nil
}
