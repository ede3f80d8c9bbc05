package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// describeCmd prints one UDF in detail, from GetFlightInfo.
func describeCmd(ctx context.Context, args []string, env cliEnv) error {
	var cf clientFlags
	fs := flag.NewFlagSet("fletch describe", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	cf.register(fs, 30*time.Second)
	asJSON := fs.Bool("json", false, "print the server's JSON description (the FlightInfo app_metadata)")
	fs.Usage = func() {
		fmt.Fprint(env.stderr, "usage: fletch describe [flags] NAME\n\nDescribes one UDF of a running fletch server.\n\n")
		fs.PrintDefaults()
	}
	rest, err := parseClientFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fs.Usage()
		return &usageError{msg: fmt.Sprintf("fletch describe takes one function name, got %d argument(s)", len(rest))}
	}
	c, err := dial(cf)
	if err != nil {
		return err
	}
	defer c.Close()
	d, err := c.describeUDF(ctx, rest[0], env.mem)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env, d.metadata)
	}
	printDescription(env.stdout, d)
	return nil
}

func printDescription(w io.Writer, d *udfDescription) {
	u := &d.info
	fmt.Fprintln(w, u.signature())
	if u.Doc != "" {
		fmt.Fprintln(w)
		for _, line := range strings.Split(strings.TrimRight(u.Doc, "\n"), "\n") {
			fmt.Fprintln(w, strings.TrimRight("    "+line, " "))
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "kind:\t%s\n", u.Kind)
	fmt.Fprintf(tw, "language:\t%s\n", u.Language)
	fmt.Fprintf(tw, "volatility:\t%s\n", u.Volatility)
	fmt.Fprintf(tw, "on_error:\t%s\n", onErrorText(u))
	fmt.Fprintf(tw, "version:\t%s\n", u.Version)
	tw.Flush()

	fmt.Fprintln(w)
	if len(u.Params) == 0 {
		fmt.Fprintln(w, "parameters: none (call it with --rows N)")
	} else {
		fmt.Fprintln(w, "parameters:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\tNAME\tTYPE\tNULLS")
		for i, p := range u.Params {
			nulls := "null in, null out (not called)"
			if p.Nullable {
				nulls = "passed to the function"
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", i, p.Name, p.Type, nulls)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "returns: %s %s (%s)\n", u.Return.Name, u.Return.Type, resultNulls(u))

	fmt.Fprintln(w)
	fmt.Fprintf(w, "signature schema (GetFlightInfo; total_records = %d parameters):\n", len(d.params))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	n, results := len(d.params), len(d.outputs)
	if u.Kind == kindTable {
		results--
	}
	for i, f := range d.schema.Fields() {
		role := fmt.Sprintf("parameter %d", i)
		switch {
		case i < n:
		case u.Kind == kindTable && i == n:
			role = "input row index (table function)"
		case results == 1:
			role = "result"
		default:
			role = "result column"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Name, typeName(f.Type), nullText(f), role)
	}
	tw.Flush()
	if md := d.schema.Metadata(); md.Len() > 0 {
		fmt.Fprintln(w, "  metadata:")
		for i, k := range md.Keys() {
			fmt.Fprintf(w, "    %s = %s\n", k, md.Values()[i])
		}
	}
}

// resultNulls says when u's result is null. The function's own return
// may be declared non-null, but a scalar function's result column is
// still null for a null argument it does not take, or a failed row under
// a null-making error policy.
func resultNulls(u *udfInfo) string {
	if u.Return.Nullable {
		return "may be null"
	}
	if u.Kind != kindScalar {
		return "never null"
	}
	var when []string
	for _, p := range u.Params {
		if !p.Nullable {
			when = append(when, "for a null argument")
			break
		}
	}
	if u.OnError == onErrorNull || u.OnError == onErrorColumn {
		when = append(when, "for a failed row")
	}
	if len(when) == 0 {
		return "never null"
	}
	return "the function never returns null; the result is null " + strings.Join(when, " and ")
}

// onErrorText is u's on_error policy, with what it does to a failing row.
func onErrorText(u *udfInfo) string {
	switch u.OnError {
	case onErrorRaise, "": // the default, for a server that leaves it out
		return onErrorRaise + " (a failing row fails the call)"
	case onErrorNull:
		return onErrorNull + " (a failing row is null; the server logs why)"
	case onErrorColumn:
		if u.Kind != kindScalar {
			return onErrorColumn
		}
		return onErrorColumn + " (a failing row is null, and a column named error says why)"
	}
	return u.OnError
}

func nullText(f arrow.Field) string {
	if f.Nullable {
		return "nullable"
	}
	return "not null"
}

// typeName is the canonical type text of docs/types.md, or Arrow's own
// spelling for types it cannot write.
func typeName(t arrow.DataType) string {
	if s, err := udfcatalog.FormatType(t); err == nil {
		return s
	}
	return t.String()
}
