package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// This file holds what the client verbs (list, describe, call) share:
// their common flags, dialing, discovery, the exchange and error messages.

const (
	defaultAddress = "127.0.0.1:8815"
	// clientMaxMessage is the largest gRPC message the client sends or
	// accepts; the server's own limit (--max-message-bytes) still applies.
	clientMaxMessage = 1 << 30
	// exchangeInFlight bounds the input batches sent but not yet answered,
	// and so the client's memory.
	exchangeInFlight = 4
)

// cliEnv is what a client verb reads and writes. mem allocates every
// Arrow buffer the verb creates.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	mem            memory.Allocator
}

func osEnv(stdout, stderr io.Writer) cliEnv {
	return cliEnv{stdin: os.Stdin, stdout: stdout, stderr: stderr, mem: memory.DefaultAllocator}
}

// clientFlags are the flags every client verb takes.
type clientFlags struct {
	address string
	timeout time.Duration
}

func (c *clientFlags) register(fs *flag.FlagSet, defaultTimeout time.Duration) {
	fs.StringVar(&c.address, "address", defaultAddress, "server `host:port` (environment: FLETCH_ADDRESS)")
	what := "give up after this `duration`, e.g. 30s or 5m (0: never)"
	fs.DurationVar(&c.timeout, "timeout", defaultTimeout, what)
}

// parseClientFlags parses args, which may mix flags and positional
// arguments, and applies FLETCH_ADDRESS. It returns the positional ones.
func parseClientFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error(), reported: true} // flag has printed it
		}
		if fs.NArg() == 0 {
			break
		}
		rest := fs.Args()
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...) // everything after "--"
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Only --address has an environment variable: FLETCH_INPUT or
	// FLETCH_ROWS silently changing a call would surprise.
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	envFS := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	if f := fs.Lookup("address"); f != nil && !given["address"] {
		envFS.Var(f.Value, f.Name, f.Usage)
	}
	return positional, applyEnv(envFS)
}

// client is a Flight connection to a fletch server.
type client struct {
	addr    string
	fc      flight.Client
	timeout time.Duration
}

// dial connects lazily: an unreachable server shows on the first call.
func dial(cf clientFlags) (*client, error) {
	if cf.address == "" {
		return nil, &usageError{msg: "--address is empty"}
	}
	if cf.timeout < 0 {
		return nil, &usageError{msg: fmt.Sprintf("--timeout must not be negative, got %s", cf.timeout)}
	}
	fc, err := flight.NewClientWithMiddleware(cf.address, nil, nil,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(clientMaxMessage), grpc.MaxCallSendMsgSize(clientMaxMessage)))
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", cf.address, err)
	}
	return &client{addr: cf.address, fc: fc, timeout: cf.timeout}, nil
}

func (c *client) Close() error { return c.fc.Close() }

// withTimeout applies --timeout, if any, to ctx.
func (c *client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout > 0 {
		return context.WithTimeout(ctx, c.timeout)
	}
	return context.WithCancel(ctx)
}

// udfInfo is the JSON a server describes a UDF with (docs/protocol.md,
// app_metadata). Types stay text, so that a newer server's types still list.
type udfInfo struct {
	Name       string      `json:"name"`
	Kind       string      `json:"kind"`
	Language   string      `json:"language"`
	Params     []fieldInfo `json:"params"`
	Return     fieldInfo   `json:"return"`
	Doc        string      `json:"doc"`
	Volatility string      `json:"volatility"`
	OnError    string      `json:"on_error"`
	Version    string      `json:"version"`
}

// The on_error policies of app_metadata: what a failing row does.
const (
	onErrorRaise  = "raise"
	onErrorNull   = "null"
	onErrorColumn = "error_column"
	// errorColumn names the column of an error_column UDF's messages.
	errorColumn = "error"
)

// errorColumns reports whether u's outputs may carry an error column:
// only a scalar function's do (docs/protocol.md, DoExchange).
func (u *udfInfo) errorColumns() bool {
	return u.Kind == kindScalar && u.OnError == onErrorColumn
}

