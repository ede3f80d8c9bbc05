package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// This file holds what fletch call does differently for each kind of UDF
// (docs/protocol.md, DoExchange): which columns go in and come out, and
// how outputs are paired with the input rows they came from.

// The kinds of UDF, as app_metadata names them.
const (
	kindScalar    = "scalar"
	kindTable     = "table"
	kindAggregate = "aggregate"
	kindTransform = "transform"
)

const (
	// rowColumn is a table function's first output column: the input
	// row, counted from the start of the exchange, an output row came from.
	rowColumn = "row"
	// stateColumn carries an aggregate's serialised states in and out
	// of its partial, combine and merge phases.
	stateColumn = "state"
)

// parseOptions checks --options, which must be one JSON object; the
// server checks its keys. It returns the header to send, compact and with
// non-ASCII characters escaped (gRPC headers are printable ASCII), and
// the phase the options ask for, if any.
func parseOptions(text string) (header, phase string, err error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &obj); err != nil || obj == nil {
		why := "not a JSON object"
		var se *json.SyntaxError
		if errors.As(err, &se) {
			why = fmt.Sprintf("not valid JSON (%v)", err)
		}
		return "", "", &usageError{msg: fmt.Sprintf(`--options %q is %s; want an object such as '{"running": true}'`, text, why)}
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, []byte(text)) // valid: it was just decoded
	var b strings.Builder
	for _, r := range compact.String() {
		switch {
		case r < 0x7f:
			b.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	if raw, ok := obj["phase"]; ok {
		_ = json.Unmarshal(raw, &phase) // not a string: the server says so
	}
	return b.String(), phase, nil
}

// callPlan is what one call of a UDF sends and receives, by its kind and,
// for an aggregate, the phase in --options.
type callPlan struct {
	kind    string
	params  []arrow.Field // the input columns
	server  []arrow.Field // the output fields the server sends
	results []arrow.Field // the result columns written
	// errors says results end with an error column (error_column scalar
	// functions), written whether or not the server sends one.
	errors bool
}

func planCall(d *udfDescription, phase string) (*callPlan, error) {
	p := &callPlan{kind: d.info.Kind, params: d.params, server: d.outputs}
	switch p.kind {
	case kindScalar:
		p.results = []arrow.Field{{Name: d.info.Name, Type: d.outputs[0].Type, Nullable: true}}
		// The server sends an error column only in exchanges whose first
		// batch had a failure; the output always has one, so that its
		// schema does not depend on the data.
		if d.info.errorColumns() {
			p.errors = true
			p.results = append(p.results, errorField())
		}
	case kindTable:
		p.results = nullable(d.outputs[1:]) // without row
	case kindAggregate:
		// A phase puts states in place of the parameters or the result.
		state := arrow.Field{Name: stateColumn, Type: arrow.BinaryTypes.Binary, Nullable: true}
		if phase == "combine" || phase == "merge" {
			p.params = []arrow.Field{state}
		}
		if phase == "partial" || phase == "combine" {
			p.server = []arrow.Field{state}
		}
		p.results = nullable(p.server)
	case kindTransform:
		p.results = nullable(d.outputs)
	default:
		return nil, fmt.Errorf("%s is a %q function, a kind fletch call cannot call (it knows scalar, table, aggregate and transform)",
			d.info.Name, d.info.Kind)
	}
	return p, nil
}

// errorField is the error column of an error_column UDF, as the server
// sends it (udfcatalog.UDF.ErrorOutputSchema) and as it is written.
func errorField() arrow.Field {
	return arrow.Field{Name: errorColumn, Type: arrow.BinaryTypes.String, Nullable: true}
}

func nullable(fields []arrow.Field) []arrow.Field {
	out := make([]arrow.Field, len(fields))
	for i, f := range fields {
		out[i] = arrow.Field{Name: f.Name, Type: f.Type, Nullable: true}
	}
	return out
}

// joinsInput reports whether output rows come from input rows, and so
// are written after them.
func (p *callPlan) joinsInput() bool { return p.kind == kindScalar || p.kind == kindTable }

// outputSchema is the schema written: the input columns, unless
// noInput or the kind has no output row per input row, then the results.
func (p *callPlan) outputSchema(input *arrow.Schema, noInput bool) *arrow.Schema {
	var fields []arrow.Field
	if p.joinsInput() && !noInput {
		fields = input.Fields()
	}
	return arrow.NewSchema(append(fields, p.results...), nil)
}

// spec says how to run the exchange: a scalar function's outputs are
// paired batch by batch, a table function's row by row (in as many
// exchanges as it takes to hold little input), the others not at all.
func (p *callPlan) spec(name, options string, noInput bool) exchangeSpec {
	s := exchangeSpec{name: name, options: options, output: p.server}
	if p.errors {
		s.extra = []arrow.Field{errorField()}
	}
	switch p.kind {
	case kindScalar:
		s.queue = exchangeInFlight
	case kindTable:
		s.split = true
		if !noInput {
			s.queue = exchangeInFlight
		}
	}
	return s
}

// handler writes the outputs of the call as rows of schema.
func (p *callPlan) handler(schema *arrow.Schema, noInput bool, mem memory.Allocator, write func(arrow.RecordBatch) error) outputHandler {
	switch p.kind {
	case kindScalar:
		return &scalarPairs{schema: schema, noInput: noInput, errors: p.errors, mem: mem, write: write}
	case kindTable:
		return &tableJoin{schema: schema, noInput: noInput, mem: mem, write: write}
	}
	return &passThrough{schema: schema, write: write}
}

// emit writes cols as one batch; a failure is the output's, not the call's.
func emit(write func(arrow.RecordBatch) error, schema *arrow.Schema, cols []arrow.Array, rows int64) error {
	rec := array.NewRecordBatch(schema, cols, rows)
	defer rec.Release()
	if err := write(rec); err != nil {
		return &outputError{err}
	}
	return nil
}

// scalarPairs writes each output batch beside the input batch it answers.
type scalarPairs struct {
	schema  *arrow.Schema
	noInput bool
	// errors: write an error column, the server's where its exchange
	// has one, else nulls.
	errors bool
	mem    memory.Allocator
	write  func(arrow.RecordBatch) error
}

func (s *scalarPairs) output(seg *segment, res arrow.RecordBatch) error {
	var in arrow.RecordBatch
	select {
	case in = <-seg.pending:
	default:
		return fmt.Errorf("the server broke the protocol: it sent output batch %d before the input batch it answers", seg.answered)
	}
	defer in.Release()
	if res.NumRows() != in.NumRows() {
		return fmt.Errorf("the server broke the protocol: output batch %d has %d rows for an input batch of %d rows",
			seg.answered, res.NumRows(), in.NumRows())
	}
	seg.answered++
	cols := make([]arrow.Array, 0, s.schema.NumFields())
	if !s.noInput {
		cols = append(cols, in.Columns()...)
	}
	cols = append(cols, res.Column(0))
	if s.errors {
		// The reader held the batch to its exchange's schema, which has
		// the error column or not.
		if res.NumCols() > 1 {
			cols = append(cols, res.Column(1))
		} else {
			nulls := array.MakeArrayOfNull(s.mem, arrow.BinaryTypes.String, int(in.NumRows()))
			defer nulls.Release()
			cols = append(cols, nulls)
		}
	}
	return emit(s.write, s.schema, cols, in.NumRows())
}

func (s *scalarPairs) ended(seg *segment) error {
	if n := len(seg.pending); n > 0 {
		return fmt.Errorf("the server ended the call without answering %d of %d input batches", n, seg.answered+n)
	}
	return nil
}

// tableJoin writes each output row of a table function after the input
// row it names. The row indexes never decrease, so an input batch is
// dropped as soon as an output names a row after it, and the input held
// is the batches from the one named last to the last one sent: at most
// the exchange's queue, since a full queue starts a new exchange.
type tableJoin struct {
	schema  *arrow.Schema
	noInput bool
	mem     memory.Allocator
	write   func(arrow.RecordBatch) error
}

func (t *tableJoin) output(seg *segment, out arrow.RecordBatch) error {
	rows, ok := out.Column(0).(*array.Int32)
	if !ok || rows.NullN() > 0 {
		return fmt.Errorf("the server broke the protocol: the %q column of a table function's output must be int32 without nulls", rowColumn)
	}
	sent := seg.rows.Load()
	for _, r := range rows.Int32Values() {
		switch {
		case r < 0 || int64(r) >= sent:
			return fmt.Errorf("the server broke the protocol: an output names row %d of an exchange that was sent %d input rows", r, sent)
		case int64(r) < seg.lastRow:
			return fmt.Errorf("the server broke the protocol: an output names input row %d after one named input row %d; a table function's outputs come in input order",
				seg.firstRow+int64(r), seg.firstRow+seg.lastRow)
		}
		seg.lastRow = int64(r)
	}
	res := out.Columns()[1:]
	if t.noInput {
		return emit(t.write, t.schema, res, out.NumRows())
	}
	n := int(out.NumRows())
	for i := 0; i < n; {
		r := int64(rows.Value(i))
		for seg.held == nil || r >= seg.heldStart+seg.held.NumRows() {
			if err := seg.take(); err != nil {
				return err
			}
		}
		end := seg.heldStart + seg.held.NumRows()
		k := i + 1
		for k < n && int64(rows.Value(k)) < end {
			k++
		}
		if err := t.join(seg, rows, res, i, k); err != nil {
			return err
		}
		i = k
	}
	return nil
}

// join writes output rows [i, k), which all name rows of the held input
// batch, each after its input row. The input columns are slices of the
// held batch, concatenated (compute.Take has no kernel for view types):
// one slice for each run of input rows that follow one another once each.
func (t *tableJoin) join(seg *segment, rows *array.Int32, res []arrow.Array, i, k int) error {
	type run struct{ from, to int64 }
	var runs []run
	for _, r := range rows.Int32Values()[i:k] {
		r := int64(r) - seg.heldStart
		if n := len(runs); n > 0 && r == runs[n-1].to {
			runs[n-1].to++
		} else {
			runs = append(runs, run{r, r + 1})
		}
	}
	cols := make([]arrow.Array, 0, t.schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	chunks := make([]arrow.Array, len(runs))
	for _, c := range seg.held.Columns() {
		if len(runs) == 1 {
			cols = append(cols, array.NewSlice(c, runs[0].from, runs[0].to))
			continue
		}
		for j, r := range runs {
			chunks[j] = array.NewSlice(c, r.from, r.to)
		}
		col, err := array.Concatenate(chunks, t.mem)
		for _, ch := range chunks {
			ch.Release()
		}
		if err != nil {
			return fmt.Errorf("joining outputs with their input rows: %w", err)
		}
		cols = append(cols, col)
	}
	for _, c := range res {
		cols = append(cols, array.NewSlice(c, int64(i), int64(k)))
	}
	return emit(t.write, t.schema, cols, int64(k-i))
}

// ended has nothing to check: input rows never named had no output.
func (t *tableJoin) ended(*segment) error { return nil }

// passThrough writes an aggregate's or a transform's outputs as they come.
type passThrough struct {
	schema *arrow.Schema
	write  func(arrow.RecordBatch) error
}

func (p *passThrough) output(_ *segment, out arrow.RecordBatch) error {
	return emit(p.write, p.schema, out.Columns(), out.NumRows())
}

func (p *passThrough) ended(*segment) error { return nil }
