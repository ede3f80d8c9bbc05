package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// maxMessageBytes matches fletch's default --max-message-bytes.
const maxMessageBytes = 256 << 20

// window is how many batches a stream may have sent and not yet had
// answered: 256 Ki rows' worth, at least 2 and at most 64 batches. Like an
// engine, the writer keeps a bounded pipeline full; per-batch latency then
// includes waiting behind at most window-1 batches.
func window(batchRows int) int { return max(2, min(64, (256<<10)/batchRows)) }

// dial returns the one kind of client every server is driven with.
func dial(addr string) (flight.Client, error) {
	c, err := flight.NewClientWithMiddleware(addr, nil, nil,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return c, nil
}

// caller sends datasets to one function and checks every answer.
type caller struct {
	mem memory.Allocator
	h   digester
	fn  string
}

// streamStats is what one exchange measured.
type streamStats struct {
	rows      int64
	batches   int
	latencies []time.Duration // per batch: from just before it was written to its answer
}

// pipelined streams n batches of d through one exchange, a writer
// goroutine sending while the caller reads, at most window(d.rows) batches
// ahead. Every answer must match its batch's digest, and there must be one
// answer per batch.
func (c caller) pipelined(ctx context.Context, client flight.Client, d *dataset, n int) (streamStats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.DoExchange(ctx)
	if err != nil {
		return streamStats{}, fmt.Errorf("%s: DoExchange: %w", c.fn, err)
	}
	sent := make(chan time.Time, window(d.rows))
	var written int
	var werr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		written, werr = c.write(ctx, stream, d, sent, n)
	}()
	st, rerr := c.read(stream, d, sent)
	if rerr != nil {
		cancel()
	}
	wg.Wait()
	switch {
	case rerr != nil:
		return st, rerr
	case werr != nil:
		return st, werr
	case st.batches != written:
		return st, fmt.Errorf("%s: %d answers to %d batches", c.fn, st.batches, written)
	}
	return st, nil
}

// write sends n batches, recording when each was sent, then closes its
// side. It blocks while sent is full: the window is full.
func (c caller) write(ctx context.Context, stream flight.FlightService_DoExchangeClient, d *dataset, sent chan<- time.Time, n int) (int, error) {
	defer close(sent)
	w := flight.NewRecordWriter(stream, ipc.WithSchema(d.schema), ipc.WithAllocator(c.mem))
	w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{c.fn}})
	for i := range n {
		select {
		case sent <- time.Now():
		case <-ctx.Done():
			return i, nil // the reader failed and says why
		}
		if err := w.Write(d.batches[i%len(d.batches)]); err != nil {
			if errors.Is(err, io.EOF) {
				return i + 1, nil // the server ended the exchange; the reader gets its status
			}
			return i + 1, fmt.Errorf("%s: write batch %d: %w", c.fn, i, err)
		}
	}
	if err := w.Close(); err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("%s: close writer: %w", c.fn, err)
	}
	if err := stream.CloseSend(); err != nil {
		return n, fmt.Errorf("%s: close send: %w", c.fn, err)
	}
	return n, nil
}

// read checks every answer of an exchange against d.
func (c caller) read(stream flight.FlightService_DoExchangeClient, d *dataset, sent <-chan time.Time) (streamStats, error) {
	var st streamStats
	rdr, err := flight.NewRecordReader(stream, ipc.WithAllocator(c.mem))
	if err != nil {
		return st, fmt.Errorf("%s: read answer schema: %w", c.fn, err)
	}
	defer rdr.Release()
	for rdr.Next() {
		t, ok := <-sent
		if !ok {
			return st, fmt.Errorf("%s: more answers than batches sent", c.fn)
		}
		lat := time.Since(t)
		if err := c.check(st.batches, d, rdr); err != nil {
			return st, err
		}
		st.rows += rdr.RecordBatch().NumRows()
		st.batches++
		st.latencies = append(st.latencies, lat)
	}
	if err := rdr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return st, fmt.Errorf("%s: after %d answers: %w", c.fn, st.batches, err)
	}
	return st, nil
}

// check compares answer i with the digest of the batch it answers.
func (c caller) check(i int, d *dataset, rdr *flight.Reader) error {
	rec := rdr.RecordBatch()
	if rec.NumCols() != 1 {
		return fmt.Errorf("%s: WRONG ANSWER to batch %d: %d columns, want 1", c.fn, i, rec.NumCols())
	}
	got, err := c.h.of(rec.Column(0))
	if err != nil {
		return fmt.Errorf("%s: WRONG ANSWER to batch %d: %w", c.fn, i, err)
	}
	if want := d.want[i%len(d.want)]; got != want {
		return fmt.Errorf("%s: WRONG ANSWER to batch %d: got %v, want %v", c.fn, i, got, want)
	}
	return nil
}

// lockstep sends one batch of d at a time through one exchange and waits
// for its answer before sending the next; it returns the round trip of
// each batch after the first warmup ones.
func (c caller) lockstep(ctx context.Context, client flight.Client, d *dataset, warmup, iters int) ([]time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.DoExchange(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: DoExchange: %w", c.fn, err)
	}
	w := flight.NewRecordWriter(stream, ipc.WithSchema(d.schema), ipc.WithAllocator(c.mem))
	w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{c.fn}})
	var rdr *flight.Reader
	defer func() {
		if rdr != nil {
			rdr.Release()
		}
	}()
	lats := make([]time.Duration, 0, iters)
	for i := range warmup + iters {
		start := time.Now()
		if err := w.Write(d.batches[i%len(d.batches)]); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: write batch %d: %w", c.fn, i, err)
		}
		if rdr == nil {
			// The schema comes with or before the first answer.
			if rdr, err = flight.NewRecordReader(stream, ipc.WithAllocator(c.mem)); err != nil {
				return nil, fmt.Errorf("%s: read answer schema: %w", c.fn, err)
			}
		}
		if !rdr.Next() {
			err := rdr.Err()
			if err == nil || errors.Is(err, io.EOF) {
				err = errors.New("the exchange ended")
			}
			return nil, fmt.Errorf("%s: no answer to batch %d: %w", c.fn, i, err)
		}
		lat := time.Since(start)
		if err := c.check(i, d, rdr); err != nil {
			return nil, err
		}
		if i >= warmup {
			lats = append(lats, lat)
		}
	}
	if err := w.Close(); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: close writer: %w", c.fn, err)
	}
	if err := stream.CloseSend(); err != nil {
		return nil, fmt.Errorf("%s: close send: %w", c.fn, err)
	}
	if rdr.Next() {
		return nil, fmt.Errorf("%s: an answer after the last batch", c.fn)
	}
	if err := rdr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: end of exchange: %w", c.fn, err)
	}
	return lats, nil
}

// multi runs one pipelined exchange of n batches per client at once, and
// returns their stats and the wall time from the start of the first to the
// end of the last.
func (c caller) multi(ctx context.Context, clients []flight.Client, d *dataset, n int) ([]streamStats, time.Duration, error) {
	stats := make([]streamStats, len(clients))
	errs := make([]error, len(clients))
	start := time.Now()
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats[i], errs[i] = c.pipelined(ctx, cl, d, n)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, err := range errs {
		if err != nil {
			return nil, 0, fmt.Errorf("stream %d of %d: %w", i+1, len(clients), err)
		}
	}
	return stats, elapsed, nil
}
