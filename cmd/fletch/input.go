package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// This file reads the input of fletch call: CSV and JSON lines parsed into
// the declared parameter types, Parquet and Arrow IPC as they are. Every
// source streams; none holds more than a batch or two.

// inputSpec says what to read and for which function.
type inputSpec struct {
	name      string // the file, or "stdin", for messages
	format    string
	r         io.Reader // the bytes, when reading them in order
	file      *os.File  // the file, when there is one (stdin may be one)
	size      int64     // the file size if known, else -1
	fn        string    // the function's signature, for messages
	params    []arrow.Field
	batchRows int
	mem       memory.Allocator
	// bytesRead counts the bytes read, for the progress display.
	bytesRead *atomic.Int64
	// totalRows receives the row count when the input knows it.
	totalRows *atomic.Int64
}

func openSource(ctx context.Context, in inputSpec) (batchSource, error) {
	switch in.format {
	case formatCSV:
		return newCSVSource(in)
	case formatJSONL:
		return newJSONLSource(in), nil
	case formatParquet:
		return newParquetSource(ctx, in)
	case formatArrow:
		return newArrowSource(in)
	}
	return nil, fmt.Errorf("unknown input format %q", in.format)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// interrupter closes the input file to unblock a read in progress.
type interrupter struct{ f *os.File }

func (i interrupter) Interrupt() {
	if i.f != nil {
		i.f.Close()
	}
}

// paramList renders parameters as "a int64, b utf8" for messages.
func paramList(params []arrow.Field) string {
	parts := make([]string, len(params))
	for i, p := range params {
		parts[i] = p.Name + " " + typeName(p.Type)
	}
	return strings.Join(parts, ", ")
}

func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// ---- CSV ----

// csvSource parses CSV with a header line into the parameter types. Columns
// match parameters by position; the header names the output columns. An
// empty field is null.
type csvSource struct {
	interrupter
	in     inputSpec
	r      *csv.Reader
	schema *arrow.Schema
	bld    *array.RecordBuilder
	rows   int64 // data rows read
	done   bool
}

func newCSVSource(in inputSpec) (*csvSource, error) {
	r := csv.NewReader(bufio.NewReaderSize(in.r, 1<<20))
	r.ReuseRecord = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: the CSV input is empty; it needs a header line and then one line per row", in.name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.name, err)
	}
	if len(header) != len(in.params) {
		return nil, fmt.Errorf("%s: the CSV header has %d column(s) (%s), but %s takes %d; columns match parameters by position",
			in.name, len(header), quotedList(header), in.fn, len(in.params))
	}
	fields := make([]arrow.Field, len(header))
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // a byte-order mark
		}
		if h == "" {
			h = in.params[i].Name
		}
		fields[i] = arrow.Field{Name: h, Type: in.params[i].Type, Nullable: true}
	}
	s := &csvSource{interrupter: interrupter{in.file}, in: in, r: r, schema: arrow.NewSchema(fields, nil)}
	s.bld = array.NewRecordBuilder(in.mem, s.schema)
	return s, nil
}

func (s *csvSource) Schema() *arrow.Schema { return s.schema }

func (s *csvSource) Next() (arrow.RecordBatch, error) {
	if s.done {
		return nil, io.EOF
	}
	n := 0
	for n < s.in.batchRows {
		rec, err := s.r.Read()
		if errors.Is(err, io.EOF) {
			s.done = true
			break
		}
		if err != nil {
			s.done = true
			return nil, fmt.Errorf("%s: %w", s.in.name, err)
		}
		s.rows++
		for i, v := range rec {
			if err := appendText(s.bld.Field(i), v); err != nil {
				line, _ := s.r.FieldPos(i)
				s.done = true
				return nil, fmt.Errorf("%s: row %d (line %d), column %d (%q): cannot read %q as %s: %v",
					s.in.name, s.rows, line, i+1, s.schema.Field(i).Name, v, typeName(s.schema.Field(i).Type), parseErrText(err))
			}
		}
		n++
	}
	if n == 0 {
		return nil, io.EOF
	}
	return s.bld.NewRecordBatch(), nil
}

func (s *csvSource) Close() error {
	s.bld.Release()
	return nil
}