type fieldInfo struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
}

// callForm renders u as `name(a int64, b utf8)`, for messages about
// its parameters.
func (u *udfInfo) callForm() string {
	sig := u.signature()
	return sig[:strings.LastIndex(sig, " -> ")]
}

// signature renders u as `name(a int64, b utf8 null) -> int64`, as the
// server logs it.
func (u *udfInfo) signature() string {
	var b strings.Builder
	b.WriteString(u.Name)
	b.WriteByte('(')
	for i, p := range u.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		if p.Name != "" {
			b.WriteString(p.Name)
			b.WriteByte(' ')
		}
		b.WriteString(p.Type)
		if p.Nullable {
			b.WriteString(" null")
		}
	}
	b.WriteString(") -> ")
	b.WriteString(u.Return.Type)
	return b.String()
}

// listUDFs runs the list action; it returns the JSON body as sent and
// its decoded entries.
func (c *client) listUDFs(ctx context.Context) (json.RawMessage, []udfInfo, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	stream, err := c.fc.DoAction(ctx, &flight.Action{Type: "list"})
	if err != nil {
		return nil, nil, c.rpcError(ctx, "list", err)
	}
	res, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("the server at %s answered the list action with no result", c.addr)
		}
		return nil, nil, c.rpcError(ctx, "list", err)
	}
	for { // read to the end so that the call ends cleanly
		if _, err := stream.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				return nil, nil, c.rpcError(ctx, "list", err)
			}
			break
		}
	}
	var udfs []udfInfo
	if err := json.Unmarshal(res.Body, &udfs); err != nil {
		return nil, nil, fmt.Errorf("the server at %s sent a list that is not the JSON of docs/protocol.md: %w", c.addr, err)
	}
	return res.Body, udfs, nil
}

// udfDescription is one UDF as GetFlightInfo describes it.
type udfDescription struct {
	info     udfInfo
	metadata json.RawMessage // app_metadata as sent
	// schema is the signature schema: the parameters, then the output
	// fields, which depend on the kind (see outputShape).
	schema  *arrow.Schema
	params  []arrow.Field
	outputs []arrow.Field
}

// describeUDF asks the server for one UDF. An unknown name gives the
// server's NOT_FOUND message, which suggests near names.
func (c *client) describeUDF(ctx context.Context, name string, mem memory.Allocator) (*udfDescription, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	fi, err := c.fc.GetFlightInfo(ctx, pathDescriptor(name))
	if err != nil {
		return nil, c.rpcError(ctx, name, err)
	}
	d := &udfDescription{metadata: fi.AppMetadata}
	if err := json.Unmarshal(fi.AppMetadata, &d.info); err != nil {
		return nil, fmt.Errorf("%s: the server sent app_metadata that is not the JSON of docs/protocol.md: %w", name, err)
	}
	if d.schema, err = flight.DeserializeSchema(fi.Schema, mem); err != nil {
		return nil, fmt.Errorf("%s: the server sent an unreadable signature schema: %w", name, err)
	}
	n := int(fi.TotalRecords)
	fields := d.schema.Fields()
	ok := n >= 0 && n <= len(fields) && n == len(d.info.Params)
	shape := outputShape(&d.info)
	if ok {
		ok = shape.fits(fields[n:])
	}
	if !ok {
		return nil, fmt.Errorf("%s: the server's signature schema has %d field(s) for %d parameter(s) (total_records %d); %s",
			name, d.schema.NumFields(), len(d.info.Params), fi.TotalRecords, shape.text)
	}
	d.params = fields[:n]
	d.outputs = fields[n:]
	return d, nil
}

// signatureShape says which output fields a signature schema has after
// the parameters, by kind, as the server builds them
// (udfcatalog.UDF.OutputSchema).
type signatureShape struct {
	row     bool // a table function's leading row (int32) field
	results int  // the result columns; -1: at least one, how many unknown
	text    string
}

