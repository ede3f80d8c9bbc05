package flightwire

import (
	"bytes"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/mem"
)

func TestNewBody(t *testing.T) {
	small, large := bytes.Repeat([]byte{1}, 100), bytes.Repeat([]byte{2}, 4096)
	tests := []struct {
		name string
		give [][]byte
		// wantRefs is how many of the body's buffers reference caller
		// memory; with none, release runs before NewBody returns.
		wantRefs int
	}{
		{name: "nothing", give: nil},
		{name: "small", give: [][]byte{small, small}},
		{name: "large", give: [][]byte{large}, wantRefs: 1},
		{name: "mixed", give: [][]byte{small, large, small, small, large, small}, wantRefs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var released atomic.Int32
			body := NewBody(func() { released.Add(1) }, tt.give...)
			if got, want := body.Materialize(), bytes.Join(tt.give, nil); !bytes.Equal(got, want) {
				t.Fatalf("body = %d bytes, want %d", len(got), len(want))
			}
			refs := 0
			for _, b := range body {
				if b.Len() >= len(large) && &b.ReadOnlyData()[0] == &large[0] {
					refs++
				}
			}
			if refs != tt.wantRefs {
				t.Fatalf("%d buffers reference the caller's slices, want %d", refs, tt.wantRefs)
			}
			if tt.wantRefs == 0 {
				if n := released.Load(); n != 1 {
					t.Fatalf("release ran %d times for a copied body, want once before NewBody returned", n)
				}
				body.Free()
				return
			}
			// gRPC takes its own reference when it queues the message.
			body.Ref()
			body.Free()
			if n := released.Load(); n != 0 {
				t.Fatalf("release ran while gRPC still holds the body")
			}
			body.Free()
			if n := released.Load(); n != 1 {
				t.Fatalf("release ran %d times, want 1", n)
			}
		})
	}
}

