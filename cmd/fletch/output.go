package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"golang.org/x/text/width"
)

// This file writes the output of fletch call: every input column, then
// the result column, one output row per input row.

// sink writes output batches in one format.
type sink interface {
	Write(rec arrow.RecordBatch) error
	// Close finishes the output; if ok is false the call failed, and
	// the sink only releases what it holds.
	Close(ok bool) error
}

func newSink(format string, w io.Writer, schema *arrow.Schema, mem memory.Allocator) (sink, error) {
	switch format {
	case formatTable:
		return &tableSink{w: w, schema: schema}, nil
	case formatCSV:
		return newCSVSink(w, schema)
	case formatJSONL:
		return newJSONLSink(w, schema), nil
	case formatParquet:
		return newParquetSink(w, schema, mem)
	case formatArrow, formatArrowFile:
		return newArrowSink(w, schema, mem, format == formatArrowFile)
	}
	return nil, fmt.Errorf("unknown output format %q", format)
}

// ---- destination ----

// destination is where output goes: stdout, or a file that appears only
// when the call succeeds (written beside it, then renamed).
type destination struct {
	w      io.Writer
	name   string
	tmp    *os.File
	direct *os.File
	path   string
	mode   os.FileMode
}

func openDestination(path string, stdout io.Writer) (*destination, error) {
	if path == "" || path == "-" {
		return &destination{w: stdout, name: "stdout"}, nil
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() { // a device or a pipe: write to it as it is
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return nil, fmt.Errorf("cannot open the output: %w", err)
			}
			return &destination{w: f, name: path, direct: f}, nil
		}
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // not the temporary file's name
		}
		return nil, fmt.Errorf("cannot create the output %s: %w", path, err)
	}
	return &destination{w: tmp, name: path, tmp: tmp, path: path, mode: mode}, nil
}

// finish closes the destination; if ok, the output file takes its place.
func (d *destination) finish(ok bool) error {
	switch {
	case d.direct != nil:
		return d.direct.Close()
	case d.tmp == nil:
		return nil
	case !ok:
		d.tmp.Close()
		return os.Remove(d.tmp.Name())
	}
	err := d.tmp.Chmod(d.mode)
	if e := d.tmp.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = os.Rename(d.tmp.Name(), d.path)
	}
	if err != nil {
		os.Remove(d.tmp.Name())
		return fmt.Errorf("writing %s: %w", d.path, err)
	}
	return nil
}

// ---- table ----

const (
	tableMaxRows  = 50
	tableMaxWidth = 40
)

// tableSink shows the first rows as an aligned table, with a row count.
type tableSink struct {
	w      io.Writer
	schema *arrow.Schema
	rows   [][]string
	total  int64
}

func (t *tableSink) Write(rec arrow.RecordBatch) error {
	for i := 0; i < int(rec.NumRows()) && len(t.rows) < tableMaxRows; i++ {
		row := make([]string, rec.NumCols())
		for c, col := range rec.Columns() {
			if col.IsNull(i) {
				row[c] = "null"
			} else {
				row[c] = truncate(escapeControl(cellText(col, i)), tableMaxWidth)
			}
		}
		t.rows = append(t.rows, row)
	}
	t.total += rec.NumRows()
	return nil
}

func (t *tableSink) Close(ok bool) error {
	if !ok {
		return nil
	}
	n := t.schema.NumFields()
	widths := make([]int, n)
	header := make([]string, n)
	for c, f := range t.schema.Fields() {
		header[c] = truncate(escapeControl(f.Name), tableMaxWidth)
		widths[c] = displayWidth(header[c])
		for _, row := range t.rows {
			widths[c] = max(widths[c], displayWidth(row[c]))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for c, s := range cells {
			if c > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[c]-displayWidth(s))
			if isNumericType(t.schema.Field(c).Type) {
				b.WriteString(pad + s)
			} else if c < n-1 {
				b.WriteString(s + pad)
			} else {
				b.WriteString(s)
			}
		}
		b.WriteByte('\n')
	}
	line(header)
	rule := make([]string, n)
	for c := range rule {
		rule[c] = strings.Repeat("-", widths[c])
	}
	line(rule)
	for _, row := range t.rows {
		line(row)
	}
	switch {
	case t.total > int64(len(t.rows)):
		fmt.Fprintf(&b, "(first %d of %d rows; write them all with --output FILE or --output-format csv)\n", len(t.rows), t.total)
	case t.total == 1:
		b.WriteString("(1 row)\n")
	default:
		fmt.Fprintf(&b, "(%d rows)\n", t.total)
	}
	_, err := io.WriteString(t.w, b.String())
	return err
}

