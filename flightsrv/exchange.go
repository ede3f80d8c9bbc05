package flightsrv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/util"

	"github.com/fletch-udf/fletch/internal/arrowsafe"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// An exchange runs three stages at once, so a long stream needs memory for
// only a few batches: the reader decodes, checks and slices input (its own
// goroutine), Parallelism() workers call the Session, and the handler
// goroutine writes outputs back in input order.

// job is one slice of one input batch.
type job struct {
	seq    int   // position among all jobs of the exchange
	batch  int   // index of the input batch it came from
	piece  int   // index among that batch's slices
	pieces int   //
	offset int64 // the slice's first row within its input batch
	in     arrow.RecordBatch
}

// result is a job's output.
type result struct {
	job
	rows int64
	out  arrow.RecordBatch
	err  error
}

// readEnd is the reader's final report: how many jobs it sent, and why it stopped.
type readEnd struct {
	jobs int
	err  error
}

// DoExchange streams batches through the UDF named by the first message's
// descriptor.
func (s *Server) DoExchange(stream flight.FlightService_DoExchangeServer) error {
	return toStatus(s.exchange(stream.Context(), stream, callInfoFrom(stream.Context())))
}

func (s *Server) exchange(ctx context.Context, stream flight.FlightService_DoExchangeServer, info *callInfo) error {
	first, err := stream.Recv()
	if err == io.EOF {
		return fmt.Errorf("%w: the exchange ended before its first message", errBadRequest)
	} else if err != nil {
		return fromRecv(err)
	}
	fn, err := s.lookup(first.FlightDescriptor)
	if err != nil {
		return err
	}
	info.function = fn.Name
	sess, err := s.open(ctx, fn)
	if err != nil {
		return err
	}
	defer func() {
		if err := sess.Close(); err != nil {
			s.log.Warn("closing session", "function", fn.Name, "error", err)
		}
	}()

	// The output schema goes out before any input is read: DuckDB's client
	// blocks on it before sending its first batch. Only error_column UDFs
	// wait for their first output batch, whose failures decide whether the
	// stream carries RisingWave's error column (RisingWave sends one batch
	// per exchange).
	w := &batchWriter{stream: stream, mem: s.mem, maxBytes: s.opts.MaxMessageBytes}
	if fn.OnError != udfcatalog.OnErrorColumn {
		if err := w.writeSchema(fn.OutputSchema()); err != nil {
			return sendError(ctx, err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan job)
	results := make(chan result)
	ended := make(chan readEnd, 1)

	s.readers.Add(1)
	go s.readInput(ctx, stream, first, fn, work, ended)

	var workers sync.WaitGroup
	for range max(1, sess.Parallelism()) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			s.runJobs(ctx, sess, work, results)
		}()
	}
	err = s.writeOutput(ctx, w, fn, results, ended, info)
	cancel()
	workers.Wait()
	return err
}

// readInput decodes the input stream into jobs. It may outlive the handler
// while blocked in Recv, until gRPC ends the stream; s.readers tracks it.
func (s *Server) readInput(ctx context.Context, stream flight.DataStreamReader, first *flight.FlightData,
	fn *udfcatalog.UDF, work chan<- job, ended chan<- readEnd) {
	defer s.readers.Done()
	sent := 0
	var err error
	defer func() {
		close(work)
		ended <- readEnd{jobs: sent, err: err}
	}()
	defer s.recoverInto(&err, "exchange reader", fn.Name)

	mr := newMessageReader(stream, first, int64(s.opts.MaxMessageBytes))
	defer mr.Release()
	rdr, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(s.mem))
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = nil // no input schema, so no batches: an empty exchange
		} else {
			err = readError(err)
		}
		return
	}
	defer rdr.Release()
	plan, err := udfcatalog.PlanInput(fn, rdr.Schema())
	if err != nil {
		return
	}
	for batch := 0; rdr.Next(); batch++ {
		var pieces []arrow.RecordBatch
		if pieces, err = s.prepare(ctx, plan, batch, rdr.RecordBatch()); err != nil {
			return
		}
		offset := int64(0)
		for i, p := range pieces {
			select {
			case work <- job{seq: sent, batch: batch, piece: i, pieces: len(pieces), offset: offset, in: p}:
				sent++
				offset += p.NumRows()
			case <-ctx.Done():
				for _, rest := range pieces[i:] {
					rest.Release()
				}
				err = ctx.Err()
				return
			}
		}
	}
	if rerr := rdr.Err(); rerr != nil {
		err = readError(rerr)
	}
}

// prepare validates one input batch, conforms it to the UDF's parameters
// and slices it to the batch limits. The caller owns the pieces.
func (s *Server) prepare(ctx context.Context, plan *udfcatalog.InputPlan, batch int, rec arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	if err := s.validate(rec); err != nil {
		return nil, fmt.Errorf("%w: batch %d: %w", errMalformedIPC, batch, err)
	}
	in, err := plan.Apply(ctx, s.mem, rec)
	if err != nil {
		return nil, fmt.Errorf("batch %d: %w", batch, err)
	}
	return s.split(in), nil
}

// validate checks untrusted input before anything reads it.
func (s *Server) validate(rec arrow.RecordBatch) error {
	// Zero-column and null-typed batches carry a row count but no data, so
	// bound them by what an 8-byte-wide output of the largest message could
	// hold; any other column needs at least a bit per row.
	rows := rec.NumRows()
	if limit := max(int64(s.opts.MaxBatchRows), int64(s.opts.MaxMessageBytes)/8); rows > limit && rows > 8*util.TotalRecordSize(rec) {
		return fmt.Errorf("%d rows with only %d bytes of data; such batches may have at most %d rows (--max-message-bytes / 8)",
			rows, util.TotalRecordSize(rec), limit)
	}
	return arrowsafe.Validate(rec)
}

