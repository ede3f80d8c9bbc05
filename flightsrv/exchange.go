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
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/metadata"

	"github.com/fletch-udf/fletch/internal/arrowsafe"
	"github.com/fletch-udf/fletch/internal/flightwire"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// An exchange runs three stages at once, so a long stream needs memory for
// only a few batches: the reader decodes, checks and slices input (its own
// goroutine), Parallelism() workers call the Session, and the handler
// goroutine writes outputs back in input order.

// job is one slice of one input batch.
type job struct {
	seq      int   // position among all jobs of the exchange
	batch    int   // index of the input batch it came from
	piece    int   // index among that batch's slices
	pieces   int   //
	offset   int64 // the slice's first row within its input batch
	exOffset int64 // the slice's first row within the whole exchange
	bytes    int64 // what it holds of the read-ahead budget
	in       arrow.RecordBatch
}

// result is a job's outputs.
type result struct {
	job
	rows int64
	outs []arrow.RecordBatch
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

func (s *Server) exchange(ctx context.Context, stream msgStream, info *callInfo) error {
	first := new(flightwire.Message)
	if err := stream.RecvMsg(first); err == io.EOF {
		return fmt.Errorf("%w: the exchange ended before its first message", errBadRequest)
	} else if err != nil {
		return fromRecv(err)
	}
	handedOver := false
	defer func() {
		if !handedOver {
			first.Free()
		}
	}()
	raw, err := optionsFrom(ctx)
	if err != nil {
		return err
	}
	options, err := udfcatalog.ParseExchangeOptions(raw)
	if err != nil {
		return err
	}
	fn, sess, err := s.start(ctx, first.Descriptor, options, raw)
	if err != nil {
		return err
	}
	info.function = fn.Name
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
	q := &queue{jobs: make(chan job, maxQueuedJobs), budget: semaphore.NewWeighted(int64(s.opts.MaxBatchBytes))}
	results := make(chan result)
	ended := make(chan readEnd, 1)

	s.readers.Add(1)
	handedOver = true
	go s.readInput(ctx, stream, first, fn, q, ended)

	var workers sync.WaitGroup
	for range max(1, sess.Parallelism()) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			s.runJobs(ctx, sess, fn, q, results)
		}()
	}
	err = s.writeOutput(ctx, w, fn, sess, results, ended, info)
	cancel()
	workers.Wait()
	q.drain()
	return err
}

// start looks up the UDF and opens a session on the version found. A
// version replaced between the two steps is looked up again, so a reload
// never fails an exchange.
func (s *Server) start(ctx context.Context, desc *flight.FlightDescriptor, options udfcatalog.ExchangeOptions,
	raw []byte) (*udfcatalog.UDF, Session, error) {
	for attempt := 1; ; attempt++ {
		found, err := s.lookup(desc)
		if err != nil {
			return nil, nil, err
		}
		fn, err := found.ForExchange(options)
		if err != nil {
			return nil, nil, err
		}
		sess, err := s.open(ctx, fn, raw)
		if err == nil {
			return fn, sess, nil
		}
		if !errors.Is(err, udfcatalog.ErrStale) || attempt == maxStaleRetries {
			return nil, nil, err
		}
	}
}

// maxStaleRetries bounds start's retries; each needs a reload to complete
// between a lookup and an open.
const maxStaleRetries = 5

// OptionsHeader is the gRPC request header that carries an exchange's
// options as a JSON object. A header, unlike app_metadata on the first
// message, can be set from every Flight client library.
const OptionsHeader = "fletch-options"

func optionsFrom(ctx context.Context) ([]byte, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get(OptionsHeader)
	switch len(values) {
	case 0:
		return nil, nil
	case 1:
		return []byte(values[0]), nil
	}
	return nil, fmt.Errorf("%w: %d %s headers; send one JSON object", errBadRequest, len(values), OptionsHeader)
}

// queue holds the jobs the reader has decoded ahead of the workers, so
// that a worker can take several at once (see CoalescingSession), within
// a byte budget that bounds an exchange's read-ahead.
type queue struct {
	jobs   chan job
	budget *semaphore.Weighted // of MaxBatchBytes
}

// maxQueuedJobs bounds the read-ahead in batches; budget bounds it in bytes.
const maxQueuedJobs = 256