// escapeControl keeps a cell on one line.
func escapeControl(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// displayWidth counts terminal columns: East Asian wide runes take two.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

// truncate shortens s to at most w columns, marking the cut with "…".
func truncate(s string, w int) string {
	if displayWidth(s) <= w {
		return s
	}
	n := 0
	for i, r := range s {
		rw := displayWidth(string(r))
		if n+rw > w-1 {
			return s[:i] + "…"
		}
		n += rw
	}
	return s
}

// ---- CSV ----

// csvSink writes a header line, then one line per row, quoting fields as
// RFC 4180 does. Null is an empty field (so an empty string reads back as
// null); a line that would be empty is written "" instead, since CSV
// readers skip empty lines.
type csvSink struct {
	bw     *bufio.Writer
	header []string
	wrote  bool
	buf    []byte
}

func newCSVSink(w io.Writer, schema *arrow.Schema) (*csvSink, error) {
	s := &csvSink{bw: bufio.NewWriterSize(w, 1<<20)}
	for _, f := range schema.Fields() {
		s.header = append(s.header, f.Name)
	}
	return s, nil
}

// writeHeader writes the header once, with the first row or at the end,
// so that a call failing at once prints nothing.
func (s *csvSink) writeHeader() error {
	if s.wrote {
		return nil
	}
	s.wrote = true
	s.buf = s.buf[:0]
	for i, h := range s.header {
		if i > 0 {
			s.buf = append(s.buf, ',')
		}
		s.buf = appendCSVField(s.buf, h, len(s.header) == 1)
	}
	s.buf = append(s.buf, '\n')
	_, err := s.bw.Write(s.buf)
	return err
}

func (s *csvSink) Write(rec arrow.RecordBatch) error {
	if err := s.writeHeader(); err != nil {
		return err
	}
	cols := rec.Columns()
	for i := 0; i < int(rec.NumRows()); i++ {
		s.buf = s.buf[:0]
		for c, col := range cols {
			if c > 0 {
				s.buf = append(s.buf, ',')
			}
			if !col.IsNull(i) {
				s.buf = appendCSVField(s.buf, cellText(col, i), len(cols) == 1)
			} else if len(cols) == 1 {
				s.buf = append(s.buf, `""`...)
			}
		}
		s.buf = append(s.buf, '\n')
		if _, err := s.bw.Write(s.buf); err != nil {
			return err
		}
	}
	return nil
}

// Close flushes the output; after a failure, the rows written so far
// (none if the call failed before its first answer).
func (s *csvSink) Close(ok bool) error {
	if ok {
		if err := s.writeHeader(); err != nil {
			return err
		}
	}
	return s.bw.Flush()
}

// appendCSVField appends v, quoted if it must be; alone says it is the
// only field of its line, where an empty one must be quoted.
func appendCSVField(buf []byte, v string, alone bool) []byte {
	if v == "" {
		if alone {
			return append(buf, `""`...)
		}
		return buf
	}
	if !strings.ContainsAny(v, ",\"\r\n") && v[0] != ' ' && v[0] != '\t' && v != `\.` {
		return append(buf, v...)
	}
	buf = append(buf, '"')
	for {
		i := strings.IndexByte(v, '"')
		if i < 0 {
			break
		}
		buf = append(buf, v[:i+1]...)
		buf = append(buf, '"')
		v = v[i+1:]
	}
	buf = append(buf, v...)
	return append(buf, '"')
}

// ---- JSON lines ----

// jsonlSink writes one JSON object per row, keys in column order.
type jsonlSink struct {
	bw   *bufio.Writer
	keys [][]byte // `"name":` for each column
	buf  []byte
}

func newJSONLSink(w io.Writer, schema *arrow.Schema) *jsonlSink {
	s := &jsonlSink{bw: bufio.NewWriterSize(w, 1<<20)}
	for i, f := range schema.Fields() {
		var k []byte
		if i > 0 {
			k = append(k, ',')
		}
		k = append(appendJSONString(k, f.Name), ':')
		s.keys = append(s.keys, k)
	}
	return s
}

func (s *jsonlSink) Write(rec arrow.RecordBatch) error {
	cols := rec.Columns()
	for i := 0; i < int(rec.NumRows()); i++ {
		s.buf = append(s.buf[:0], '{')
		for c, col := range cols {
			s.buf = append(s.buf, s.keys[c]...)
			s.buf = appendJSONValue(s.buf, col, i)
		}
		s.buf = append(s.buf, '}', '\n')
		if _, err := s.bw.Write(s.buf); err != nil {
			return err
		}
	}
	return nil
}

// Close flushes the output; after a failure, the rows written so far.
func (s *jsonlSink) Close(ok bool) error { return s.bw.Flush() }

// ---- Parquet ----

const (
	parquetRowGroupRows  = 1 << 20
	parquetRowGroupBytes = 64 << 20
)

// parquetSink streams row groups of up to parquetRowGroupRows rows or
// about parquetRowGroupBytes bytes, Snappy-compressed, with the Arrow
// schema stored so that types read back exactly.
type parquetSink struct {
	bw *bufio.Writer
	g  *gate
	fw *pqarrow.FileWriter
}

func newParquetSink(w io.Writer, schema *arrow.Schema, mem memory.Allocator) (*parquetSink, error) {
	g := &gate{w: w}
	bw := bufio.NewWriterSize(g, 1<<20)
	props := parquet.NewWriterProperties(
		parquet.WithAllocator(mem),
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(parquetRowGroupRows))
	fw, err := pqarrow.NewFileWriter(schema, bw, props,
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(mem)))
	if err != nil {
		return nil, fmt.Errorf("cannot write this output as Parquet: %w", err)
	}
	return &parquetSink{bw: bw, g: g, fw: fw}, nil
}