// appendText appends one CSV field: empty is null, strings are taken as
// they are, other types parse as Arrow's ValueStr writes them.
func appendText(b array.Builder, v string) error {
	if v == "" {
		b.AppendNull()
		return nil
	}
	switch b := b.(type) {
	case *array.StringBuilder:
		b.Append(v)
		return nil
	case *array.LargeStringBuilder:
		b.Append(v)
		return nil
	case *array.StringViewBuilder:
		b.Append(v)
		return nil
	case *array.Int64Builder:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return err
		}
		b.Append(n)
		return nil
	case *array.Float64Builder:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return err
		}
		b.Append(f)
		return nil
	}
	return b.AppendValueFromString(strings.TrimSpace(v))
}

// parseErrText is the reason in a parse error, without the repetition
// strconv adds.
func parseErrText(err error) string {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		if errors.Is(ne.Err, strconv.ErrRange) {
			return "out of range"
		}
		return "not a number of that type"
	}
	return err.Error()
}

// ---- JSON lines ----

// jsonlSource parses one JSON object per line into the parameter types.
// Keys match parameters by name; an object whose keys name no parameter
// matches by position instead. A missing key or JSON null is null.
type jsonlSource struct {
	interrupter
	in     inputSpec
	r      *bufio.Reader
	schema *arrow.Schema
	byName map[string]int
	line   int64
	done   bool
	// rows holds the raw values of the batch being read, row by row.
	rows  [][]json.RawMessage
	lines []int64
}

func newJSONLSource(in inputSpec) *jsonlSource {
	s := &jsonlSource{interrupter: interrupter{in.file}, in: in, r: bufio.NewReaderSize(in.r, 1<<20), byName: make(map[string]int)}
	fields := make([]arrow.Field, len(in.params))
	for i, p := range in.params {
		fields[i] = arrow.Field{Name: p.Name, Type: p.Type, Nullable: true}
		if _, dup := s.byName[p.Name]; !dup {
			s.byName[p.Name] = i
		}
	}
	s.schema = arrow.NewSchema(fields, nil)
	return s
}

func (s *jsonlSource) Schema() *arrow.Schema { return s.schema }

func (s *jsonlSource) Next() (arrow.RecordBatch, error) {
	s.rows, s.lines = s.rows[:0], s.lines[:0]
	for !s.done && len(s.rows) < s.in.batchRows {
		line, err := s.r.ReadBytes('\n')
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s: %w", s.in.name, err)
			}
			s.done = true
		}
		if len(line) == 0 && s.done {
			break
		}
		s.line++
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		vals, err := s.match(line)
		if err != nil {
			s.done = true
			return nil, fmt.Errorf("%s: line %d: %w", s.in.name, s.line, err)
		}
		s.rows = append(s.rows, vals)
		s.lines = append(s.lines, s.line)
	}
	if len(s.rows) == 0 {
		return nil, io.EOF
	}
	return s.build()
}

// match parses one object and returns its values in parameter order.
func (s *jsonlSource) match(line []byte) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("expected a JSON object, got %s", abbreviate(string(line), 60))
	}
	var keys []string
	var vals []json.RawMessage
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		keys = append(keys, t.(string))
		vals = append(vals, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: more after the object; put one object on each line")
	}
	out := make([]json.RawMessage, len(s.in.params))
	named := false
	for i, k := range keys {
		if p, ok := s.byName[k]; ok {
			out[p], named = vals[i], true
		}
	}
	if named || len(keys) == 0 {
		return out, nil
	}
	if len(keys) != len(out) {
		return nil, fmt.Errorf("the keys (%s) name no parameter of %s, and there are %d of them, not %d to match by position",
			quotedList(keys), s.in.fn, len(keys), len(out))
	}
	return vals, nil
}

// build parses the batch's values column by column, through the Arrow
// builders' JSON decoding; on an error it finds the row to blame.
func (s *jsonlSource) build() (arrow.RecordBatch, error) {
	bld := array.NewRecordBuilder(s.in.mem, s.schema)
	defer bld.Release()
	var buf []byte
	for c := range s.in.params {
		buf = append(buf[:0], '[')
		for r, row := range s.rows {
			if r > 0 {
				buf = append(buf, ',')
			}
			if row[c] == nil {
				buf = append(buf, "null"...)
			} else {
				buf = append(buf, row[c]...)
			}
		}
		buf = append(buf, ']')
		if err := bld.Field(c).UnmarshalJSON(buf); err != nil {
			s.done = true
			return nil, s.blame(c, err)
		}
	}
	return bld.NewRecordBatch(), nil
}

