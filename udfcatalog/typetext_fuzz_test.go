package udfcatalog

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParseType(f *testing.F) {
	for _, input := range readTypeTextInputs(f) {
		f.Add(input)
	}
	// Inputs aimed at the limits and the hand-written scanning.
	for _, seed := range []string{
		"",
		`"`,
		`struct<"\`,
		`struct<"\x`,
		`struct<"\u12": int8>`,
		`struct<"\xff\U0010ffff\a": int8>`,
		"struct<\"\x7f\": int8>",
		"timestamp[s, tz=\x00]",
		"timestamp[s, tz=a>b]",
		"timestamp[s, tz= x y ]",
		"decimal256(-0, -0)",
		"decimal128(99999999999999999999, 1)",
		"fixed_size_list<int8, 2147483648>",
		"map<map<int8, int8>, map<int8, int8 not null> not null, keys_sorted>",
		"list<not: int8 not null>",
		"list<not null>",
		"struct<a: int8 not null not null>",
		nestedListText(maxNestingDepth, "int8"),
		nestedListText(maxNestingDepth+1, "int8"),
		strings.Repeat("struct<a:", 200),
		strings.Repeat("map<int8,", 100),
		strings.Repeat(" ", maxTypeTextLen+1),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		typ, err := ParseType(text)
		if err != nil {
			if !errors.Is(err, ErrTypeSyntax) {
				t.Fatalf("ParseType(%q) error = %v, want it to wrap ErrTypeSyntax", text, err)
			}
			return
		}
		canonical, err := FormatType(typ)
		if err != nil {
			t.Fatalf("FormatType(ParseType(%q)) error: %v", text, err)
		}
		reparsed, err := ParseType(canonical)
		if err != nil {
			t.Fatalf("ParseType(%q) (canonical form of %q) error: %v", canonical, text, err)
		}
		if !identicalTypes(reparsed, typ) {
			t.Fatalf("ParseType(%q) = %v, want %v (parsed from %q)", canonical, reparsed, typ, text)
		}
		again, err := FormatType(reparsed)
		if err != nil {
			t.Fatalf("FormatType(ParseType(%q)) error: %v", canonical, err)
		}
		if again != canonical {
			t.Fatalf("FormatType(ParseType(%q)) = %q, want the same text back", canonical, again)
		}
	})
}
