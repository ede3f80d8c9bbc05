package flightwire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
)

// maxMessage bounds messages both ways; a 1 Mi-row test batch is ~17 MiB.
const maxMessage = 64 << 20

// exchangeService is a Flight service whose DoExchange is a function.
type exchangeService struct {
	flight.BaseFlightServer
	exchange func(flight.FlightService_DoExchangeServer) error
}

func (s *exchangeService) DoExchange(stream flight.FlightService_DoExchangeServer) error {
	return s.exchange(stream)
}

// startServer serves exchange on a loopback port, with codec as the
// server's codec unless it is nil, and returns an arrow-go client for it.
// Both are closed when the test ends.
func startServer(t testing.TB, codec *Codec, exchange func(flight.FlightService_DoExchangeServer) error,
	opts ...grpc.ServerOption) flight.Client {
	t.Helper()
	return startServerDial(t, codec, exchange, opts, nil)
}

// startServerDial is startServer with extra client dial options.
func startServerDial(t testing.TB, codec *Codec, exchange func(flight.FlightService_DoExchangeServer) error,
	opts []grpc.ServerOption, dial []grpc.DialOption) flight.Client {
	t.Helper()
	opts = append(opts, grpc.MaxRecvMsgSize(maxMessage), grpc.MaxSendMsgSize(maxMessage))
	if codec != nil {
		opts = append(opts, codec.ServerOption())
	}
	srv := flight.NewServerWithMiddleware(nil, opts...)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.InitListener(lis)
	srv.RegisterFlightService(&exchangeService{exchange: exchange})
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)))
	client, err := flight.NewClientWithMiddleware(lis.Addr().String(), nil, nil, dial...)
	if err != nil {
		srv.Shutdown()
		<-served
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		srv.Shutdown()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return client
}

// framePool is the server's gRPC buffer pool: it remembers every buffer
// it handed out (the transport reads each HTTP/2 DATA frame into one), so
// a test can tell a body that references them from a copy.
type framePool struct {
	inner mem.BufferPool
	mu    sync.Mutex
	live  map[uintptr]int // start → capacity
}

func newFramePool() *framePool {
	return &framePool{inner: mem.DefaultBufferPool(), live: make(map[uintptr]int)}
}

func (p *framePool) Get(n int) *[]byte {
	b := p.inner.Get(n)
	p.mu.Lock()
	p.live[uintptr(unsafe.Pointer(unsafe.SliceData(*b)))] = cap(*b)
	p.mu.Unlock()
	return b
}

func (p *framePool) Put(b *[]byte) {
	p.mu.Lock()
	delete(p.live, uintptr(unsafe.Pointer(unsafe.SliceData(*b))))
	p.mu.Unlock()
	p.inner.Put(b)
}

// owns reports whether b lies in a buffer the pool handed out and that
// was not returned yet.
func (p *framePool) owns(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	ptr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p.mu.Lock()
	defer p.mu.Unlock()
	for start, c := range p.live {
		if ptr >= start && ptr+uintptr(len(b)) <= start+uintptr(c) {
			return true
		}
	}
	return false
}

// wireStats is what a server saw of the bodies it received.
type wireStats struct {
	mu       sync.Mutex
	bodies   int // messages with a body
	spanning int // bodies in more than one buffer
	// Body bytes found inside buffers of the server's frame pool, and not.
	// gRPC reads a DATA frame of at most 1 KiB into a plain slice instead
	// of a pool buffer, so small pieces cannot be traced; copiedLarge
	// counts untraced pieces over 1 KiB, which can only be copies.
	inFrames, untraced int
	copiedLarge        int
	buffers            map[int]int // body length → buffers (the latest)
}