// blame finds the first value of column c that does not parse.
func (s *jsonlSource) blame(c int, err error) error {
	p := s.in.params[c]
	for r, row := range s.rows {
		if row[c] == nil {
			continue
		}
		b := array.NewBuilder(s.in.mem, p.Type)
		e := b.UnmarshalJSON(append(append([]byte{'['}, row[c]...), ']'))
		b.Release()
		if e != nil {
			return fmt.Errorf("%s: line %d: parameter %d (%q): cannot read %s as %s: %v",
				s.in.name, s.lines[r], c+1, p.Name, abbreviate(string(row[c]), 60), typeName(p.Type), e)
		}
	}
	return fmt.Errorf("%s: parameter %d (%q): %w", s.in.name, c+1, p.Name, err)
}

func (s *jsonlSource) Close() error { return nil }

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ---- column selection for Parquet and Arrow ----

// selectColumns picks the input columns for the parameters: by name if
// the input has a column named after every parameter, else all of them
// by position if there are as many as parameters.
func selectColumns(in inputSpec, names []string) ([]int, error) {
	idx := make(map[string]int, len(names))
	for i, n := range names {
		if _, dup := idx[n]; !dup {
			idx[n] = i
		}
	}
	sel := make([]int, len(in.params))
	byName := true
	for i, p := range in.params {
		j, ok := idx[p.Name]
		if !ok {
			byName = false
			break
		}
		sel[i] = j
	}
	if byName {
		return sel, nil
	}
	if len(names) != len(in.params) {
		return nil, fmt.Errorf("%s has %d column(s) (%s); %s takes %d: name the columns after the parameters, or give exactly %d to match by position",
			in.name, len(names), quotedList(names), in.fn, len(in.params), len(in.params))
	}
	for i := range sel {
		sel[i] = i
	}
	return sel, nil
}

// project keeps the columns sel of rec, in that order, and releases rec.
func project(rec arrow.RecordBatch, schema *arrow.Schema, sel []int) arrow.RecordBatch {
	defer rec.Release()
	cols := make([]arrow.Array, len(sel))
	for i, j := range sel {
		cols[i] = rec.Column(j)
	}
	return array.NewRecordBatch(schema, cols, rec.NumRows())
}

func projectSchema(s *arrow.Schema, sel []int) *arrow.Schema {
	fields := make([]arrow.Field, len(sel))
	for i, j := range sel {
		fields[i] = s.Field(j)
	}
	return arrow.NewSchema(fields, nil)
}

// ---- Parquet ----

// parquetSource streams a Parquet file batch by batch: only the selected
// columns are read, page by page (buffered streams), never a whole row
// group of a column at once.
type parquetSource struct {
	interrupter
	pf *file.Reader
	rr pqarrow.RecordReader
}

func newParquetSource(ctx context.Context, in inputSpec) (*parquetSource, error) {
	if in.file == nil {
		return nil, fmt.Errorf("%s: Parquet is read from its footer, so it needs a file, not a pipe; save it to a file and pass --input", in.name)
	}
	if st, err := in.file.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: Parquet is read from its footer, so it needs a regular file", in.name)
	}
	props := parquet.NewReaderProperties(in.mem)
	props.BufferedStreamEnabled = true
	props.BufferSize = 1 << 20
	pf, err := file.NewParquetReader(counted{in.file, in.bytesRead}, file.WithReadProps(props))
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable Parquet file: %w", in.name, err)
	}
	s := &parquetSource{interrupter: interrupter{in.file}, pf: pf}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(in.batchRows)}, in.mem)
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("%s: %w", in.name, err)
	}
	names := make([]string, len(fr.Manifest.Fields))
	for i, f := range fr.Manifest.Fields {
		names[i] = f.Field.Name
	}
	sel, err := selectColumns(in, names)
	if err != nil {
		pf.Close()
		return nil, err
	}
	var leaves []int
	for _, j := range sel {
		leaves = appendLeaves(leaves, &fr.Manifest.Fields[j])
	}
	if s.rr, err = fr.GetRecordReader(ctx, leaves, nil); err != nil {
		pf.Close()
		return nil, fmt.Errorf("%s: %w", in.name, err)
	}
	in.totalRows.Store(pf.NumRows())
	return s, nil
}