func (s *parquetSink) Write(rec arrow.RecordBatch) error {
	if err := s.fw.WriteBuffered(rec); err != nil {
		return fmt.Errorf("writing Parquet: %w", err)
	}
	if max(s.fw.RowGroupTotalBytesWritten(), s.fw.RowGroupTotalCompressedBytes()) >= parquetRowGroupBytes {
		s.fw.NewBufferedRowGroup()
	}
	return nil
}

func (s *parquetSink) Close(ok bool) error {
	s.g.closed = !ok // after a failure, release the writer but write no footer
	if err := s.fw.Close(); err != nil {
		return fmt.Errorf("writing Parquet: %w", err)
	}
	return s.bw.Flush()
}

// ---- Arrow IPC ----

type arrowSink struct {
	bw *bufio.Writer
	g  *gate
	w  interface {
		Write(arrow.RecordBatch) error
		Close() error
	}
}

func newArrowSink(w io.Writer, schema *arrow.Schema, mem memory.Allocator, fileFormat bool) (*arrowSink, error) {
	g := &gate{w: w}
	s := &arrowSink{bw: bufio.NewWriterSize(g, 1<<20), g: g}
	if !fileFormat {
		s.w = ipc.NewWriter(s.bw, ipc.WithSchema(schema), ipc.WithAllocator(mem))
		return s, nil
	}
	fw, err := ipc.NewFileWriter(s.bw, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err != nil {
		return nil, err
	}
	s.w = fw
	return s, nil
}

func (s *arrowSink) Write(rec arrow.RecordBatch) error { return s.w.Write(rec) }

func (s *arrowSink) Close(ok bool) error {
	s.g.closed = !ok // after a failure, release the writer but write no end
	if err := s.w.Close(); err != nil {
		return err
	}
	return s.bw.Flush()
}

// gate passes writes on until closed, then drops them.
type gate struct {
	w      io.Writer
	closed bool
}

func (g *gate) Write(p []byte) (int, error) {
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}
