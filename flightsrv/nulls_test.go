package flightsrv_test

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-udf/fletch/exec"
)

// TestNullabilityContract checks the two halves of docs/types.md's
// nullability contract at the Flight surface: result columns are declared
// nullable, and a nested field declared non-null never leaves the server
// holding a null.
func TestNullabilityContract(t *testing.T) {
	strictList := arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int64)
	// wrap returns each input value as a one-item list, with a null item
	// for a null input: a UDF breaking its declared list<int64 not null>.
	wrap := exec.Vectorized("wrap", []arrow.DataType{i64}, strictList,
		func(_ context.Context, mem memory.Allocator, args []arrow.Array) (arrow.Array, error) {
			b := array.NewListBuilderWithField(mem, arrow.Field{Name: "item", Type: i64, Nullable: true})
			defer b.Release()
			values := b.ValueBuilder().(*array.Int64Builder)
			in := args[0].(*array.Int64)
			for i := range in.Len() {
				b.Append(true)
				if in.IsNull(i) {
					values.AppendNull()
				} else {
					values.Append(in.Value(i))
				}
			}
			built := b.NewArray()
			defer built.Release()
			data := array.NewData(strictList, built.Len(), built.Data().Buffers(), built.Data().Children(), built.NullN(), 0)
			defer data.Release()
			return array.MakeFromData(data), nil
		})
	h := newHarness(t, harnessConfig{fns: []*exec.Function{wrap}})
	in := schemaOf(field("x", i64))

	t.Run("result columns are nullable", func(t *testing.T) {
		for _, name := range []string{"add_int64", "pi", "wrap"} {
			info, err := h.client.GetSchema(context.Background(), path(name))
			if err != nil {
				t.Fatal(err)
			}
			schema, err := flight.DeserializeSchema(info.GetSchema(), h.mem)
			if err != nil {
				t.Fatal(err)
			}
			out := schema.Field(schema.NumFields() - 1)
			if !out.Nullable {
				t.Errorf("%s: the result field %s is declared non-null", name, out)
			}
		}
	})

	t.Run("nested non-null holds", func(t *testing.T) {
		rec := batchFromJSON(t, h.mem, in, `[{"x":1},{"x":2}]`)
		defer rec.Release()
		outs, err := h.exchange(context.Background(), "wrap", in, rec)
		defer release(outs)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(strings.Fields(columnJSON(t, outs, 0)), ""); got != `[[1],[2]]` {
			t.Errorf("wrap = %s", got)
		}
		if f := outs[0].Schema().Field(0); f.Type.(*arrow.ListType).ElemField().Nullable {
			t.Errorf("the output lost its nested declaration: %s", f.Type)
		}
	})

	t.Run("nested null is refused", func(t *testing.T) {
		rec := batchFromJSON(t, h.mem, in, `[{"x":1},{"x":null}]`)
		defer rec.Release()
		outs, err := h.exchange(context.Background(), "wrap", in, rec)
		release(outs)
		if status.Code(err) != codes.Internal {
			t.Fatalf("exchange = %v, want INTERNAL", err)
		}
		want := `batch 0: column 0: its field "item" is declared not null but holds a null in row 1`
		if !strings.Contains(status.Convert(err).Message(), want) {
			t.Errorf("message = %q, want it to contain %q", status.Convert(err).Message(), want)
		}
	})
}
