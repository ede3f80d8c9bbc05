package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// notSupportedYet is the status of a workload the server does not serve
// (yet): fletch without async UDF support.
const notSupportedYet = "not supported yet"

// member is one running server of the fleet.
type member struct {
	spec     serverSpec
	proc     *process
	clients  []flight.Client             // one per concurrent stream
	inTypes  map[string][]arrow.DataType // workload → the input types the server declares
	missing  map[string]string           // workload → why it is not measured
	versions string                      // what the server says it runs
}

// fleet is every selected server, running at once so that measurements of
// one configuration can be interleaved across servers.
type fleet struct {
	members []*member
}

// startFleet starts every selected server, waits for each to answer and
// learns the signatures it declares.
func startFleet(ctx context.Context, e *env, mem memory.Allocator, h digester, streams int) (*fleet, error) {
	f := &fleet{}
	for _, s := range servers() {
		if !wanted(e.cfg, s) {
			continue
		}
		p, err := launch(e, s, e.state, "bench")
		if err != nil {
			f.stop()
			return nil, err
		}
		f.members = append(f.members, &member{spec: s, proc: p, missing: map[string]string{}})
	}
	probe := prober(mem, h)
	for _, m := range f.members {
		if _, err := awaitFirstAnswer(ctx, m.proc, probe, 3*time.Minute); err != nil {
			f.stop()
			return nil, err
		}
		for range streams {
			c, err := dial(m.proc.addr)
			if err != nil {
				f.stop()
				return nil, err
			}
			m.clients = append(m.clients, c)
		}
		if err := m.discover(ctx, mem); err != nil {
			f.stop()
			return nil, err
		}
	}
	return f, nil
}

// stop ends every server; it reports servers that had died on their own.
func (f *fleet) stop() error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range f.members {
		for _, c := range m.clients {
			c.Close()
		}
		m.clients = nil
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.proc.stop(10 * time.Second); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	f.members = nil
	return errors.Join(errs...)
}

// serving lists the members that compute workload w.
func (f *fleet) serving(w string) []*member {
	var ms []*member
	for _, m := range f.members {
		if m.spec.serves(w) && m.missing[w] == "" {
			ms = append(ms, m)
		}
	}
	return ms
}

// discover asks the server for the signature of each of its workloads and
// checks it: the harness sends the input types the server declares (large_utf8
// to databend-udf). A missing async function is "not supported yet"; any
// other missing or odd signature fails the run.
func (m *member) discover(ctx context.Context, mem memory.Allocator) error {
	m.inTypes = map[string][]arrow.DataType{}
	if m.spec.versions {
		v, err := callVersions(ctx, m.clients[0], mem)
		if err != nil {
			return fmt.Errorf("%s: versions: %w", m.spec.name, err)
		}
		m.versions = v
	}
	if !m.spec.declares {
		return nil
	}
	for _, name := range m.spec.workloads {
		w := workloadByName(name)
		info, err := m.clients[0].GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{w.fn}})
		if status.Code(err) == codes.NotFound && strings.HasPrefix(name, "async") {
			m.missing[name] = notSupportedYet
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: GetFlightInfo %s: %w", m.spec.name, w.fn, err)
		}
		schema, err := flight.DeserializeSchema(info.Schema, mem)
		if err != nil {
			return fmt.Errorf("%s: signature of %s: %w", m.spec.name, w.fn, err)
		}
		types, err := checkSignature(w, schema)
		if err != nil {
			return fmt.Errorf("%s: signature of %s: %w", m.spec.name, w.fn, err)
		}
		m.inTypes[name] = types
	}
	return nil
}

// checkSignature checks that schema (inputs, then the output) fits w and
// returns the input types.
func checkSignature(w workload, schema *arrow.Schema) ([]arrow.DataType, error) {
	if schema.NumFields() != len(w.args)+1 {
		return nil, fmt.Errorf("%d fields (%s), want %d inputs and an output", schema.NumFields(), schema, len(w.args))
	}
	fits := func(k kind, t arrow.DataType) bool {
		if k == kindInt64 {
			return t.ID() == arrow.INT64
		}
		return t.ID() == arrow.STRING || t.ID() == arrow.LARGE_STRING
	}
	var types []arrow.DataType
	for i, c := range append(w.args[:len(w.args):len(w.args)], w.result) {
		t := schema.Field(i).Type
		if !fits(c.kind, t) {
			return nil, fmt.Errorf("field %d is %s", i, t)
		}
		types = append(types, t)
	}
	return types[:len(w.args)], nil
}

// prober returns the first-call probe: echo_int64 on one row, checked. A
// failure to connect is errNotReady.
func prober(mem memory.Allocator, h digester) func(ctx context.Context, addr string) error {
	return func(ctx context.Context, addr string) error {
		d, err := newDataset(mem, h, workloadByName("identity_int64"), nil, 1, 1)
		if err != nil {
			return err
		}
		defer d.release()
		client, err := dial(addr) // a new connection each time: no reconnect backoff
		if err != nil {
			return err
		}
		defer client.Close()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err = caller{mem: mem, h: h, fn: "echo_int64"}.lockstep(ctx, client, d, 0, 1)
		if code := status.Code(err); code == codes.Unavailable {
			return fmt.Errorf("%w: %v", errNotReady, err)
		}
		return err
	}
}

// callVersions calls `versions` on one row and returns its answer.
func callVersions(ctx context.Context, client flight.Client, mem memory.Allocator) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := client.DoExchange(ctx)
	if err != nil {
		return "", err
	}
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Append(0)
	col := b.NewArray()
	defer col.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 1)
	defer rec.Release()
	w := flight.NewRecordWriter(stream, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"versions"}})
	if err := w.Write(rec); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if err := w.Close(); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if err := stream.CloseSend(); err != nil {
		return "", err
	}
	rdr, err := flight.NewRecordReader(stream, ipc.WithAllocator(mem))
	if err != nil {
		return "", err
	}
	defer rdr.Release()
	var text string
	for rdr.Next() {
		if out := rdr.RecordBatch(); out.NumRows() == 1 && out.NumCols() == 1 {
			if s, ok := out.Column(0).(interface{ Value(int) string }); ok {
				text = s.Value(0)
			}
		}
	}
	if err := rdr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if text == "" {
		return "", errors.New("no text in the answer")
	}
	return text, nil
}
