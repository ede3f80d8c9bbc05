package flightwire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	flightgen "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

var echoDesc = &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"echo"}}

// TestDoExchangeShape is the test-time half of stream.go's check: the
// generated service still has a bidirectional DoExchange, the method
// whose stream this package's users call RecvMsg on.
func TestDoExchangeShape(t *testing.T) {
	found := 0
	for _, s := range flightgen.FlightService_ServiceDesc.Streams {
		if s.StreamName == "DoExchange" {
			found++
			if !s.ClientStreams || !s.ServerStreams {
				t.Errorf("DoExchange streams: client %v, server %v; want both", s.ClientStreams, s.ServerStreams)
			}
		}
	}
	if found != 1 {
		t.Fatalf("%d DoExchange streams in %s, want 1", found, flightgen.FlightService_ServiceDesc.ServiceName)
	}
}

// TestEcho round-trips batches of many sizes through a real gRPC server
// whose DoExchange works on Messages, with arrow-go's Flight client.
func TestEcho(t *testing.T) {
	sizes := []int{0, 1, 1024, 65536, 1 << 20}
	if testing.Short() {
		sizes = sizes[:4]
	}
	type handler struct {
		name string
		// start returns the exchange function and checks to run at the end.
		start func(t *testing.T, stats *wireStats, frames *framePool) (func(flight.FlightService_DoExchangeServer) error, func())
	}
	handlers := []handler{
		{name: "raw", start: func(t *testing.T, stats *wireStats, frames *framePool) (func(flight.FlightService_DoExchangeServer) error, func()) {
			return rawEcho(stats, frames), func() {}
		}},
		{name: "arrow", start: func(t *testing.T, stats *wireStats, frames *framePool) (func(flight.FlightService_DoExchangeServer) error, func()) {
			alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
			rel := &releases{}
			return arrowEcho(alloc, rel, stats, frames, 0), func() {
				waitReleased(t, rel)
				alloc.AssertSize(t, 0)
			}
		}},
	}
	codec := mustCodec(t)
	for _, h := range handlers {
		for _, rows := range sizes {
			for _, withMeta := range []bool{false, true} {
				for _, descOnly := range []bool{false, true} {
					name := fmt.Sprintf("%s/rows=%d/meta=%v/desc-only=%v", h.name, rows, withMeta, descOnly)
					t.Run(name, func(t *testing.T) {
						stats := &wireStats{}
						frames := newFramePool()
						fn, check := h.start(t, stats, frames)
						client := startServer(t, codec, fn, experimental.BufferPool(frames))
						alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
						defer alloc.AssertSize(t, 0)
						n := 3
						if rows >= 1<<20 {
							n = 1
						}
						var batches []arrow.RecordBatch
						var meta [][]byte
						for i := range n {
							batches = append(batches, makeBatch(alloc, rows, i+1))
							if withMeta {
								meta = append(meta, []byte(fmt.Sprintf("meta-%d", i)))
							}
						}
						defer func() {
							for _, b := range batches {
								b.Release()
							}
						}()
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						defer cancel()
						res, err := exchange(ctx, client, echoDesc, batches, meta, descOnly)
						if err != nil {
							t.Fatal(err)
						}
						defer res.release()
						if !proto.Equal(res.desc, echoDesc) {
							t.Errorf("descriptor = %v, want %v", res.desc, echoDesc)
						}
						if len(res.batches) != len(batches) {
							t.Fatalf("%d batches back, want %d", len(res.batches), len(batches))
						}
						for i := range batches {
							if !array.RecordEqual(res.batches[i], batches[i]) {
								t.Errorf("batch %d differs", i)
							}
							if withMeta && !bytes.Equal(res.meta[i], meta[i]) {
								t.Errorf("batch %d app_metadata = %q, want %q", i, res.meta[i], meta[i])
							}
						}
						check()
						stats.mu.Lock()
						defer stats.mu.Unlock()
						if stats.copiedLarge != 0 {
							t.Errorf("%d received body pieces over 1 KiB are not in gRPC's frame buffers (copied)", stats.copiedLarge)
						}
						// A body over one 16 KiB HTTP/2 frame arrives in several
						// buffers; the decoder kept them apart rather than joining them.
						for size, bufs := range stats.buffers {
							if size > 16384 && bufs < 2 {
								t.Errorf("a %d-byte body arrived in %d buffer", size, bufs)
							}
						}
						t.Logf("%d bodies, %d in more than one buffer (body bytes → buffers: %v); %d body bytes seen in frame buffers, %d in frames too small to trace",
							stats.bodies, stats.spanning, stats.buffers, stats.inFrames, stats.untraced)
					})
				}
			}
		}
	}
}

