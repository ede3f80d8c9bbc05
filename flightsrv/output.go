package flightsrv

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// writeOutput writes results in input order as the UDF's kind says, then
// what the session emits at the end of input.
func (s *Server) writeOutput(ctx context.Context, w *batchWriter, fn *udfcatalog.UDF, sess Session,
	results <-chan result, ended <-chan readEnd, info *callInfo) error {
	pending := make(map[int]result)
	var parts []arrow.RecordBatch // a scalar function's outputs for one input batch's slices
	defer func() {
		for _, r := range pending {
			release(r.outs)
		}
		release(parts)
	}()
	next, total := 0, -1
	for total < 0 || next < total {
		select {
		case r := <-results:
			if r.err != nil {
				return fmt.Errorf("batch %d: %w", r.batch, inBatch(r.err, r.offset))
			}
			pending[r.seq] = r
		case e := <-ended:
			if e.err != nil {
				return e.err
			}
			total, ended = e.jobs, nil
		case <-ctx.Done():
			return ctx.Err()
		}
		for r, ok := pending[next]; ok; r, ok = pending[next] {
			delete(pending, next)
			next++
			var err error
			if fn.Kind == udfcatalog.KindScalar {
				parts, err = s.emitScalar(ctx, w, fn, r, parts, info)
			} else {
				err = s.emitAll(ctx, w, fn, r, info)
			}
			if err != nil {
				return err
			}
		}
	}
	outs, err := s.finish(ctx, sess)
	if err != nil {
		return fmt.Errorf("end of input: %w", err)
	}
	if err := s.emitAll(ctx, w, fn, result{job: job{batch: -1}, outs: outs}, info); err != nil {
		return err
	}
	if w.schema == nil { // a deferred schema with no batch to carry it
		if err := w.writeSchema(fn.OutputSchema()); err != nil {
			return sendError(ctx, err)
		}
	}
	return nil
}

func (s *Server) finish(ctx context.Context, sess Session) (outs []arrow.RecordBatch, err error) {
	defer s.recoverInto(&err, "session finish", "")
	return sess.Finish(ctx)
}

// emitScalar collects a scalar function's outputs for the slices of one
// input batch and writes them as one batch once the last slice is in.
func (s *Server) emitScalar(ctx context.Context, w *batchWriter, fn *udfcatalog.UDF, r result,
	parts []arrow.RecordBatch, info *callInfo) ([]arrow.RecordBatch, error) {
	if len(r.outs) != 1 {
		release(r.outs)
		return parts, fmt.Errorf("%w: batch %d: returned %d batches for one input batch", udfcatalog.ErrBadOutput, r.batch, len(r.outs))
	}
	out := r.outs[0]
	parts = append(parts, out)
	if out.NumRows() != r.rows {
		return parts, fmt.Errorf("%w: batch %d: returned %d rows for %d input rows", udfcatalog.ErrBadOutput, r.batch, out.NumRows(), r.rows)
	}
	schema := fn.OutputSchema()
	if fn.OnError == udfcatalog.OnErrorColumn && out.NumCols() == 2 {
		schema = fn.ErrorOutputSchema()
	}
	if err := checkTypes(schema, out, r.batch); err != nil {
		return parts, err
	}
	if r.piece < r.pieces-1 {
		return parts, nil
	}
	joined, err := s.join(fn, parts)
	parts = parts[:0]
	if err == nil && w.schema != nil && joined.NumCols() != int64(w.schema.NumFields()) {
		joined, err = s.fitErrorColumn(fn, r.batch, w.schema, joined)
	}
	if err != nil {
		return parts, fmt.Errorf("batch %d: %w", r.batch, err)
	}
	return parts, s.send(ctx, w, joined, r.batch, info)
}

// emitAll writes every output of a table function, aggregate or transform,
// and releases them. A table function's row indexes count from the start
// of the exchange, and its batches are cut to MaxTableRows.
func (s *Server) emitAll(ctx context.Context, w *batchWriter, fn *udfcatalog.UDF, r result, info *callInfo) error {
	schema := fn.OutputSchema()
	for i, out := range r.outs {
		rest := r.outs[i+1:]
		if err := checkTypes(schema, out, r.batch); err != nil {
			out.Release()
			release(rest)
			return err
		}
		var err error
		if fn.Kind == udfcatalog.KindTable {
			if out, err = rebaseRows(s.mem, out, r.exOffset, r.rows, r.batch); err == nil {
				err = s.sendChunks(ctx, w, out, r.batch, info)
			}
		} else {
			err = s.send(ctx, w, out, r.batch, info)
		}
		if err != nil {
			release(rest)
			return err
		}
	}
	return nil
}

// sendChunks writes out in batches of at most MaxTableRows and releases it.
func (s *Server) sendChunks(ctx context.Context, w *batchWriter, out arrow.RecordBatch, batch int, info *callInfo) error {
	chunk := int64(s.opts.MaxTableRows)
	if out.NumRows() <= chunk {
		return s.send(ctx, w, out, batch, info)
	}
	defer out.Release()
	for off := int64(0); off < out.NumRows(); off += chunk {
		if err := s.send(ctx, w, out.NewSlice(off, min(off+chunk, out.NumRows())), batch, info); err != nil {
			return err
		}
	}
	return nil
}

// send writes one output batch and releases it.
func (s *Server) send(ctx context.Context, w *batchWriter, out arrow.RecordBatch, batch int, info *callInfo) error {
	defer out.Release()
	if err := w.write(out); err != nil {
		if batch < 0 {
			return fmt.Errorf("end of input: %w", sendError(ctx, err))
		}
		return fmt.Errorf("batch %d: %w", batch, sendError(ctx, err))
	}
	info.batches++
	info.rows += out.NumRows()
	return nil
}

