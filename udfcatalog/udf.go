package udfcatalog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
)

// Kind says how a UDF maps input rows to output rows.
type Kind string

const (
	// KindScalar maps each input row to exactly one output row.
	KindScalar Kind = "scalar"
	// KindTable yields zero or more rows for each input row.
	KindTable Kind = "table"
	// KindAggregate folds all input rows into one result.
	KindAggregate Kind = "aggregate"
	// KindTransform maps whole batches to batches of any length.
	KindTransform Kind = "transform"
)

// Volatility tells callers whether results may be cached or reordered.
type Volatility string

const (
	// Immutable functions return the same output for the same input, always.
	Immutable Volatility = "immutable"
	// Stable functions are deterministic within one exchange.
	Stable Volatility = "stable"
	// Volatile functions may return different results for the same input.
	Volatile Volatility = "volatile"
)

// OnError policies: what a failing row does.
const (
	// OnErrorRaise fails the batch (the default).
	OnErrorRaise = "raise"
	// OnErrorNull makes the row null; the failure is logged.
	OnErrorNull = "null"
	// OnErrorColumn makes the row null and reports its message in a second
	// utf8 column, present only in batches where some row failed.
	OnErrorColumn = "error_column"
)

// ErrorColumn is the name of the per-row error column.
const ErrorColumn = "error"

// Languages name the executor that runs a UDF.
const (
	LanguageGo     = "go"
	LanguagePython = "python"
)

// ErrInvalidUDF is wrapped by (*UDF).Validate errors.
var ErrInvalidUDF = errors.New("invalid UDF descriptor")

// Param is one declared parameter. Nullable parameters receive nulls;
// for the others a null input yields a null output without a call.
type Param struct {
	Name     string
	Type     arrow.DataType
	Nullable bool
}

// UDF describes one user-defined function. A UDF is immutable once
// registered: a new version is a new *UDF.
type UDF struct {
	Name       string
	Kind       Kind
	Language   string
	Params     []Param
	Result     arrow.Field
	Doc        string
	Volatility Volatility
	// OnError is the failing-row policy; empty means OnErrorRaise.
	OnError string
	// Mergeable aggregates can merge partial states (see Phase).
	Mergeable bool
	// MaxBatchRows, if positive, bounds the input rows one call sees,
	// below the server's limit.
	MaxBatchRows int
	// Module names the Python module that defines the UDF, if any.
	Module string
	// Version is a digest of the signature and, where there is one, the source.
	Version string
}

// maxNameLen bounds function names so they stay usable as gRPC paths and log keys.
const maxNameLen = 256

