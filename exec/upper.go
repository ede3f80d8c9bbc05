package exec

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// maxUTF8Bytes is the most value data a utf8 array can hold: its offsets
// are int32.
const maxUTF8Bytes = math.MaxInt32

// upper is the upper built-in: strings.ToUpper of every value, computed
// over the whole array rather than row by row.
func upper(ctx context.Context, mem memory.Allocator, args []arrow.Array) (arrow.Array, error) {
	in, ok := args[0].(*array.String)
	if !ok {
		return nil, fmt.Errorf("%w: upper takes utf8, got %s", udfcatalog.ErrSchemaMismatch, args[0].DataType())
	}
	out, row, err := upperUTF8(ctx, mem, in, maxUTF8Bytes)
	if err != nil && ctx.Err() == nil {
		return nil, &udfcatalog.FunctionError{Function: "upper", Row: int64(row), Err: err}
	}
	return out, err
}

// upperUTF8 returns strings.ToUpper of each value of in, byte for byte,
// with in's nulls. The output may hold at most limit bytes of values; on
// error it reports the row that did not fit.
func upperUTF8(ctx context.Context, mem memory.Allocator, in *array.String, limit int) (arrow.Array, int, error) {
	rows := in.Len()
	offsets := memory.NewResizableBuffer(mem)
	defer offsets.Release()
	offsets.Resize(arrow.Int32Traits.BytesRequired(rows + 1))
	outOffs := arrow.Int32Traits.CastFromBytes(offsets.Bytes())
	outOffs[0] = 0
	values := memory.NewResizableBuffer(mem)
	defer values.Release()

	// The bitmap is copied, not shared: sharing would keep the whole input
	// message alive as long as the output, and a sliced input's bitmap
	// does not start at bit 0.
	var validity *memory.Buffer
	var valid []byte
	if in.NullN() > 0 {
		validity = memory.NewResizableBuffer(mem)
		defer validity.Release()
		validity.Resize(int(bitutil.BytesForBits(int64(rows))))
		valid = validity.Bytes()
		bitutil.CopyBitmap(in.NullBitmapBytes(), in.Data().Offset(), rows, valid, 0)
	}

	if rows > 0 {
		inOffs := in.ValueOffsets()
		src := in.ValueBytes()
		base := inOffs[0]
		values.Reserve(min(len(src), limit))
		w := upperWriter{buf: values, limit: limit, tab: upperTab()}
		w.setDst()

		// Most batches are all ASCII: upper-case the whole data buffer a
		// word at a time, null slots included, and keep the offsets.
		done := upperASCII(w.dst, src[:min(len(src), len(w.dst))])
		first := sort.Search(rows, func(i int) bool { return int(inOffs[i+1]-base) > done })
		for i := 1; i <= first; i++ {
			outOffs[i] = inOffs[i] - base
		}
		w.n = int(inOffs[first] - base)

		// The rest goes value by value; null slots become empty.
		for i := first; i < rows; i++ {
			if (i-first)%ctxCheckRows == 0 && ctx.Err() != nil {
				return nil, i, ctx.Err()
			}
			if valid == nil || bitutil.BitIsSet(valid, i) {
				if err := w.value(src[inOffs[i]-base : inOffs[i+1]-base]); err != nil {
					return nil, i, err
				}
			}
			outOffs[i+1] = int32(w.n)
		}
		values.ResizeNoShrink(w.n)
	}

	data := array.NewData(arrow.BinaryTypes.String, rows, []*memory.Buffer{validity, offsets, values}, nil, in.NullN(), 0)
	defer data.Release()
	return array.NewStringData(data), 0, nil
}

// upperWriter appends upper-cased values to a buffer that it grows, never
// past limit bytes.
type upperWriter struct {
	buf   *memory.Buffer
	dst   []byte // buf's whole capacity, cut to limit
	n     int    // bytes written
	limit int
	tab   *upperTable
}

func (w *upperWriter) setDst() {
	w.dst = w.buf.Buf()
	if len(w.dst) > w.limit {
		w.dst = w.dst[:w.limit]
	}
}

// grow makes room for need more bytes, doubling the capacity unless that
// passes the limit.
func (w *upperWriter) grow(need int) error {
	if need > w.limit-w.n {
		return fmt.Errorf("the output is over %d bytes, the most a utf8 array can hold (its offsets are int32)", w.limit)
	}
	c := w.limit
	if len(w.dst) <= w.limit/2 {
		c = max(2*len(w.dst), w.n+need)
	}
	w.buf.Reserve(c)
	w.setDst()
	return nil
}

