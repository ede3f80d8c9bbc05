// Package arrowsafe reads Arrow IPC data from untrusted peers (Flight
// clients, Python workers) without letting malformed input crash the
// process.
package arrowsafe

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Checker verifies the messages of one IPC stream, in order, before
// arrow-go reads them. arrow-go v18.8.0 trusts flatbuffer vector lengths,
// reads the field-node, buffer and variadic-count vectors by index without
// bounds checks, and allocates by compressed buffers' claimed sizes; so a
// few hundred hostile bytes could make it allocate terabytes, an
// out-of-memory crash no recover can catch. The Checker walks every vector
// and string arrow-go will read and checks each lies within the header,
// bounds the total work (offsets may alias the same table many times),
// requires each batch to carry every node, buffer and variadic count the
// schema implies, and bounds the decompressed size of a batch.
type Checker struct {
	// MaxDecompressed bounds what one batch's compressed buffers may
	// decompress to.
	MaxDecompressed int64
	layout          *layout // from the schema message
}

// layout is what each record batch must carry for a schema.
type layout struct {
	nodes, buffers, views int
}

// Check verifies the next message of the stream.
func (ch *Checker) Check(header, body []byte) error {
	c := &fbCheck{buf: header, budget: len(header)}
	msg, err := c.root()
	if err != nil {
		return err
	}
	if err := c.keyValues(msg, 4); err != nil {
		return fmt.Errorf("message metadata: %w", err)
	}
	kind, err := msg.u8(1)
	if err != nil {
		return err
	}
	hdr, ok, err := msg.table(2)
	if err != nil || !ok {
		return errors.Join(err, errors.New("message has no header"))
	}
	switch kind {
	case fbSchema:
		if ch.layout != nil {
			return errors.New("a second schema message in one stream")
		}
		l, err := c.schema(hdr)
		if err != nil {
			return err
		}
		ch.layout = &l
		return nil
	case fbDictionaryBatch:
		return errors.New("dictionary batches are not supported; send plain arrays")
	case fbRecordBatch:
		if ch.layout == nil {
			return errors.New("a record batch before the schema")
		}
		return c.recordBatch(hdr, body, *ch.layout, ch.MaxDecompressed)
	}
	return fmt.Errorf("unsupported IPC message type %d", kind)
}

// Arrow flatbuffer enum values used below (Message.fbs, Schema.fbs).
const (
	fbSchema          = 1
	fbDictionaryBatch = 2
	fbRecordBatch     = 3
	maxFieldDepth     = 64
)

// Arrow's flatbuffer Type enum.
const (
	fbNull = iota + 1
	fbInt
	fbFloatingPoint
	fbBinary
	fbUtf8
	fbBool
	fbDecimal
	fbDate
	fbTime
	fbTimestamp
	fbInterval
	fbList
	fbStruct
	fbUnion
	fbFixedSizeBinary
	fbFixedSizeList
	fbMap
	fbDuration
	fbLargeBinary
	fbLargeUtf8
	fbLargeList
	fbRunEndEncoded
	fbBinaryView
	fbUtf8View
)

var errBudget = errors.New("header refers to its contents too many times")

// fbCheck reads one flatbuffer with explicit bounds checks.
type fbCheck struct {
	buf    []byte
	budget int // units of work left; starts at the header length
}

func (c *fbCheck) spend(n int) error {
	c.budget -= n
	if c.budget < 0 {
		return errBudget
	}
	return nil
}

func (c *fbCheck) u16(pos int) (int, error) {
	if pos < 0 || pos+2 > len(c.buf) {
		return 0, fmt.Errorf("offset %d is outside the %d-byte header", pos, len(c.buf))
	}
	return int(binary.LittleEndian.Uint16(c.buf[pos:])), nil
}

func (c *fbCheck) u32(pos int) (int, error) {
	if pos < 0 || pos+4 > len(c.buf) {
		return 0, fmt.Errorf("offset %d is outside the %d-byte header", pos, len(c.buf))
	}
	return int(binary.LittleEndian.Uint32(c.buf[pos:])), nil
}

func (c *fbCheck) root() (fbTable, error) {
	off, err := c.u32(0)
	if err != nil {
		return fbTable{}, err
	}
	return c.tableAt(off)
}

