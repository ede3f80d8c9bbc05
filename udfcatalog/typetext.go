package udfcatalog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
)

// ErrTypeSyntax is wrapped by every ParseType error.
var ErrTypeSyntax = errors.New("invalid type text")

// ErrUnsupportedType is wrapped by FormatType when a type has no canonical text.
var ErrUnsupportedType = errors.New("unsupported arrow type")

const (
	// maxTypeTextLen bounds the work one ParseType call can be asked to do.
	maxTypeTextLen = 64 << 10
	// maxNestingDepth bounds recursion so hostile text cannot exhaust the stack.
	maxNestingDepth = 64
	// maxFixedSize is the largest width or length Arrow's int32 fields can hold.
	maxFixedSize = 1<<31 - 1
	// spaceChars may surround any token; time zones are trimmed of them too.
	spaceChars = " \t\r\n"
	// listItemName is Arrow's default list child name, left implicit in the text.
	listItemName = "item"
)

// primitiveTypes maps each canonical parameterless name to its type. Read-only.
var primitiveTypes = map[string]arrow.DataType{
	"null":                    arrow.Null,
	"bool":                    arrow.FixedWidthTypes.Boolean,
	"int8":                    arrow.PrimitiveTypes.Int8,
	"int16":                   arrow.PrimitiveTypes.Int16,
	"int32":                   arrow.PrimitiveTypes.Int32,
	"int64":                   arrow.PrimitiveTypes.Int64,
	"uint8":                   arrow.PrimitiveTypes.Uint8,
	"uint16":                  arrow.PrimitiveTypes.Uint16,
	"uint32":                  arrow.PrimitiveTypes.Uint32,
	"uint64":                  arrow.PrimitiveTypes.Uint64,
	"float16":                 arrow.FixedWidthTypes.Float16,
	"float32":                 arrow.PrimitiveTypes.Float32,
	"float64":                 arrow.PrimitiveTypes.Float64,
	"utf8":                    arrow.BinaryTypes.String,
	"large_utf8":              arrow.BinaryTypes.LargeString,
	"utf8_view":               arrow.BinaryTypes.StringView,
	"binary":                  arrow.BinaryTypes.Binary,
	"large_binary":            arrow.BinaryTypes.LargeBinary,
	"binary_view":             arrow.BinaryTypes.BinaryView,
	"date32":                  arrow.FixedWidthTypes.Date32,
	"date64":                  arrow.FixedWidthTypes.Date64,
	"interval_months":         arrow.FixedWidthTypes.MonthInterval,
	"interval_day_time":       arrow.FixedWidthTypes.DayTimeInterval,
	"interval_month_day_nano": arrow.FixedWidthTypes.MonthDayNanoInterval,
}

// primitiveAliases maps pyarrow's spellings to canonical names. Read-only.
var primitiveAliases = map[string]string{
	"boolean":                 "bool",
	"string":                  "utf8",
	"large_string":            "large_utf8",
	"string_view":             "utf8_view",
	"halffloat":               "float16",
	"float":                   "float32",
	"double":                  "float64",
	"month_day_nano_interval": "interval_month_day_nano",
}

// ParseType parses canonical type text (and the accepted aliases) into an Arrow type.
func ParseType(text string) (arrow.DataType, error) {
	if len(text) > maxTypeTextLen {
		// Echoing the whole oversized text would flood logs; a prefix identifies it.
		return nil, fmt.Errorf("%w: %q... is %d bytes, over the %d-byte limit",
			ErrTypeSyntax, text[:32], len(text), maxTypeTextLen)
	}
	p := &parser{text: text}
	if offset := invalidUTF8Offset(text); offset >= 0 {
		return nil, p.errorAt(offset, "invalid UTF-8")
	}
	t, err := p.parseType()
	if err != nil {
		return nil, err
	}
	if err := p.parseEnd(); err != nil {
		return nil, err
	}
	// Canonical spacing and escapes can outgrow the input; FormatType must
	// accept everything ParseType returns, so hold the canonical form to the limit.
	if canonical, err := formatType(t); err == nil && len(canonical) > maxTypeTextLen {
		return nil, p.errorAt(0, "canonical form is %d bytes, over the %d-byte limit",
			len(canonical), maxTypeTextLen)
	}
	return t, nil
}

// parser is a recursive-descent parser over text; depth counts open nested types.
type parser struct {
	text  string
	pos   int
	depth int
}

func (p *parser) errorAt(offset int, format string, args ...any) error {
	return fmt.Errorf("%w: %q at offset %d: %s", ErrTypeSyntax, p.text, offset, fmt.Sprintf(format, args...))
}

