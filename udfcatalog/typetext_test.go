package udfcatalog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// identicalTypes is arrow.TypeEqual plus child names, which TypeEqual
// ignores for lists but the type text expresses.
func identicalTypes(a, b arrow.DataType) bool {
	return arrow.TypeEqual(a, b) && a.String() == b.String()
}

func typeTextField(name string, t arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true}
}

func typeTextRequiredField(name string, t arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: t}
}

func nestedLists(levels int, leaf arrow.DataType) arrow.DataType {
	t := leaf
	for range levels {
		t = arrow.ListOf(t)
	}
	return t
}

func nestedListText(levels int, leaf string) string {
	return strings.Repeat("list<", levels) + leaf + strings.Repeat(">", levels)
}

// expandingStructText is compact text whose canonical form is a third longer.
func expandingStructText(fields int) string {
	var b strings.Builder
	b.WriteString("struct<")
	for i := range fields {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "f%d:float", i)
	}
	b.WriteString(">")
	return b.String()
}

func TestParseTypeCanonical(t *testing.T) {
	mapWithRequiredValue := arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Float64)
	mapWithRequiredValue.SetItemNullable(false)
	sortedMap := arrow.MapOf(arrow.PrimitiveTypes.Int32, arrow.ListOf(arrow.BinaryTypes.String))
	sortedMap.KeysSorted = true

	tests := []struct {
		text string
		want arrow.DataType
	}{
		{"null", arrow.Null},
		{"bool", arrow.FixedWidthTypes.Boolean},
		{"int8", arrow.PrimitiveTypes.Int8},
		{"int16", arrow.PrimitiveTypes.Int16},
		{"int32", arrow.PrimitiveTypes.Int32},
		{"int64", arrow.PrimitiveTypes.Int64},
		{"uint8", arrow.PrimitiveTypes.Uint8},
		{"uint16", arrow.PrimitiveTypes.Uint16},
		{"uint32", arrow.PrimitiveTypes.Uint32},
		{"uint64", arrow.PrimitiveTypes.Uint64},
		{"float16", arrow.FixedWidthTypes.Float16},
		{"float32", arrow.PrimitiveTypes.Float32},
		{"float64", arrow.PrimitiveTypes.Float64},
		{"utf8", arrow.BinaryTypes.String},
		{"large_utf8", arrow.BinaryTypes.LargeString},
		{"utf8_view", arrow.BinaryTypes.StringView},
		{"binary", arrow.BinaryTypes.Binary},
		{"large_binary", arrow.BinaryTypes.LargeBinary},
		{"binary_view", arrow.BinaryTypes.BinaryView},
		{"date32", arrow.FixedWidthTypes.Date32},
		{"date64", arrow.FixedWidthTypes.Date64},
		{"interval_months", arrow.FixedWidthTypes.MonthInterval},
		{"interval_day_time", arrow.FixedWidthTypes.DayTimeInterval},
		{"interval_month_day_nano", arrow.FixedWidthTypes.MonthDayNanoInterval},
		{"time32[s]", &arrow.Time32Type{Unit: arrow.Second}},
		{"time32[ms]", &arrow.Time32Type{Unit: arrow.Millisecond}},
		{"time64[us]", &arrow.Time64Type{Unit: arrow.Microsecond}},
		{"time64[ns]", &arrow.Time64Type{Unit: arrow.Nanosecond}},
		{"timestamp[s]", &arrow.TimestampType{Unit: arrow.Second}},
		{"timestamp[us]", &arrow.TimestampType{Unit: arrow.Microsecond}},
		{"timestamp[us, tz=UTC]", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
		{"timestamp[ms, tz=+00:00]", &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "+00:00"}},
		{"timestamp[ns, tz=America/New_York]", &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "America/New_York"}},
		{"duration[s]", &arrow.DurationType{Unit: arrow.Second}},
		{"duration[us]", &arrow.DurationType{Unit: arrow.Microsecond}},
		{"decimal32(9, 2)", &arrow.Decimal32Type{Precision: 9, Scale: 2}},
		{"decimal64(18, 0)", &arrow.Decimal64Type{Precision: 18, Scale: 0}},
		{"decimal128(38, 10)", &arrow.Decimal128Type{Precision: 38, Scale: 10}},
		{"decimal128(1, 1)", &arrow.Decimal128Type{Precision: 1, Scale: 1}},
		{"decimal256(76, 76)", &arrow.Decimal256Type{Precision: 76, Scale: 76}},
		{"fixed_size_binary(16)", &arrow.FixedSizeBinaryType{ByteWidth: 16}},
		{"fixed_size_binary(2147483647)", &arrow.FixedSizeBinaryType{ByteWidth: 1<<31 - 1}},
		{"list<int32>", arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		{"list<int32 not null>", arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int32)},
		{"list<list<utf8>>", arrow.ListOf(arrow.ListOf(arrow.BinaryTypes.String))},
		{"list<element: int32>", arrow.ListOfField(typeTextField("element", arrow.PrimitiveTypes.Int32))},
		{`list<"my item": int32 not null>`, arrow.ListOfField(typeTextRequiredField("my item", arrow.PrimitiveTypes.Int32))},
		{`list<"": int32>`, arrow.ListOfField(typeTextField("", arrow.PrimitiveTypes.Int32))},
		{"large_list<utf8>", arrow.LargeListOf(arrow.BinaryTypes.String)},
		{"large_list<utf8 not null>", arrow.LargeListOfNonNullable(arrow.BinaryTypes.String)},
		{"large_list<s: utf8>", arrow.LargeListOfField(typeTextField("s", arrow.BinaryTypes.String))},
		{"fixed_size_list<float32, 3>", arrow.FixedSizeListOf(3, arrow.PrimitiveTypes.Float32)},
		{"fixed_size_list<float32 not null, 1>", arrow.FixedSizeListOfNonNullable(1, arrow.PrimitiveTypes.Float32)},
		{"fixed_size_list<xyz: float32, 2>", arrow.FixedSizeListOfField(2, typeTextField("xyz", arrow.PrimitiveTypes.Float32))},
		{"map<utf8, float64>", arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Float64)},
		{"map<utf8, float64 not null>", mapWithRequiredValue},
		{"map<int32, list<utf8>, keys_sorted>", sortedMap},
		{"struct<a: int64, b: utf8>", arrow.StructOf(typeTextField("a", arrow.PrimitiveTypes.Int64), typeTextField("b", arrow.BinaryTypes.String))},
		{`struct<a: int64 not null, "b c": list<utf8>>`, arrow.StructOf(
			typeTextRequiredField("a", arrow.PrimitiveTypes.Int64),
			typeTextField("b c", arrow.ListOf(arrow.BinaryTypes.String)))},
		{"struct<>", arrow.StructOf()},
		{`struct<"": int8, "a\"b": int8, "tab\there": int8, "é": int8, "\xff": int8>`, arrow.StructOf(
			typeTextField("", arrow.PrimitiveTypes.Int8),
			typeTextField(`a"b`, arrow.PrimitiveTypes.Int8),
			typeTextField("tab\there", arrow.PrimitiveTypes.Int8),
			typeTextField("é", arrow.PrimitiveTypes.Int8),
			typeTextField("\xff", arrow.PrimitiveTypes.Int8))},
		// Type names and keywords are ordinary field names.
		{"struct<int32: int32, not: bool not null, item: null>", arrow.StructOf(
			typeTextField("int32", arrow.PrimitiveTypes.Int32),
			typeTextRequiredField("not", arrow.FixedWidthTypes.Boolean),
			typeTextField("item", arrow.Null))},
		{"struct<s: struct<t: map<utf8, struct<>>>>", arrow.StructOf(
			typeTextField("s", arrow.StructOf(typeTextField("t", arrow.MapOf(arrow.BinaryTypes.String, arrow.StructOf())))))},
		{nestedListText(maxNestingDepth, "int8"), nestedLists(maxNestingDepth, arrow.PrimitiveTypes.Int8)},
	}
	for _, tt := range tests {
		got, err := ParseType(tt.text)
		if err != nil {
			t.Errorf("ParseType(%q) error: %v", tt.text, err)
			continue
		}
		if !identicalTypes(got, tt.want) {
			t.Errorf("ParseType(%q) = %v, want %v", tt.text, got, tt.want)
		}
		formatted, err := FormatType(tt.want)
		if err != nil {
			t.Errorf("FormatType(%v) error: %v", tt.want, err)
			continue
		}
		if formatted != tt.text {
			t.Errorf("FormatType(%v) = %q, want %q", tt.want, formatted, tt.text)
		}
	}
}