// outputShape is the shape of u's output fields. A table function or
// transform returning a struct has one column per struct field.
func outputShape(u *udfInfo) signatureShape {
	cols, colText := 1, "one result column"
	if t, err := udfcatalog.ParseType(u.Return.Type); err != nil {
		cols, colText = -1, "its result columns" // a type this client cannot read: do not count
	} else if st, ok := t.(*arrow.StructType); ok {
		cols = st.NumFields()
		colText = fmt.Sprintf("%d result column(s), one per field of its %s result", cols, u.Return.Type)
	}
	switch u.Kind {
	case kindScalar, kindAggregate:
		return signatureShape{results: 1, text: fmt.Sprintf("a %s function's has the parameters, then one result field", u.Kind)}
	case kindTable:
		return signatureShape{row: true, results: cols, text: "a table function's has the parameters, then row (int32), then " + colText}
	case kindTransform:
		return signatureShape{results: cols, text: "a transform's has the parameters, then " + colText}
	}
	return signatureShape{results: -1, text: fmt.Sprintf("the parameters come first (%s is a %q function, a kind this client does not know)", u.Name, u.Kind)}
}

// fits reports whether outs, the signature fields after the parameters,
// have the shape.
func (s signatureShape) fits(outs []arrow.Field) bool {
	if s.row {
		if len(outs) == 0 || outs[0].Name != rowColumn || outs[0].Type.ID() != arrow.INT32 {
			return false
		}
		outs = outs[1:]
	}
	if s.results < 0 {
		return true
	}
	return len(outs) == s.results
}

func pathDescriptor(name string) *flight.FlightDescriptor {
	return &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{name}}
}

// grpcStatus finds the gRPC status in err, which the Flight and IPC
// readers wrap. Unlike status.FromError it keeps the server's message.
func grpcStatus(err error) (*status.Status, bool) {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		if st := se.GRPCStatus(); st != nil {
			return st, true
		}
	}
	return nil, false
}

// rpcError turns the error of a call about what (a function name, or
// "list") into a message for people: the server's own message, with
// what failed. ctx is the call's context, to tell our deadline from the
// server's.
func (c *client) rpcError(ctx context.Context, what string, err error) error {
	st, ok := grpcStatus(err)
	if !ok {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return c.deadlineError()
		case errors.Is(err, context.Canceled):
			return errors.New("interrupted")
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("cannot reach the fletch server at %s: %s", c.addr, msg)
	case codes.DeadlineExceeded:
		if ctx.Err() != nil {
			return c.deadlineError()
		}
		return fmt.Errorf("%s timed out on the server: %s", what, msg)
	case codes.Canceled:
		return errors.New("interrupted")
	case codes.NotFound:
		return errors.New(msg)
	case codes.InvalidArgument:
		if strings.HasPrefix(msg, "invalid exchange options") {
			return fmt.Errorf("%s: the server refused --options: %s", what, msg)
		}
		return fmt.Errorf("the server refused the input: %s", msg)
	case codes.ResourceExhausted:
		return fmt.Errorf("%s (send smaller batches with --batch-rows)", msg)
	case codes.Unknown:
		return fmt.Errorf("%s failed: %s", what, msg)
	case codes.Unimplemented:
		return fmt.Errorf("the server at %s does not support this (is it a fletch server?): %s", c.addr, msg)
	}
	return fmt.Errorf("%s: %s: %s", what, strings.ToUpper(st.Code().String()), msg)
}

func (c *client) deadlineError() error {
	return fmt.Errorf("no answer from %s within %s (--timeout)", c.addr, c.timeout)
}

// batchSource yields the input batches of a call.
type batchSource interface {
	// Schema is the schema of every batch Next returns.
	Schema() *arrow.Schema
	// Next returns the next batch, which the caller releases, or io.EOF.
	Next() (arrow.RecordBatch, error)
	// Interrupt makes a Next blocked on input return, from another goroutine.
	Interrupt()
	// Close releases what the source holds.
	Close() error
}

