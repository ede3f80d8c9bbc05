package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"
)

// listCmd prints the UDFs a server serves, from its list action.
func listCmd(ctx context.Context, args []string, env cliEnv) error {
	var cf clientFlags
	fs := flag.NewFlagSet("fletch list", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	cf.register(fs, 30*time.Second)
	asJSON := fs.Bool("json", false, "print the server's JSON description of every UDF")
	fs.Usage = func() {
		fmt.Fprint(env.stderr, "usage: fletch list [flags]\n\nLists the UDFs of a running fletch server.\n\n")
		fs.PrintDefaults()
	}
	rest, err := parseClientFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &usageError{msg: fmt.Sprintf("fletch list takes no arguments, got %q", rest)}
	}
	c, err := dial(cf)
	if err != nil {
		return err
	}
	defer c.Close()
	body, udfs, err := c.listUDFs(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env, body)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	// The signature comes last: it is the one long column.
	fmt.Fprintln(tw, "NAME\tKIND\tLANGUAGE\tVERSION\tSIGNATURE")
	for _, u := range udfs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Kind, u.Language, u.Version, u.signature())
	}
	return tw.Flush()
}

// printJSON prints raw JSON indented, keeping the order of its keys.
func printJSON(env cliEnv, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("the server sent invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := env.stdout.Write(buf.Bytes())
	return err
}