func TestParseTypeAliases(t *testing.T) {
	tests := []struct {
		text, canonical string
	}{
		{"boolean", "bool"},
		{"string", "utf8"},
		{"large_string", "large_utf8"},
		{"string_view", "utf8_view"},
		{"halffloat", "float16"},
		{"float", "float32"},
		{"double", "float64"},
		{"date32[day]", "date32"},
		{"date64[ms]", "date64"},
		{"month_day_nano_interval", "interval_month_day_nano"},
		{"decimal(10, 2)", "decimal128(10, 2)"},
		{"list<item: int64>", "list<int64>"},
		{"large_list<item: int64 not null>", "large_list<int64 not null>"},
		{"fixed_size_list<item: double, 4>", "fixed_size_list<float64, 4>"},
		{"struct<a: int64 not null>", "struct<a: int64 not null>"},
		{`struct<"a": string>`, "struct<a: utf8>"},
		{"map<string, double>", "map<utf8, float64>"},
		{"map<string not null, list<item: string>>", "map<utf8, list<utf8>>"},
		{"timestamp[us, tz=UTC]", "timestamp[us, tz=UTC]"},
		// Whitespace around punctuation is optional.
		{"struct<a:int64,b:string>", "struct<a: int64, b: utf8>"},
		{"  list < int32 >  ", "list<int32>"},
		{"timestamp [ us , tz = America/New_York ]", "timestamp[us, tz=America/New_York]"},
		{"decimal128( 38 ,10 )", "decimal128(38, 10)"},
		{"fixed_size_list<float32,3>", "fixed_size_list<float32, 3>"},
		{"map<utf8,int8,keys_sorted>", "map<utf8, int8, keys_sorted>"},
		{"list<int32   not \t null>", "list<int32 not null>"},
		{"\tstruct<\n\"x\" : date32 [ day ]\r\n>\n", "struct<x: date32>"},
		{"fixed_size_binary(007)", "fixed_size_binary(7)"},
		{`struct<"\u00e9\x41": int8>`, `struct<"éA": int8>`},
	}
	for _, tt := range tests {
		got, err := ParseType(tt.text)
		if err != nil {
			t.Errorf("ParseType(%q) error: %v", tt.text, err)
			continue
		}
		formatted, err := FormatType(got)
		if err != nil {
			t.Errorf("FormatType(ParseType(%q)) error: %v", tt.text, err)
			continue
		}
		if formatted != tt.canonical {
			t.Errorf("FormatType(ParseType(%q)) = %q, want %q", tt.text, formatted, tt.canonical)
		}
		want, err := ParseType(tt.canonical)
		if err != nil {
			t.Errorf("ParseType(%q) error: %v", tt.canonical, err)
			continue
		}
		if !identicalTypes(got, want) {
			t.Errorf("ParseType(%q) = %v, want %v", tt.text, got, want)
		}
	}
}