// Validate reports the first problem that would make u unusable.
func (u *UDF) Validate() error {
	switch {
	case u.Name == "" || len(u.Name) > maxNameLen || !utf8.ValidString(u.Name):
		return fmt.Errorf("%w: name %q must be 1..%d bytes of UTF-8", ErrInvalidUDF, u.Name, maxNameLen)
	case strings.ContainsAny(u.Name, "/\x00"):
		return fmt.Errorf("%w: name %q must not contain '/' or NUL", ErrInvalidUDF, u.Name)
	case u.Kind == "":
		return fmt.Errorf("%w: %s: kind is empty", ErrInvalidUDF, u.Name)
	case u.Language == "":
		return fmt.Errorf("%w: %s: language is empty", ErrInvalidUDF, u.Name)
	case u.Result.Type == nil:
		return fmt.Errorf("%w: %s: result type is missing", ErrInvalidUDF, u.Name)
	case u.Version == "":
		return fmt.Errorf("%w: %s: version is empty", ErrInvalidUDF, u.Name)
	case u.OnError != "" && u.OnError != OnErrorRaise && u.OnError != OnErrorNull && u.OnError != OnErrorColumn:
		return fmt.Errorf("%w: %s: on_error %q is not raise, null or error_column", ErrInvalidUDF, u.Name, u.OnError)
	case u.MaxBatchRows < 0:
		return fmt.Errorf("%w: %s: max_batch_rows %d is negative", ErrInvalidUDF, u.Name, u.MaxBatchRows)
	case u.Mergeable && u.Kind != KindAggregate:
		return fmt.Errorf("%w: %s: only aggregates can be mergeable, not a %s function", ErrInvalidUDF, u.Name, u.Kind)
	}
	seen := make(map[string]bool, len(u.Params))
	for i, p := range u.Params {
		if p.Type == nil {
			return fmt.Errorf("%w: %s: parameter %d (%q) has no type", ErrInvalidUDF, u.Name, i, p.Name)
		}
		if p.Name != "" && seen[p.Name] {
			return fmt.Errorf("%w: %s: parameter name %q is used twice", ErrInvalidUDF, u.Name, p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// InputSchema is the schema of the batches a caller sends: one field per
// parameter, in order.
func (u *UDF) InputSchema() *arrow.Schema {
	fields := make([]arrow.Field, len(u.Params))
	for i, p := range u.Params {
		fields[i] = arrow.Field{Name: p.Name, Type: p.Type, Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// RowColumn names a table function's first output column: the index of
// the input row (counted across the exchange) each output row came from.
const RowColumn = "row"

// OutputSchema is the schema of the batches the UDF returns. Scalar
// functions and aggregates return their result; a table function returns
// the row index and its result; a transform returns its result's fields.
// A table function's struct result is one column per field.
//
// Every column is nullable but a table function's row index, whatever the
// function declares: a null argument to a parameter that takes none, and
// the null and error_column policies, make rows null, and engines expect
// nullable results (RisingWave's decoder rejects a batch with a null in a
// non-null column; Databend's CREATE FUNCTION declares nullable ones).
// Nested fields keep their declared nullability, which CheckNulls holds
// outputs to. Result.Nullable says whether the function itself may return
// null, for descriptions.
func (u *UDF) OutputSchema() *arrow.Schema {
	switch u.Kind {
	case KindTable:
		row := arrow.Field{Name: RowColumn, Type: arrow.PrimitiveTypes.Int32}
		return arrow.NewSchema(append([]arrow.Field{row}, nullableColumns(u.Result)...), nil)
	case KindTransform:
		return arrow.NewSchema(nullableColumns(u.Result), nil)
	}
	return arrow.NewSchema([]arrow.Field{nullable(u.Result)}, nil)
}

// nullableColumns splits a struct result into its fields, each nullable.
func nullableColumns(result arrow.Field) []arrow.Field {
	st, ok := result.Type.(*arrow.StructType)
	if !ok {
		return []arrow.Field{nullable(result)}
	}
	fields := st.Fields()
	for i := range fields {
		fields[i] = nullable(fields[i])
	}
	return fields
}

func nullable(f arrow.Field) arrow.Field {
	f.Nullable = true
	return f
}

// ErrorOutputSchema is OutputSchema with the error column, for batches in
// which some row failed under OnErrorColumn.
func (u *UDF) ErrorOutputSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{nullable(u.Result), {Name: ErrorColumn, Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
}

// SignatureSchema is the input fields followed by the output fields: the
// shape RisingWave's and Databend's clients split to learn a signature.
func (u *UDF) SignatureSchema() *arrow.Schema {
	in := u.InputSchema().Fields()
	return arrow.NewSchema(append(in, u.OutputSchema().Fields()...), nil)
}

// Signature renders u as `name(a int64, b utf8) -> int64` for logs and errors.
func (u *UDF) Signature() string {
	var b strings.Builder
	b.WriteString(u.Name)
	b.WriteByte('(')
	for i, p := range u.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		if p.Name != "" {
			b.WriteString(p.Name)
			b.WriteByte(' ')
		}
		b.WriteString(typeText(p.Type))
		if p.Nullable {
			b.WriteString(" null")
		}
	}
	b.WriteString(") -> ")
	b.WriteString(typeText(u.Result.Type))
	return b.String()
}

// Digest returns a version string for a signature and optional source bytes.
// Two UDFs with the same digest behave the same.
func Digest(name string, kind Kind, language string, params []Param, result arrow.Field, source []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", name, kind, language)
	for _, p := range params {
		fmt.Fprintf(h, "%s\x00%s\x00%t\x00", p.Name, typeText(p.Type), p.Nullable)
	}
	fmt.Fprintf(h, "->%s\x00%t\x00", typeText(result.Type), result.Nullable)
	h.Write(source)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// typeText is FormatType for display, falling back to Arrow's own spelling.
func typeText(t arrow.DataType) string {
	if s, err := FormatType(t); err == nil {
		return s
	}
	return t.String()
}
