package main

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseLock(t *testing.T) {
	const sha = "7ae48ab53610b85e004b03bccff593fbdf22186d0ab48ed42c90797915dac814"
	pkg := func(wheels string) string {
		return `{"python": "3.14", "packages": [{"name": "pyarrow", "version": "26.0.1", "wheels": {` + wheels + `}}]}`
	}
	cases := []struct {
		name, lock, wantErr string
	}{
		{"ok", pkg(`"linux-amd64": {"url": "https://example.com/p.whl", "sha256": "` + sha + `"}`), ""},
		{"http url", pkg(`"linux-amd64": {"url": "http://example.com/p.whl", "sha256": "` + sha + `"}`), "is not an https URL"},
		{"short sha", pkg(`"linux-amd64": {"url": "https://example.com/p.whl", "sha256": "abc"}`), "is not 64 lowercase hex"},
		{"upper-case sha", pkg(`"linux-amd64": {"url": "https://example.com/p.whl", "sha256": "` + strings.ToUpper(sha) + `"}`), "is not 64 lowercase hex"},
		{"bad platform", pkg(`"linux_amd64": {"url": "https://example.com/p.whl", "sha256": "` + sha + `"}`), "not of the form GOOS-GOARCH"},
		{"no wheels", pkg(``), "no wheels"},
		{"unknown field", `{"python": "3.14", "pakages": []}`, `unknown field "pakages"`},
		{"no packages", `{"python": "3.14", "packages": []}`, `"packages" is empty`},
		{"no python", `{"packages": []}`, `"python" is missing`},
		{"trailing data", pkg(`"linux-amd64": {"url": "https://example.com/p.whl", "sha256": "`+sha+`"}`) + "{}", "trailing data"},
		{"duplicate package", `{"python": "3.14", "packages": [
			{"name": "pyarrow", "version": "1", "wheels": {"linux-amd64": {"url": "https://e.com/a.whl", "sha256": "` + sha + `"}}},
			{"name": "PyArrow", "version": "2", "wheels": {"linux-amd64": {"url": "https://e.com/b.whl", "sha256": "` + sha + `"}}}]}`,
			"pinned twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseLock([]byte(tc.lock))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// The committed lock parses and pins both Linux platforms: pyarrow, and
// uvloop for async UDFs.
func TestCommittedLock(t *testing.T) {
	b, err := os.ReadFile("../../bundle.lock.json")
	if err != nil {
		t.Fatal(err)
	}
	l, err := parseLock(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"linux-amd64", "linux-arm64"} {
		w, err := l.wheelsFor(p)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, wheel := range w {
			if !strings.Contains(wheel.URL, "cp314-cp314-") {
				t.Errorf("%s: %s is not a CPython 3.14 wheel", p, wheel.URL)
			}
			got = append(got, wheel.Name+" "+wheel.Version)
		}
		if want := []string{"pyarrow 26.0.1", "uvloop 0.23.0"}; !slices.Equal(got, want) {
			t.Errorf("%s pins %q, want %q", p, got, want)
		}
	}
}
