package udfcatalog

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

// sampleUDFs cover every field of the JSON form.
func sampleUDFs(t *testing.T) []*UDF {
	add := scalar("add_int64", Param{Name: "a", Type: arrow.PrimitiveTypes.Int64}, Param{Name: "b", Type: arrow.PrimitiveTypes.Int64})
	add.Doc = "a + b"
	nested := scalar("tags", Param{Name: "m", Type: mustType(t, "map<utf8, list<int64 not null>>"), Nullable: true},
		Param{Name: "s", Type: mustType(t, `struct<x: float64, "y z": timestamp[us, tz=UTC]>`)})
	nested.Language = LanguagePython
	nested.Volatility = Volatile
	nested.Result = arrow.Field{Name: "tags", Type: mustType(t, "list<utf8>"), Nullable: true}
	return []*UDF{add, nested}
}

func TestJSONGolden(t *testing.T) {
	got, err := json.MarshalIndent(sampleUDFs(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "udfs.golden.json", append(got, '\n'))
}

func TestJSONRoundTrip(t *testing.T) {
	for _, u := range sampleUDFs(t) {
		data, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		var back UDF
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", data, err)
		}
		if back.Signature() != u.Signature() || back.Doc != u.Doc || back.Version != u.Version ||
			back.Volatility != u.Volatility || back.Language != u.Language || back.Result.Name != u.Result.Name {
			t.Errorf("round trip of %s = %+v", data, back)
		}
	}
}

func TestJSONDecodeErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{`{`, nil}, // a syntax error, reported by encoding/json itself
		{`{"name":"f","kind":"scalar","language":"go","params":[{"name":"a","type":"int65"}],"return":{"type":"int64"},"version":"v"}`, ErrTypeSyntax},
		{`{"name":"f","kind":"scalar","language":"go","params":[],"return":{"type":"list<"},"version":"v"}`, ErrTypeSyntax},
	}
	for _, tt := range tests {
		var u UDF
		if err := json.Unmarshal([]byte(tt.in), &u); err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, err, tt.want)
		}
	}
	// Decoding parses types; registering validates the rest.
	for _, in := range []string{
		`{"name":"","kind":"scalar","language":"go","params":[],"return":{"type":"int64"},"version":"v"}`,
		`{"name":"f","kind":"scalar","language":"go","params":[],"return":{"type":"int64"}}`,
	} {
		var u UDF
		if err := json.Unmarshal([]byte(in), &u); err != nil {
			t.Fatalf("Unmarshal(%s): %v", in, err)
		}
		if err := NewRegistry().Register(&u); !errors.Is(err, ErrInvalidUDF) {
			t.Errorf("Register(%s) = %v, want ErrInvalidUDF", in, err)
		}
	}
}

// FuzzDecodeUDF: decoding never panics, and whatever decodes re-encodes
// to JSON that decodes to the same signature.
func FuzzDecodeUDF(f *testing.F) {
	f.Add([]byte(`{"name":"f","kind":"scalar","language":"go","params":[{"name":"a","type":"int64","nullable":true}],"return":{"type":"utf8"},"version":"v"}`))
	f.Add([]byte(`{"name":"g","kind":"table","language":"python","params":[{"name":"m","type":"map<utf8, list<int64 not null>>"}],"return":{"name":"g","type":"struct<a: int64>","nullable":true},"version":"1"}`))
	f.Add([]byte(`{"params":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var u UDF
		if err := json.Unmarshal(data, &u); err != nil {
			return
		}
		again, err := json.Marshal(&u)
		if err != nil {
			t.Fatalf("Marshal of a decoded UDF: %v", err)
		}
		var back UDF
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("re-decode %s: %v", again, err)
		}
		if back.Signature() != u.Signature() {
			t.Fatalf("signature %q became %q", u.Signature(), back.Signature())
		}
	})
}