func appendLeaves(leaves []int, f *pqarrow.SchemaField) []int {
	if f.IsLeaf() {
		return append(leaves, f.ColIndex)
	}
	for i := range f.Children {
		leaves = appendLeaves(leaves, &f.Children[i])
	}
	return leaves
}

// counted counts the bytes a ReaderAt reads, for the progress display.
type counted struct {
	f *os.File
	n *atomic.Int64
}

func (c counted) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.f.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func (c counted) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c counted) Seek(offset int64, whence int) (int64, error) { return c.f.Seek(offset, whence) }

func (s *parquetSource) Schema() *arrow.Schema { return s.rr.Schema() }

func (s *parquetSource) Next() (arrow.RecordBatch, error) {
	if s.rr.Next() {
		rec := s.rr.RecordBatch()
		rec.Retain()
		return rec, nil
	}
	if err := s.rr.Err(); err != nil {
		return nil, fmt.Errorf("reading Parquet: %w", err)
	}
	return nil, io.EOF
}

func (s *parquetSource) Close() error {
	s.rr.Release()
	return s.pf.Close()
}

// ---- Arrow IPC ----

// arrowSource reads an Arrow IPC stream, or an IPC file from a file.
type arrowSource struct {
	interrupter
	name   string
	schema *arrow.Schema
	sel    []int
	stream *ipc.Reader
	file   *ipc.FileReader
	next   int // the file's next batch
}

var arrowFileMagic = []byte("ARROW1")

func newArrowSource(in inputSpec) (*arrowSource, error) {
	s := &arrowSource{interrupter: interrupter{in.file}, name: in.name}
	br := bufio.NewReaderSize(in.r, 1<<20)
	head, _ := br.Peek(len(arrowFileMagic))
	var schema *arrow.Schema
	if bytes.Equal(head, arrowFileMagic) {
		if in.file == nil {
			return nil, fmt.Errorf("%s: this is the Arrow IPC file format, which is read from its footer; pass it as a file, or send the stream format", in.name)
		}
		st, err := in.file.Stat()
		if err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: the Arrow IPC file format needs a regular file; send the stream format through pipes", in.name)
		}
		if s.file, err = ipc.NewFileReader(counted{in.file, in.bytesRead}, ipc.WithAllocator(in.mem)); err != nil {
			return nil, fmt.Errorf("%s: not a readable Arrow IPC file: %w", in.name, err)
		}
		schema = s.file.Schema()
	} else {
		var err error
		if s.stream, err = ipc.NewReader(br, ipc.WithAllocator(in.mem)); err != nil {
			return nil, fmt.Errorf("%s: not a readable Arrow IPC stream: %w", in.name, err)
		}
		schema = s.stream.Schema()
	}
	names := make([]string, schema.NumFields())
	for i, f := range schema.Fields() {
		names[i] = f.Name
	}
	var err error
	if s.sel, err = selectColumns(in, names); err != nil {
		s.Close()
		return nil, err
	}
	s.schema = projectSchema(schema, s.sel)
	return s, nil
}

func (s *arrowSource) Schema() *arrow.Schema { return s.schema }

func (s *arrowSource) Next() (arrow.RecordBatch, error) {
	if s.file != nil {
		if s.next >= s.file.NumRecords() {
			return nil, io.EOF
		}
		rec, err := s.file.RecordBatchAt(s.next)
		if err != nil {
			return nil, fmt.Errorf("%s: batch %d: %w", s.name, s.next, err)
		}
		s.next++
		return project(rec, s.schema, s.sel), nil
	}
	if s.stream.Next() {
		rec := s.stream.RecordBatch()
		rec.Retain()
		return project(rec, s.schema, s.sel), nil
	}
	if err := s.stream.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	return nil, io.EOF
}

func (s *arrowSource) Close() error {
	if s.file != nil {
		return s.file.Close()
	}
	if s.stream != nil {
		s.stream.Release()
	}
	return nil
}

// ---- dictionaries ----