// inputError marks errors in the input, as opposed to the call.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// exchangeStats receives the progress of an exchange.
type exchangeStats interface {
	sent(rows int64)
	received(rows int64)
}

// optionsHeader is the gRPC request header that carries a call's exchange
// options (docs/protocol.md, Exchange options).
const optionsHeader = "fletch-options"

const (
	// maxOpenExchanges bounds the exchanges of one call open at once: a
	// table function's next exchange starts while the last one drains.
	maxOpenExchanges = 2
	// maxExchangeRows is the most input rows one exchange of a table
	// function may have: its row indexes are int32.
	maxExchangeRows = 1 << 31
)

// exchangeSpec says how exchange runs one call.
type exchangeSpec struct {
	name    string
	options string        // the fletch-options header, or ""
	output  []arrow.Field // the fields the server must send
	// extra are fields the server may send after output, all or none,
	// each exchange deciding anew (an error_column UDF's error column).
	extra []arrow.Field
	// queue is how many sent input batches an exchange holds for pairing
	// with their outputs (0: none are kept). A full queue makes the
	// writer wait for answers or, with split, go on in a new exchange.
	queue int
	// split lets the input be sent over several exchanges in turn, so
	// that input whose outputs never come is not held without bound
	// (table functions: nothing says that a row has no more output
	// until a later row's output or the end of the exchange arrives).
	split bool
}

// outputHandler takes the outputs of a call's exchanges, in order, on
// the goroutine that reads them.
type outputHandler interface {
	// output handles one output batch of seg; it does not keep out.
	output(seg *segment, out arrow.RecordBatch) error
	// ended is called when seg's exchange has ended with OK after all
	// its input was sent.
	ended(seg *segment) error
}

// segment is one DoExchange of a call, with the input sent on it.
type segment struct {
	stream flight.FlightService_DoExchangeClient
	// pending holds the input batches sent whose outputs may still come,
	// oldest first: the writer adds them before sending, the reader
	// takes them. Nil when the spec keeps no input.
	pending chan arrow.RecordBatch
	// firstRow is the input row (of the whole call) the exchange starts
	// at; rows counts the input rows queued on it (before sending).
	firstRow int64
	rows     atomic.Int64

	startsMu sync.Mutex
	starts   []int64 // the input row (of the whole call) each batch starts at

	// sent is closed when the writer is done with the exchange; complete,
	// set before, says that it sent all its input and half-closed.
	sent     chan struct{}
	complete bool

	// Reader state: the answered batches (scalar), and the input batch
	// taken last from pending (table), whose first row is heldStart
	// counting from the exchange's first row, and the last row index.
	answered  int
	held      arrow.RecordBatch
	heldStart int64
	lastRow   int64
}

func (s *segment) addBatch(start, rows int64) {
	s.startsMu.Lock()
	s.starts = append(s.starts, start)
	s.startsMu.Unlock()
	s.rows.Add(rows)
}

func (s *segment) batchStarts() []int64 {
	s.startsMu.Lock()
	defer s.startsMu.Unlock()
	return append([]int64(nil), s.starts...)
}

// take moves the next pending batch to held; the writer queues a batch
// before sending it, so one whose rows the server names is there.
func (s *segment) take() error {
	if s.held != nil {
		s.heldStart += s.held.NumRows()
		s.held.Release()
		s.held = nil
	}
	select {
	case s.held = <-s.pending:
		return nil
	default:
		return errors.New("the server broke the protocol: it answered input that was not sent")
	}
}

// release drops the input the segment still holds. The writer must be
// done with it.
func (s *segment) release() {
	if s.held != nil {
		s.held.Release()
		s.held = nil
	}
	for {
		select {
		case rec := <-s.pending:
			rec.Release()
		default:
			return
		}
	}
}

