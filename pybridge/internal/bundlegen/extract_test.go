package main

import (
	"archive/zip"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeWheel(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "w.whl")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExtractWheelRejects(t *testing.T) {
	cases := []struct {
		name    string
		entries []zipEntry
		wantErr string
	}{
		{"parent dir", []zipEntry{{name: "../evil", body: "x"}}, `unsafe zip entry "../evil": escapes the extraction directory`},
		{"deep parent dir", []zipEntry{{name: "a/b/../../../evil", body: "x"}}, `unsafe zip entry "a/b/../../../evil": escapes`},
		{"absolute", []zipEntry{{name: "/abs", body: "x"}}, `unsafe zip entry "/abs": absolute path`},
		{"absolute dir", []zipEntry{{name: "/etc/"}}, `unsafe zip entry "/etc/": absolute path`},
		{"dot", []zipEntry{{name: "./", body: ""}}, `unsafe zip entry "./": escapes`},
		{"symlink", []zipEntry{{name: "pyarrow/link", mode: fs.ModeSymlink | 0o777, body: "/etc/passwd"}}, `unsupported zip entry "pyarrow/link"`},
		{"duplicate", []zipEntry{{name: "pyarrow/a.py", body: "1"}, {name: "pyarrow/a.py", body: "2"}}, "pyarrow/a.py is provided twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A good entry first: it must not be written when a later one is hostile.
			entries := append([]zipEntry{{name: "pyarrow/__init__.py", body: "ok"}}, tc.entries...)
			wheel := writeWheel(t, buildZip(t, entries))
			parent := t.TempDir()
			dest := filepath.Join(parent, "site-packages")
			if err := os.Mkdir(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := extractWheel(wheel, dest)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if got := topLevel(t, parent); len(got) != 1 || got[0] != "site-packages" {
				t.Errorf("something was written beside the tree: %v", got)
			}
			if tc.name != "duplicate" {
				if got := topLevel(t, dest); len(got) != 0 {
					t.Errorf("rejected wheel wrote %v", got)
				}
			}
		})
	}
}

func TestExtractWheelModes(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	// Create writes no Unix attributes (MS-DOS creator, mode 0666).
	w, err := zw.Create("pkg/dos.py")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("x"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	dosWheel := buf.Bytes()

	cases := []struct {
		name  string
		wheel []byte
		file  string
		want  fs.FileMode
	}{
		{"executable kept", buildZip(t, []zipEntry{{name: "pkg/x.so", mode: 0o755, body: elfBody}}), "pkg/x.so", 0o755},
		{"plain file", buildZip(t, []zipEntry{{name: "pkg/x.py", mode: 0o644, body: "x"}}), "pkg/x.py", 0o644},
		{"owner only widened to readable", buildZip(t, []zipEntry{{name: "pkg/x.py", mode: 0o600, body: "x"}}), "pkg/x.py", 0o644},
		{"world writable narrowed", buildZip(t, []zipEntry{{name: "pkg/x.so", mode: 0o777, body: elfBody}}), "pkg/x.so", 0o755},
		{"no unix attributes", dosWheel, "pkg/dos.py", 0o644},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			st, err := extractWheel(writeWheel(t, tc.wheel), dest)
			if err != nil {
				t.Fatal(err)
			}
			if st.Files != 1 {
				t.Errorf("files = %d, want 1", st.Files)
			}
			info, err := os.Stat(filepath.Join(dest, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode() != tc.want {
				t.Errorf("mode = %v, want %v", info.Mode(), tc.want)
			}
		})
	}
}

func TestInstallPath(t *testing.T) {
	cases := []struct {
		entry string
		isDir bool
		want  string // "" : not installed
	}{
		{"pyarrow/__init__.py", false, "pyarrow/__init__.py"},
		{"pyarrow/lib.cpython-314-x86_64-linux-gnu.so", false, "pyarrow/lib.cpython-314-x86_64-linux-gnu.so"},
		{"pyarrow/tests", true, ""},
		{"pyarrow/tests/conftest.py", false, ""},
		{"pyarrow/include/arrow/api.h", false, ""},
		{"pyarrow/include", true, ""},
		{"pyarrow/interchange/column.py", false, "pyarrow/interchange/column.py"},
		{"pyarrow/includes/common.pxd", false, ""},
		{"pyarrow/lib.pyx", false, ""},
		{"pyarrow/lib.pxi", false, ""},
		{"pyarrow/src/arrow/python/x.cc", false, ""},
		{"pyarrow/src/arrow/python/x.cpp", false, ""},
		{"pyarrow/src/arrow/python/x.hpp", false, ""},
		{"pyarrow/src/arrow/python/CMakeLists.txt", false, ""},
		{"pyarrow/srcutil.py", false, "pyarrow/srcutil.py"},
		{"pyarrow/lib/cmake/Arrow/ArrowConfig.cmake", false, ""},
		{"pyarrow/lib/cmake", true, ""},
		{"pyarrow/cmake_helpers.py", false, "pyarrow/cmake_helpers.py"},
		{"pyarrow/util/cmake", false, "pyarrow/util/cmake"}, // a file, not a cmake dir
		{"pyarrow/__pycache__/x.cpython-314.pyc", false, ""},
		{"pyarrow/x.pyc", false, ""},
		{"pyarrow-26.0.1.dist-info/METADATA", false, "pyarrow-26.0.1.dist-info/METADATA"},
		{"pyarrow-26.0.1.dist-info/licenses/x.h", false, "pyarrow-26.0.1.dist-info/licenses/x.h"},
		{"pyarrow-26.0.1.data/purelib/foo/bar.py", false, "foo/bar.py"},
		{"pyarrow-26.0.1.data/platlib/foo.so", false, "foo.so"},
		{"pyarrow-26.0.1.data/platlib/foo/tests.h", false, ""},
		{"pyarrow-26.0.1.data/scripts/tool", false, ""},
		{"pyarrow-26.0.1.data/headers/x.h", false, ""},
		{"pyarrow-26.0.1.data/purelib", true, ""},
		{"other/tests/test_x.py", false, "other/tests/test_x.py"}, // only pyarrow/tests is pruned
	}
	for _, tc := range cases {
		t.Run(tc.entry, func(t *testing.T) {
			got, ok := installPath(tc.entry, tc.isDir)
			if !ok {
				got = ""
			}
			if got != tc.want {
				t.Errorf("installPath(%q, %v) = %q, want %q", tc.entry, tc.isDir, got, tc.want)
			}
		})
	}
}