func TestParseTypeErrors(t *testing.T) {
	tests := []struct {
		text, wantInError string
	}{
		{"", `"" at offset 0: expected a type name but reached end of text`},
		{"   ", `at offset 3: expected a type name but reached end of text`},
		{"list<int32", `"list<int32" at offset 10: expected ">" but reached end of text`},
		{"int64 foo", `at offset 6: expected end of text but found "foo"`},
		{"int64>", `at offset 5: expected end of text but found ">"`},
		{"int64 not null", `at offset 6: a top-level type has no nullability`},
		{"int", `at offset 0: unknown type "int"`},
		{"Int64", `unknown type "Int64" (type names are lowercase: "int64")`},
		{"LIST<int32>", `unknown type "LIST" (type names are lowercase: "list")`},
		{"dictionary<values=utf8, indices=int32>", `unknown type "dictionary"`},
		{"list_view<int32>", `unknown type "list_view"`},
		{"123", `expected a type name but found "123"`},
		{"list<int8 " + strings.Repeat("x", 100) + ">", `at offset 10: expected ">" but found "` + strings.Repeat("x", 40) + `"...`},
		{"€", `expected a type name but found "€"`},
		{"int64\xff", `at offset 5: invalid UTF-8`},
		{"decimal128(39, 2)", `at offset 11: precision 39 out of range 1..38 for decimal128`},
		{"decimal(39, 2)", `precision 39 out of range 1..38 for decimal`},
		{"decimal32(10, 2)", `precision 10 out of range 1..9 for decimal32`},
		{"decimal64(19, 2)", `precision 19 out of range 1..18 for decimal64`},
		{"decimal256(77, 2)", `precision 77 out of range 1..76 for decimal256`},
		{"decimal128(0, 0)", `precision 0 out of range 1..38`},
		{"decimal128(99999999999999999999999, 0)", `precision 99999999999999999999999 out of range 1..38`},
		{"decimal128(5, 6)", `at offset 14: scale 6 out of range 0..5 for decimal128 with precision 5`},
		{"decimal128(5, -1)", `scale -1 out of range 0..5`},
		{"decimal128(5)", `at offset 12: expected "," but found ")"`},
		{"decimal128(5, x)", `at offset 14: expected scale (an integer) but found "x"`},
		{"decimal128", `at offset 10: expected "(" but reached end of text`},
		{"time32[us]", `at offset 7: time32 unit must be s or ms, not us`},
		{"time64[s]", `time64 unit must be us or ns, not s`},
		{"time32", `expected "[" but reached end of text`},
		{"timestamp[m]", `at offset 10: expected a time unit (s, ms, us or ns) but found "m"`},
		{"timestamp[]", `expected a time unit (s, ms, us or ns) but found "]"`},
		{"timestamp[us, tz=]", `at offset 17: expected a time zone but found "]"`},
		{"timestamp[us, tz=  ]", `at offset 19: expected a time zone but found "]"`},
		{"timestamp[us, tz=a,b]", `at offset 18: expected "]" but found ","`},
		{"timestamp[us, zone=UTC]", `at offset 14: expected "tz" but found "zone"`},
		{"timestamp[us, tz=UTC", `expected "]" but reached end of text`},
		{"duration[d]", `expected a time unit (s, ms, us or ns) but found "d"`},
		{"date32[ms]", `at offset 7: expected "day" but found "ms"`},
		{"date64[day]", `expected "ms" but found "day"`},
		{"fixed_size_binary(0)", `byte width 0 out of range 1..2147483647 for fixed_size_binary`},
		{"fixed_size_binary(2147483648)", `byte width 2147483648 out of range 1..2147483647`},
		{"fixed_size_binary[16]", `at offset 17: expected "(" (as in fixed_size_binary(16)) but found "["`},
		{"fixed_size_list<int32>", `at offset 21: expected "," and a size (as in fixed_size_list<int32, 3>) but found ">"`},
		{"fixed_size_list<int32, 0>", `list size 0 out of range 1..2147483647 for fixed_size_list`},
		{"fixed_size_list<int32>[3]", `at offset 21: expected "," and a size`},
		{"list<>", `at offset 5: expected a type name but found ">"`},
		{"list<int32 nullable>", `at offset 11: expected ">" but found "nullable"`},
		{"list<int32 not nul>", `at offset 15: expected "null" but found "nul"`},
		{"list<int32, int32>", `expected ">" but found ","`},
		{"list(int32)", `expected "<" but found "("`},
		{"map<utf8>", `at offset 8: expected "," but found ">"`},
		{"map<k: utf8, int32>", `at offset 4: map key cannot be named (Arrow always calls it "key")`},
		{"map<utf8, v: int32>", `at offset 10: map value cannot be named (Arrow always calls it "value")`},
		{"map<utf8, int32, sorted>", `at offset 17: expected "keys_sorted" but found "sorted"`},
		{"map<utf8, int32 x>", `expected "," or ">" but found "x"`},
		{"map<utf8, int32, keys_sorted, keys_sorted>", `expected ">" but found ","`},
		{"struct<a: int64, a: utf8>", `at offset 17: duplicate struct field name "a"`},
		{`struct<a: int64, "a": utf8>`, `duplicate struct field name "a"`},
		{"struct<int64>", `at offset 12: expected ":" after field name "int64" but found ">"`},
		{"struct<a: int64,>", `at offset 16: expected a field name but found ">"`},
		{"struct<a: int64 b: utf8>", `expected "," or ">" but found "b"`},
		{"struct<1a: int8>", `at offset 7: expected a field name but found "1a"`},
		{`struct<"a: int8>`, `at offset 7: unterminated quoted field name`},
		{`struct<"\q": int8>`, `at offset 8: invalid escape sequence "\\q" in quoted field name`},
		{"struct<\"a\tb\": int8>", `at offset 9: control character "\t" in quoted field name must be escaped`},
		{`list<"x" int8>`, `expected ":" after field name "x" but found "int8"`},
		{"struct<a: int8", `expected "," or ">" but reached end of text`},
		{nestedListText(maxNestingDepth+1, "int8"), `at offset 320: nesting deeper than 64 levels`},
		{strings.Repeat("struct<a: ", 1000), `nesting deeper than 64 levels`},
		{strings.Repeat(" ", maxTypeTextLen) + "int8", `is 65540 bytes, over the 65536-byte limit`},
		{"decimal128(5, -0)", `at offset 14: scale -0 out of range 0..5`},
		{expandingStructText(5000), `at offset 0: canonical form is 78896 bytes, over the 65536-byte limit`},
	}
	// %.200q keeps failure messages readable for the very long inputs.
	for _, tt := range tests {
		got, err := ParseType(tt.text)
		if err == nil {
			t.Errorf("ParseType(%.200q) = %v, want error containing %q", tt.text, got, tt.wantInError)
			continue
		}
		if !errors.Is(err, ErrTypeSyntax) {
			t.Errorf("ParseType(%.200q) error = %.200q, want it to wrap ErrTypeSyntax", tt.text, err)
		}
		if !strings.Contains(err.Error(), tt.wantInError) {
			t.Errorf("ParseType(%.200q) error = %.200q, want it to contain %q", tt.text, err, tt.wantInError)
		}
		if len(tt.text) <= maxTypeTextLen && !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.text)) {
			t.Errorf("ParseType(%.200q) error = %.200q, want it to quote the whole text", tt.text, err)
		}
	}
}

