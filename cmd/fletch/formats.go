package main

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// The formats fletch call reads and writes.
const (
	formatCSV       = "csv"
	formatJSONL     = "jsonl"
	formatParquet   = "parquet"
	formatArrow     = "arrow"      // Arrow IPC stream; reading also takes the file format
	formatArrowFile = "arrow-file" // Arrow IPC file (random access), output only
	formatTable     = "table"      // aligned text for people, output only
)

var (
	inputFormats  = []string{formatCSV, formatJSONL, formatParquet, formatArrow}
	outputFormats = []string{formatTable, formatCSV, formatJSONL, formatParquet, formatArrow, formatArrowFile}
	// formatAliases are other names the --*-format flags accept.
	formatAliases = map[string]string{"ndjson": formatJSONL, "json": formatJSONL, "ipc": formatArrow, "arrows": formatArrow}
	// extensionFormats says which format a file name implies.
	extensionFormats = map[string]string{
		".csv": formatCSV, ".jsonl": formatJSONL, ".ndjson": formatJSONL, ".json": formatJSONL,
		".parquet": formatParquet, ".arrow": formatArrow, ".arrows": formatArrow, ".ipc": formatArrow,
	}
)

// checkFormat normalizes a --input-format or --output-format value.
func checkFormat(flagName, value string, allowed []string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(value))
	if a, ok := formatAliases[v]; ok {
		v = a
	}
	for _, f := range allowed {
		if v == f {
			return v, nil
		}
	}
	return "", &usageError{msg: fmt.Sprintf("--%s %q: want one of %s", flagName, value, strings.Join(allowed, ", "))}
}

// formatOf is the format a file name's extension implies, if any.
func formatOf(path string) (string, bool) {
	f, ok := extensionFormats[strings.ToLower(filepath.Ext(path))]
	return f, ok
}

func extensionList() string {
	return ".csv, .jsonl/.ndjson/.json, .parquet, .arrow/.arrows/.ipc"
}

// cellText is the text of a non-null value in CSV output and tables: strings
// as they are, numbers in Go's shortest form, other types as Arrow's
// ValueStr writes them (which is what CSV input parses back).
func cellText(arr arrow.Array, i int) string {
	switch a := arr.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.StringView:
		return a.Value(i)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	}
	return arr.ValueStr(i)
}

// appendJSONValue appends value i of arr as JSON. NaN and infinities,
// which JSON cannot write, become the strings "NaN", "Infinity" and
// "-Infinity", which JSON input reads back.
func appendJSONValue(buf []byte, arr arrow.Array, i int) []byte {
	if arr.IsNull(i) {
		return append(buf, "null"...)
	}
	switch a := arr.(type) {
	case *array.String:
		return appendJSONString(buf, a.Value(i))
	case *array.LargeString:
		return appendJSONString(buf, a.Value(i))
	case *array.StringView:
		return appendJSONString(buf, a.Value(i))
	case *array.Int8:
		return strconv.AppendInt(buf, int64(a.Value(i)), 10)
	case *array.Int16:
		return strconv.AppendInt(buf, int64(a.Value(i)), 10)
	case *array.Int32:
		return strconv.AppendInt(buf, int64(a.Value(i)), 10)
	case *array.Int64:
		return strconv.AppendInt(buf, a.Value(i), 10)
	case *array.Uint8:
		return strconv.AppendUint(buf, uint64(a.Value(i)), 10)
	case *array.Uint16:
		return strconv.AppendUint(buf, uint64(a.Value(i)), 10)
	case *array.Uint32:
		return strconv.AppendUint(buf, uint64(a.Value(i)), 10)
	case *array.Uint64:
		return strconv.AppendUint(buf, a.Value(i), 10)
	case *array.Float32:
		return appendJSONFloat(buf, float64(a.Value(i)), 32)
	case *array.Float64:
		return appendJSONFloat(buf, a.Value(i), 64)
	case *array.Boolean:
		return strconv.AppendBool(buf, a.Value(i))
	}
	js, err := json.Marshal(arr.GetOneForMarshal(i))
	if err != nil {
		return appendJSONString(buf, arr.ValueStr(i))
	}
	return append(buf, js...)
}

func appendJSONFloat(buf []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(buf, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(buf, `"-Infinity"`...)
	}
	return strconv.AppendFloat(buf, f, 'g', -1, bits)
}

// appendJSONString appends s as a JSON string, escaping only what JSON
// requires (no HTML escapes); invalid UTF-8 becomes U+FFFD.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, "\ufffd"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// isStringType reports whether t is one of Arrow's string types.
func isStringType(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return true
	}
	return false
}

// isNumericType reports whether t's values read best right-aligned.
func isNumericType(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64, arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
		return true
	}
	return false
}
