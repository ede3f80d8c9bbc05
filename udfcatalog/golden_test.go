package udfcatalog

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// checkGolden compares got with testdata/<name>, rewriting it when -update is set.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	// Show the first few differing lines; whole files are too long to read in a failure.
	gotLines := strings.Split(string(got), "\n")
	wantLines := strings.Split(string(want), "\n")
	const maxShown = 10
	shown := 0
	var report strings.Builder
	for i := 0; i < max(len(gotLines), len(wantLines)) && shown < maxShown; i++ {
		gotLine, wantLine := goldenLine(gotLines, i), goldenLine(wantLines, i)
		if gotLine == wantLine {
			continue
		}
		shown++
		fmt.Fprintf(&report, "\nline %d:\n got: %s\nwant: %s", i+1, gotLine, wantLine)
	}
	t.Errorf("%s differs from the output (run go test with -update to accept it):%s", path, report.String())
}

func goldenLine(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "<missing>"
}
