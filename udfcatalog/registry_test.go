package udfcatalog

import (
	"errors"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func scalar(name string, params ...Param) *UDF {
	res := arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Int64, Nullable: true}
	return &UDF{
		Name: name, Kind: KindScalar, Language: LanguageGo, Params: params, Result: res,
		Volatility: Immutable, Version: Digest(name, KindScalar, LanguageGo, params, res, nil),
	}
}

func TestRegistryLookup(t *testing.T) {
	r := NewRegistry()
	for _, n := range []string{"add_int64", "add_float64", "upper", "Lower", "echo_int64"} {
		if err := r.Register(scalar(n)); err != nil {
			t.Fatal(err)
		}
	}
	if u, err := r.Lookup("upper"); err != nil || u.Name != "upper" {
		t.Fatalf("Lookup(upper) = %v, %v", u, err)
	}
	tests := []struct {
		name string
		want []string
		msg  string
	}{
		{"ad_int64", []string{"add_int64"}, `function "ad_int64" not found; did you mean "add_int64"?`},
		{"add", []string{"add_int64", "add_float64"}, `function "add" not found; did you mean "add_int64" or "add_float64"?`},
		{"UPPER", []string{"upper"}, `function "UPPER" not found; did you mean "upper"?`},
		{"lower", []string{"Lower"}, ""},
		{"echo", []string{"echo_int64"}, ""},
		{"completely_different", nil, `function "completely_different" not found`},
		{"", nil, ""},
	}
	for _, tt := range tests {
		_, err := r.Lookup(tt.name)
		var nf *NotFoundError
		if !errors.Is(err, ErrNotFound) || !errors.As(err, &nf) {
			t.Errorf("Lookup(%q) = %v, want a NotFoundError", tt.name, err)
			continue
		}
		if !slices.Equal(nf.Suggestions, tt.want) {
			t.Errorf("Lookup(%q) suggests %q, want %q", tt.name, nf.Suggestions, tt.want)
		}
		if tt.msg != "" && err.Error() != tt.msg {
			t.Errorf("Lookup(%q) error = %q, want %q", tt.name, err, tt.msg)
		}
	}
	if names := names(r.List()); !slices.Equal(names, []string{"Lower", "add_float64", "add_int64", "echo_int64", "upper"}) {
		t.Errorf("List() = %q, want sorted names", names)
	}
	if err := r.Register(scalar("upper")); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate Register = %v, want ErrDuplicate", err)
	}
}

func names(us []*UDF) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Name
	}
	return out
}

func TestValidate(t *testing.T) {
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		name string
		edit func(*UDF)
	}{
		{"empty name", func(u *UDF) { u.Name = "" }},
		{"long name", func(u *UDF) { u.Name = string(long) }},
		{"slash", func(u *UDF) { u.Name = "a/b" }},
		{"bad utf8", func(u *UDF) { u.Name = "\xff" }},
		{"no kind", func(u *UDF) { u.Kind = "" }},
		{"no language", func(u *UDF) { u.Language = "" }},
		{"no result", func(u *UDF) { u.Result.Type = nil }},
		{"no version", func(u *UDF) { u.Version = "" }},
		{"untyped param", func(u *UDF) { u.Params = []Param{{Name: "a"}} }},
		{"duplicate param", func(u *UDF) {
			u.Params = []Param{{Name: "a", Type: arrow.PrimitiveTypes.Int64}, {Name: "a", Type: arrow.PrimitiveTypes.Int64}}
		}},
	}
	for _, tt := range tests {
		u := scalar("ok")
		tt.edit(u)
		if err := u.Validate(); !errors.Is(err, ErrInvalidUDF) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidUDF", tt.name, err)
		}
	}
	if err := scalar("ok").Validate(); err != nil {
		t.Errorf("Validate() of a good UDF = %v", err)
	}
}

func TestRegistryReplace(t *testing.T) {
	a1, b1, c1 := scalar("a"), scalar("b"), scalar("c")
	a2, b2, d2 := scalar("a"), scalar("b"), scalar("d")
	invalid := scalar("e")
	invalid.Version = ""
	tests := []struct {
		name      string
		old, add  []*UDF
		wantErr   error
		wantNames []string
		wantA     *UDF
	}{
		{"swap versions", []*UDF{a1, b1}, []*UDF{a2, b2}, nil, []string{"a", "b", "c"}, a2},
		{"drop and add", []*UDF{a1, b1}, []*UDF{d2}, nil, []string{"c", "d"}, nil},
		{"unregister", []*UDF{a1}, nil, nil, []string{"b", "c"}, nil},
		{"name held by another module", []*UDF{a1}, []*UDF{a2, scalar("c")}, ErrDuplicate, []string{"a", "b", "c"}, a1},
		{"two new entries share a name", nil, []*UDF{d2, scalar("d")}, ErrDuplicate, []string{"a", "b", "c"}, a1},
		{"invalid entry", []*UDF{a1}, []*UDF{invalid}, ErrInvalidUDF, []string{"a", "b", "c"}, a1},
		{"stale old entries are skipped", []*UDF{a2}, []*UDF{d2}, nil, []string{"a", "b", "c", "d"}, a1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			for _, u := range []*UDF{a1, b1, c1} {
				if err := r.Register(u); err != nil {
					t.Fatal(err)
				}
			}
			err := r.Replace(tt.old, tt.add)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Replace = %v, want %v", err, tt.wantErr)
			}
			if got := names(r.List()); !slices.Equal(got, tt.wantNames) {
				t.Errorf("names = %q, want %q", got, tt.wantNames)
			}
			if got, _ := r.Lookup("a"); got != tt.wantA {
				t.Errorf("Lookup(a) = %p, want %p", got, tt.wantA)
			}
		})
	}
}
