package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// kind is a column's logical type: int64, or a string in utf8 or large_utf8
// (whichever the server declares).
type kind int

const (
	kindInt64 kind = iota
	kindString
)

// column computes the value of a column at row g of the input stream.
type column struct {
	kind kind
	i64  func(g int64) int64
	str  func(dst []byte, g int64) []byte // appends the value to dst
}

// workload is one function that every server able to compute it serves
// under the same name.
type workload struct {
	name   string // in tables and -workloads
	fn     string // the function called (PATH [fn])
	what   string // for the report
	args   []column
	result column
	matrix bool // part of the throughput matrix (batch sizes × streams)
}

// bytesPerRow is the input payload of one row, counted alike for every
// server: 8 bytes per int64 and, per string, its bytes plus a 4-byte offset.
func (w workload) bytesPerRow() float64 {
	var n int
	var buf []byte
	for _, c := range w.args {
		if c.kind == kindInt64 {
			n += 8
		} else {
			n += len(c.str(buf[:0], 0)) + 4
		}
	}
	return float64(n)
}

func intCol(f func(g int64) int64) column        { return column{kind: kindInt64, i64: f} }
func strCol(f func([]byte, int64) []byte) column { return column{kind: kindString, str: f} }

// inFlight is an async workload's calls in flight, from its name (async_N).
func (w workload) inFlight() int {
	n, _ := strconv.Atoi(strings.TrimPrefix(w.name, "async_"))
	return n
}

// workloads lists every workload in report order.
func workloads() []workload {
	ident := func(g int64) int64 { return g }
	return []workload{
		{name: "identity_int64", fn: "echo_int64", what: "identity, one int64 column", matrix: true,
			args: []column{intCol(ident)}, result: intCol(ident)},
		{name: "identity_utf8", fn: "echo_utf8", what: "identity, one column of 16-byte strings", matrix: true,
			args: []column{strCol(short)}, result: strCol(short)},
		{name: "add_int64", fn: "add_int64", what: "a + b on two int64 columns", matrix: true,
			args:   []column{intCol(ident), intCol(func(g int64) int64 { return 2 * g })},
			result: intCol(func(g int64) int64 { return 3 * g })},
		{name: "upper", fn: "upper", what: "upper case of 32-byte ASCII strings", matrix: true,
			args: []column{strCol(lower32)}, result: strCol(upper32)},
		{name: "plus_one", fn: "plus_one", what: "row-wise Python x + 1 (one call per row)", matrix: true,
			args: []column{intCol(ident)}, result: intCol(func(g int64) int64 { return g + 1 })},
		{name: "async_100", fn: "async_echo_100", what: "async UDF, 10 ms sleep per row, 100 calls in flight across the workers",
			args: []column{intCol(ident)}, result: intCol(ident)},
		{name: "async_1000", fn: "async_echo_1000", what: "async UDF, 10 ms sleep per row, 1,000 calls in flight across the workers",
			args: []column{intCol(ident)}, result: intCol(ident)},
	}
}

// Workloads measured apart from the matrix.
const (
	lockstepName = "lockstep"
	memoryName   = "memory"
	startName    = "start"
)

func workloadNames() []string {
	var names []string
	for _, w := range workloads() {
		names = append(names, w.name)
	}
	return append(names, lockstepName, memoryName, startName)
}

func workloadByName(name string) workload {
	for _, w := range workloads() {
		if w.name == name {
			return w
		}
	}
	panic("no workload " + name)
}

const alphabet = "abcdefghijklmnopqrstuvwxyz012345" // 32 symbols: 5 bits each

// mix spreads g over 64 bits (the splitmix64 finalizer), so neighbouring
// rows get unrelated strings.
func mix(g uint64) uint64 {
	g += 0x9e3779b97f4a7c15
	g = (g ^ g>>30) * 0xbf58476d1ce4e5b9
	g = (g ^ g>>27) * 0x94d049bb133111eb
	return g ^ g>>31
}

// appendSymbols appends n symbols of alphabet drawn from g.
func appendSymbols(dst []byte, g uint64, n int) []byte {
	x := mix(g)
	for i := range n {
		if i > 0 && i%12 == 0 {
			x = mix(x)
		}
		dst = append(dst, alphabet[x&31])
		x >>= 5
	}
	return dst
}

