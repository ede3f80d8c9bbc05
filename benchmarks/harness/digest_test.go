package main

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func stringArray(t *testing.T, mem memory.Allocator, typ arrow.DataType, vals ...string) arrow.Array {
	t.Helper()
	b := array.NewBuilder(mem, typ).(array.StringLikeBuilder)
	defer b.Release()
	b.AppendValues(vals, nil)
	a := b.NewArray()
	t.Cleanup(a.Release)
	return a
}

func TestDigest(t *testing.T) {
	mem := memory.NewGoAllocator()
	h := newDigester()
	must := func(a arrow.Array) digest {
		d, err := h.of(a)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	utf8 := must(stringArray(t, mem, arrow.BinaryTypes.String, "ab", "c", "def"))
	if large := must(stringArray(t, mem, arrow.BinaryTypes.LargeString, "ab", "c", "def")); large != utf8 {
		t.Errorf("large_utf8 digest %v differs from utf8 %v for the same strings", large, utf8)
	}
	for _, other := range [][]string{{"c", "ab", "def"}, {"a", "bc", "def"}, {"ab", "c", "deF"}, {"ab", "c"}} {
		if d := must(stringArray(t, mem, arrow.BinaryTypes.String, other...)); d == utf8 {
			t.Errorf("%q has the digest of [ab c def]", other)
		}
	}

	ints := func(vals ...int64) arrow.Array {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.AppendValues(vals, nil)
		a := b.NewArray()
		t.Cleanup(a.Release)
		return a
	}
	whole := ints(0, 1, 2, 3, 4)
	slice := array.NewSlice(ints(9, 1, 2, 3, 9), 1, 4)
	defer slice.Release()
	if must(slice) != must(array.NewSlice(whole, 1, 4)) {
		t.Error("a slice's digest depends on the values outside it")
	}
	if must(ints(1, 2)) == must(ints(2, 1)) {
		t.Error("order does not change the digest")
	}

	nulls := array.NewInt64Builder(mem)
	defer nulls.Release()
	nulls.AppendNull()
	withNull := nulls.NewArray()
	defer withNull.Release()
	if _, err := h.of(withNull); err == nil {
		t.Error("a null was accepted")
	}
	f := array.NewFloat64Builder(mem)
	defer f.Release()
	f.Append(1)
	float := f.NewArray()
	defer float.Release()
	if _, err := h.of(float); err == nil {
		t.Error("a float64 answer was accepted")
	}
}

func TestStringsAreFixedWidthASCII(t *testing.T) {
	for g := range int64(1000) {
		s, lo, up := short(nil, g), lower32(nil, g), upper32(nil, g)
		if len(s) != 16 || len(lo) != 32 || !bytes.Equal(bytes.ToUpper(lo), up) || bytes.Equal(lo, up) {
			t.Fatalf("row %d: %q %q %q", g, s, lo, up)
		}
	}
	if bytes.Equal(short(nil, 1), short(nil, 2)) {
		t.Error("neighbouring rows have the same string")
	}
}