// unexpected reports that expected was wanted at the current position.
func (p *parser) unexpected(expected string) error {
	return p.errorAt(p.pos, "expected %s but %s", expected, p.describeNext())
}

// describeNext names what the parser is looking at, as a whole word where possible.
func (p *parser) describeNext() string {
	if p.pos >= len(p.text) {
		return "reached end of text"
	}
	end := p.pos
	for end < len(p.text) && isWordByte(p.text[end]) {
		end++
	}
	if end == p.pos {
		_, size := utf8.DecodeRuneInString(p.text[p.pos:])
		end = p.pos + size
	}
	const maxWordLen = 40
	if end-p.pos > maxWordLen {
		return fmt.Sprintf("found %q...", p.text[p.pos:p.pos+maxWordLen])
	}
	return fmt.Sprintf("found %q", p.text[p.pos:end])
}

func (p *parser) skipSpace() {
	for p.pos < len(p.text) && strings.IndexByte(spaceChars, p.text[p.pos]) >= 0 {
		p.pos++
	}
}

// consume skips space and then c, reporting whether c was there.
func (p *parser) consume(c byte) bool {
	p.skipSpace()
	if p.pos < len(p.text) && p.text[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *parser) expect(c byte) error {
	if !p.consume(c) {
		return p.unexpected(strconv.Quote(string(c)))
	}
	return nil
}

// identifier reads [A-Za-z_][A-Za-z0-9_]* at the current position, or returns "".
func (p *parser) identifier() string {
	start := p.pos
	if start >= len(p.text) || !isIdentStart(p.text[start]) {
		return ""
	}
	for p.pos < len(p.text) && isWordByte(p.text[p.pos]) {
		p.pos++
	}
	return p.text[start:p.pos]
}

// expectWord requires the keyword want, leaving the position on failure so
// the error points at what was found instead.
func (p *parser) expectWord(want string) error {
	p.skipSpace()
	start := p.pos
	if p.identifier() != want {
		p.pos = start
		return p.unexpected(strconv.Quote(want))
	}
	return nil
}

// parseEnd accepts only trailing space.
func (p *parser) parseEnd() error {
	p.skipSpace()
	if p.pos == len(p.text) {
		return nil
	}
	start := p.pos
	if p.identifier() == "not" {
		return p.errorAt(start, `a top-level type has no nullability; "not null" only applies to fields`)
	}
	p.pos = start
	return p.unexpected("end of text")
}

func (p *parser) parseType() (arrow.DataType, error) {
	p.skipSpace()
	start := p.pos
	name := p.identifier()
	if name == "" {
		return nil, p.unexpected("a type name")
	}
	switch name {
	case "date32", "date64":
		return p.parseDate(name)
	case "time32", "time64", "duration":
		return p.parseTimeUnitType(name)
	case "timestamp":
		return p.parseTimestamp()
	case "decimal", "decimal32", "decimal64", "decimal128", "decimal256":
		return p.parseDecimal(name)
	case "fixed_size_binary":
		return p.parseFixedSizeBinary()
	case "list", "large_list", "fixed_size_list", "map", "struct":
		return p.parseNested(name, start)
	}
	if canonical, ok := primitiveAliases[name]; ok {
		name = canonical
	}
	if t, ok := primitiveTypes[name]; ok {
		return t, nil
	}
	message := fmt.Sprintf("unknown type %q", name)
	if lower := strings.ToLower(name); lower != name && isTypeName(lower) {
		message += fmt.Sprintf(" (type names are lowercase: %q)", lower)
	}
	return nil, p.errorAt(start, "%s", message)
}

// isTypeName reports whether name starts a type, so errors can suggest it.
func isTypeName(name string) bool {
	switch name {
	case "time32", "time64", "duration", "timestamp",
		"decimal", "decimal32", "decimal64", "decimal128", "decimal256",
		"fixed_size_binary", "list", "large_list", "fixed_size_list", "map", "struct":
		return true
	}
	_, primitive := primitiveTypes[name]
	_, alias := primitiveAliases[name]
	return primitive || alias
}

// parseDate accepts pyarrow's redundant unit suffix: date32[day], date64[ms].
func (p *parser) parseDate(name string) (arrow.DataType, error) {
	t, unit := arrow.FixedWidthTypes.Date32, "day"
	if name == "date64" {
		t, unit = arrow.FixedWidthTypes.Date64, "ms"
	}
	if !p.consume('[') {
		return t, nil
	}
	if err := p.expectWord(unit); err != nil {
		return nil, err
	}
	if err := p.expect(']'); err != nil {
		return nil, err
	}
	return t, nil
}

// parseTimeUnitType parses the bracketed unit of time32, time64 and duration.
func (p *parser) parseTimeUnitType(name string) (arrow.DataType, error) {
	if err := p.expect('['); err != nil {
		return nil, err
	}
	p.skipSpace()
	unitStart := p.pos
	unit, err := p.parseTimeUnit()
	if err != nil {
		return nil, err
	}
	var t arrow.DataType
	switch name {
	case "time32":
		if unit != arrow.Second && unit != arrow.Millisecond {
			return nil, p.errorAt(unitStart, "time32 unit must be s or ms, not %s", unit)
		}
		t = &arrow.Time32Type{Unit: unit}
	case "time64":
		if unit != arrow.Microsecond && unit != arrow.Nanosecond {
			return nil, p.errorAt(unitStart, "time64 unit must be us or ns, not %s", unit)
		}
		t = &arrow.Time64Type{Unit: unit}
	default:
		t = &arrow.DurationType{Unit: unit}
	}
	if err := p.expect(']'); err != nil {
		return nil, err
	}
	return t, nil
}

// parseTimeUnit parses s, ms, us or ns.
func (p *parser) parseTimeUnit() (arrow.TimeUnit, error) {
	p.skipSpace()
	start := p.pos
	switch p.identifier() {
	case "s":
		return arrow.Second, nil
	case "ms":
		return arrow.Millisecond, nil
	case "us":
		return arrow.Microsecond, nil
	case "ns":
		return arrow.Nanosecond, nil
	}
	p.pos = start
	return 0, p.unexpected("a time unit (s, ms, us or ns)")
}

func (p *parser) parseTimestamp() (arrow.DataType, error) {
	if err := p.expect('['); err != nil {
		return nil, err
	}
	unit, err := p.parseTimeUnit()
	if err != nil {
		return nil, err
	}
	var zone string
	if p.consume(',') {
		if err := p.expectWord("tz"); err != nil {
			return nil, err
		}
		if err := p.expect('='); err != nil {
			return nil, err
		}
		if zone, err = p.parseTimeZone(); err != nil {
			return nil, err
		}
	}
	if err := p.expect(']'); err != nil {
		return nil, err
	}
	return &arrow.TimestampType{Unit: unit, TimeZone: zone}, nil
}

// parseTimeZone reads up to the next "]" or ","; zone names are not validated
// here because Arrow allows any IANA name or offset and tzdata may be absent.
func (p *parser) parseTimeZone() (string, error) {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.text) && p.text[p.pos] != ']' && p.text[p.pos] != ',' {
		p.pos++
	}
	zone := strings.TrimRight(p.text[start:p.pos], spaceChars)
	if zone == "" {
		p.pos = start
		return "", p.unexpected("a time zone")
	}
	return zone, nil
}