// typeTextExtension is a minimal extension type; extensions have no type text.
type typeTextExtension struct{ arrow.ExtensionBase }

func (*typeTextExtension) ExtensionName() string { return "fletch.test" }
func (*typeTextExtension) Serialize() string     { return "" }
func (*typeTextExtension) ArrayType() reflect.Type {
	return reflect.TypeOf(array.ExtensionArrayBase{})
}
func (e *typeTextExtension) ExtensionEquals(other arrow.ExtensionType) bool {
	return e.ExtensionName() == other.ExtensionName()
}
func (*typeTextExtension) Deserialize(storage arrow.DataType, _ string) (arrow.ExtensionType, error) {
	return &typeTextExtension{arrow.ExtensionBase{Storage: storage}}, nil
}

func TestFormatTypeUnsupported(t *testing.T) {
	withMetadata := arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int8, Nullable: true,
		Metadata: arrow.NewMetadata([]string{"k"}, []string{"v"})}
	tests := []struct {
		name string
		typ  arrow.DataType
	}{
		{"nil", nil},
		{"dictionary", &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}},
		{"dense union", arrow.DenseUnionOf([]arrow.Field{typeTextField("a", arrow.PrimitiveTypes.Int8)}, []arrow.UnionTypeCode{0})},
		{"sparse union", arrow.SparseUnionOf([]arrow.Field{typeTextField("a", arrow.PrimitiveTypes.Int8)}, []arrow.UnionTypeCode{0})},
		{"list_view", arrow.ListViewOf(arrow.PrimitiveTypes.Int32)},
		{"large_list_view", arrow.LargeListViewOf(arrow.PrimitiveTypes.Int32)},
		{"run-end encoded", arrow.RunEndEncodedOf(arrow.PrimitiveTypes.Int32, arrow.BinaryTypes.String)},
		{"extension", &typeTextExtension{arrow.ExtensionBase{Storage: arrow.PrimitiveTypes.Int64}}},
		{"time32 in microseconds", &arrow.Time32Type{Unit: arrow.Microsecond}},
		{"time64 in seconds", &arrow.Time64Type{Unit: arrow.Second}},
		{"unknown time unit", &arrow.DurationType{Unit: 7}},
		{"zone with bracket", &arrow.TimestampType{Unit: arrow.Second, TimeZone: "a]b"}},
		{"zone with comma", &arrow.TimestampType{Unit: arrow.Second, TimeZone: "a,b"}},
		{"zone with surrounding space", &arrow.TimestampType{Unit: arrow.Second, TimeZone: " UTC"}},
		{"decimal precision too large", &arrow.Decimal128Type{Precision: 39, Scale: 0}},
		{"decimal precision zero", &arrow.Decimal32Type{Precision: 0, Scale: 0}},
		{"decimal negative scale", &arrow.Decimal64Type{Precision: 5, Scale: -1}},
		{"decimal scale above precision", &arrow.Decimal256Type{Precision: 5, Scale: 6}},
		{"zero-width fixed_size_binary", &arrow.FixedSizeBinaryType{ByteWidth: 0}},
		{"duplicate struct fields", arrow.StructOf(typeTextField("a", arrow.PrimitiveTypes.Int8), typeTextField("a", arrow.PrimitiveTypes.Int8))},
		{"struct field metadata", arrow.StructOf(withMetadata)},
		{"list item metadata", arrow.ListOfField(withMetadata)},
		{"unsupported type inside struct", arrow.StructOf(typeTextField("d", &arrow.DictionaryType{
			IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}))},
		{"unsupported type inside map", arrow.MapOf(arrow.BinaryTypes.String, arrow.ListViewOf(arrow.PrimitiveTypes.Int8))},
		{"too deep", nestedLists(maxNestingDepth+1, arrow.PrimitiveTypes.Int8)},
		{"too long", arrow.StructOf(typeTextField(strings.Repeat("a", maxTypeTextLen), arrow.PrimitiveTypes.Int8))},
	}
	for _, tt := range tests {
		got, err := FormatType(tt.typ)
		if !errors.Is(err, ErrUnsupportedType) {
			t.Errorf("FormatType(%s) = %q, %v, want error wrapping ErrUnsupportedType", tt.name, got, err)
		}
	}
}

