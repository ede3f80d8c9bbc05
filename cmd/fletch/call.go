package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

const defaultCallBatchRows = 65536

type callConfig struct {
	clientFlags
	input, inputFormat   string
	output, outputFormat string
	batchRows            int
	rows                 int64
	rowsGiven            bool
	noInputColumns       bool
	options              string
	optionsGiven         bool
	// optionsHeader is --options as sent; phase is the aggregate phase it
	// asks for, which changes the columns in or out.
	optionsHeader, phase string
}

func (c *callConfig) flags(fs *flag.FlagSet) {
	c.register(fs, 0)
	fs.StringVar(&c.input, "input", "", "read the arguments from this `file` (- or none: stdin)")
	fs.StringVar(&c.inputFormat, "input-format", "", "`format` of the input: csv, jsonl, parquet or arrow (default: from the file extension)")
	fs.StringVar(&c.output, "output", "", "write the results to this `file` (- or none: stdout)")
	fs.StringVar(&c.outputFormat, "output-format", "", "`format` of the output: table, csv, jsonl, parquet, arrow or arrow-file\n(default: from the file extension; on stdout table on a terminal, else csv)")
	fs.IntVar(&c.batchRows, "batch-rows", defaultCallBatchRows, "send batches of this many `rows`")
	fs.Int64Var(&c.rows, "rows", 0, "for a function without parameters: how many `rows` (results) to produce")
	fs.BoolVar(&c.noInputColumns, "no-input-columns", false, "write only the function's output columns, not the input columns before them")
	fs.StringVar(&c.options, "options", "", "exchange options, a `JSON` object: '{\"running\": true}' or '{\"phase\": \"partial\"}' for aggregates")
}

// callCmd calls a UDF over all the rows of its input and writes the
// outputs: for scalar and table functions each after its input row.
func callCmd(ctx context.Context, args []string, env cliEnv) error {
	var cfg callConfig
	fs := flag.NewFlagSet("fletch call", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	cfg.flags(fs)
	fs.Usage = func() {
		fmt.Fprint(env.stderr, `usage: fletch call [flags] NAME

Calls the UDF NAME of a running fletch server on every row of the input and
writes what it returns: for a scalar function each input row followed by its
result (a column named NAME); for a table function each output row after the
input row it came from; for an aggregate or a transform its output alone.

  fletch call add_int64 --input numbers.csv
  fletch call upper --input words.parquet --output upper.parquet
  fletch call pi --rows 3
  fletch call tokens --input texts.csv --no-input-columns
  fletch call average --input values.csv --options '{"running": true}'

`)
		fs.PrintDefaults()
	}
	rest, err := parseClientFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fs.Usage()
		return &usageError{msg: fmt.Sprintf("fletch call takes one function name, got %d argument(s)", len(rest))}
	}
	fs.Visit(func(f *flag.Flag) {
		cfg.rowsGiven = cfg.rowsGiven || f.Name == "rows"
		cfg.optionsGiven = cfg.optionsGiven || f.Name == "options"
	})
	if err := cfg.check(env); err != nil {
		return err
	}
	c, err := dial(cfg.clientFlags)
	if err != nil {
		return err
	}
	defer c.Close()
	return cfg.run(ctx, c, rest[0], env)
}

// check validates the flags that need no server.
func (cfg *callConfig) check(env cliEnv) error {
	var err error
	if cfg.batchRows <= 0 {
		return &usageError{msg: fmt.Sprintf("--batch-rows must be positive, got %d", cfg.batchRows)}
	}
	if cfg.rowsGiven && cfg.rows < 0 {
		return &usageError{msg: fmt.Sprintf("--rows must not be negative, got %d", cfg.rows)}
	}
	if cfg.optionsGiven {
		if cfg.optionsHeader, cfg.phase, err = parseOptions(cfg.options); err != nil {
			return err
		}
	}
	if cfg.inputFormat != "" {
		if cfg.inputFormat, err = checkFormat("input-format", cfg.inputFormat, inputFormats); err != nil {
			return err
		}
	}
	switch {
	case cfg.outputFormat != "":
		cfg.outputFormat, err = checkFormat("output-format", cfg.outputFormat, outputFormats)
		return err
	case cfg.output != "" && cfg.output != "-":
		f, ok := formatOf(cfg.output)
		if !ok {
			return &usageError{msg: fmt.Sprintf("cannot tell the output format from the name %q (known: %s); give --output-format", cfg.output, extensionList())}
		}
		cfg.outputFormat = f
	case isTerminal(env.stdout):
		cfg.outputFormat = formatTable
	default:
		cfg.outputFormat = formatCSV
	}
	return nil
}