// exchangeRun is one call in progress: a goroutine (send) reads the input
// and writes it to one exchange after another, while the caller's
// goroutine reads the outputs of each in turn (receive).
type exchangeRun struct {
	c     *client
	spec  exchangeSpec
	mem   memory.Allocator
	in    batchSource
	stats exchangeStats
	// segs carries the exchanges from the writer to the reader; slots
	// bounds those open.
	segs  chan *segment
	slots chan struct{}

	cancel   context.CancelFunc
	failOnce sync.Once
	firstErr error
}

func (x *exchangeRun) fail(err error) {
	x.failOnce.Do(func() { x.firstErr = err })
	x.cancel()
}

// exchange streams the batches of in through the function with
// DoExchange, as spec says, handing the outputs to h.
func (c *client) exchange(ctx context.Context, spec exchangeSpec, mem memory.Allocator, in batchSource,
	h outputHandler, stats exchangeStats) error {
	callCtx, cancelCall := c.withTimeout(ctx)
	defer cancelCall()
	ctx, cancel := context.WithCancel(callCtx)
	defer cancel()
	if spec.options != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, optionsHeader, spec.options)
	}
	x := &exchangeRun{c: c, spec: spec, mem: mem, in: in, stats: stats, cancel: cancel,
		segs: make(chan *segment, maxOpenExchanges), slots: make(chan struct{}, maxOpenExchanges)}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		x.send(ctx, callCtx)
	}()
	var failed *segment
	for seg := range x.segs {
		if err := x.receive(callCtx, seg, h); err != nil {
			x.fail(err)
			failed = seg
			break
		}
		seg.release() // the writer is done with it
		<-x.slots
	}
	cancel()
	in.Interrupt()
	<-writerDone
	if failed != nil {
		failed.release()
	}
	for seg := range x.segs { // opened but never read, after a failure
		seg.release()
	}
	return x.firstErr
}

// send writes the input, opening exchanges as the spec says. callCtx is
// the call's context, for error messages.
func (x *exchangeRun) send(ctx, callCtx context.Context) {
	defer close(x.segs)
	var (
		seg *segment
		w   *flight.Writer
		row int64 // input rows read so far
	)
	// end is done with the current exchange; complete says all its input
	// was sent, so that it half-closes.
	end := func(complete bool) {
		if seg == nil {
			return
		}
		err := w.Close()
		seg.complete = complete && err == nil
		close(seg.sent) // before the half-close, which lets the server end
		if seg.complete {
			seg.stream.CloseSend()
		}
		seg = nil
	}
	defer end(false)
	open := func() bool {
		select {
		case x.slots <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		stream, err := x.c.fc.DoExchange(ctx)
		if err != nil {
			x.fail(x.c.rpcError(callCtx, x.spec.name, err))
			return false
		}
		seg = &segment{stream: stream, firstRow: row, sent: make(chan struct{})}
		if x.spec.queue > 0 {
			seg.pending = make(chan arrow.RecordBatch, x.spec.queue)
		}
		w = flight.NewRecordWriter(stream, ipc.WithSchema(x.in.Schema()), ipc.WithAllocator(x.mem))
		w.SetFlightDescriptor(pathDescriptor(x.spec.name))
		x.segs <- seg // never blocks: it has room for every open exchange
		return true
	}
	if !open() { // even without input: the server answers with its schema, an aggregate with its result
		return
	}
	for {
		rec, err := x.in.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			x.fail(&inputError{err})
			return
		}
		for x.full(seg, rec) {
			end(true)
			if !open() {
				rec.Release()
				return
			}
		}
		n := rec.NumRows()
		if seg.pending != nil {
			// Queue the batch before sending it, so that its answer
			// always finds it; a full queue waits for answers.
			rec.Retain()
			select {
			case seg.pending <- rec:
			case <-ctx.Done():
				rec.Release()
				rec.Release()
				return
			}
		}
		seg.addBatch(row, n)
		row += n
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			return // the server ended the exchange; its status comes from the reader
		}
		x.stats.sent(n)
	}
	end(true)
}

