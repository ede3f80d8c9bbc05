package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// zipEntry is one entry of a fake wheel. A name ending in "/" is a directory.
type zipEntry struct {
	name string
	mode fs.FileMode // 0: 0644 for files, 0755 for directories
	body string
}

func buildZip(t *testing.T, entries []zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := e.mode
		switch {
		case strings.HasSuffix(e.name, "/"):
			mode |= fs.ModeDir
			if mode.Perm() == 0 {
				mode |= 0o755
			}
		case mode == 0:
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// elfBody looks binary to http.DetectContentType, so CopyForEmbed gzips it.
const elfBody = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x3e\x00"

// goodWheel is a pyarrow-like wheel with things to keep and things to prune.
// arch is recorded in pyarrow/_arch.py so each platform's wheel differs.
func goodWheel(t *testing.T, arch string) []byte {
	return buildZip(t, []zipEntry{
		{name: "pyarrow/"},
		{name: "pyarrow/_arch.py", body: "ARCH = '" + arch + "'\n"},
		{name: "pyarrow/__init__.py", body: "__version__ = '26.0.1'\n"},
		{name: "pyarrow/compute.py", body: "def add(a, b):\n    return a + b\n"},
		{name: "pyarrow/lib.cpython-314-x86_64-linux-gnu.so", mode: 0o755, body: elfBody},
		{name: "pyarrow/libarrow.so.2600", mode: 0o755, body: elfBody + "arrow"},
		{name: "pyarrow/lib.pyx", body: "# cython\n"},
		{name: "pyarrow/lib.pxd", body: "# cython\n"},
		{name: "pyarrow/includes/"}, // kept as a dir entry, empty once pruned
		{name: "pyarrow/includes/libarrow.pxd", body: "# cython\n"},
		{name: "pyarrow/tests/"},
		{name: "pyarrow/tests/__init__.py", body: ""},
		{name: "pyarrow/tests/test_compute.py", body: "def test(): pass\n"},
		{name: "pyarrow/include/arrow/api.h", body: "#pragma once\n"},
		{name: "pyarrow/src/arrow/python/common.cc", body: "int x;\n"},
		{name: "pyarrow/src/arrow/python/common.h", body: "#pragma once\n"},
		{name: "pyarrow/src/arrow/python/CMakeLists.txt", body: "add_library(x)\n"},
		{name: "pyarrow/vendored/portable.hpp", body: "#pragma once\n"},
		{name: "pyarrow/vendored/version.py", body: "V = 1\n"},
		{name: "pyarrow/lib/cmake/Arrow/ArrowConfig.cmake", body: "set(X 1)\n"},
		{name: "pyarrow/__pycache__/__init__.cpython-314.pyc", body: "\x00\x01"},
		{name: "pyarrow/stale.pyc", body: "\x00\x01"},
		{name: "pyarrow-26.0.1.dist-info/METADATA", body: "Metadata-Version: 2.1\nName: pyarrow\nVersion: 26.0.1\n"},
		{name: "pyarrow-26.0.1.dist-info/WHEEL", body: "Wheel-Version: 1.0\n"},
		{name: "pyarrow-26.0.1.dist-info/RECORD", body: "pyarrow/__init__.py,,\n"},
		{name: "pyarrow-26.0.1.dist-info/licenses/LICENSE.txt", body: "Apache-2.0\n"},
		{name: "pyarrow-26.0.1.data/purelib/pyarrow_extra.py", body: "X = 1\n"},
		{name: "pyarrow-26.0.1.data/scripts/plasma", mode: 0o755, body: "#!/bin/sh\n"},
	})
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// wheelServer is an HTTPS server for fake wheels that counts requests.
type wheelServer struct {
	*httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	files    map[string][]byte
}

func newWheelServer(t *testing.T) *wheelServer {
	t.Helper()
	s := &wheelServer{files: map[string][]byte{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		b, ok := s.files[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve publishes body at path and returns its URL.
func (s *wheelServer) serve(path string, body []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = body
	return s.URL + path
}

// writeLock writes a one-package lock pinning wheels (platform -> wheel).
func writeLock(t *testing.T, dir string, wheels map[string]lockWheel) string {
	t.Helper()
	l := lockFile{Python: "3.14", Packages: []lockPackage{{Name: "pyarrow", Version: "26.0.1", Wheels: wheels}}}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "bundle.lock.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const readmeText = "placeholder, do not touch\n"

// fixture is a lock pointing at a wheel server, an output dir holding the
// placeholder README.md, and a cache dir.
type fixture struct {
	srv              *wheelServer
	lock, out, cache string
	amd64URL, armURL string
	amd64SHA, armSHA string
	env              map[string]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{srv: newWheelServer(t), out: filepath.Join(dir, "bundle"), cache: filepath.Join(dir, "cache"), env: map[string]string{}}
	amd, arm := goodWheel(t, "amd64"), goodWheel(t, "arm64")
	f.amd64URL, f.amd64SHA = f.srv.serve("/pyarrow-amd64.whl", amd), sha256Hex(amd)
	f.armURL, f.armSHA = f.srv.serve("/pyarrow-arm64.whl", arm), sha256Hex(arm)
	f.lock = writeLock(t, dir, map[string]lockWheel{
		"linux-amd64": {URL: f.amd64URL, SHA256: f.amd64SHA},
		"linux-arm64": {URL: f.armURL, SHA256: f.armSHA},
	})
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.out, readmeName), []byte(readmeText), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// run runs the generator with the fixture's lock, out and cache plus args,
// and returns its stderr.
func (f *fixture) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stderr bytes.Buffer
	all := append([]string{"-lock", f.lock, "-out", f.out, "-cache", f.cache}, args...)
	d := deps{client: f.srv.Client(), getenv: func(k string) string { return f.env[k] }}
	err := generate(context.Background(), all, &stderr, d)
	return stderr.String(), err
}

// topLevel lists the names directly in dir.
func topLevel(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func readManifest(t *testing.T, out string) manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func checkReadme(t *testing.T, out string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, readmeName))
	if err != nil || string(b) != readmeText {
		t.Fatalf("README.md changed: %q, %v", b, err)
	}
}