// plainSource decodes the dictionary-encoded columns of src, which the
// server refuses, into plain arrays of their value type.
type plainSource struct {
	batchSource
	schema *arrow.Schema
	mem    memory.Allocator
}

func decodeDictionaries(src batchSource, mem memory.Allocator) batchSource {
	fields := src.Schema().Fields()
	encoded := false
	for i, f := range fields {
		if dt, ok := f.Type.(*arrow.DictionaryType); ok {
			fields[i].Type = dt.ValueType
			encoded = true
		}
	}
	if !encoded {
		return src
	}
	return &plainSource{batchSource: src, schema: arrow.NewSchema(fields, nil), mem: mem}
}

func (s *plainSource) Schema() *arrow.Schema { return s.schema }

func (s *plainSource) Next() (arrow.RecordBatch, error) {
	rec, err := s.batchSource.Next()
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, c := range rec.Columns() {
		want := s.schema.Field(i).Type
		if arrow.TypeEqual(c.DataType(), want) {
			c.Retain()
			cols[i] = c
			continue
		}
		ctx := compute.WithAllocator(context.Background(), s.mem)
		if cols[i], err = compute.CastArray(ctx, c, compute.SafeCastOptions(want)); err != nil {
			return nil, fmt.Errorf("decoding the dictionary-encoded column %q: %w", s.schema.Field(i).Name, err)
		}
	}
	return array.NewRecordBatch(s.schema, cols, rec.NumRows()), nil
}

// ---- re-chunking and zero-argument calls ----

// rechunker turns the batches of src into batches of exactly n rows
// (the last may have fewer): larger ones are sliced without copying,
// smaller ones concatenated.
type rechunker struct {
	src batchSource
	n   int64
	mem memory.Allocator
	cur arrow.RecordBatch
	off int64
	eof bool
}

func (r *rechunker) Schema() *arrow.Schema { return r.src.Schema() }
func (r *rechunker) Interrupt()            { r.src.Interrupt() }

func (r *rechunker) Next() (arrow.RecordBatch, error) {
	var parts []arrow.RecordBatch
	defer func() {
		for _, p := range parts {
			p.Release()
		}
	}()
	var rows int64
	for rows < r.n {
		if r.cur == nil {
			if r.eof {
				break
			}
			rec, err := r.src.Next()
			if errors.Is(err, io.EOF) {
				r.eof = true
				break
			}
			if err != nil {
				return nil, err
			}
			if rec.NumRows() == 0 {
				rec.Release()
				continue
			}
			r.cur, r.off = rec, 0
		}
		take := min(r.n-rows, r.cur.NumRows()-r.off)
		if r.off == 0 && take == r.cur.NumRows() {
			parts = append(parts, r.cur)
			r.cur = nil
		} else {
			parts = append(parts, r.cur.NewSlice(r.off, r.off+take))
			r.off += take
			if r.off == r.cur.NumRows() {
				r.cur.Release()
				r.cur = nil
			}
		}
		rows += take
	}
	switch len(parts) {
	case 0:
		return nil, io.EOF
	case 1:
		rec := parts[0]
		parts = nil
		return rec, nil
	}
	cols := make([]arrow.Array, len(r.Schema().Fields()))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	chunks := make([]arrow.Array, len(parts))
	for c := range cols {
		for i, p := range parts {
			chunks[i] = p.Column(c)
		}
		var err error
		if cols[c], err = array.Concatenate(chunks, r.mem); err != nil {
			return nil, fmt.Errorf("joining input batches: %w", err)
		}
	}
	return array.NewRecordBatch(r.Schema(), cols, rows), nil
}

func (r *rechunker) Close() error {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	return r.src.Close()
}

// rowsSource makes the zero-column batches that call a function without
// parameters: their row counts say how many results to produce.
type rowsSource struct {
	left, n int64
	schema  *arrow.Schema
}

func (s *rowsSource) Schema() *arrow.Schema { return s.schema }
func (s *rowsSource) Interrupt()            {}
func (s *rowsSource) Close() error          { return nil }

func (s *rowsSource) Next() (arrow.RecordBatch, error) {
	if s.left == 0 {
		return nil, io.EOF
	}
	k := min(s.left, s.n)
	s.left -= k
	return array.NewRecordBatch(s.schema, nil, k), nil
}
