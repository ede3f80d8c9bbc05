package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// rowUpper is upper as it was before it was vectorized: the reference.
func rowUpper() *Function {
	return Scalar1("upper", strings.ToUpper, WithParamNames("s"), WithDoc("Unicode upper case"))
}

func builtin(t testing.TB, name string) *Function {
	t.Helper()
	for _, f := range Builtins() {
		if f.udf != nil && f.udf.Name == name {
			return f
		}
	}
	t.Fatalf("no built-in %s", name)
	return nil
}

// newStrings builds a utf8 array of vals, which may be invalid UTF-8.
// A value is null where null is true; its bytes stay in the data buffer,
// so kernels that read null slots are caught.
func newStrings(t testing.TB, mem memory.Allocator, vals []string, null []bool) *array.String {
	t.Helper()
	b := array.NewStringBuilder(mem)
	defer b.Release()
	for _, v := range vals {
		b.Append(v)
	}
	arr := b.NewStringArray()
	if null == nil {
		return arr
	}
	defer arr.Release()
	validity := memory.NewResizableBuffer(mem)
	defer validity.Release()
	validity.Resize(int(bitutil.BytesForBits(int64(len(vals)))))
	for i := range vals {
		bitutil.SetBitTo(validity.Bytes(), i, !null[i])
	}
	bufs := arr.Data().Buffers()
	data := array.NewData(arrow.BinaryTypes.String, len(vals), []*memory.Buffer{validity, bufs[1], bufs[2]},
		nil, array.UnknownNullCount, 0)
	defer data.Release()
	return array.NewStringData(data)
}

// checkUpper runs the upper kernel on in and compares every row with
// strings.ToUpper.
func checkUpper(t *testing.T, mem memory.Allocator, in *array.String) {
	t.Helper()
	got, err := upper(context.Background(), mem, []arrow.Array{in})
	if err != nil {
		t.Fatalf("upper: %v", err)
	}
	defer got.Release()
	compareUpper(t, in, got)
}

func compareUpper(t *testing.T, in *array.String, got arrow.Array) {
	t.Helper()
	out, ok := got.(*array.String)
	if !ok {
		t.Fatalf("upper returned %s, want utf8", got.DataType())
	}
	if err := out.ValidateFull(); err != nil { // the upper case of anything is valid UTF-8
		t.Fatalf("invalid output: %v", err)
	}
	if out.Len() != in.Len() || out.NullN() != in.NullN() {
		t.Fatalf("upper gave %d rows with %d nulls for %d rows with %d nulls", out.Len(), out.NullN(), in.Len(), in.NullN())
	}
	bad := 0
	for i := range in.Len() {
		if out.IsNull(i) != in.IsNull(i) {
			t.Errorf("row %d: null = %t, want %t", i, out.IsNull(i), in.IsNull(i))
		} else if want := strings.ToUpper(in.Value(i)); in.IsValid(i) && out.Value(i) != want {
			t.Errorf("row %d: upper(%+q) = %+q, want %+q", i, in.Value(i), out.Value(i), want)
		} else {
			continue
		}
		if bad++; bad == 10 {
			t.Fatal("too many differences")
		}
	}
}

func TestUpperKeepsSignature(t *testing.T) {
	got, want := builtin(t, "upper").UDF(), rowUpper().UDF()
	if got.Signature() != want.Signature() || got.Version != want.Version {
		t.Errorf("upper is %s version %s, want %s version %s", got.Signature(), got.Version, want.Signature(), want.Version)
	}
}