// fbTable is a verified table: its vtable and inline data lie in the buffer.
type fbTable struct {
	c        *fbCheck
	pos, vt  int
	vtLen    int
	tableLen int
}

func (c *fbCheck) tableAt(pos int) (fbTable, error) {
	soff, err := c.u32(pos)
	if err != nil {
		return fbTable{}, err
	}
	vt := pos - int(int32(uint32(soff)))
	vtLen, err := c.u16(vt)
	if err != nil {
		return fbTable{}, err
	}
	tableLen, err := c.u16(vt + 2)
	if err != nil {
		return fbTable{}, err
	}
	if vtLen < 4 || vtLen%2 != 0 || vt+vtLen > len(c.buf) || pos+tableLen > len(c.buf) {
		return fbTable{}, fmt.Errorf("table at %d does not fit the header", pos)
	}
	return fbTable{c: c, pos: pos, vt: vt, vtLen: vtLen, tableLen: tableLen}, c.spend(4)
}

// field returns the absolute position of a slot's inline value.
func (t fbTable) field(slot, size int) (int, bool, error) {
	vo := 4 + 2*slot
	if vo+2 > t.vtLen {
		return 0, false, nil
	}
	off, err := t.c.u16(t.vt + vo)
	if err != nil || off == 0 {
		return 0, false, err
	}
	if off+size > t.tableLen {
		return 0, false, fmt.Errorf("field %d of the table at %d overruns it", slot, t.pos)
	}
	return t.pos + off, true, nil
}

func (t fbTable) u8(slot int) (int, error) {
	p, ok, err := t.field(slot, 1)
	if err != nil || !ok {
		return 0, err
	}
	return int(t.c.buf[p]), nil
}

// ref follows the uoffset stored in a slot.
func (t fbTable) ref(slot int) (int, bool, error) {
	p, ok, err := t.field(slot, 4)
	if err != nil || !ok {
		return 0, ok, err
	}
	off, err := t.c.u32(p)
	return p + off, true, err
}

func (t fbTable) table(slot int) (fbTable, bool, error) {
	p, ok, err := t.ref(slot)
	if err != nil || !ok {
		return fbTable{}, ok, err
	}
	sub, err := t.c.tableAt(p)
	return sub, true, err
}

// vector checks a vector of n elements of size bytes and returns where its
// elements start.
func (t fbTable) vector(slot, size int) (start, n int, err error) {
	p, ok, err := t.ref(slot)
	if err != nil || !ok {
		return 0, 0, err
	}
	if n, err = t.c.u32(p); err != nil {
		return 0, 0, err
	}
	start = p + 4
	if uint64(n)*uint64(size) > uint64(len(t.c.buf)-start) {
		return 0, 0, fmt.Errorf("vector of %d elements at %d overruns the %d-byte header", n, p, len(t.c.buf))
	}
	return start, n, t.c.spend(n)
}

// tables visits each table of a vector of tables.
func (t fbTable) tables(slot int, each func(fbTable) error) error {
	start, n, err := t.vector(slot, 4)
	if err != nil {
		return err
	}
	for i := range n {
		p := start + 4*i
		off, err := t.c.u32(p)
		if err != nil {
			return err
		}
		sub, err := t.c.tableAt(p + off)
		if err != nil {
			return err
		}
		if err := each(sub); err != nil {
			return err
		}
	}
	return nil
}

func (t fbTable) str(slot int) error {
	p, ok, err := t.ref(slot)
	if err != nil || !ok {
		return err
	}
	n, err := t.c.u32(p)
	if err != nil {
		return err
	}
	if uint64(n)+1 > uint64(len(t.c.buf)-p-4) {
		return fmt.Errorf("string of %d bytes at %d overruns the header", n, p)
	}
	return t.c.spend(n)
}

func (c *fbCheck) keyValues(t fbTable, slot int) error {
	return t.tables(slot, func(kv fbTable) error {
		return errors.Join(kv.str(0), kv.str(1))
	})
}

func (c *fbCheck) schema(s fbTable) (layout, error) {
	var l layout
	if err := s.tables(1, func(f fbTable) error { return c.field(f, 0, &l) }); err != nil {
		return l, fmt.Errorf("schema fields: %w", err)
	}
	if _, _, err := s.vector(3, 8); err != nil {
		return l, fmt.Errorf("schema features: %w", err)
	}
	return l, c.keyValues(s, 2)
}