// value appends strings.ToUpper(v). That maps each rune with
// unicode.ToUpper, and each byte that is not valid UTF-8 to U+FFFD, which
// utf8.DecodeRune returns for it with size 1 and unicode.ToUpper keeps.
func (w *upperWriter) value(v []byte) error {
	for len(v) > 0 {
		if v[0] < utf8.RuneSelf {
			// An ASCII run keeps its length, so it needs len(v) bytes of
			// room. Only near the limit may there be less; then the exact
			// path below goes rune by rune.
			if len(v) > len(w.dst)-w.n && len(v) <= w.limit-w.n {
				_ = w.grow(len(v))
			}
			if len(v) <= len(w.dst)-w.n {
				k := upperASCII(w.dst[w.n:], v)
				w.n += k
				v = v[k:]
				continue
			}
		}
		if len(w.dst)-w.n >= utf8.UTFMax { // room for any rune and the 4-byte stores
			if c := v[0]; 0xc2 <= c && c <= 0xdf && len(v) > 1 && v[1]&0xc0 == 0x80 {
				e := w.tab.two[uint(c&0x1f)<<6|uint(v[1]&0x3f)]
				binary.LittleEndian.PutUint32(w.dst[w.n:], e)
				w.n += int(e >> 24)
				v = v[2:]
				continue
			}
			r, size := utf8.DecodeRune(v)
			if size == 3 && !w.tab.cased(r) {
				copy(w.dst[w.n:], v[:3])
				w.n += 3
			} else {
				w.n += utf8.EncodeRune(w.dst[w.n:], unicode.ToUpper(r))
			}
			v = v[size:]
			continue
		}
		r, size := utf8.DecodeRune(v)
		r = unicode.ToUpper(r)
		if l := utf8.RuneLen(r); l > len(w.dst)-w.n {
			if err := w.grow(l); err != nil {
				return err
			}
		}
		w.n += utf8.EncodeRune(w.dst[w.n:], r)
		v = v[size:]
	}
	return nil
}

// upperTable caches unicode.ToUpper for the runes where a lookup beats
// its binary search. It is built from unicode.ToUpper at first use, so it
// follows the Unicode version of the Go that built the binary, as
// strings.ToUpper does.
type upperTable struct {
	// two holds the UTF-8 of the upper case of each two-byte rune,
	// little-endian, with its length in the top byte.
	two [0x800]uint32
	// bmp marks the runes below U+10000 that unicode.ToUpper changes.
	bmp [0x10000 / 64]uint64
}

var upperTab = sync.OnceValue(func() *upperTable {
	t := new(upperTable)
	for r := rune(0x80); r < 0x800; r++ {
		var b [4]byte
		n := utf8.EncodeRune(b[:], unicode.ToUpper(r))
		b[3] = byte(n)
		t.two[r] = binary.LittleEndian.Uint32(b[:])
	}
	for r := range rune(0x10000) {
		if unicode.ToUpper(r) != r {
			t.bmp[r/64] |= 1 << (r % 64)
		}
	}
	return t
})

// cased reports whether unicode.ToUpper may change r.
func (t *upperTable) cased(r rune) bool {
	return r >= 0x10000 || t.bmp[r/64]&(1<<(r%64)) != 0
}

const (
	ones  = 0x0101010101010101
	highs = 0x80 * ones
)

// upperASCII upper-cases src into dst up to its first byte that is not
// ASCII, and returns how many bytes that was. dst must be as long as src.
func upperASCII(dst, src []byte) int {
	i := 0
	for ; i+8 <= len(src); i += 8 {
		x := binary.LittleEndian.Uint64(src[i:])
		if x&highs != 0 {
			// Carries from a non-ASCII byte only reach later bytes, so the
			// bytes before it are right; the rest are overwritten later.
			binary.LittleEndian.PutUint64(dst[i:], upperWord(x))
			return i + bits.TrailingZeros64(x&highs)/8
		}
		binary.LittleEndian.PutUint64(dst[i:], upperWord(x))
	}
	for ; i < len(src); i++ {
		c := src[i]
		if c >= utf8.RuneSelf {
			return i
		}
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst[i] = c
	}
	return i
}

// upperWord upper-cases eight ASCII bytes at once. For such a byte b,
// b+0x1f has its high bit set iff b >= 'a', and b+0x05 iff b > 'z'; no
// sum carries into the next byte.
func upperWord(x uint64) uint64 {
	lower := (x + 0x1f*ones) &^ (x + 0x05*ones) & highs
	return x - lower>>2
}
