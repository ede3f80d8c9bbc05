package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	addr, catalog := startServerCatalog(t)
	add, err := catalog.Lookup("add_int64")
	if err != nil {
		t.Fatal(err)
	}
	addJSON, err := json.Marshal(add)
	if err != nil {
		t.Fatal(err)
	}
	pi, err := catalog.Lookup("pi")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string // exact; JSON compares by value
		json []byte
	}{
		{"found", []string{"--address", addr, "add_int64"}, fmt.Sprintf(`add_int64(a int64, b int64) -> int64

    a + b; fails on overflow

kind:        scalar
language:    go
volatility:  immutable
on_error:    raise (a failing row fails the call)
version:     %s

parameters:
  #  NAME  TYPE   NULLS
  0  a     int64  null in, null out (not called)
  1  b     int64  null in, null out (not called)
returns: add_int64 int64 (may be null)

signature schema (GetFlightInfo; total_records = 2 parameters):
  a          int64  nullable  parameter 0
  b          int64  nullable  parameter 1
  add_int64  int64  nullable  result
  metadata:
    x-databend-udf-input-count = 2
`, add.Version), nil},
		{"nullable parameters", []string{"--address", addr, "coalesce_int64"}, "", nil},
		{"no parameters", []string{"--address", addr, "pi"}, fmt.Sprintf(`pi() -> float64

    π; a zero-argument function

kind:        scalar
language:    go
volatility:  immutable
on_error:    raise (a failing row fails the call)
version:     %s

parameters: none (call it with --rows N)
returns: pi float64 (may be null)

signature schema (GetFlightInfo; total_records = 0 parameters):
  pi  float64  nullable  result
  metadata:
    x-databend-udf-input-count = 0
`, pi.Version), nil},
		{"json, flag after the name", []string{"--address", addr, "add_int64", "--json"}, "", addJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runVerb(t, describeCmd, nil, tc.args...)
			if r.err != nil || r.stderr != "" {
				t.Fatalf("err %v, stderr %q", r.err, r.stderr)
			}
			switch {
			case tc.json != nil:
				sameJSON(t, r.stdout, tc.json)
			case tc.want != "":
				if r.stdout != tc.want {
					t.Errorf("got\n%s\nwant\n%s", r.stdout, tc.want)
				}
			default:
				if !strings.Contains(r.stdout, "  0  a     int64  passed to the function\n") {
					t.Errorf("nullable parameter not shown as such:\n%s", r.stdout)
				}
			}
		})
	}
}

func TestDescribeErrors(t *testing.T) {
	addr := startServer(t)
	unreachable := unusedAddress(t)
	for _, tc := range []struct {
		name string
		args []string
		err  string
		code int
	}{
		{"not found", []string{"--address", addr, "ad_int64"}, `function "ad_int64" not found; did you mean "add_int64" or "div_int64"?`, 1},
		{"not found, no suggestion", []string{"--address", addr, "zzzzzzzzzzzz"}, `function "zzzzzzzzzzzz" not found`, 1},
		{"unreachable", []string{"--address", unreachable, "pi"}, "cannot reach the fletch server at " + unreachable + ": ", 1},
		{"no name", []string{"--address", addr}, "fletch describe takes one function name, got 0 argument(s)", 2},
		{"two names", []string{"--address", addr, "pi", "upper"}, "fletch describe takes one function name, got 2 argument(s)", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runVerb(t, describeCmd, nil, tc.args...)
			if r.err == nil || !strings.HasPrefix(r.err.Error(), tc.err) || exitCode(r.err) != tc.code {
				t.Errorf("err = %v (exit %d), want %q... (exit %d)", r.err, exitCode(r.err), tc.err, tc.code)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

func TestResultNulls(t *testing.T) {
	strict := []fieldInfo{{Name: "a"}}
	taking := []fieldInfo{{Name: "a", Nullable: true}}
	tests := []struct {
		name string
		give udfInfo
		want string
	}{
		{"may return null", udfInfo{Kind: kindScalar, Params: taking, Return: fieldInfo{Nullable: true}}, "may be null"},
		{"null argument", udfInfo{Kind: kindScalar, Params: strict},
			"the function never returns null; the result is null for a null argument"},
		{"failed row", udfInfo{Kind: kindScalar, Params: taking, OnError: onErrorNull},
			"the function never returns null; the result is null for a failed row"},
		{"both", udfInfo{Kind: kindScalar, Params: strict, OnError: onErrorColumn},
			"the function never returns null; the result is null for a null argument and for a failed row"},
		{"never", udfInfo{Kind: kindScalar, Params: taking, OnError: onErrorRaise}, "never null"},
		{"no parameters", udfInfo{Kind: kindScalar}, "never null"},
		{"aggregate skips nulls", udfInfo{Kind: "aggregate", Params: strict}, "never null"},
	}
	for _, tt := range tests {
		if got := resultNulls(&tt.give); got != tt.want {
			t.Errorf("%s: resultNulls = %q, want %q", tt.name, got, tt.want)
		}
	}
}