// field checks one field and adds what its arrays need to l, following
// arrow-go's array loader: one node per field, a validity buffer and the
// layout's other buffers, and one variadic count per view field.
func (c *fbCheck) field(f fbTable, depth int, l *layout) error {
	if depth > maxFieldDepth {
		return fmt.Errorf("fields nest deeper than %d levels", maxFieldDepth)
	}
	if err := f.str(0); err != nil {
		return err
	}
	typeKind, err := f.u8(2)
	if err != nil {
		return err
	}
	typ, ok, err := f.table(3)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("a field has no type")
	}
	if _, dictionary, err := f.table(4); err != nil {
		return err
	} else if dictionary {
		return errors.New("dictionary-encoded fields are not supported; send plain arrays")
	}
	l.nodes++
	switch typeKind {
	case fbNull:
	case fbInt, fbFloatingPoint, fbBool, fbDecimal, fbDate, fbTime, fbInterval, fbDuration, fbFixedSizeBinary:
		l.buffers += 2
	case fbTimestamp:
		l.buffers += 2
		if err := typ.str(1); err != nil {
			return err
		}
	case fbBinary, fbUtf8, fbLargeBinary, fbLargeUtf8:
		l.buffers += 3
	case fbBinaryView, fbUtf8View:
		l.buffers += 2
		l.views++
	case fbList, fbLargeList, fbMap:
		l.buffers += 2
	case fbFixedSizeList, fbStruct:
		l.buffers++
	default:
		return fmt.Errorf("unsupported column type (flatbuffer type %d)", typeKind)
	}
	if err := f.tables(5, func(child fbTable) error { return c.field(child, depth+1, l) }); err != nil {
		return err
	}
	return c.keyValues(f, 6)
}

func (c *fbCheck) recordBatch(rb fbTable, body []byte, need layout, maxDecompressed int64) error {
	_, nodes, err := rb.vector(1, 16)
	if err != nil {
		return fmt.Errorf("field nodes: %w", err)
	}
	bufStart, nbufs, err := rb.vector(2, 16)
	if err != nil {
		return fmt.Errorf("buffers: %w", err)
	}
	varStart, nvar, err := rb.vector(4, 8)
	if err != nil {
		return fmt.Errorf("variadic buffer counts: %w", err)
	}
	// arrow-go reads these vectors by index without bounds checks, so they
	// must hold all the schema implies, view buffers included.
	buffers := need.buffers
	if nvar < need.views {
		return fmt.Errorf("the batch has %d variadic buffer counts, its schema needs %d", nvar, need.views)
	}
	for i := range need.views {
		n := int64(binary.LittleEndian.Uint64(c.buf[varStart+8*i:]))
		if n < 0 || n > int64(nbufs) {
			return fmt.Errorf("variadic buffer count %d is out of range", n)
		}
		buffers += int(n)
	}
	if nodes < need.nodes || nbufs < buffers {
		return fmt.Errorf("the batch has %d field nodes and %d buffers, its schema needs %d and %d", nodes, nbufs, need.nodes, buffers)
	}
	if _, compressed, err := rb.table(3); err != nil || !compressed {
		return err
	}
	// Each compressed buffer starts with its uncompressed length, which
	// arrow-go allocates before decompressing.
	var total int64
	for i := range nbufs {
		p := bufStart + 16*i
		offset := int64(binary.LittleEndian.Uint64(c.buf[p:]))
		length := int64(binary.LittleEndian.Uint64(c.buf[p+8:]))
		if length == 0 {
			continue
		}
		if length < 8 || offset < 0 || offset > int64(len(body))-8 || length > int64(len(body))-offset {
			return fmt.Errorf("compressed buffer %d (offset %d, length %d) does not fit the %d-byte body", i, offset, length, len(body))
		}
		size := int64(binary.LittleEndian.Uint64(body[offset:]))
		if size == -1 {
			continue // stored uncompressed
		}
		if size < 0 || size > maxDecompressed-total {
			return fmt.Errorf("compressed buffers decompress to more than %d bytes (--max-message-bytes)", maxDecompressed)
		}
		total += size
	}
	return nil
}
