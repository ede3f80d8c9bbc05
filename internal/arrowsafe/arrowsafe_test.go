package arrowsafe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// stream encodes rows of a (utf8, int64) schema as an IPC stream.
func stream(t testing.TB, opts ...ipc.Option) []byte {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(`[{"s":"ab","n":1},{"s":null,"n":2},{"s":"é","n":null}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, append([]ipc.Option{ipc.WithSchema(schema), ipc.WithAllocator(mem)}, opts...)...)
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadBatch(t *testing.T) {
	for _, opts := range [][]ipc.Option{nil, {ipc.WithLZ4()}, {ipc.WithZstd()}} {
		rec, err := ReadBatch(stream(t, opts...), 1<<20)
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		if rec.NumRows() != 3 || rec.Column(1).(*array.Int64).Value(1) != 2 {
			t.Errorf("ReadBatch = %v", rec)
		}
		rec.Release()
	}
}

// schemaHeader returns the flatbuffer header of the stream's schema message.
func schemaHeader(t *testing.T) []byte {
	data := stream(t)
	n := binary.LittleEndian.Uint32(data[4:])
	return bytes.Clone(data[8 : 8+n])
}

// TestHostileHeaders corrupts one length inside a valid schema header at a
// time: whatever it claims, the check must answer with an error or accept
// a header whose lengths fit, never let arrow-go allocate by a lie.
func TestHostileHeaders(t *testing.T) {
	header := schemaHeader(t)
	for pos := 0; pos+4 <= len(header); pos++ {
		h := bytes.Clone(header)
		binary.LittleEndian.PutUint32(h[pos:], 0x7fffffff)
		err := (&Checker{MaxDecompressed: 1 << 20}).Check(h, nil)
		if err == nil {
			// Whatever was changed did not matter to a length; decoding must be safe.
			data := append(binary.LittleEndian.AppendUint32([]byte{0xff, 0xff, 0xff, 0xff}, uint32(len(h))), h...)
			if _, err := ReadBatch(data, 1<<20); err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("pos %d: ReadBatch error %v does not wrap ErrMalformed", pos, err)
			}
		}
	}
}

func TestCheckErrors(t *testing.T) {
	tests := []struct {
		name   string
		header []byte
		want   string
	}{
		{"empty", nil, "outside the 0-byte header"},
		{"root past end", []byte{200, 0, 0, 0}, "outside"},
		{"garbage", []byte("not a flatbuffer at all, really"), ""},
	}
	for _, tt := range tests {
		err := (&Checker{MaxDecompressed: 1 << 20}).Check(tt.header, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Check = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestDecompressionBound(t *testing.T) {
	data := stream(t, ipc.WithZstd())
	if _, err := ReadBatch(data, 8); err == nil || !strings.Contains(err.Error(), "decompress to more than 8 bytes") {
		t.Errorf("ReadBatch with an 8-byte decompression bound = %v", err)
	}
}

// FuzzReadBatch: decoding arbitrary bytes never panics, never allocates
// without bound, and every failure wraps ErrMalformed.
func FuzzReadBatch(f *testing.F) {
	f.Add(stream(f))
	f.Add(stream(f, ipc.WithLZ4()))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := ReadBatch(data, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		rec.Release()
	})
}