// adversarial holds inputs where upper case is easy to get wrong.
var adversarial = []string{
	"", "a", "z", "A", "@", "[", "`", "{", "\x7f", "\x00",
	"ß",           // no single-rune upper case: stays ß (strings.ToUpper is not full case mapping)
	"ǅ", "ǆ", "Ǆ", // title case and its lower case both map to Ǆ
	"ı", "i", "İ", // dotless i shrinks to I; dotted capital I stays
	"ɐ", "ɑ", "ɒ", "ȿ", "ɀ", "ɥ", // 2 bytes up to 3: Ɐ Ɑ Ɒ Ȿ Ɀ Ɥ
	"ſ", "ı ſ ɐ", // long s shrinks to S
	"ﬁ", "ŉ", "ΐ", "և", // full mappings are longer; the simple ones keep them
	"µ", "ÿ", "ǰ", "ͅ", "ς", "ϐ", "ẞ", "ᲀ", "ꭰ", "ａ", "𐐨", "𞤢", "𑣀", // odd mappings, other planes
	"\xff", "\xfe", "\x80", "\xbf", "\xc0", "\xc1", "\xc2", "\xdf", "\xe0", "\xef", "\xf0", "\xf4", "\xf5", "\xf8",
	"\xc3", "\xe6\x97", "\xf0\x9f\x98", "a\xc3", "\xc3a", "\xe6\x97a", // truncated sequences
	"\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", // overlong encodings
	"\xed\xa0\x80", "\xed\xbf\xbf", "\xed\xa0\x80\xed\xb0\x80", // surrogates, alone and paired
	"\U0010ffff", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf7\xbf\xbf\xbf", // U+10FFFF and past it
	"\ufffd", "\xef\xbf\xbd\xff", // a real U+FFFD beside an invalid byte
	"héllo wörld", "ωmega", "日本語", "straße", "İstanbul", "ǅemal", "😀 smile", "ıııı", "ɐɐɐɐ",
	"abcdefg\xff", "abcdefgh\xff", "abcdefghi\xff", "\xffabcdefghijklmnop", "abcdefgé", "abcdefghé",
}

func TestUpperAdversarial(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	var all []string
	all = append(all, adversarial...)
	for c := range 256 {
		all = append(all, string([]byte{byte(c)}))
	}
	all = append(all, string(bytes.Repeat([]byte{0}, 128)))
	ascii := make([]byte, 128)
	for c := range ascii {
		ascii[c] = byte(c)
	}
	all = append(all, string(ascii))

	// Each case alone, and behind ASCII of every length across a word, so
	// that it starts at each byte position of the 8-byte fast path.
	for _, s := range all {
		in := newStrings(t, mem, []string{s}, nil)
		checkUpper(t, mem, in)
		in.Release()
		var padded []string
		for n := range 17 {
			pad := strings.Repeat("x", n)
			padded = append(padded, pad+s, pad+s+pad, s+pad)
		}
		in = newStrings(t, mem, padded, nil)
		checkUpper(t, mem, in)
		in.Release()
	}
	in := newStrings(t, mem, all, nil)
	defer in.Release()
	checkUpper(t, mem, in)
	in2 := newStrings(t, mem, []string{strings.Join(all, "")}, nil)
	defer in2.Release()
	checkUpper(t, mem, in2)
}

// TestUpperEveryRune checks every code point and every two-byte input.
func TestUpperEveryRune(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	vals := make([]string, 0, utf8.MaxRune+1+1<<16)
	for r := range rune(utf8.MaxRune + 1) {
		vals = append(vals, string(r)) // surrogates become U+FFFD here; the byte test covers them
	}
	for i := range 1 << 16 {
		vals = append(vals, string([]byte{byte(i >> 8), byte(i)}))
	}
	in := newStrings(t, mem, vals, nil)
	defer in.Release()
	checkUpper(t, mem, in)
	joined := newStrings(t, mem, []string{strings.Join(vals, "")}, nil)
	defer joined.Release()
	checkUpper(t, mem, joined)
}

// Generators of random values, by kind of text.
var upperGens = []struct {
	name string
	gen  func(r *rand.Rand) string
}{
	{"bytes", func(r *rand.Rand) string {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return string(b)
	}},
	{"runes", func(r *rand.Rand) string {
		var b []byte
		for range r.IntN(12) {
			b = appendAnyRune(b, r.Int32N(0x140000))
		}
		return string(b)
	}},
	{"ascii", func(r *rand.Rand) string {
		b := make([]byte, r.IntN(70))
		for i := range b {
			b[i] = byte(r.UintN(128))
		}
		return string(b)
	}},
	{"ascii-heavy", func(r *rand.Rand) string {
		var b []byte
		for range r.IntN(50) {
			if r.IntN(10) > 0 {
				b = append(b, byte(' '+r.IntN(95)))
			} else {
				b = append(b, adversarial[r.IntN(len(adversarial))]...)
			}
		}
		return string(b)
	}},
	{"empty", func(*rand.Rand) string { return "" }},
}