func TestFormatTypeNamesUnsupportedType(t *testing.T) {
	dict := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	_, err := FormatType(arrow.StructOf(typeTextField("d", dict)))
	if err == nil || !strings.Contains(err.Error(), dict.String()) {
		t.Errorf("FormatType(struct with dictionary) error = %v, want it to name %s", err, dict)
	}
}

// TestRoundTripComposed wraps every canonical leaf in each nested form.
func TestRoundTripComposed(t *testing.T) {
	var leaves []arrow.DataType
	for _, text := range []string{
		"null", "bool", "float16", "utf8_view", "interval_day_time", "time32[ms]",
		"timestamp[ns, tz=Europe/Paris]", "duration[ns]", "decimal256(40, 3)", "fixed_size_binary(3)",
		"struct<>", "map<int8, int8 not null>",
	} {
		leaf, err := ParseType(text)
		if err != nil {
			t.Fatalf("ParseType(%q) error: %v", text, err)
		}
		leaves = append(leaves, leaf)
	}
	for _, leaf := range leaves {
		for _, typ := range []arrow.DataType{
			arrow.ListOf(leaf),
			arrow.LargeListOfNonNullable(leaf),
			arrow.FixedSizeListOfField(5, typeTextRequiredField("v", leaf)),
			arrow.MapOf(leaf, leaf),
			arrow.StructOf(typeTextField("x", leaf), typeTextRequiredField("y z", arrow.ListOf(leaf))),
		} {
			text, err := FormatType(typ)
			if err != nil {
				t.Errorf("FormatType(%v) error: %v", typ, err)
				continue
			}
			got, err := ParseType(text)
			if err != nil {
				t.Errorf("ParseType(FormatType(%v)) error: %v", typ, err)
				continue
			}
			if !identicalTypes(got, typ) {
				t.Errorf("ParseType(%q) = %v, want %v", text, got, typ)
			}
		}
	}
}

// readTypeTextInputs returns the non-comment lines of testdata/typetext.input.
// Blank lines are skipped too; whitespace-only lines are kept as inputs.
func readTypeTextInputs(tb testing.TB) []string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "typetext.input"))
	if err != nil {
		tb.Fatal(err)
	}
	var inputs []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		inputs = append(inputs, line)
	}
	return inputs
}

func TestTypeTextGolden(t *testing.T) {
	var report strings.Builder
	for _, input := range readTypeTextInputs(t) {
		result := ""
		if typ, err := ParseType(input); err != nil {
			result = "error: " + err.Error()
		} else if result, err = FormatType(typ); err != nil {
			t.Errorf("FormatType(ParseType(%q)) error: %v", input, err)
		}
		report.WriteString(input + "\t" + result + "\n")
	}
	checkGolden(t, "typetext.golden", []byte(report.String()))
}