// inBatch makes a function error's row index count from the start of the
// client's batch rather than the slice the function saw.
func inBatch(err error, offset int64) error {
	var fe *udfcatalog.FunctionError
	if offset > 0 && errors.As(err, &fe) && fe.Row >= 0 {
		fe.Row += offset
	}
	return err
}

// checkTypes holds a session to its declared output types and nested
// nullability. Field names do not travel with batches, so they need not
// match.
func checkTypes(schema *arrow.Schema, out arrow.RecordBatch, batch int) error {
	if int(out.NumCols()) != schema.NumFields() {
		return fmt.Errorf("%w: batch %d: returned %d columns, want %d", udfcatalog.ErrBadOutput, batch, out.NumCols(), schema.NumFields())
	}
	for i, f := range schema.Fields() {
		if got := out.Column(i).DataType(); !arrow.TypeEqual(got, f.Type) {
			return fmt.Errorf("%w: batch %d: column %d is %s, want %s", udfcatalog.ErrBadOutput, batch, i, got, f.Type)
		}
	}
	if err := udfcatalog.CheckNulls(schema, out); err != nil {
		return fmt.Errorf("%w: batch %d: %w", udfcatalog.ErrBadOutput, batch, err)
	}
	return nil
}

// rebaseRows turns a table function's row indexes, which count within the
// slice it was given, into indexes within the exchange. It checks each
// index names a row of the slice, and takes ownership of out.
func rebaseRows(mem memory.Allocator, out arrow.RecordBatch, exOffset, sliceRows int64, batch int) (arrow.RecordBatch, error) {
	defer out.Release()
	rows, ok := out.Column(0).(*array.Int32)
	if !ok || rows.NullN() > 0 {
		return nil, fmt.Errorf("%w: batch %d: the %q column must be int32 without nulls", udfcatalog.ErrBadOutput, batch, udfcatalog.RowColumn)
	}
	if exOffset+sliceRows-1 > 1<<31-1 {
		return nil, fmt.Errorf("%w: batch %d: a table function's exchange may have at most 2^31 input rows", udfcatalog.ErrBadOutput, batch)
	}
	b := array.NewInt32Builder(mem)
	defer b.Release()
	b.Reserve(rows.Len())
	for _, v := range rows.Int32Values() {
		if v < 0 || int64(v) >= sliceRows {
			return nil, fmt.Errorf("%w: batch %d: row index %d is outside the %d input rows", udfcatalog.ErrBadOutput, batch, v, sliceRows)
		}
		b.UnsafeAppend(v + int32(exOffset))
	}
	rebased := b.NewArray()
	defer rebased.Release()
	cols := append([]arrow.Array{rebased}, out.Columns()[1:]...)
	fields := append([]arrow.Field{{Name: udfcatalog.RowColumn, Type: arrow.PrimitiveTypes.Int32}}, out.Schema().Fields()[1:]...)
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, out.NumRows()), nil
}

// join concatenates the outputs of one input batch's pieces and releases
// them. If some piece carries an error column, the others get an empty one.
func (s *Server) join(fn *udfcatalog.UDF, parts []arrow.RecordBatch) (arrow.RecordBatch, error) {
	defer func() {
		release(parts)
		clear(parts)
	}()
	if len(parts) == 1 {
		parts[0].Retain()
		return parts[0], nil
	}
	schema := fn.OutputSchema()
	for _, p := range parts {
		if p.NumCols() > int64(schema.NumFields()) {
			schema = fn.ErrorOutputSchema()
		}
	}
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	var rows int64
	for _, p := range parts {
		rows += p.NumRows()
	}
	for i := range cols {
		chunks := make([]arrow.Array, len(parts))
		for j, p := range parts {
			if i < int(p.NumCols()) {
				chunks[j] = p.Column(i)
				continue
			}
			chunks[j] = array.MakeArrayOfNull(s.mem, schema.Field(i).Type, int(p.NumRows()))
			defer chunks[j].Release()
		}
		var err error
		if cols[i], err = array.Concatenate(chunks, s.mem); err != nil {
			return nil, fmt.Errorf("join output slices: %w", err)
		}
	}
	return array.NewRecordBatch(schema, cols, rows), nil
}

// fitErrorColumn makes an error_column UDF's output match the schema the
// stream already has: a null error column is added where the stream has
// one, or, where it has none, the messages are logged and only the nulls
// remain. It takes ownership of out.
func (s *Server) fitErrorColumn(fn *udfcatalog.UDF, batch int, sent *arrow.Schema, out arrow.RecordBatch) (arrow.RecordBatch, error) {
	defer out.Release()
	rows := out.NumRows()
	if sent.NumFields() == 2 {
		errs := array.MakeArrayOfNull(s.mem, arrow.BinaryTypes.String, int(rows))
		defer errs.Release()
		return array.NewRecordBatch(sent, []arrow.Array{out.Column(0), errs}, rows), nil
	}
	if msgs, ok := out.Column(1).(*array.String); ok {
		for i := range msgs.Len() {
			if msgs.IsValid(i) {
				s.log.Warn("row failed; its error cannot join a stream that began without an error column",
					"function", fn.Name, "batch", batch, "row", i, "error", msgs.Value(i))
			}
		}
	}
	return array.NewRecordBatch(sent, []arrow.Array{out.Column(0)}, rows), nil
}