func (p *parser) parseDecimal(name string) (arrow.DataType, error) {
	var maxPrecision int64
	switch name {
	case "decimal32":
		maxPrecision = 9
	case "decimal64":
		maxPrecision = 18
	case "decimal128", "decimal":
		maxPrecision = 38
	default:
		maxPrecision = 76
	}
	if err := p.expect('('); err != nil {
		return nil, err
	}
	precision, err := p.parseBoundedInt("precision", 1, maxPrecision, " for "+name)
	if err != nil {
		return nil, err
	}
	if err := p.expect(','); err != nil {
		return nil, err
	}
	scale, err := p.parseBoundedInt("scale", 0, precision, fmt.Sprintf(" for %s with precision %d", name, precision))
	if err != nil {
		return nil, err
	}
	if err := p.expect(')'); err != nil {
		return nil, err
	}
	p32, s32 := int32(precision), int32(scale)
	switch name {
	case "decimal32":
		return &arrow.Decimal32Type{Precision: p32, Scale: s32}, nil
	case "decimal64":
		return &arrow.Decimal64Type{Precision: p32, Scale: s32}, nil
	case "decimal128", "decimal":
		return &arrow.Decimal128Type{Precision: p32, Scale: s32}, nil
	default:
		return &arrow.Decimal256Type{Precision: p32, Scale: s32}, nil
	}
}

func (p *parser) parseFixedSizeBinary() (arrow.DataType, error) {
	// pyarrow prints fixed_size_binary[16], so show the spelling wanted here.
	if !p.consume('(') {
		return nil, p.unexpected(`"(" (as in fixed_size_binary(16))`)
	}
	width, err := p.parseBoundedInt("byte width", 1, maxFixedSize, " for fixed_size_binary")
	if err != nil {
		return nil, err
	}
	if err := p.expect(')'); err != nil {
		return nil, err
	}
	return &arrow.FixedSizeBinaryType{ByteWidth: int(width)}, nil
}