// TestFrameBoundaries measures how int64 bodies arrive: a 1 Ki-row body
// (8 KiB) usually in one buffer, so BodyBuffer need not copy it, and a
// 64 Ki-row body (512 KiB) always in one buffer per 16 KiB HTTP/2 frame.
func TestFrameBoundaries(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)
	tests := []struct {
		rows         int
		wantSpanning bool
	}{
		{rows: 1 << 10, wantSpanning: false},
		{rows: 1 << 16, wantSpanning: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rows), func(t *testing.T) {
			stats := &wireStats{}
			client := startServer(t, mustCodec(t), rawEcho(stats, nil))
			bld := array.NewInt64Builder(memory.NewGoAllocator())
			for i := range tt.rows {
				bld.Append(int64(i))
			}
			col := bld.NewArray()
			bld.Release()
			batch := array.NewRecordBatch(schema, []arrow.Array{col}, int64(tt.rows))
			col.Release()
			defer batch.Release()
			const n = 8
			if err := echoN(client, schema, batch, n); err != nil {
				t.Fatal(err)
			}
			stats.mu.Lock()
			defer stats.mu.Unlock()
			t.Logf("%d of %d bodies in more than one buffer; body bytes → buffers (the last): %v", stats.spanning, stats.bodies, stats.buffers)
			switch {
			case stats.bodies != n:
				t.Errorf("%d bodies received, want %d", stats.bodies, n)
			case tt.wantSpanning && stats.spanning != n:
				t.Errorf("%d of %d bodies spanned several buffers, want all", stats.spanning, n)
			case !tt.wantSpanning && stats.spanning > n/4:
				// A frame is cut short when the stream's flow-control window
				// (64 KiB at first) runs out mid-message; that happens to
				// about one of these eight messages.
				t.Errorf("%d of %d bodies spanned several buffers, want most in one", stats.spanning, n)
			}
		})
	}
}

// TestWithoutCodec shows what happens when a server forgets the codec:
// RecvMsg(*Message) fails loudly rather than misbehaving.
func TestWithoutCodec(t *testing.T) {
	client := startServer(t, nil, rawEcho(&wireStats{}, nil))
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	b := makeBatch(alloc, 10, 1)
	defer b.Release()
	_, err := exchange(context.Background(), client, echoDesc, []arrow.RecordBatch{b}, nil, false)
	if status.Code(err) != codes.Internal {
		t.Fatalf("exchange error = %v, want codes.Internal", err)
	}
}

// TestReleaseHooks checks that every outgoing body's release hook runs
// exactly once however the exchange ends.
func TestReleaseHooks(t *testing.T) {
	const rows = 65536
	tests := []struct {
		name      string
		failAfter int // the server fails after sending this many batches
		// cancelAfter > 0 makes the client cancel after reading this many
		// batches, while the server still sends.
		cancelAfter int
		wantCode    codes.Code
	}{
		{name: "normal end", wantCode: codes.OK},
		{name: "client cancels", cancelAfter: 2, wantCode: codes.Canceled},
		{name: "server error", failAfter: 3, wantCode: codes.Unknown},
	}
	codec := mustCodec(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
			rel := &releases{}
			stats := &wireStats{}
			served := make(chan error, 1)
			echo := arrowEcho(alloc, rel, stats, nil, tt.failAfter)
			client := startServer(t, codec, func(s flight.FlightService_DoExchangeServer) error {
				err := echo(s)
				served <- err
				return err
			})
			calloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer calloc.AssertSize(t, 0)
			var batches []arrow.RecordBatch
			for i := range 16 {
				batches = append(batches, makeBatch(calloc, rows, i+1))
			}
			defer func() {
				for _, b := range batches {
					b.Release()
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var err error
			if tt.cancelAfter > 0 {
				err = exchangeThenCancel(ctx, client, batches, tt.cancelAfter)
			} else {
				var res exchangeResult
				res, err = exchange(ctx, client, echoDesc, batches, nil, false)
				res.release()
			}
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("exchange error = %v, want code %v", err, tt.wantCode)
			}
			<-served // the handler has returned
			held := rel.created.Load() - rel.released.Load()
			waitReleased(t, rel)
			alloc.AssertSize(t, 0)
			t.Logf("%d payloads sent, %d still held by gRPC when the handler returned; %d released by gRPC, %d by the cleanup backstop",
				rel.created.Load(), held, rel.released.Load()-rel.collected.Load(), rel.collected.Load())
		})
	}
}

