package udfcatalog

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
)

// FormatType renders t in canonical text.
func FormatType(t arrow.DataType) (string, error) {
	text, err := formatType(t)
	if err != nil {
		return "", err
	}
	// ParseType would reject longer text, breaking the round trip.
	if len(text) > maxTypeTextLen {
		return "", unsupported(t, fmt.Sprintf("canonical text is %d bytes, over the %d-byte limit", len(text), maxTypeTextLen))
	}
	return text, nil
}

// formatType is FormatType without the length limit, which ParseType applies itself.
func formatType(t arrow.DataType) (string, error) {
	var b strings.Builder
	if err := writeType(&b, t, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

// unsupported names t by its Arrow spelling, cut short so huge types do not flood logs.
func unsupported(t arrow.DataType, reason string) error {
	name := "<nil>"
	if t != nil {
		name = t.String()
	}
	const maxDescriptionLen = 200
	if len(name) > maxDescriptionLen {
		name = name[:maxDescriptionLen] + "..."
	}
	return fmt.Errorf("%w: %s: %s", ErrUnsupportedType, name, reason)
}

// writeType writes t; depth counts the nested types enclosing it, as the parser does.
func writeType(b *strings.Builder, t arrow.DataType, depth int) error {
	if t == nil {
		return unsupported(nil, "missing type")
	}
	if name, ok := primitiveName(t); ok {
		b.WriteString(name)
		return nil
	}
	switch t := t.(type) {
	case *arrow.Time32Type:
		if t.Unit != arrow.Second && t.Unit != arrow.Millisecond {
			return unsupported(t, "time32 unit must be s or ms")
		}
		return writeUnitType(b, t, "time32", t.Unit)
	case *arrow.Time64Type:
		if t.Unit != arrow.Microsecond && t.Unit != arrow.Nanosecond {
			return unsupported(t, "time64 unit must be us or ns")
		}
		return writeUnitType(b, t, "time64", t.Unit)
	case *arrow.DurationType:
		return writeUnitType(b, t, "duration", t.Unit)
	case *arrow.TimestampType:
		return writeTimestamp(b, t)
	case *arrow.Decimal32Type:
		return writeDecimal(b, t, "decimal32", t.Precision, t.Scale, 9)
	case *arrow.Decimal64Type:
		return writeDecimal(b, t, "decimal64", t.Precision, t.Scale, 18)
	case *arrow.Decimal128Type:
		return writeDecimal(b, t, "decimal128", t.Precision, t.Scale, 38)
	case *arrow.Decimal256Type:
		return writeDecimal(b, t, "decimal256", t.Precision, t.Scale, 76)
	case *arrow.FixedSizeBinaryType:
		if t.ByteWidth < 1 || t.ByteWidth > maxFixedSize {
			return unsupported(t, fmt.Sprintf("byte width must be in 1..%d", maxFixedSize))
		}
		fmt.Fprintf(b, "fixed_size_binary(%d)", t.ByteWidth)
		return nil
	case *arrow.ListType, *arrow.LargeListType, *arrow.FixedSizeListType, *arrow.MapType, *arrow.StructType:
		if depth+1 > maxNestingDepth {
			return unsupported(t, fmt.Sprintf("nesting deeper than %d levels", maxNestingDepth))
		}
		return writeNested(b, t, depth+1)
	}
	return unsupported(t, "no canonical text")
}

// primitiveName finds t's canonical name; TypeEqual also checks the concrete
// Go type, so an extension type with a primitive ID cannot pass as one.
func primitiveName(t arrow.DataType) (string, bool) {
	for name, candidate := range primitiveTypes {
		if candidate.ID() == t.ID() && arrow.TypeEqual(candidate, t) {
			return name, true
		}
	}
	return "", false
}

func timeUnitName(unit arrow.TimeUnit) (string, bool) {
	switch unit {
	case arrow.Second:
		return "s", true
	case arrow.Millisecond:
		return "ms", true
	case arrow.Microsecond:
		return "us", true
	case arrow.Nanosecond:
		return "ns", true
	}
	return "", false
}

func writeUnitType(b *strings.Builder, t arrow.DataType, name string, unit arrow.TimeUnit) error {
	unitName, ok := timeUnitName(unit)
	if !ok {
		return unsupported(t, "unknown time unit")
	}
	b.WriteString(name + "[" + unitName + "]")
	return nil
}

func writeTimestamp(b *strings.Builder, t *arrow.TimestampType) error {
	unitName, ok := timeUnitName(t.Unit)
	if !ok {
		return unsupported(t, "unknown time unit")
	}
	if t.TimeZone == "" {
		b.WriteString("timestamp[" + unitName + "]")
		return nil
	}
	// The parser ends a zone at "]" or "," and trims spaces, so such zones cannot round-trip.
	if strings.ContainsAny(t.TimeZone, "],") || strings.Trim(t.TimeZone, spaceChars) != t.TimeZone ||
		!utf8.ValidString(t.TimeZone) {
		return unsupported(t, fmt.Sprintf(`time zone %q cannot contain "]" or ",", surrounding spaces or invalid UTF-8`, t.TimeZone))
	}
	b.WriteString("timestamp[" + unitName + ", tz=" + t.TimeZone + "]")
	return nil
}

func writeDecimal(b *strings.Builder, t arrow.DataType, name string, precision, scale, maxPrecision int32) error {
	if precision < 1 || precision > maxPrecision {
		return unsupported(t, fmt.Sprintf("precision %d out of range 1..%d", precision, maxPrecision))
	}
	if scale < 0 || scale > precision {
		return unsupported(t, fmt.Sprintf("scale %d out of range 0..%d", scale, precision))
	}
	fmt.Fprintf(b, "%s(%d, %d)", name, precision, scale)
	return nil
}

// writeNested writes the nested types; depth already counts t itself.
func writeNested(b *strings.Builder, t arrow.DataType, depth int) error {
	switch t := t.(type) {
	case *arrow.ListType:
		b.WriteString("list<")
		if err := writeListItem(b, t, t.ElemField(), depth); err != nil {
			return err
		}
	case *arrow.LargeListType:
		b.WriteString("large_list<")
		if err := writeListItem(b, t, t.ElemField(), depth); err != nil {
			return err
		}
	case *arrow.FixedSizeListType:
		if t.Len() < 1 {
			return unsupported(t, "list size must be at least 1")
		}
		b.WriteString("fixed_size_list<")
		if err := writeListItem(b, t, t.ElemField(), depth); err != nil {
			return err
		}
		fmt.Fprintf(b, ", %d", t.Len())
	case *arrow.MapType:
		if err := writeMapBody(b, t, depth); err != nil {
			return err
		}
	case *arrow.StructType:
		if err := writeStructBody(b, t, depth); err != nil {
			return err
		}
	}
	b.WriteString(">")
	return nil
}

// writeListItem leaves Arrow's default child name "item" implicit.
func writeListItem(b *strings.Builder, parent arrow.DataType, item arrow.Field, depth int) error {
	if err := checkNoMetadata(parent, item); err != nil {
		return err
	}
	if item.Name != listItemName {
		b.WriteString(formatFieldName(item.Name) + ": ")
	}
	return writeFieldType(b, item, depth)
}

func writeMapBody(b *strings.Builder, t *arrow.MapType, depth int) error {
	key, value := t.KeyField(), t.ItemField()
	if key.Nullable {
		return unsupported(t, "map keys must be non-nullable")
	}
	// The text cannot spell other names, so they would be lost silently.
	if key.Name != "key" || value.Name != "value" {
		return unsupported(t, fmt.Sprintf(`map fields must be named "key" and "value", not %q and %q`, key.Name, value.Name))
	}
	if err := checkNoMetadata(t, key); err != nil {
		return err
	}
	if err := checkNoMetadata(t, value); err != nil {
		return err
	}
	b.WriteString("map<")
	if err := writeType(b, key.Type, depth); err != nil {
		return err
	}
	b.WriteString(", ")
	if err := writeFieldType(b, value, depth); err != nil {
		return err
	}
	if t.KeysSorted {
		b.WriteString(", keys_sorted")
	}
	return nil
}

func writeStructBody(b *strings.Builder, t *arrow.StructType, depth int) error {
	b.WriteString("struct<")
	seen := make(map[string]bool, t.NumFields())
	for i := range t.NumFields() {
		field := t.Field(i)
		if seen[field.Name] {
			return unsupported(t, fmt.Sprintf("duplicate struct field name %q", field.Name))
		}
		seen[field.Name] = true
		if err := checkNoMetadata(t, field); err != nil {
			return err
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(formatFieldName(field.Name) + ": ")
		if err := writeFieldType(b, field, depth); err != nil {
			return err
		}
	}
	return nil
}

// writeFieldType writes a child's type and its nullability suffix.
func writeFieldType(b *strings.Builder, field arrow.Field, depth int) error {
	if err := writeType(b, field.Type, depth); err != nil {
		return err
	}
	if !field.Nullable {
		b.WriteString(" not null")
	}
	return nil
}

// checkNoMetadata refuses to drop field metadata silently: it can carry
// meaning (e.g. an unregistered extension type) that the text cannot express.
func checkNoMetadata(parent arrow.DataType, field arrow.Field) error {
	if field.Metadata.Len() > 0 {
		return unsupported(parent, fmt.Sprintf("field %q has metadata, which type text cannot express", field.Name))
	}
	return nil
}

// formatFieldName quotes names that are not identifiers, including "".
func formatFieldName(name string) string {
	if isIdentifier(name) {
		return name
	}
	return strconv.Quote(name)
}
