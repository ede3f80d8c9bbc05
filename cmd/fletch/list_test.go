package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestList(t *testing.T) {
	addr, catalog := startServerCatalog(t)
	version := func(name string) string {
		fn, err := catalog.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		return fn.Version
	}
	wantTable := fmt.Sprintf(`NAME              KIND    LANGUAGE  VERSION           SIGNATURE
add_int64         scalar  go        %s  add_int64(a int64, b int64) -> int64
builtin_echo      scalar  go        %s  builtin_echo(s large_utf8 null) -> large_utf8
builtin_healthy   scalar  go        %s  builtin_healthy() -> int32
coalesce_int64    scalar  go        %s  coalesce_int64(a int64 null, b int64 null) -> int64
div_int64         scalar  go        %s  div_int64(a int64, b int64) -> int64
echo_int64        scalar  go        %s  echo_int64(x int64 null) -> int64
echo_utf8         scalar  go        %s  echo_utf8(s utf8 null) -> utf8
multiply_float64  scalar  go        %s  multiply_float64(a float64 null, b float64 null) -> float64
pi                scalar  go        %s  pi() -> float64
upper             scalar  go        %s  upper(s utf8) -> utf8
`, version("add_int64"), version("builtin_echo"), version("builtin_healthy"), version("coalesce_int64"), version("div_int64"), version("echo_int64"),
		version("echo_utf8"), version("multiply_float64"), version("pi"), version("upper"))
	wantJSON, err := json.Marshal(catalog.List())
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, stdout string)
	}{
		{"table", []string{"--address", addr}, func(t *testing.T, stdout string) {
			if stdout != wantTable {
				t.Errorf("got\n%s\nwant\n%s", stdout, wantTable)
			}
			// The client renders signatures as the server does.
			for _, fn := range catalog.List() {
				if !strings.Contains(stdout, "  "+fn.Signature()+"\n") {
					t.Errorf("no line ends with %q", fn.Signature())
				}
			}
		}},
		{"json", []string{"--json", "--address", addr}, func(t *testing.T, stdout string) {
			sameJSON(t, stdout, wantJSON)
			if !strings.HasPrefix(stdout, "[\n  {\n    \"name\": \"add_int64\",\n    \"kind\": \"scalar\",") {
				t.Errorf("not indented in the server's key order:\n%s", stdout)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runVerb(t, listCmd, nil, tc.args...)
			if r.err != nil || r.stderr != "" {
				t.Fatalf("err %v, stderr %q", r.err, r.stderr)
			}
			tc.check(t, r.stdout)
		})
	}
}

func TestListErrors(t *testing.T) {
	addr := unusedAddress(t)
	for _, tc := range []struct {
		args []string
		err  string
		code int
	}{
		{[]string{"--address", addr}, "cannot reach the fletch server at " + addr + ": connection error: ", 1},
		{[]string{"extra"}, `fletch list takes no arguments, got ["extra"]`, 2},
		{[]string{"--nope"}, "flag provided but not defined: -nope", 2},
		{[]string{"--address", addr, "--timeout", "-1s"}, "--timeout must not be negative, got -1s", 2},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runVerb(t, listCmd, nil, tc.args...)
			if r.err == nil || !strings.HasPrefix(r.err.Error(), tc.err) || exitCode(r.err) != tc.code {
				t.Errorf("err = %v (exit %d), want %q... (exit %d)", r.err, exitCode(r.err), tc.err, tc.code)
			}
		})
	}
}

// TestAddressFromEnvironment runs the verbs through main's dispatch, with
// FLETCH_ADDRESS, which --address overrides.
func TestAddressFromEnvironment(t *testing.T) {
	addr := startServer(t)
	t.Setenv("FLETCH_ADDRESS", addr)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"list"}, &stdout, &stderr); err != nil {
		t.Fatalf("list: %v", err)
	}
	if !strings.Contains(stdout.String(), "add_int64(a int64, b int64) -> int64") {
		t.Errorf("list printed %q", stdout.String())
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"describe", "--json", "upper"}, &stdout, &stderr); err != nil ||
		!strings.Contains(stdout.String(), `"name": "upper"`) {
		t.Errorf("describe: %q, %v", stdout.String(), err)
	}
	stdout.Reset()
	err := run(context.Background(), []string{"call", "pi", "--rows", "1"}, &stdout, &stderr)
	if err != nil || stdout.String() != "pi\n3.141592653589793\n" {
		t.Errorf("call: %q, %v", stdout.String(), err)
	}
	other := unusedAddress(t)
	err = run(context.Background(), []string{"list", "--address", other}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("--address %s: err %v, want it to win over FLETCH_ADDRESS", other, err)
	}
	t.Setenv("FLETCH_ADDRESS", "")
	if err := run(context.Background(), []string{"list"}, &stdout, &stderr); err == nil || exitCode(err) != 2 {
		t.Errorf("FLETCH_ADDRESS empty: err %v, want a usage error", err)
	}
}

// sameJSON compares JSON texts by value.
func sameJSON(t *testing.T, got string, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