// drain releases the jobs queued now. Both the handler, once its workers
// have stopped, and a reader that outlives it drain, so nothing queued
// after the last worker took its last job is left.
func (q *queue) drain() {
	for {
		select {
		case j, ok := <-q.jobs:
			if !ok {
				return
			}
			j.in.Release()
		default:
			return
		}
	}
}

// readInput decodes the input stream into jobs. It may outlive the handler
// while blocked in Recv, until gRPC ends the stream; s.readers tracks it.
func (s *Server) readInput(ctx context.Context, stream msgStream, first *flightwire.Message,
	fn *udfcatalog.UDF, q *queue, ended chan<- readEnd) {
	defer s.readers.Done()
	sent := 0
	var err error
	defer func() {
		close(q.jobs)
		if ctx.Err() != nil { // the exchange is over: no worker takes what is left
			q.drain()
		}
		ended <- readEnd{jobs: sent, err: err}
	}()
	defer s.recoverInto(&err, "exchange reader", fn.Name)

	mr := newMessageReader(stream, first, s.bodies, int64(s.opts.MaxMessageBytes))
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
	maxRows := s.maxRows(fn)
	exRows := int64(0) // input rows before the current slice
	for batch := 0; rdr.Next(); batch++ {
		var pieces []arrow.RecordBatch
		if pieces, err = s.prepare(ctx, plan, maxRows, batch, rdr.RecordBatch()); err != nil {
			return
		}
		if len(pieces) == 1 && plan.Exact() {
			// The client's message encodes the batch as the UDF declares
			// it: a session may forward it instead of encoding it again.
			enc := arrowsafe.NewEncoded(pieces[0], mr.header, mr.body)
			pieces[0].Release()
			pieces[0] = enc
		}
		offset := int64(0)
		for i, p := range pieces {
			j := job{seq: sent, batch: batch, piece: i, pieces: len(pieces), offset: offset, exOffset: exRows, in: p,
				bytes: min(util.TotalRecordSize(p), int64(s.opts.MaxBatchBytes))}
			if err = q.budget.Acquire(ctx, j.bytes); err == nil {
				select {
				case q.jobs <- j:
				case <-ctx.Done():
					err = ctx.Err()
				}
			}
			if err != nil {
				release(pieces[i:])
				return
			}
			sent++
			offset += p.NumRows()
			exRows += p.NumRows()
		}
	}
	if rerr := rdr.Err(); rerr != nil {
		err = readError(rerr)
	}
}

// maxRows is the most input rows one call to fn's session sees.
func (s *Server) maxRows(fn *udfcatalog.UDF) int {
	if fn.MaxBatchRows > 0 {
		return min(s.opts.MaxBatchRows, fn.MaxBatchRows)
	}
	return s.opts.MaxBatchRows
}

