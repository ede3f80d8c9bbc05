package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"

	"github.com/fletch-udf/fletch/benchmarks/echoserver"
)

// serveFlight runs srv on a loopback port until the test ends and returns
// a client for it.
func serveFlight(t *testing.T, srv flight.FlightServer) flight.Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(maxMessageBytes), grpc.MaxSendMsgSize(maxMessageBytes))
	flight.RegisterFlightServiceServer(gs, srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		gs.Serve(lis)
	}()
	client, err := dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		gs.Stop()
		<-served
	})
	return client
}

// spoiler echoes, except that it changes or drops answer `at`.
type spoiler struct {
	flight.BaseFlightServer
	mem  memory.Allocator
	at   int
	drop bool
}

func (s *spoiler) DoExchange(stream flight.FlightService_DoExchangeServer) error {
	rdr, err := flight.NewRecordReader(stream, ipc.WithAllocator(s.mem))
	if err != nil {
		return err
	}
	defer rdr.Release()
	w := flight.NewRecordWriter(stream, ipc.WithSchema(rdr.Schema()), ipc.WithAllocator(s.mem))
	defer w.Close()
	for i := 0; rdr.Next(); i++ {
		rec := rdr.RecordBatch()
		switch {
		case i == s.at && s.drop:
			continue
		case i == s.at:
			vals := append([]int64(nil), rec.Column(0).(*array.Int64).Int64Values()...)
			vals[len(vals)/2]++
			b := array.NewInt64Builder(s.mem)
			b.AppendValues(vals, nil)
			col := b.NewArray()
			b.Release()
			bad := array.NewRecordBatch(rec.Schema(), []arrow.Array{col}, rec.NumRows())
			col.Release()
			err = w.Write(bad)
			bad.Release()
		default:
			err = w.Write(rec)
		}
		if err != nil {
			return err
		}
	}
	return rdr.Err()
}

func testDataset(t *testing.T, mem memory.Allocator, h digester, name string, types []arrow.DataType, rows, count int) *dataset {
	t.Helper()
	d, err := newDataset(mem, h, workloadByName(name), types, rows, count)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.release)
	return d
}

func TestPipelinedChecksEveryAnswer(t *testing.T) {
	mem := memory.NewGoAllocator()
	h := newDigester()
	client := serveFlight(t, echoserver.New(mem))
	for _, tc := range []struct {
		name  string
		types []arrow.DataType
	}{
		{"identity_int64", nil},
		{"identity_utf8", nil},
		{"identity_utf8", []arrow.DataType{arrow.BinaryTypes.LargeString}},
	} {
		d := testDataset(t, mem, h, tc.name, tc.types, 100, 3)
		st, err := caller{mem: mem, h: h, fn: "f"}.pipelined(context.Background(), client, d, 7)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.name, tc.types, err)
		}
		if st.rows != 700 || st.batches != 7 || len(st.latencies) != 7 {
			t.Errorf("%s: %d rows in %d batches, %d latencies; want 700 in 7", tc.name, st.rows, st.batches, len(st.latencies))
		}
	}
}

func TestMultiPoolsStreams(t *testing.T) {
	mem := memory.NewGoAllocator()
	h := newDigester()
	a, b := serveFlight(t, echoserver.New(mem)), serveFlight(t, echoserver.New(mem))
	d := testDataset(t, mem, h, "identity_int64", nil, 64, 2)
	stats, elapsed, err := caller{mem: mem, h: h, fn: "f"}.multi(context.Background(), []flight.Client{a, b}, d, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got := summarize(stats, elapsed); got.rows != 2*5*64 || got.elapsed <= 0 {
		t.Errorf("summary %+v, want 640 rows", got)
	}
}

func TestLockstep(t *testing.T) {
	mem := memory.NewGoAllocator()
	h := newDigester()
	client := serveFlight(t, echoserver.New(mem))
	d := testDataset(t, mem, h, "identity_int64", nil, 16, 4)
	lats, err := caller{mem: mem, h: h, fn: "f"}.lockstep(context.Background(), client, d, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(lats) != 10 {
		t.Errorf("%d round trips recorded, want 10 (after 3 warm-up)", len(lats))
	}
}

// A wrong or missing answer fails the measurement, loudly.
func TestWrongAnswersFail(t *testing.T) {
	mem := memory.NewGoAllocator()
	h := newDigester()
	d := testDataset(t, mem, h, "identity_int64", nil, 32, 3)
	c := caller{mem: mem, h: h, fn: "f"}
	ctx := context.Background()

	changed := serveFlight(t, &spoiler{mem: mem, at: 4})
	if _, err := c.pipelined(ctx, changed, d, 6); err == nil || !strings.Contains(err.Error(), "WRONG ANSWER to batch 4") {
		t.Errorf("pipelined with a changed answer: %v", err)
	}
	if _, err := c.lockstep(ctx, changed, d, 0, 6); err == nil || !strings.Contains(err.Error(), "WRONG ANSWER to batch 4") {
		t.Errorf("lockstep with a changed answer: %v", err)
	}
	dropped := serveFlight(t, &spoiler{mem: mem, at: 2, drop: true})
	if _, err := c.pipelined(ctx, dropped, d, 6); err == nil {
		t.Error("pipelined with a dropped answer: no error")
	}
}

func TestAwaitFirstAnswerRetriesUntilListening(t *testing.T) {
	mem := memory.NewGoAllocator()
	h := newDigester()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{name: "late", addr: addr, started: time.Now(), done: make(chan struct{})}
	lis := make(chan net.Listener, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			close(lis)
			return
		}
		lis <- l
	}()
	gs := grpc.NewServer()
	flight.RegisterFlightServiceServer(gs, echoserver.New(mem))
	served := make(chan struct{})
	go func() {
		defer close(served)
		if l, ok := <-lis; ok {
			gs.Serve(l)
		}
	}()
	defer func() { gs.Stop(); <-served }()
	took, err := awaitFirstAnswer(context.Background(), p, prober(mem, h), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if took < 100*time.Millisecond {
		t.Errorf("answered after %v, before the server listened", took)
	}
	if errors.Is(err, errNotReady) {
		t.Error("errNotReady leaked")
	}
}
