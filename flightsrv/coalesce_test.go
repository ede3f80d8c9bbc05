package flightsrv_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"

	"github.com/fletch-udf/fletch/exec"
	"github.com/fletch-udf/fletch/flightsrv"
	"github.com/fletch-udf/fletch/internal/arrowsafe"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// coalescing gives a native session the CoalescingSession method, as the
// Python executor has it: ProcessAll joins the batches, evaluates them in
// one Process and slices the output back. It is slow per call, so batches
// queue up behind the one it runs, and it records what it was given.
type coalescing struct {
	exec.Session
	mem    memory.Allocator
	delay  time.Duration
	mu     sync.Mutex
	groups []int // batches per call
	// encoded counts inputs that still carried the client's message.
	encoded atomic.Int64
}

func (c *coalescing) Process(ctx context.Context, in arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	outs, err := c.ProcessAll(ctx, []arrow.RecordBatch{in})
	return outs, err
}

func (c *coalescing) ProcessAll(ctx context.Context, ins []arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	c.mu.Lock()
	c.groups = append(c.groups, len(ins))
	delay := c.delay
	c.mu.Unlock()
	time.Sleep(delay)
	for _, in := range ins {
		if _, ok := in.(*arrowsafe.Encoded); ok {
			c.encoded.Add(1)
		}
	}
	joined, err := joinBatches(c.mem, ins)
	if err != nil {
		return nil, err
	}
	defer joined.Release()
	outs, err := c.Session.Process(ctx, joined)
	if err != nil {
		return nil, err
	}
	defer release(outs)
	split := make([]arrow.RecordBatch, len(ins))
	var off int64
	for i, in := range ins {
		split[i] = outs[0].NewSlice(off, off+in.NumRows())
		off += in.NumRows()
	}
	return split, nil
}

func joinBatches(mem memory.Allocator, recs []arrow.RecordBatch) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, recs[0].NumCols())
	var rows int64
	for _, r := range recs {
		rows += r.NumRows()
	}
	for i := range cols {
		parts := make([]arrow.Array, len(recs))
		for j, r := range recs {
			parts[j] = r.Column(i)
		}
		var err error
		if cols[i], err = array.Concatenate(parts, mem); err != nil {
			return nil, err
		}
		defer cols[i].Release()
	}
	return array.NewRecordBatch(recs[0].Schema(), cols, rows), nil
}

// failAt fails when it sees the value 0 in the joined input: a row-wise
// UDF's failure, whose row counts across a coalesced call.
func failAt(v int64) (int64, error) {
	if v == 0 {
		return 0, errors.New("zero")
	}
	return v, nil
}

// TestCoalescing: over random batch sizes, some of which the server
// slices and some of whose columns it converts, every output batch
// matches its input batch, in order, while calls take several batches
// whenever they have queued up.
func TestCoalescing(t *testing.T) {
	c := &coalescing{delay: 200 * time.Microsecond}
	h := newHarness(t, harnessConfig{
		opts: flightsrv.Options{MaxBatchRows: 3000},
		fns:  []*exec.Function{exec.Scalar1E("fail_at_zero", failAt)},
		wrap: func(fn *udfcatalog.UDF, s exec.Session) exec.Session {
			if fn.Name == "echo_int64" || fn.Name == "fail_at_zero" {
				c.Session = s
				return c
			}
			return s
		},
	})
	c.mem = h.mem
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 12 {
		// int32 input needs converting to the declared int64, which also
		// means the batches can no longer be forwarded as they came.
		convert := round%2 == 1
		var sizes []int
		for range 1 + rng.IntN(60) {
			switch rng.IntN(6) {
			case 0:
				sizes = append(sizes, 0)
			case 1:
				sizes = append(sizes, 3000+rng.IntN(5000)) // sliced
			default:
				sizes = append(sizes, 1+rng.IntN(700))
			}
		}
		t.Run(fmt.Sprintf("round %d convert=%t %d batches", round, convert, len(sizes)), func(t *testing.T) {
			ins, schema := numberedBatches(h.mem, sizes, convert)
			defer release(ins)
			outs, err := h.exchange(context.Background(), "echo_int64", schema, ins...)
			defer release(outs)
			if err != nil {
				t.Fatal(err)
			}
			if len(outs) != len(ins) {
				t.Fatalf("%d output batches for %d input batches", len(outs), len(ins))
			}
			next := int64(0)
			for i, out := range outs {
				if out.NumRows() != ins[i].NumRows() {
					t.Fatalf("batch %d: %d rows, want %d", i, out.NumRows(), ins[i].NumRows())
				}
				for r, v := range out.Column(0).(*array.Int64).Int64Values() {
					if v != next {
						t.Fatalf("batch %d row %d = %d, want %d", i, r, v, next)
					}
					next++
				}
			}
		})
	}
	c.mu.Lock()
	joined := 0
	for _, g := range c.groups {
		if g > 1 {
			joined++
		}
	}
	c.mu.Unlock()
	if joined == 0 {
		t.Errorf("no call took more than one batch: %v", c.groups)
	}
	if c.encoded.Load() == 0 {
		t.Error("no input batch reached the session as the client's message")
	}

	t.Run("a failing row is reported on its own batch", func(t *testing.T) {
		// Values count from 1 but for one row: batch 5, row 17 holds 0.
		var ins []arrow.RecordBatch
		for i := range 8 {
			zeroAt := -1
			if i == 5 {
				zeroAt = 17
			}
			ins = append(ins, numberedWith(h.mem, 40, 1+40*int64(i), zeroAt))
		}
		defer release(ins)
		c.mu.Lock()
		c.groups, c.delay = nil, 20*time.Millisecond // the first call's wait lets the rest queue up
		c.mu.Unlock()
		outs, err := h.exchange(context.Background(), "fail_at_zero", ins[0].Schema(), ins...)
		release(outs)
		checkStatus(t, err, codes.Unknown, "batch 5: fail_at_zero: row 17: zero")
		c.mu.Lock()
		defer c.mu.Unlock()
		if slices.Max(c.groups) < 2 {
			t.Errorf("calls took %v batches; the failing row should have been in a coalesced call", c.groups)
		}
	})
}