// prepare validates one input batch, conforms it to the UDF's parameters
// and slices it to the batch limits. The caller owns the pieces.
func (s *Server) prepare(ctx context.Context, plan *udfcatalog.InputPlan, maxRows, batch int, rec arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	if err := s.validate(rec); err != nil {
		return nil, fmt.Errorf("%w: batch %d: %w", errMalformedIPC, batch, err)
	}
	in, err := plan.Apply(ctx, s.mem, rec)
	if err != nil {
		return nil, fmt.Errorf("batch %d: %w", batch, err)
	}
	return s.split(in, maxRows), nil
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

// split slices rec to at most maxRows rows and about MaxBatchBytes bytes
// per piece. It takes ownership of rec.
func (s *Server) split(rec arrow.RecordBatch, maxRows int) []arrow.RecordBatch {
	rows := rec.NumRows()
	per := int64(maxRows)
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
// exchange ends. For a scalar UDF whose session coalesces, it takes the
// jobs already queued behind the first, up to the batch limits, as one
// call; it never waits for more.
func (s *Server) runJobs(ctx context.Context, sess Session, fn *udfcatalog.UDF, q *queue, results chan<- result) {
	coalesce, _ := sess.(CoalescingSession)
	if fn.Kind != udfcatalog.KindScalar {
		coalesce = nil
	}
	var carry *job // taken from the queue, but too large to join the last group
	for {
		var group []job
		if carry != nil {
			group, carry = []job{*carry}, nil
		} else {
			select {
			case j, ok := <-q.jobs:
				if !ok {
					return
				}
				group = []job{j}
			case <-ctx.Done():
				return
			}
		}
		if coalesce != nil {
			group, carry = s.gather(q, group, s.maxRows(fn))
		}
		for _, j := range group {
			q.budget.Release(j.bytes)
		}
		var rs []result
		if len(group) == 1 {
			j := group[0]
			r := result{job: j, rows: j.in.NumRows()}
			r.outs, r.err = s.process(ctx, sess, j.in)
			j.in.Release()
			rs = []result{r}
		} else {
			rs = s.processGroup(ctx, coalesce, fn, group)
		}
		for i, r := range rs {
			select {
			case results <- r:
			case <-ctx.Done():
				for _, rest := range rs[i:] {
					release(rest.outs)
				}
				if carry != nil {
					carry.in.Release()
				}
				return
			}
		}
	}
}

// gather adds to group the jobs already queued, while their rows and bytes
// stay within one call's limits. A job taken that does not fit is returned
// as carry, to start the next group.
func (s *Server) gather(q *queue, group []job, maxRows int) ([]job, *job) {
	rows, size := group[0].in.NumRows(), group[0].bytes
	for len(group) < maxQueuedJobs {
		select {
		case j, ok := <-q.jobs:
			if !ok {
				return group, nil
			}
			if rows+j.in.NumRows() > int64(maxRows) || size+j.bytes > int64(s.opts.MaxBatchBytes) {
				return group, &j
			}
			group = append(group, j)
			rows += j.in.NumRows()
			size += j.bytes
		default:
			return group, nil
		}
	}
	return group, nil
}

// processGroup evaluates several jobs in one call, one output per job. A
// failure is reported on the job it belongs to; the exchange ends with it,
// so the others need no result.
func (s *Server) processGroup(ctx context.Context, sess CoalescingSession, fn *udfcatalog.UDF, group []job) []result {
	ins := make([]arrow.RecordBatch, len(group))
	for i, j := range group {
		ins[i] = j.in
	}
	outs, err := s.processAll(ctx, sess, ins)
	release(ins)
	if err == nil && len(outs) != len(group) {
		release(outs)
		err = fmt.Errorf("%w: returned %d batches for %d input batches", udfcatalog.ErrBadOutput, len(outs), len(group))
	}
	if err != nil {
		k := rowOwner(err, group)
		return []result{{job: group[k], rows: group[k].in.NumRows(), err: err}}
	}
	rs := make([]result, len(group))
	for i, j := range group {
		out := outs[i]
		if fn.OnError == udfcatalog.OnErrorColumn {
			out = dropUnusedErrorColumn(fn, out)
		}
		rs[i] = result{job: j, rows: j.in.NumRows(), outs: []arrow.RecordBatch{out}}
	}
	return rs
}

// rowOwner finds the job a coalesced call's failing row belongs to, and
// makes the error's row count within that job. Failures without a row
// belong to the first job.
func rowOwner(err error, group []job) int {
	var fe *udfcatalog.FunctionError
	if !errors.As(err, &fe) || fe.Row < 0 {
		return 0
	}
	for k, j := range group {
		if fe.Row < j.in.NumRows() {
			return k
		}
		fe.Row -= j.in.NumRows()
	}
	return len(group) - 1
}

// dropUnusedErrorColumn removes the error column from an output in which
// no row failed: one coalesced call carries it for all its batches when
// any row failed, and each output batch should carry it only when one of
// its own rows failed, as without coalescing. It takes ownership of out.
func dropUnusedErrorColumn(fn *udfcatalog.UDF, out arrow.RecordBatch) arrow.RecordBatch {
	if out.NumCols() != 2 || out.Column(1).NullN() != int(out.NumRows()) {
		return out
	}
	defer out.Release()
	return array.NewRecordBatch(fn.OutputSchema(), out.Columns()[:1], out.NumRows())
}

func (s *Server) processAll(ctx context.Context, sess CoalescingSession, ins []arrow.RecordBatch) (outs []arrow.RecordBatch, err error) {
	defer s.recoverInto(&err, "session", "")
	return sess.ProcessAll(ctx, ins)
}

func (s *Server) process(ctx context.Context, sess Session, in arrow.RecordBatch) (outs []arrow.RecordBatch, err error) {
	defer s.recoverInto(&err, "session", "")
	return sess.Process(ctx, in)
}

func release(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
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