// parseBoundedInt reads a decimal integer and requires lo <= n <= hi. A minus
// sign is read only so "-1" gets a range error rather than a puzzling syntax
// error; overlong numbers saturate instead of wrapping.
func (p *parser) parseBoundedInt(what string, lo, hi int64, context string) (int64, error) {
	p.skipSpace()
	start := p.pos
	negative := p.pos < len(p.text) && p.text[p.pos] == '-'
	if negative {
		p.pos++
	}
	digitsStart := p.pos
	var n int64
	for p.pos < len(p.text) && isDigit(p.text[p.pos]) {
		if n <= maxFixedSize {
			n = n*10 + int64(p.text[p.pos]-'0')
		}
		p.pos++
	}
	if p.pos == digitsStart {
		p.pos = start
		return 0, p.unexpected(what + " (an integer)")
	}
	// Every bound is non-negative, so any sign (even "-0") is out of range.
	if negative || n < lo || n > hi {
		return 0, p.errorAt(start, "%s %s out of range %d..%d%s", what, p.text[start:p.pos], lo, hi, context)
	}
	return n, nil
}

// parseNested parses the angle-bracketed part of list, large_list,
// fixed_size_list, map and struct, which are the only recursive productions.
func (p *parser) parseNested(name string, start int) (arrow.DataType, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxNestingDepth {
		return nil, p.errorAt(start, "nesting deeper than %d levels", maxNestingDepth)
	}
	if err := p.expect('<'); err != nil {
		return nil, err
	}
	switch name {
	case "list", "large_list":
		item, err := p.parseField(listItemName)
		if err != nil {
			return nil, err
		}
		if err := p.expect('>'); err != nil {
			return nil, err
		}
		if name == "list" {
			return arrow.ListOfField(item), nil
		}
		return arrow.LargeListOfField(item), nil
	case "fixed_size_list":
		item, err := p.parseField(listItemName)
		if err != nil {
			return nil, err
		}
		// pyarrow prints fixed_size_list<item: int32>[3], so show the spelling wanted here.
		if !p.consume(',') {
			return nil, p.unexpected(`"," and a size (as in fixed_size_list<int32, 3>)`)
		}
		size, err := p.parseBoundedInt("list size", 1, maxFixedSize, " for fixed_size_list")
		if err != nil {
			return nil, err
		}
		if err := p.expect('>'); err != nil {
			return nil, err
		}
		return arrow.FixedSizeListOfField(int32(size), item), nil
	case "map":
		return p.parseMapBody()
	default:
		return p.parseStructBody()
	}
}

// parseField parses [NAME ":"] TYPE ["not null"], naming the field
// defaultName when the text does not.
func (p *parser) parseField(defaultName string) (arrow.Field, error) {
	name, named, err := p.parseOptionalFieldName()
	if err != nil {
		return arrow.Field{}, err
	}
	if !named {
		name = defaultName
	}
	t, err := p.parseType()
	if err != nil {
		return arrow.Field{}, err
	}
	nullable, err := p.parseNullability()
	if err != nil {
		return arrow.Field{}, err
	}
	return arrow.Field{Name: name, Type: t, Nullable: nullable}, nil
}

// parseOptionalFieldName consumes `NAME ":"` if present. A bare identifier
// is a name only when a colon follows; otherwise it is the type.
func (p *parser) parseOptionalFieldName() (name string, named bool, err error) {
	p.skipSpace()
	start := p.pos
	if p.pos < len(p.text) && p.text[p.pos] == '"' {
		if name, err = p.parseQuotedName(); err != nil {
			return "", false, err
		}
		if !p.consume(':') {
			return "", false, p.unexpected(fmt.Sprintf(`":" after field name %q`, name))
		}
		return name, true, nil
	}
	if name = p.identifier(); name != "" && p.consume(':') {
		return name, true, nil
	}
	p.pos = start
	return "", false, nil
}

// parseFieldName parses a required identifier or quoted field name.
func (p *parser) parseFieldName() (string, error) {
	p.skipSpace()
	if p.pos < len(p.text) && p.text[p.pos] == '"' {
		return p.parseQuotedName()
	}
	if name := p.identifier(); name != "" {
		return name, nil
	}
	return "", p.unexpected("a field name")
}