// numberedBatches holds 0, 1, 2, ... across batches of the given sizes,
// as int64 or, with convert, as int32 (which the server widens).
func numberedBatches(mem memory.Allocator, sizes []int, convert bool) ([]arrow.RecordBatch, *arrow.Schema) {
	dt := arrow.DataType(arrow.PrimitiveTypes.Int64)
	if convert {
		dt = arrow.PrimitiveTypes.Int32
	}
	schema := schemaOf(field("x", dt))
	var out []arrow.RecordBatch
	next := 0
	for _, n := range sizes {
		b := array.NewRecordBuilder(mem, schema)
		for range n {
			switch bb := b.Field(0).(type) {
			case *array.Int64Builder:
				bb.Append(int64(next))
			case *array.Int32Builder:
				bb.Append(int32(next))
			}
			next++
		}
		out = append(out, b.NewRecordBatch())
		b.Release()
	}
	return out, schema
}

// numberedWith is one int64 batch of n values counting from start, with 0
// at row zeroAt (none if it is negative).
func numberedWith(mem memory.Allocator, n int, start int64, zeroAt int) arrow.RecordBatch {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	for i := range n {
		v := start + int64(i)
		if i == zeroAt {
			v = 0
		}
		b.Append(v)
	}
	arr := b.NewArray()
	defer arr.Release()
	return array.NewRecordBatch(schemaOf(field("x", i64)), []arrow.Array{arr}, int64(n))
}

// TestCancelledExchangeReleasesEverything: a client that gives up mid
// stream, with large batches queued, decoded and in flight, leaves nothing
// allocated (the harness checks its allocator at the end) and the server
// serving.
func TestCancelledExchangeReleasesEverything(t *testing.T) {
	c := &coalescing{delay: 5 * time.Millisecond}
	h := newHarness(t, harnessConfig{
		wrap: func(fn *udfcatalog.UDF, s exec.Session) exec.Session {
			if fn.Name == "echo_int64" {
				c.Session = s
				return c
			}
			return s
		},
	})
	c.mem = h.mem
	// 64 Ki-row batches arrive in many gRPC buffers, so each is joined
	// into the allocator's memory.
	ins, schema := numberedBatches(h.mem, []int{65536, 65536, 65536, 65536, 65536, 65536, 65536, 65536}, false)
	defer release(ins)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Millisecond)
	defer cancel()
	outs, err := h.exchange(ctx, "echo_int64", schema, ins...)
	release(outs)
	if err == nil {
		t.Fatal("the exchange finished before its deadline; make the session slower")
	}
	if err := addSequence(h, 0, 100); err != nil {
		t.Fatalf("after a cancelled exchange: %v", err)
	}
}