// full reports whether rec must go to a new exchange.
func (x *exchangeRun) full(seg *segment, rec arrow.RecordBatch) bool {
	if !x.spec.split {
		return false
	}
	if rows := seg.rows.Load(); rows > 0 && rows+rec.NumRows() > maxExchangeRows {
		return true
	}
	return seg.pending != nil && len(seg.pending) == cap(seg.pending)
}

// receive reads the outputs of one exchange to its end.
func (x *exchangeRun) receive(callCtx context.Context, seg *segment, h outputHandler) error {
	err := func() error {
		rdr, err := flight.NewRecordReader(seg.stream, ipc.WithAllocator(x.mem))
		if err != nil {
			return err
		}
		defer rdr.Release()
		if err := x.checkSchema(rdr.Schema()); err != nil {
			return err
		}
		for rdr.Next() {
			out := rdr.RecordBatch()
			if err := h.output(seg, out); err != nil {
				return err
			}
			x.stats.received(out.NumRows())
		}
		return rdr.Err()
	}()
	if err != nil && !errors.Is(err, io.EOF) {
		var oe *outputError
		if errors.As(err, &oe) {
			return oe.err
		}
		return x.c.withInputRows(x.c.rpcError(callCtx, x.spec.name, err), seg.batchStarts())
	}
	if !isClosed(seg.sent) || !seg.complete {
		return fmt.Errorf("%s: the server ended the call before reading all the input", x.spec.name)
	}
	return h.ended(seg)
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// checkSchema holds the server's output schema to the signature's, with
// or without the spec's extra fields. Names do not matter; the output is
// named after the signature.
func (x *exchangeRun) checkSchema(s *arrow.Schema) error {
	want, extra := x.spec.output, x.spec.extra
	all := append(want[:len(want):len(want)], extra...)
	if len(extra) > 0 && s.NumFields() == len(all) {
		want = all
	}
	if s.NumFields() != len(want) {
		wanted := fmt.Sprintf("%d (%s)", len(want), paramList(want))
		if len(extra) > 0 {
			wanted += fmt.Sprintf(" or %d (%s)", len(all), paramList(all))
		}
		return fmt.Errorf("the server broke the protocol: its output schema has %d field(s) (%s), not %s",
			s.NumFields(), paramList(s.Fields()), wanted)
	}
	for i, f := range want {
		got := s.Field(i).Type
		switch {
		case arrow.TypeEqual(got, f.Type):
		case i >= len(x.spec.output):
			return fmt.Errorf("the server broke the protocol: it sent the %s column as %s, not %s",
				f.Name, typeName(got), typeName(f.Type))
		default:
			return fmt.Errorf("the server returned %s for %s, which declares %s", typeName(got), f.Name, typeName(f.Type))
		}
	}
	return nil
}

type outputError struct{ err error }

func (e *outputError) Error() string { return e.err.Error() }

var (
	batchRowPrefix = regexp.MustCompile(`^\S+ failed: batch (\d+): [^:]*: row (\d+): `)
	batchPrefix    = regexp.MustCompile(`^\S+ failed: batch (\d+): `)
)

// withInputRows adds the input row to a function failure that names a
// batch: the server counts rows from the start of each batch ("batch 3:
// f: row 7: ..."), the user from the start of the input.
func (c *client) withInputRows(err error, starts []int64) error {
	msg := err.Error()
	if m := batchRowPrefix.FindStringSubmatch(msg); m != nil {
		b, _ := strconv.Atoi(m[1])
		r, _ := strconv.ParseInt(m[2], 10, 64)
		if b < len(starts) {
			return fmt.Errorf("%w (input row %d, counting from 0)", err, starts[b]+r)
		}
	}
	if m := batchPrefix.FindStringSubmatch(msg); m != nil {
		if b, _ := strconv.Atoi(m[1]); b < len(starts) {
			return fmt.Errorf("%w (batch %d starts at input row %d, counting from 0)", err, b, starts[b])
		}
	}
	return err
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