func (s *wireStats) observe(m *Message, frames *framePool) {
	if s == nil || m.BodyLen() == 0 {
		return
	}
	var in, untraced, large int
	if frames != nil {
		for _, b := range m.Body {
			switch {
			case frames.owns(b.ReadOnlyData()):
				in += b.Len()
			case mem.IsBelowBufferPoolingThreshold(b.Len()):
				untraced += b.Len()
			default:
				untraced += b.Len()
				large++
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buffers == nil {
		s.buffers = make(map[int]int)
	}
	s.bodies++
	s.inFrames += in
	s.untraced += untraced
	s.copiedLarge += large
	if len(m.Body) > 1 {
		s.spanning++
	}
	s.buffers[m.BodyLen()] = len(m.Body)
}

// rawEcho sends every received message back as it is: the body goes out
// in the very buffers it arrived in.
func rawEcho(stats *wireStats, frames *framePool) func(flight.FlightService_DoExchangeServer) error {
	return func(stream flight.FlightService_DoExchangeServer) error {
		var m Message
		defer m.Free()
		for {
			if err := stream.RecvMsg(&m); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			stats.observe(&m, frames)
			if err := stream.SendMsg(&m); err != nil {
				return err
			}
			m.Free()
		}
	}
}

// releases counts the release hooks of the payloads a server sent.
type releases struct {
	created   atomic.Int64
	released  atomic.Int64
	collected atomic.Int64 // released by the cleanup backstop
	twice     atomic.Int64 // hooks that ran more than once
}

func (r *releases) hook() func(collected bool) {
	if r == nil {
		return func(bool) {}
	}
	r.created.Add(1)
	var ran atomic.Bool
	return func(collected bool) {
		if ran.Swap(true) {
			r.twice.Add(1)
			return
		}
		if collected {
			r.collected.Add(1)
		}
		r.released.Add(1)
	}
}

// arrowEcho decodes the input into record batches and sends them back,
// encoded again with NewPayloadMessage, each with the app_metadata it came
// with; the schema message carries the first descriptor received.
// failAfter > 0 makes it fail after sending that many batches. rel,
// stats and frames may be nil.
func arrowEcho(alloc memory.Allocator, rel *releases, stats *wireStats, frames *framePool, failAfter int) func(flight.FlightService_DoExchangeServer) error {
	return func(stream flight.FlightService_DoExchangeServer) error {
		var desc *flight.FlightDescriptor
		mr := &recvReader{alloc: alloc, recv: func(m *Message) error {
			if err := stream.RecvMsg(m); err != nil {
				return err
			}
			stats.observe(m, frames)
			if desc == nil {
				desc = m.Descriptor
			}
			return nil
		}}
		mr.refs.Store(1)
		defer mr.Release()
		rdr, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(alloc))
		if err != nil {
			return fmt.Errorf("read schema: %w", err)
		}
		defer rdr.Release()
		send := func(p ipc.Payload, meta []byte, first bool) error {
			m, err := newPayloadMessage(&p, rel.hook())
			if err != nil {
				return err
			}
			defer m.Free()
			m.AppMetadata = meta
			if first {
				m.Descriptor = desc
			}
			return stream.SendMsg(m)
		}
		if err := send(ipc.GetSchemaPayload(rdr.Schema(), alloc), nil, true); err != nil {
			return err
		}
		for sent := 0; rdr.Next(); sent++ {
			if failAfter > 0 && sent == failAfter {
				return errors.New("injected failure")
			}
			p, err := ipc.GetRecordBatchPayload(rdr.RecordBatch(), ipc.WithAllocator(alloc))
			if err != nil {
				return err
			}
			if err := send(p, mr.last.AppMetadata, false); err != nil {
				return err
			}
		}
		return rdr.Err()
	}
}

// exchangeResult is what a client got back.
type exchangeResult struct {
	batches []arrow.RecordBatch
	meta    [][]byte
	desc    *flight.FlightDescriptor
}

func (r *exchangeResult) release() {
	for _, b := range r.batches {
		b.Release()
	}
}

// exchange sends batches (each with meta[i] as app_metadata, if meta is
// not nil) on one DoExchange and collects what comes back. descOnly sends
// desc in a message of its own first, as pyarrow and C++ clients do;
// otherwise it rides on the schema message.
func exchange(ctx context.Context, client flight.Client, desc *flight.FlightDescriptor, batches []arrow.RecordBatch,
	meta [][]byte, descOnly bool) (res exchangeResult, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.DoExchange(ctx)
	if err != nil {
		return res, err
	}
	wrote := make(chan error, 1)
	go func() {
		wrote <- func() error {
			if descOnly {
				if err := stream.Send(&flight.FlightData{FlightDescriptor: desc}); err != nil {
					return err
				}
			}
			w := flight.NewRecordWriter(stream, ipc.WithSchema(testSchema))
			if !descOnly {
				w.SetFlightDescriptor(desc)
			}
			for i, b := range batches {
				var err error
				if meta != nil {
					err = w.WriteWithAppMetadata(b, meta[i])
				} else {
					err = w.Write(b)
				}
				if err != nil {
					w.Close()
					return err
				}
			}
			if err := w.Close(); err != nil {
				return err
			}
			return stream.CloseSend()
		}()
	}()
	defer func() {
		cancel() // unblocks the writer if reading failed
		if werr := <-wrote; err == nil && werr != nil && !errors.Is(werr, io.EOF) {
			err = fmt.Errorf("write: %w", werr)
		}
		if err != nil {
			res.release()
			res = exchangeResult{}
		}
	}()
	rdr, err := flight.NewRecordReader(stream)
	if err != nil {
		return res, err
	}
	defer rdr.Release()
	res.desc = rdr.LatestFlightDescriptor()
	for rdr.Next() {
		b := rdr.RecordBatch()
		b.Retain()
		res.batches = append(res.batches, b)
		res.meta = append(res.meta, append([]byte(nil), rdr.LatestAppMetadata()...))
	}
	return res, rdr.Err()
}

// echoN writes batch n times on one exchange while reading the echoes.
func echoN(client flight.Client, schema *arrow.Schema, batch arrow.RecordBatch, n int) (err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := client.DoExchange(ctx)
	if err != nil {
		return err
	}
	wrote := make(chan error, 1)
	go func() {
		wrote <- func() error {
			w := flight.NewRecordWriter(stream, ipc.WithSchema(schema))
			for range n {
				if err := w.Write(batch); err != nil {
					w.Close()
					return err
				}
			}
			if err := w.Close(); err != nil {
				return err
			}
			return stream.CloseSend()
		}()
	}()
	defer func() {
		cancel()
		if werr := <-wrote; err == nil && werr != nil && !errors.Is(werr, io.EOF) {
			err = werr
		}
	}()
	rdr, err := flight.NewRecordReader(stream)
	if err != nil {
		return err
	}
	defer rdr.Release()
	got := int64(0)
	for rdr.Next() {
		got += rdr.RecordBatch().NumRows()
	}
	if err := rdr.Err(); err != nil {
		return err
	}
	if want := int64(n) * batch.NumRows(); got != want {
		return fmt.Errorf("%d rows back, want %d", got, want)
	}
	return nil
}