// TestReleaseAfterSendMsgReturns shows why a release hook is needed at
// all: gRPC keeps writing a body after SendMsg and even the handler have
// returned, until the peer's flow-control window lets it out.
func TestReleaseAfterSendMsgReturns(t *testing.T) {
	body := bytes.Repeat([]byte{42}, 1<<20)
	released := make(chan struct{})
	returned := make(chan error, 1)
	client := startServerDial(t, mustCodec(t), func(s flight.FlightService_DoExchangeServer) error {
		m := &Message{Header: []byte("header"), Body: NewBody(func() { close(released) }, body)}
		err := s.SendMsg(m)
		m.Free()
		returned <- err
		return err
	}, nil, []grpc.DialOption{
		// A fixed 64 KiB window (no BDP growth): most of the body must
		// wait for the client to read.
		grpc.WithInitialWindowSize(1 << 16), grpc.WithInitialConnWindowSize(1 << 16),
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := client.DoExchange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-returned; err != nil {
		t.Fatalf("SendMsg: %v", err)
	}
	select {
	case <-released:
		t.Fatal("the body was released before the client read it")
	case <-time.After(100 * time.Millisecond):
	}
	fd, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fd.DataBody, body) || string(fd.DataHeader) != "header" {
		t.Fatalf("received %d header and %d body bytes, want 6 and %d", len(fd.DataHeader), len(fd.DataBody), len(body))
	}
	select {
	case <-released:
	case <-ctx.Done():
		t.Fatal("the body was never released")
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after the message = %v, want EOF", err)
	}
}

// TestReleaseOnConnectionLoss: when the connection fails while a body is
// still queued, gRPC v1.85.0 never frees its reference; only the cleanup
// backstop releases the body.
func TestReleaseOnConnectionLoss(t *testing.T) {
	collected := make(chan bool, 1)
	returned := make(chan error, 1)
	client := startServerDial(t, mustCodec(t), func(s flight.FlightService_DoExchangeServer) error {
		b := newBody(func(c bool) { collected <- c })
		b.add(bytes.Repeat([]byte{42}, 1<<20))
		m := &Message{Header: []byte("header"), Body: b.finish()}
		err := s.SendMsg(m)
		m.Free()
		returned <- err
		return err
	}, nil, []grpc.DialOption{grpc.WithInitialWindowSize(1 << 16), grpc.WithInitialConnWindowSize(1 << 16)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := client.DoExchange(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-returned; err != nil {
		t.Fatalf("SendMsg: %v", err)
	}
	client.Close() // drops the connection with most of the body unsent
	for {
		runtime.GC()
		select {
		case c := <-collected:
			t.Logf("released; by the cleanup backstop: %v", c)
			return
		case <-ctx.Done():
			t.Fatal("the body was never released")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// exchangeThenCancel streams batches through an echo, reads n of them
// back and cancels the call.
func exchangeThenCancel(ctx context.Context, client flight.Client, batches []arrow.RecordBatch, n int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.DoExchange(ctx)
	if err != nil {
		return err
	}
	wrote := make(chan error, 1)
	go func() {
		w := flight.NewRecordWriter(stream, ipc.WithSchema(testSchema))
		w.SetFlightDescriptor(echoDesc)
		var err error
		for _, b := range batches {
			if err = w.Write(b); err != nil {
				break
			}
		}
		w.Close()
		wrote <- err
	}()
	defer func() { <-wrote }()
	rdr, err := flight.NewRecordReader(stream)
	if err != nil {
		return err
	}
	defer rdr.Release()
	for range n {
		if !rdr.Next() {
			return fmt.Errorf("the echo ended early: %w", rdr.Err())
		}
	}
	cancel()
	for rdr.Next() {
	}
	if err := rdr.Err(); err != nil {
		return err
	}
	return errors.New("the stream ended without an error after cancel")
}

// waitReleased waits until every payload's release hook ran, running the
// garbage collector for the cleanup backstop, and fails on any hook that
// ran twice.
func waitReleased(t *testing.T, rel *releases) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for rel.released.Load() < rel.created.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d payloads never released", rel.created.Load()-rel.released.Load(), rel.created.Load())
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	if n := rel.twice.Load(); n != 0 {
		t.Fatalf("%d release hooks ran more than once", n)
	}
}
