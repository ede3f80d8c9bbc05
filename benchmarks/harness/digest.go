package main

import (
	"fmt"
	"hash/maphash"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// digest is what an answer is checked against: its row count and a hash
// of its values in order. It does not depend on the offset width, so a
// large_utf8 answer matches the utf8 expectation with the same strings.
type digest struct {
	rows int64
	sum  uint64
}

func (d digest) String() string { return fmt.Sprintf("%d rows, checksum %016x", d.rows, d.sum) }

// digester hashes answers with one random seed. Every digest compared
// must come from the same digester.
type digester struct{ seed maphash.Seed }

func newDigester() digester { return digester{seed: maphash.MakeSeed()} }

// of digests a column of int64 or strings with no nulls. Int64 values are
// hashed as their little-endian bytes; strings as their concatenated bytes,
// combined with a position-weighted fold of their lengths.
func (h digester) of(arr arrow.Array) (digest, error) {
	if arr.NullN() != 0 {
		return digest{}, fmt.Errorf("%d nulls in an answer that has none", arr.NullN())
	}
	d := digest{rows: int64(arr.Len())}
	switch a := arr.(type) {
	case *array.Int64:
		d.sum = maphash.Bytes(h.seed, arrow.Int64Traits.CastToBytes(a.Int64Values()))
	case *array.String:
		d.sum = maphash.Bytes(h.seed, a.ValueBytes()) ^ foldLengths(a.ValueOffsets())
	case *array.LargeString:
		d.sum = maphash.Bytes(h.seed, a.ValueBytes()) ^ foldLengths(a.ValueOffsets())
	default:
		return digest{}, fmt.Errorf("an answer of type %s, want int64 or a string", arr.DataType())
	}
	return d, nil
}

// foldLengths folds the lengths given by offsets, in order (FNV-1a over
// the lengths).
func foldLengths[T int32 | int64](offsets []T) uint64 {
	acc := uint64(14695981039346656037)
	for i := 1; i < len(offsets); i++ {
		acc ^= uint64(offsets[i] - offsets[i-1])
		acc *= 1099511628211
	}
	return acc
}
