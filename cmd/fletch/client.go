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
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
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
	Version    string      `json:"version"`
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
	// schema is the signature schema: the parameters, then the result.
	schema *arrow.Schema
	params []arrow.Field
	result arrow.Field
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
	if n < 0 || n != d.schema.NumFields()-1 || n != len(d.info.Params) {
		return nil, fmt.Errorf("%s: the server's signature schema has %d field(s) for %d parameter(s) (total_records %d)",
			name, d.schema.NumFields(), len(d.info.Params), fi.TotalRecords)
	}
	d.params = d.schema.Fields()[:n]
	d.result = d.schema.Field(n)
	return d, nil
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

// exchange streams the batches of in through the function name with one
// DoExchange: a goroutine writes them while this one reads the answers and
// hands each, with the input batch it answers, to out. At most
// exchangeInFlight input batches are held at a time.
func (c *client) exchange(ctx context.Context, name string, mem memory.Allocator, in batchSource,
	out func(input, result arrow.RecordBatch) error, stats exchangeStats) error {
	callCtx, cancelCall := c.withTimeout(ctx)
	defer cancelCall()
	ctx, cancel := context.WithCancel(callCtx)
	defer cancel()

	var (
		failOnce sync.Once
		firstErr error
	)
	fail := func(err error) {
		failOnce.Do(func() { firstErr = err })
		cancel()
	}
	// starts[i] is the input row that batch i starts at, for error messages.
	var (
		startsMu sync.Mutex
		starts   []int64
	)

	stream, err := c.fc.DoExchange(ctx)
	if err != nil {
		return c.rpcError(callCtx, name, err)
	}
	pending := make(chan arrow.RecordBatch, exchangeInFlight)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		w := flight.NewRecordWriter(stream, ipc.WithSchema(in.Schema()), ipc.WithAllocator(mem))
		w.SetFlightDescriptor(pathDescriptor(name))
		defer w.Close()
		var row int64
		for {
			rec, err := in.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fail(&inputError{err})
				return
			}
			// Queue the batch before sending it, so that its answer
			// always finds it; a full queue waits for answers.
			select {
			case pending <- rec:
			case <-ctx.Done():
				rec.Release()
				return
			}
			startsMu.Lock()
			starts = append(starts, row)
			startsMu.Unlock()
			row += rec.NumRows()
			if err := w.Write(rec); err != nil {
				return // the server ended the call; its status comes from the reader
			}
			stats.sent(rec.NumRows())
		}
		if err := w.Close(); err == nil {
			stream.CloseSend()
		}
	}()

	var answered int
	readErr := func() error {
		rdr, err := flight.NewRecordReader(stream, ipc.WithAllocator(mem))
		if err != nil {
			return err
		}
		defer rdr.Release()
		if rdr.Schema().NumFields() != 1 {
			return fmt.Errorf("the server broke the protocol: its output schema has %d fields, not 1", rdr.Schema().NumFields())
		}
		for rdr.Next() {
			res := rdr.RecordBatch()
			var input arrow.RecordBatch
			select {
			case input = <-pending:
			default:
				return fmt.Errorf("the server broke the protocol: it sent output batch %d before the input batch it answers", answered)
			}
			if res.NumRows() != input.NumRows() || res.NumCols() != 1 {
				input.Release()
				return fmt.Errorf("the server broke the protocol: output batch %d has %d rows and %d columns for an input batch of %d rows",
					answered, res.NumRows(), res.NumCols(), input.NumRows())
			}
			answered++
			err := out(input, res)
			input.Release()
			if err != nil {
				return &outputError{err}
			}
			stats.received(res.NumRows())
		}
		return rdr.Err()
	}()
	if readErr != nil && !errors.Is(readErr, io.EOF) {
		var oe *outputError
		if errors.As(readErr, &oe) {
			fail(oe.err)
		} else {
			startsMu.Lock()
			fail(c.withInputRows(c.rpcError(callCtx, name, readErr), starts))
			startsMu.Unlock()
		}
	}
	cancel()
	in.Interrupt()
	<-writerDone
	close(pending)
	unanswered := 0
	for rec := range pending {
		unanswered++
		rec.Release()
	}
	if firstErr != nil {
		return firstErr
	}
	if unanswered > 0 {
		return fmt.Errorf("the server ended the call without answering %d of %d input batches", unanswered, answered+unanswered)
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
