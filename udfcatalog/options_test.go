package udfcatalog

import (
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func TestParseExchangeOptions(t *testing.T) {
	tests := []struct {
		raw     string
		want    ExchangeOptions
		wantErr string
	}{
		{raw: "", want: ExchangeOptions{}},
		{raw: "  ", want: ExchangeOptions{}},
		{raw: "{}", want: ExchangeOptions{}},
		{raw: `{"running": true}`, want: ExchangeOptions{Running: true}},
		{raw: `{"phase": "partial", "running": false}`, want: ExchangeOptions{Phase: PhasePartial}},
		{raw: `{"phase": "merge"}`, want: ExchangeOptions{Phase: PhaseMerge}},
		{raw: `{"phase": "combine"}`, want: ExchangeOptions{Phase: PhaseCombine}},
		{raw: `{"phase": "final"}`, wantErr: `phase "final" is not partial, combine or merge`},
		{raw: `{"runing": true}`, wantErr: `unknown field "runing"`},
		{raw: `{"running": "yes"}`, wantErr: "cannot unmarshal string"},
		{raw: `[1]`, wantErr: "want a JSON object"},
		{raw: `{} {}`, wantErr: "want one JSON object"},
		{raw: `nope`, wantErr: "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseExchangeOptions([]byte(tt.raw))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want ErrInvalidOptions containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestForExchange(t *testing.T) {
	binary := arrow.BinaryTypes.Binary
	agg := &UDF{Name: "mean", Kind: KindAggregate, Mergeable: true,
		Params: []Param{{Name: "x", Type: arrow.PrimitiveTypes.Float64}},
		Result: arrow.Field{Name: "mean", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}
	plain := *agg
	plain.Mergeable = false
	scalar := &UDF{Name: "inc", Kind: KindScalar, Result: arrow.Field{Name: "inc", Type: arrow.PrimitiveTypes.Int64}}

	tests := []struct {
		name       string
		fn         *UDF
		opts       ExchangeOptions
		wantParams []arrow.DataType
		wantResult arrow.DataType
		wantErr    string
	}{
		{"full", agg, ExchangeOptions{Running: true}, []arrow.DataType{arrow.PrimitiveTypes.Float64}, arrow.PrimitiveTypes.Float64, ""},
		{"partial", agg, ExchangeOptions{Phase: PhasePartial}, []arrow.DataType{arrow.PrimitiveTypes.Float64}, binary, ""},
		{"partial without merge", &plain, ExchangeOptions{Phase: PhasePartial}, []arrow.DataType{arrow.PrimitiveTypes.Float64}, binary, ""},
		{"combine", agg, ExchangeOptions{Phase: PhaseCombine}, []arrow.DataType{binary}, binary, ""},
		{"merge", agg, ExchangeOptions{Phase: PhaseMerge}, []arrow.DataType{binary}, arrow.PrimitiveTypes.Float64, ""},
		{"merge without merge", &plain, ExchangeOptions{Phase: PhaseMerge}, nil, nil, "mean has none"},
		{"scalar running", scalar, ExchangeOptions{Running: true}, nil, nil, "running applies to aggregates; inc is a scalar function"},
		{"scalar phase", scalar, ExchangeOptions{Phase: PhasePartial}, nil, nil, "phase applies to aggregates"},
		{"scalar", scalar, ExchangeOptions{}, nil, arrow.PrimitiveTypes.Int64, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.fn.ForExchange(tt.opts)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want ErrInvalidOptions containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Params) != len(tt.wantParams) {
				t.Fatalf("params = %v, want types %v", got.Params, tt.wantParams)
			}
			for i, p := range got.Params {
				if !arrow.TypeEqual(p.Type, tt.wantParams[i]) {
					t.Errorf("param %d = %s, want %s", i, p.Type, tt.wantParams[i])
				}
			}
			if !arrow.TypeEqual(got.Result.Type, tt.wantResult) {
				t.Errorf("result = %s, want %s", got.Result.Type, tt.wantResult)
			}
			if tt.opts.Phase != PhaseFull && got == tt.fn {
				t.Error("a phase must not change the registered UDF")
			}
		})
	}
	if agg.Result.Type != arrow.PrimitiveTypes.Float64 || len(agg.Params) != 1 {
		t.Fatalf("ForExchange modified the registered UDF: %+v", agg)
	}
}

func FuzzParseExchangeOptions(f *testing.F) {
	for _, seed := range []string{"", "{}", `{"running":true}`, `{"phase":"merge"}`, `{"phase":1}`, "[", `{"a":{}}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := ParseExchangeOptions(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("error %v does not wrap ErrInvalidOptions", err)
			}
			return
		}
		switch o.Phase {
		case PhaseFull, PhasePartial, PhaseCombine, PhaseMerge:
		default:
			t.Fatalf("accepted phase %q", o.Phase)
		}
	})
}