// split slices rec to at most MaxBatchRows rows and about MaxBatchBytes
// bytes per piece. It takes ownership of rec.
func (s *Server) split(rec arrow.RecordBatch) []arrow.RecordBatch {
	rows := rec.NumRows()
	per := int64(s.opts.MaxBatchRows)
	if size := util.TotalRecordSize(rec); rows > 0 && size > int64(s.opts.MaxBatchBytes) {
		per = min(per, max(1, int64(s.opts.MaxBatchBytes)/max(1, size/rows)))
	}
	if rows <= per {
		return []arrow.RecordBatch{rec}
	}
	defer rec.Release()
	pieces := make([]arrow.RecordBatch, 0, (rows+per-1)/per)
	for off := int64(0); off < rows; off += per {
		pieces = append(pieces, rec.NewSlice(off, min(off+per, rows)))
	}
	return pieces
}

// runJobs calls the session for each job until the reader is done or the
// exchange ends.
func (s *Server) runJobs(ctx context.Context, sess Session, work <-chan job, results chan<- result) {
	for {
		var j job
		var ok bool
		select {
		case j, ok = <-work:
			if !ok {
				return
			}
		case <-ctx.Done():
			return
		}
		r := result{job: j, rows: j.in.NumRows()}
		r.out, r.err = s.process(ctx, sess, j.in)
		j.in.Release()
		select {
		case results <- r:
		case <-ctx.Done():
			if r.out != nil {
				r.out.Release()
			}
			return
		}
	}
}

func (s *Server) process(ctx context.Context, sess Session, in arrow.RecordBatch) (out arrow.RecordBatch, err error) {
	defer s.recoverInto(&err, "session", "")
	return sess.Process(ctx, in)
}

// writeOutput writes results in input order, joining the pieces of each
// input batch into one output batch.
func (s *Server) writeOutput(ctx context.Context, w *batchWriter, fn *udfcatalog.UDF,
	results <-chan result, ended <-chan readEnd, info *callInfo) error {
	pending := make(map[int]result)
	var parts []arrow.RecordBatch
	defer func() {
		for _, r := range pending {
			r.out.Release()
		}
		for _, p := range parts {
			p.Release()
		}
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
			parts = append(parts, r.out)
			if err := checkOutput(fn, r); err != nil {
				return err
			}
			if r.piece < r.pieces-1 {
				continue
			}
			out, err := s.join(fn, parts)
			parts = parts[:0]
			if err == nil && w.schema != nil && out.NumCols() != int64(w.schema.NumFields()) {
				out, err = s.fitErrorColumn(fn, r.batch, w.schema, out)
			}
			if err != nil {
				return fmt.Errorf("batch %d: %w", r.batch, err)
			}
			err = w.write(out)
			out.Release()
			if err != nil {
				return fmt.Errorf("batch %d: %w", r.batch, sendError(ctx, err))
			}
			info.batches++
			info.rows += out.NumRows()
		}
	}
	if w.schema == nil { // a deferred schema with no batch to carry it
		if err := w.writeSchema(fn.OutputSchema()); err != nil {
			return sendError(ctx, err)
		}
	}
	return nil
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

// inBatch makes a function error's row index count from the start of the
// client's batch rather than the slice the function saw.
func inBatch(err error, offset int64) error {
	var fe *udfcatalog.FunctionError
	if offset > 0 && errors.As(err, &fe) && fe.Row >= 0 {
		fe.Row += offset
	}
	return err
}

// checkOutput holds a session to the contract: as many rows as went in,
// with the declared types, plus a utf8 error column when the UDF's
// policy is error_column and some row failed. Field names do not travel
// with batches, so they need not match.
func checkOutput(fn *udfcatalog.UDF, r result) error {
	out := r.out
	if out.NumRows() != r.rows {
		return fmt.Errorf("%w: batch %d: returned %d rows for %d input rows", udfcatalog.ErrBadOutput, r.batch, out.NumRows(), r.rows)
	}
	schema := fn.OutputSchema()
	if fn.OnError == udfcatalog.OnErrorColumn && out.NumCols() == 2 {
		schema = fn.ErrorOutputSchema()
	}
	if int(out.NumCols()) != schema.NumFields() {
		return fmt.Errorf("%w: batch %d: returned %d columns, want %d", udfcatalog.ErrBadOutput, r.batch, out.NumCols(), schema.NumFields())
	}
	for i, f := range schema.Fields() {
		if got := out.Column(i).DataType(); !arrow.TypeEqual(got, f.Type) {
			return fmt.Errorf("%w: batch %d: column %d is %s, want %s", udfcatalog.ErrBadOutput, r.batch, i, got, f.Type)
		}
	}
	return nil
}

// join concatenates the outputs of one input batch's pieces and releases
// them. If some piece carries an error column, the others get an empty one.
func (s *Server) join(fn *udfcatalog.UDF, parts []arrow.RecordBatch) (arrow.RecordBatch, error) {
	defer func() {
		for _, p := range parts {
			p.Release()
		}
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

// readError classifies a failure to decode the input stream.
func readError(err error) error {
	var re *recvError
	if errors.As(err, &re) {
		return re
	}
	if errors.Is(err, errMalformedIPC) {
		return err
	}
	return fmt.Errorf("%w: %w", errMalformedIPC, err)
}

// sendError explains a failed Send: usually the client has gone.
func sendError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, errTooLarge):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("send output: %w", err)
}