// appendAnyRune encodes c the way UTF-8 would even where it is not
// allowed: surrogates and code points past U+10FFFF.
func appendAnyRune(b []byte, c rune) []byte {
	switch {
	case c < 0x10000 && (c < 0xd800 || c > 0xdfff) || c <= utf8.MaxRune && c >= 0x10000:
		return utf8.AppendRune(b, c)
	case c < 0x10000:
		return append(b, 0xe0|byte(c>>12), 0x80|byte(c>>6)&0x3f, 0x80|byte(c)&0x3f)
	}
	return append(b, 0xf0|byte(c>>18)&0x07, 0x80|byte(c>>12)&0x3f, 0x80|byte(c>>6)&0x3f, 0x80|byte(c)&0x3f)
}

// TestUpperRandom compares upper with the row loop it replaced, and with
// strings.ToUpper, on random batches with nulls and slices.
func TestUpperRandom(t *testing.T) {
	for _, g := range upperGens {
		t.Run(g.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			old := rowUpper()
			for seed := range uint64(20) {
				r := rand.New(rand.NewPCG(seed, 1))
				rows := r.IntN(300)
				vals := make([]string, rows)
				null := make([]bool, rows)
				for i := range vals {
					vals[i] = g.gen(r)
					null[i] = seed%2 == 1 && r.IntN(4) == 0
				}
				in := newStrings(t, mem, vals, null)
				arrays := []arrow.Array{in}
				for range 4 {
					i := r.IntN(rows + 1)
					j := i + r.IntN(rows-i+1)
					arrays = append(arrays, array.NewSlice(in, int64(i), int64(j)))
				}
				for _, arr := range arrays {
					s := arr.(*array.String)
					checkUpper(t, mem, s)
					want, err := old.eval(context.Background(), mem, []arrow.Array{s}, s.Len())
					if err != nil {
						t.Fatal(err)
					}
					compareUpper(t, s, want) // the reference agrees with strings.ToUpper too
					want.Release()
					arr.Release()
				}
			}
		})
	}
}

func TestUpperLimit(t *testing.T) {
	tests := []struct {
		name    string
		give    []string
		limit   int
		wantErr int // the row reported, or -1 for no error
	}{
		{"ascii at the limit", []string{"abc", "def"}, 6, -1},
		{"ascii over it", []string{"abc", "defg"}, 6, 1},
		{"growth to the limit", []string{"ɐɐ"}, 6, -1},
		{"growth past it", []string{"x", "ɐɐ"}, 6, 1},
		{"invalid bytes triple", []string{"\xff\xff"}, 5, 0},
		{"shrinking input over the limit", []string{"ıııı"}, 4, -1},
		{"nulls take no room", []string{"ɐɐɐɐ", "ab"}, 2, -1}, // row 0 is null
		// The buffer doubles from 64 to 128 bytes, then the last rune
		// needs the final 3 bytes up to the limit.
		{"growth to exactly the limit", []string{"a" + strings.Repeat("\xff", 42) + "ɐ"}, 130, -1},
		{"growth one past it", []string{"a" + strings.Repeat("\xff", 42) + "ɐ"}, 129, 0},
		{"long ascii after growth", []string{"ɐ", strings.Repeat("a", 100)}, 102, 1},
		{"long ascii that fits", []string{"ɐ", strings.Repeat("a", 99)}, 102, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			var null []bool
			if tt.name == "nulls take no room" {
				null = []bool{true, false}
			}
			in := newStrings(t, mem, tt.give, null)
			defer in.Release()
			out, row, err := upperUTF8(context.Background(), mem, in, tt.limit)
			if tt.wantErr < 0 {
				if err != nil {
					t.Fatalf("upperUTF8(%q, limit %d): %v", tt.give, tt.limit, err)
				}
				defer out.Release()
				compareUpper(t, in, out)
				return
			}
			if err == nil {
				out.Release()
				t.Fatalf("upperUTF8(%q, limit %d) succeeded, want an error at row %d", tt.give, tt.limit, tt.wantErr)
			}
			if row != tt.wantErr || !strings.Contains(err.Error(), fmt.Sprintf("over %d bytes, the most a utf8 array can hold", tt.limit)) {
				t.Errorf("upperUTF8(%q, limit %d) = row %d, %v; want row %d and the limit named", tt.give, tt.limit, row, err, tt.wantErr)
			}
		})
	}
}

func TestUpperErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	ints, _, err := array.FromJSON(mem, int64Type, strings.NewReader(`[1]`))
	if err != nil {
		t.Fatal(err)
	}
	defer ints.Release()
	if _, err := upper(context.Background(), mem, []arrow.Array{ints}); !errors.Is(err, udfcatalog.ErrSchemaMismatch) {
		t.Errorf("upper(int64) = %v, want ErrSchemaMismatch", err)
	}

	in := newStrings(t, mem, []string{"é"}, nil)
	defer in.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := upper(ctx, mem, []arrow.Array{in}); !errors.Is(err, context.Canceled) {
		t.Errorf("upper with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestEchoUTF8ZeroCopy checks echo_utf8 hands back the input's buffers.
func TestEchoUTF8ZeroCopy(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	in := newStrings(t, mem, []string{"a", "b", "ç"}, []bool{false, true, false})
	defer in.Release()
	before := mem.CurrentAlloc()
	out, err := builtin(t, "echo_utf8").eval(context.Background(), mem, []arrow.Array{in}, in.Len())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if got := mem.CurrentAlloc(); got != before {
		t.Errorf("echo_utf8 allocated %d bytes", got-before)
	}
	for i, b := range out.Data().Buffers() {
		if b != in.Data().Buffers()[i] {
			t.Errorf("buffer %d was copied", i)
		}
	}
}

// FuzzUpper splits its input into values at sep, nulls every nullEvery'th
// one and slices off the first skip rows.
func FuzzUpper(f *testing.F) {
	for _, s := range adversarial {
		f.Add([]byte(s), byte(0), uint8(0), uint8(0))
	}
	f.Add([]byte("abc,ßé,\xff,ı,ɐ,,xyz"), byte(','), uint8(3), uint8(1))
	f.Add([]byte(strings.Join(adversarial, "|")), byte('|'), uint8(5), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, sep byte, nullEvery, skip uint8) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		parts := bytes.Split(data, []byte{sep})
		vals := make([]string, len(parts))
		null := make([]bool, len(parts))
		for i, p := range parts {
			vals[i] = string(p)
			null[i] = nullEvery > 0 && i%int(nullEvery) == 0
		}
		in := newStrings(t, mem, vals, null)
		defer in.Release()
		s := array.NewSlice(in, int64(min(int(skip), in.Len())), int64(in.Len())).(*array.String)
		defer s.Release()
		checkUpper(t, mem, s)
	})
}

// benchStrings makes rows 32-byte values. ASCII ones are lower-case
// words; mixed ones are about half ASCII, a third two-byte (Latin,
// Greek, Cyrillic) and the rest three-byte runes (CJK, and ɐ-like
// letters whose upper case is longer).
func benchStrings(rows int, mixed bool) []string {
	r := rand.New(rand.NewPCG(1, 2))
	pool := []rune("abcdefghijklmnopqrstuvwxyz ")
	if mixed {
		pool = []rune("abcdefghijklmnop qrstuvwxyz éüßçñøåωλπжяшıɐ日本語中文字ⱥ")
	}
	vals := make([]string, rows)
	for i := range vals {
		var b []byte
		for {
			c := pool[r.IntN(len(pool))]
			if len(b)+utf8.RuneLen(c) > 32 {
				break
			}
			b = utf8.AppendRune(b, c)
		}
		for len(b) < 32 {
			b = append(b, 'x')
		}
		vals[i] = string(b)
	}
	return vals
}

func BenchmarkUpper(b *testing.B) {
	impls := []struct {
		name string
		f    *Function
	}{{"old", rowUpper()}, {"new", builtin(b, "upper")}}
	for _, text := range []string{"ascii", "mixed"} {
		for _, rows := range []int{1 << 10, 8 << 10, 64 << 10} {
			mem := memory.NewGoAllocator()
			in := newStrings(b, mem, benchStrings(rows, text == "mixed"), nil)
			for _, impl := range impls {
				b.Run(fmt.Sprintf("%s/rows=%d/%s", text, rows, impl.name), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(len(in.ValueBytes())))
					for b.Loop() {
						out, err := impl.f.eval(context.Background(), mem, []arrow.Array{in}, rows)
						if err != nil {
							b.Fatal(err)
						}
						out.Release()
					}
					b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
				})
			}
			in.Release()
		}
	}
}