// parseQuotedName decodes a double-quoted name with Go escapes. Raw control
// characters are rejected, as JSON does, so they never hide in descriptors.
func (p *parser) parseQuotedName() (string, error) {
	start := p.pos
	var name strings.Builder
	rest := p.text[start+1:]
	for {
		at := len(p.text) - len(rest)
		switch {
		case rest == "":
			return "", p.errorAt(start, "unterminated quoted field name")
		case rest[0] == '"':
			p.pos = at + 1
			return name.String(), nil
		case rest[0] < 0x20 || rest[0] == 0x7f:
			return "", p.errorAt(at, "control character %q in quoted field name must be escaped", rest[:1])
		}
		r, multibyte, tail, err := strconv.UnquoteChar(rest, '"')
		if err != nil {
			return "", p.errorAt(at, "invalid escape sequence %q in quoted field name", rest[:min(2, len(rest))])
		}
		// As strconv.Unquote does: \x and octal escapes are raw bytes.
		if r < utf8.RuneSelf || !multibyte {
			name.WriteByte(byte(r))
		} else {
			name.WriteRune(r)
		}
		rest = tail
	}
}

// parseNullability consumes an optional "not null" and reports whether the
// field stays nullable.
func (p *parser) parseNullability() (bool, error) {
	p.skipSpace()
	start := p.pos
	if p.identifier() != "not" {
		p.pos = start
		return true, nil
	}
	if err := p.expectWord("null"); err != nil {
		return false, err
	}
	return false, nil
}

// parseMapBody parses KEYTYPE ["not null"] "," TYPE ["not null"] ["," "keys_sorted"] ">".
func (p *parser) parseMapBody() (arrow.DataType, error) {
	key, err := p.parseUnnamedMapField("key")
	if err != nil {
		return nil, err
	}
	// Map keys are never null, so an explicit "not null" changes nothing.
	if _, err := p.parseNullability(); err != nil {
		return nil, err
	}
	if err := p.expect(','); err != nil {
		return nil, err
	}
	value, err := p.parseUnnamedMapField("value")
	if err != nil {
		return nil, err
	}
	valueNullable, err := p.parseNullability()
	if err != nil {
		return nil, err
	}
	keysSorted := false
	if p.consume(',') {
		if err := p.expectWord("keys_sorted"); err != nil {
			return nil, err
		}
		keysSorted = true
	}
	if !p.consume('>') {
		if keysSorted {
			return nil, p.unexpected(`">"`)
		}
		return nil, p.unexpected(`"," or ">"`)
	}
	m := arrow.MapOf(key, value)
	m.SetItemNullable(valueNullable)
	m.KeysSorted = keysSorted
	return m, nil
}

// parseUnnamedMapField parses a map key or value type, rejecting a field
// name because Arrow fixes them as "key" and "value".
func (p *parser) parseUnnamedMapField(role string) (arrow.DataType, error) {
	p.skipSpace()
	start := p.pos
	if _, named, err := p.parseOptionalFieldName(); err != nil {
		return nil, err
	} else if named {
		return nil, p.errorAt(start, "map %s cannot be named (Arrow always calls it %q)", role, role)
	}
	return p.parseType()
}

// parseStructBody parses [NAME ":" TYPE ["not null"] {"," ...}] ">".
func (p *parser) parseStructBody() (arrow.DataType, error) {
	if p.consume('>') {
		return arrow.StructOf(), nil
	}
	var fields []arrow.Field
	seen := make(map[string]bool)
	for {
		p.skipSpace()
		nameStart := p.pos
		name, err := p.parseFieldName()
		if err != nil {
			return nil, err
		}
		if seen[name] {
			return nil, p.errorAt(nameStart, "duplicate struct field name %q", name)
		}
		seen[name] = true
		if !p.consume(':') {
			return nil, p.unexpected(fmt.Sprintf(`":" after field name %q`, name))
		}
		t, err := p.parseType()
		if err != nil {
			return nil, err
		}
		nullable, err := p.parseNullability()
		if err != nil {
			return nil, err
		}
		fields = append(fields, arrow.Field{Name: name, Type: t, Nullable: nullable})
		if p.consume('>') {
			return arrow.StructOf(fields...), nil
		}
		if !p.consume(',') {
			return nil, p.unexpected(`"," or ">"`)
		}
	}
}

func invalidUTF8Offset(text string) int {
	for offset, r := range text {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(text[offset:]); size == 1 {
				return offset
			}
		}
	}
	return -1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
}

func isWordByte(c byte) bool { return isIdentStart(c) || isDigit(c) }

// isIdentifier reports whether name can be written without quotes.
func isIdentifier(name string) bool {
	if name == "" || !isIdentStart(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		if !isWordByte(name[i]) {
			return false
		}
	}
	return true
}