// TestNewBodyCollected drops a body without freeing it, as gRPC does on
// some cancellation paths: the cleanup backstop must release it.
func TestNewBodyCollected(t *testing.T) {
	done := make(chan bool, 1)
	func() {
		b := newBody(func(collected bool) { done <- collected })
		b.add(make([]byte, 8192))
		b.add(make([]byte, 8192))
		b.finish() // and dropped
	}()
	deadline := time.After(10 * time.Second)
	for {
		runtime.GC()
		select {
		case collected := <-done:
			if !collected {
				t.Fatal("released, but not by the cleanup")
			}
			return
		case <-deadline:
			t.Fatal("a dropped body was never released")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// testSchema is the (int64, utf8) schema of the exchange tests.
var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// makeBatch builds rows of testSchema, with a few nulls.
func makeBatch(alloc memory.Allocator, rows, seed int) arrow.RecordBatch {
	b := array.NewRecordBuilder(alloc, testSchema)
	defer b.Release()
	ints := b.Field(0).(*array.Int64Builder)
	strs := b.Field(1).(*array.StringBuilder)
	ints.Reserve(rows)
	strs.Reserve(rows)
	for i := range rows {
		if (i+seed)%97 == 0 {
			ints.AppendNull()
			strs.AppendNull()
			continue
		}
		ints.Append(int64(i*seed + 1))
		strs.Append("row-" + string(rune('a'+(i+seed)%26)))
	}
	return b.NewRecordBatch()
}

func TestPayloadMessage(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	rec := makeBatch(alloc, 65536, 3)
	defer rec.Release()
	// The bytes arrow-go would send, serialized the usual way.
	rec2 := &recordingAllocator{Allocator: alloc}
	p, err := ipc.GetRecordBatchPayload(rec, ipc.WithAllocator(rec2))
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := p.SerializeBody(&want); err != nil {
		t.Fatal(err)
	}
	meta := p.Meta()
	wantHeader := bytes.Clone(meta.Bytes())
	meta.Release()

	var done atomic.Int32
	m, err := NewPayloadMessage(&p, func() { done.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	p.Release() // a no-op: NewPayloadMessage took p over
	if !bytes.Equal(m.Header, wantHeader) {
		t.Fatal("header differs from the payload's metadata")
	}
	if got := m.Body.Materialize(); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("body = %d bytes, want SerializeBody's %d", len(got), want.Len())
	}
	// Every large body buffer is the record's own memory or a buffer the
	// payload allocated (such as a validity bitmap it truncated): arrow-go
	// still passes each buffer's bytes to the writer (checked here because
	// the io.Writer contract does not promise it).
	columns := rec2.allocated
	for _, col := range rec.Columns() {
		for _, b := range col.Data().Buffers() {
			if b != nil {
				columns = append(columns, b.Buf())
			}
		}
	}
	large := 0
	for i, b := range m.Body {
		if mem.IsBelowBufferPoolingThreshold(b.Len()) {
			continue
		}
		large++
		found := false
		for _, c := range columns {
			found = found || within(b.ReadOnlyData(), c)
		}
		if !found {
			t.Errorf("body buffer %d (%d bytes) is neither the record's nor the payload's memory: arrow-go's SerializeBody changed", i, b.Len())
		}
	}
	if large < 3 {
		t.Errorf("%d large buffers in a 64 Ki-row body, want at least the int64 values, string offsets and data", large)
	}

	out, err := mustCodec(t).Marshal(m) // gRPC's references
	if err != nil {
		t.Fatal(err)
	}
	m.Free()
	if done.Load() != 0 {
		t.Fatal("payload released while gRPC still holds it")
	}
	out.Free()
	if n := done.Load(); n != 1 {
		t.Fatalf("done ran %d times, want 1", n)
	}

	// A schema payload has no body: released at once.
	sp := ipc.GetSchemaPayload(testSchema, alloc)
	sm, err := NewPayloadMessage(&sp, func() { done.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	if sm.BodyLen() != 0 || len(sm.Header) == 0 || done.Load() != 2 {
		t.Fatalf("schema message: body %d bytes, header %d bytes, done %d; want 0, >0, 2", sm.BodyLen(), len(sm.Header), done.Load())
	}
	sm.Free()

	var empty ipc.Payload
	if _, err := NewPayloadMessage(&empty, nil); err == nil {
		t.Fatal("NewPayloadMessage accepted an empty payload")
	}
}

// TestIPCRoundTrip sends record batches through Marshal, gRPC-sized
// buffers and Unmarshal without a network, and reads them back with
// arrow-go's IPC reader.
func TestIPCRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rows int
		// frame is the size of the buffers the message arrives in.
		frame int
		// wantCopy is whether BodyBuffer must copy (the body spans
		// several buffers).
		wantCopy bool
	}{
		{name: "empty batch", rows: 0, frame: 16384},
		{name: "small batch in one buffer", rows: 10, frame: 16384},
		{name: "64 Ki rows in 16 KiB frames", rows: 65536, frame: 16384, wantCopy: true},
		{name: "64 Ki rows in one buffer", rows: 65536, frame: 1 << 30},
	}
	codec := mustCodec(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer alloc.AssertSize(t, 0)
			pool := &countingPool{}
			defer func() {
				if n := pool.outstanding(); n != 0 {
					t.Errorf("%d gRPC buffers still referenced", n)
				}
			}()
			rec := makeBatch(alloc, tt.rows, 5)
			defer rec.Release()

			// Encode the schema and the batch as the server would send them.
			var wire []mem.BufferSlice
			send := func(p ipc.Payload) {
				m, err := NewPayloadMessage(&p, nil)
				if err != nil {
					t.Fatal(err)
				}
				out, err := codec.Marshal(m)
				m.Free()
				if err != nil {
					t.Fatal(err)
				}
				enc := out.Materialize()
				out.Free()
				// Cut as the transport would.
				var sizes []int
				for n := len(enc); n > tt.frame; n -= tt.frame {
					sizes = append(sizes, tt.frame)
				}
				wire = append(wire, split(pool, enc, sizes))
			}
			send(ipc.GetSchemaPayload(testSchema, alloc))
			p, err := ipc.GetRecordBatchPayload(rec, ipc.WithAllocator(alloc))
			if err != nil {
				t.Fatal(err)
			}
			send(p)

			copies := 0
			mr := &recvReader{alloc: alloc, recv: func(m *Message) error {
				if len(wire) == 0 {
					return errEndOfTest
				}
				data := wire[0]
				wire = wire[1:]
				defer data.Free()
				if err := codec.Unmarshal(data, m); err != nil {
					return err
				}
				if len(m.Body) > 1 {
					copies++
				}
				return nil
			}}
			rdr, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(alloc))
			if err != nil {
				t.Fatal(err)
			}
			defer rdr.Release()
			if !rdr.Next() {
				t.Fatalf("no batch: %v", rdr.Err())
			}
			if got := rdr.RecordBatch(); !array.RecordEqual(got, rec) {
				t.Fatalf("batch differs:\n got %v\nwant %v", got, rec)
			}
			if (copies == 1) != tt.wantCopy {
				t.Errorf("BodyBuffer copied %d bodies, want a copy: %v", copies, tt.wantCopy)
			}
		})
	}
}

func TestBodyBufferReferences(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	pool := &countingPool{}
	enc := wire(nil).bytes(2, []byte("hdr")).bytes(1000, bytes.Repeat([]byte{9}, 5000))
	data := split(pool, enc, nil)
	var m Message
	if err := mustCodec(t).Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	data.Free()
	one, ok := m.BodyBytes()
	if !ok {
		t.Fatal("a body in one buffer is not contiguous")
	}
	buf := m.BodyBuffer(alloc)
	if &buf.Bytes()[0] != &one[0] {
		t.Fatal("BodyBuffer copied a body held in one buffer")
	}
	if alloc.CurrentAlloc() != 0 {
		t.Fatal("a zero-copy body was allocated")
	}
	m.Free()
	if pool.outstanding() != 1 {
		t.Fatal("the Arrow buffer does not hold the gRPC buffer")
	}
	slice := memory.SliceBuffer(buf, 10, 10) // as an array would
	buf.Release()
	if pool.outstanding() != 1 {
		t.Fatal("the gRPC buffer was freed while an Arrow slice of it is alive")
	}
	slice.Release()
	if n := pool.outstanding(); n != 0 {
		t.Fatalf("%d gRPC buffers referenced after the Arrow buffer was released", n)
	}

	m.Header = []byte{1, 2}
	if _, err := m.IPCMessage(alloc, nil); err == nil {
		t.Fatal("IPCMessage accepted a 2-byte header")
	}
}

// recordingAllocator remembers what it allocated.
type recordingAllocator struct {
	memory.Allocator
	allocated [][]byte
}

func (a *recordingAllocator) Allocate(n int) []byte {
	b := a.Allocator.Allocate(n)
	a.allocated = append(a.allocated, b)
	return b
}

func (a *recordingAllocator) Reallocate(n int, b []byte) []byte {
	b = a.Allocator.Reallocate(n, b)
	a.allocated = append(a.allocated, b)
	return b
}