// short is the 16-byte string of row g.
func short(dst []byte, g int64) []byte { return appendSymbols(dst, uint64(g), 16) }

// lower32 is the 32-byte lower-case string of row g; upper32 is its upper case.
func lower32(dst []byte, g int64) []byte { return appendSymbols(dst, uint64(g)^0x5555, 32) }

func upper32(dst []byte, g int64) []byte {
	start := len(dst)
	dst = lower32(dst, g)
	for i := start; i < len(dst); i++ {
		if c := dst[i]; 'a' <= c && c <= 'z' {
			dst[i] = c - 'a' + 'A'
		}
	}
	return dst
}

// dataset is the input one server gets for a workload at one batch size:
// distinct batches, cycled through, and the digest each answer must have.
type dataset struct {
	schema  *arrow.Schema
	batches []arrow.RecordBatch
	want    []digest
	rows    int
}

func (d *dataset) release() {
	for _, b := range d.batches {
		b.Release()
	}
}

// newDataset builds count batches of rows rows for w, with string inputs of
// the types the server declared (inTypes; nil means utf8).
func newDataset(mem memory.Allocator, h digester, w workload, inTypes []arrow.DataType, rows, count int) (*dataset, error) {
	fields := make([]arrow.Field, len(w.args))
	for i, c := range w.args {
		t := arrow.DataType(arrow.PrimitiveTypes.Int64)
		if c.kind == kindString {
			t = arrow.BinaryTypes.String
			if inTypes != nil {
				t = inTypes[i]
			}
		}
		fields[i] = arrow.Field{Name: fmt.Sprintf("arg%d", i), Type: t}
	}
	d := &dataset{schema: arrow.NewSchema(fields, nil), rows: rows}
	for b := range count {
		start := int64(b) * int64(rows)
		cols := make([]arrow.Array, len(w.args))
		for i, c := range w.args {
			col, err := buildColumn(mem, c, fields[i].Type, start, rows)
			if err != nil {
				d.release()
				return nil, err
			}
			cols[i] = col
		}
		d.batches = append(d.batches, array.NewRecordBatch(d.schema, cols, int64(rows)))
		for _, c := range cols {
			c.Release()
		}
		want, err := expected(mem, h, w.result, start, rows)
		if err != nil {
			d.release()
			return nil, err
		}
		d.want = append(d.want, want)
	}
	return d, nil
}

// expected is the digest of rows rows of c from row start.
func expected(mem memory.Allocator, h digester, c column, start int64, rows int) (digest, error) {
	t := arrow.DataType(arrow.PrimitiveTypes.Int64)
	if c.kind == kindString {
		t = arrow.BinaryTypes.String
	}
	arr, err := buildColumn(mem, c, t, start, rows)
	if err != nil {
		return digest{}, err
	}
	defer arr.Release()
	return h.of(arr)
}

// buildColumn makes rows values of c from row start, as type t.
func buildColumn(mem memory.Allocator, c column, t arrow.DataType, start int64, rows int) (arrow.Array, error) {
	var buf []byte
	switch t.ID() {
	case arrow.INT64:
		if c.kind != kindInt64 {
			break
		}
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.Reserve(rows)
		for g := start; g < start+int64(rows); g++ {
			b.UnsafeAppend(c.i64(g))
		}
		return b.NewArray(), nil
	case arrow.STRING, arrow.LARGE_STRING:
		if c.kind != kindString {
			break
		}
		ends := make([]int, rows)
		for i := range rows {
			buf = c.str(buf, start+int64(i))
			ends[i] = len(buf)
		}
		b := array.NewBuilder(mem, t).(array.StringLikeBuilder)
		defer b.Release()
		b.Reserve(rows)
		b.ReserveData(len(buf))
		prev := 0
		for _, end := range ends {
			b.UnsafeAppend(buf[prev:end])
			prev = end
		}
		return b.NewArray(), nil
	}
	return nil, fmt.Errorf("cannot build a column of %s", t)
}