func (cfg *callConfig) run(ctx context.Context, c *client, name string, env cliEnv) error {
	d, err := c.describeUDF(ctx, name, env.mem)
	if err != nil {
		return err
	}
	plan, err := planCall(d, cfg.phase)
	if err != nil {
		return err
	}
	prog := newProgress()
	prog.byInput = plan.kind != kindScalar
	src, err := cfg.openInput(ctx, d, plan.params, env, prog)
	if err != nil {
		return err
	}
	defer src.Close()

	outSchema := plan.outputSchema(src.Schema(), cfg.noInputColumns)
	dest, err := openDestination(cfg.output, env.stdout)
	if err != nil {
		return err
	}
	snk, err := newSink(cfg.outputFormat, dest.w, outSchema, env.mem)
	if err != nil {
		dest.finish(false)
		return err
	}
	toStdout := cfg.output == "" || cfg.output == "-"
	if isTerminal(env.stderr) && !(toStdout && isTerminal(env.stdout) && cfg.outputFormat != formatTable) {
		prog.show(env.stderr)
	}

	write := func(rec arrow.RecordBatch) error {
		if err := snk.Write(rec); err != nil {
			return fmt.Errorf("writing %s: %w", dest.name, err)
		}
		return nil
	}
	h := plan.handler(outSchema, cfg.noInputColumns, env.mem, write)
	err = c.exchange(ctx, plan.spec(name, cfg.optionsHeader, cfg.noInputColumns), env.mem, src, h, prog)
	prog.finish()
	if err != nil {
		snk.Close(false)
		dest.finish(false)
		return err
	}
	if err := snk.Close(true); err != nil {
		dest.finish(false)
		return fmt.Errorf("writing %s: %w", dest.name, err)
	}
	if err := dest.finish(true); err != nil {
		return err
	}
	if prog.w != nil {
		fmt.Fprintln(env.stderr, prog.summary())
	}
	return nil
}

// openInput opens the input the flags name, re-chunked to --batch-rows,
// for params (the UDF's, or an aggregate phase's states).
func (cfg *callConfig) openInput(ctx context.Context, d *udfDescription, params []arrow.Field, env cliEnv, prog *progress) (batchSource, error) {
	name := d.info.Name
	fn := d.info.callForm()
	if len(params) != len(d.params) { // states in place of the parameters
		fn = fmt.Sprintf("%s(%s)", name, paramList(params))
	}
	if len(params) == 0 {
		if cfg.input != "" {
			return nil, &usageError{msg: fmt.Sprintf("%s takes no parameters, so it reads no input: give --rows N instead of --input", d.info.signature())}
		}
		if !cfg.rowsGiven {
			return nil, &usageError{msg: fmt.Sprintf("%s takes no parameters: say how many results to produce with --rows N", d.info.signature())}
		}
		prog.totalRows.Store(cfg.rows)
		return &rowsSource{left: cfg.rows, n: int64(cfg.batchRows), schema: arrow.NewSchema(nil, nil)}, nil
	}
	if cfg.rowsGiven {
		return nil, &usageError{msg: fmt.Sprintf("--rows is for functions without parameters; %s takes %d, read from --input", fn, len(params))}
	}
	in := inputSpec{
		format:    cfg.inputFormat,
		size:      -1,
		fn:        fn,
		params:    params,
		batchRows: cfg.batchRows,
		mem:       env.mem,
		bytesRead: &prog.bytesRead,
		totalRows: &prog.totalRows,
	}
	var raw io.Reader
	if cfg.input == "" || cfg.input == "-" {
		in.name = "stdin"
		if in.format == "" {
			return nil, &usageError{msg: fmt.Sprintf("reading the arguments of %s from stdin needs --input-format (%s), or give --input FILE", name, strings.Join(inputFormats, ", "))}
		}
		raw = env.stdin
		if f, ok := env.stdin.(*os.File); ok {
			in.file = f
			if isTerminal(f) {
				fmt.Fprintf(env.stderr, "reading %s from the terminal; end it with Ctrl-D\n", in.format)
			}
		}
	} else {
		in.name = cfg.input
		if in.format == "" {
			f, ok := formatOf(cfg.input)
			if !ok {
				return nil, &usageError{msg: fmt.Sprintf("cannot tell the input format from the name %q (known: %s); give --input-format", cfg.input, extensionList())}
			}
			in.format = f
		}
		f, err := os.Open(cfg.input)
		if err != nil {
			return nil, fmt.Errorf("cannot open the input: %w", err)
		}
		in.file, raw = f, f
	}
	if in.file != nil {
		if st, err := in.file.Stat(); err == nil && st.Mode().IsRegular() {
			in.size = st.Size()
			prog.totalBytes = in.size
		}
	}
	in.r = countingReader{raw, &prog.bytesRead}
	src, err := openSource(ctx, in)
	if err != nil {
		if in.file != nil && in.file != env.stdin {
			in.file.Close()
		}
		return nil, err
	}
	if in.file != nil && in.file != env.stdin {
		src = closeAlso{src, in.file}
	}
	src = decodeDictionaries(src, env.mem)
	return &rechunker{src: src, n: int64(cfg.batchRows), mem: env.mem}, nil
}

// closeAlso closes a file after its source.
type closeAlso struct {
	batchSource
	f *os.File
}

func (c closeAlso) Close() error {
	err := c.batchSource.Close()
	c.f.Close() // may have been closed by Interrupt
	return err
}
