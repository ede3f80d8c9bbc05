package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kluctl/go-embed-python/embed_util"
)

func TestGenerateExtractsPrunesAndPacks(t *testing.T) {
	f := newFixture(t)
	stderr, err := f.run(t, "-goos", "linux", "-goarch", "amd64")
	if err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr)
	}
	checkReadme(t, f.out)

	// The output holds exactly the placeholder, files.json, the manifest and
	// the packed tree: no .gitattributes, no staging dir.
	want := []string{readmeName, filesListName, manifestName, "pyarrow", "pyarrow-26.0.1.dist-info", "pyarrow_extra.py"}
	if got := topLevel(t, f.out); !sameSet(got, want) {
		t.Errorf("top level of -out = %v, want %v", got, want)
	}
	// Binary files are stored gzipped.
	if _, err := os.Stat(filepath.Join(f.out, "pyarrow", "libarrow.so.2600.gz")); err != nil {
		t.Errorf("packed .so not gzipped: %v", err)
	}

	m := readManifest(t, f.out)
	lockBytes, _ := os.ReadFile(f.lock)
	wantM := manifest{Platform: "linux-amd64", Python: "3.14", LockSHA256: sha256Hex(lockBytes),
		Packages: []manifestPackage{{Name: "pyarrow", Version: "26.0.1", SHA256: f.amd64SHA}}}
	if mb, _ := json.Marshal(m); string(mb) != mustJSON(t, wantM) {
		t.Errorf("manifest = %s, want %s", mb, mustJSON(t, wantM))
	}

	// Unpack the bundle the way the runtime does and check the tree.
	dst := filepath.Join(t.TempDir(), "site-packages")
	if _, err := embed_util.NewEmbeddedFilesWithTmpDir(os.DirFS(f.out), dst, false); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	files := []struct {
		path string
		keep bool
		mode fs.FileMode
	}{
		{"pyarrow/__init__.py", true, 0o644},
		{"pyarrow/_arch.py", true, 0o644},
		{"pyarrow/compute.py", true, 0o644},
		{"pyarrow/lib.cpython-314-x86_64-linux-gnu.so", true, 0o755},
		{"pyarrow/libarrow.so.2600", true, 0o755},
		{"pyarrow/vendored/version.py", true, 0o644},
		{"pyarrow-26.0.1.dist-info/METADATA", true, 0o644},
		{"pyarrow-26.0.1.dist-info/RECORD", true, 0o644},
		{"pyarrow-26.0.1.dist-info/licenses/LICENSE.txt", true, 0o644},
		{"pyarrow_extra.py", true, 0o644}, // from .data/purelib
		{manifestName, true, 0o644},
		{"pyarrow/lib.pyx", false, 0},
		{"pyarrow/lib.pxd", false, 0},
		{"pyarrow/includes", false, 0}, // only held a .pxd: removed when empty
		{"pyarrow/tests", false, 0},
		{"pyarrow/include", false, 0},
		{"pyarrow/src", false, 0},
		{"pyarrow/vendored/portable.hpp", false, 0},
		{"pyarrow/lib/cmake", false, 0},
		{"pyarrow/__pycache__", false, 0},
		{"pyarrow/stale.pyc", false, 0},
		{"pyarrow-26.0.1.data", false, 0},
		{"plasma", false, 0}, // .data/scripts is not installed
	}
	for _, tc := range files {
		t.Run(tc.path, func(t *testing.T) {
			st, err := os.Stat(filepath.Join(dst, tc.path))
			switch {
			case !tc.keep && err == nil:
				t.Errorf("%s should have been pruned", tc.path)
			case !tc.keep && !errors.Is(err, fs.ErrNotExist):
				t.Error(err)
			case tc.keep && err != nil:
				t.Errorf("%s missing: %v", tc.path, err)
			case tc.keep && st.Mode() != tc.mode:
				t.Errorf("%s mode = %v, want %v", tc.path, st.Mode(), tc.mode)
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "pyarrow/libarrow.so.2600")); string(b) != elfBody+"arrow" {
		t.Errorf("libarrow content changed after pack/unpack")
	}
}

func TestGenerateCacheUpToDateAndForce(t *testing.T) {
	f := newFixture(t)
	cached := filepath.Join(f.cache, f.amd64SHA+".whl")
	args := []string{"-goos", "linux", "-goarch", "amd64"}

	// Each step runs in order on the same fixture.
	steps := []struct {
		name         string
		before       func(t *testing.T)
		args         []string
		wantErr      string
		wantStderr   string
		wantRequests int64
	}{
		{name: "cold run downloads", wantStderr: "downloading", wantRequests: 1},
		{name: "second run is up to date", wantStderr: "is up to date", wantRequests: 1},
		{name: "force rebuilds from the cache", args: []string{"-force"}, wantStderr: "using cached", wantRequests: 1},
		{
			name: "changed lock rebuilds",
			before: func(t *testing.T) {
				b, _ := os.ReadFile(f.lock)
				if err := os.WriteFile(f.lock, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantStderr: "wrote", wantRequests: 1,
		},
		{
			name: "corrupt cache entry is downloaded again",
			before: func(t *testing.T) {
				if err := os.WriteFile(cached, []byte("garbage"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			args: []string{"-force"}, wantStderr: "downloading again", wantRequests: 2,
		},
		{
			name: "corrupt cache and corrupt download fail",
			before: func(t *testing.T) {
				if err := os.WriteFile(cached, []byte("garbage"), 0o644); err != nil {
					t.Fatal(err)
				}
				f.srv.serve("/pyarrow-amd64.whl", []byte("not the pinned wheel"))
			},
			args: []string{"-force"}, wantErr: "sha256 mismatch", wantRequests: 3,
		},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.before != nil {
				s.before(t)
			}
			stderr, err := f.run(t, append(slices.Clone(args), s.args...)...)
			if s.wantErr == "" && err != nil {
				t.Fatalf("generate: %v\n%s", err, stderr)
			}
			if s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
				t.Fatalf("error = %v, want it to contain %q", err, s.wantErr)
			}
			if s.wantErr == "" && !strings.Contains(stderr, s.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr, s.wantStderr)
			}
			if got := f.srv.requests.Load(); got != s.wantRequests {
				t.Errorf("requests = %d, want %d", got, s.wantRequests)
			}
			checkReadme(t, f.out)
			// A failed run keeps the previous bundle.
			if m := readManifest(t, f.out); m.Platform != "linux-amd64" {
				t.Errorf("manifest platform = %q", m.Platform)
			}
		})
	}
	// The failed download left no cache entry and no partial file.
	if entries, _ := os.ReadDir(f.cache); len(entries) != 0 {
		t.Errorf("cache holds %v after a failed download, want nothing", topLevel(t, f.cache))
	}
}

func TestGenerateSHAMismatch(t *testing.T) {
	f := newFixture(t)
	wrong := strings.Repeat("0", 64)
	f.lock = writeLock(t, t.TempDir(), map[string]lockWheel{"linux-amd64": {URL: f.amd64URL, SHA256: wrong}})
	_, err := f.run(t, "-goos", "linux", "-goarch", "amd64")
	var mm *shaMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("error = %v, want a sha256 mismatch", err)
	}
	for _, s := range []string{f.amd64URL, "expected " + wrong, "got " + f.amd64SHA} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	if exitCode(err, &bytes.Buffer{}) != 1 {
		t.Errorf("exit code for a mismatch is not 1")
	}
	if entries, _ := os.ReadDir(f.cache); len(entries) != 0 {
		t.Errorf("cache holds %v, want nothing", topLevel(t, f.cache))
	}
	if got := topLevel(t, f.out); !sameSet(got, []string{readmeName}) {
		t.Errorf("-out = %v, want only README.md", got)
	}
}

func TestGenerateHostileWheel(t *testing.T) {
	cases := []struct {
		name, entry, wantErr string
	}{
		{"parent", "../evil", `unsafe zip entry "../evil": escapes the extraction directory`},
		{"nested parent", "pyarrow/../../evil", `unsafe zip entry "pyarrow/../../evil": escapes`},
		{"absolute", "/abs", `unsafe zip entry "/abs": absolute path`},
		{"backslash", `..\evil`, `unsafe zip entry "..\\evil": contains a backslash`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			wheel := buildZip(t, []zipEntry{
				{name: "pyarrow/__init__.py", body: "ok\n"},
				{name: tc.entry, body: "pwned\n"},
			})
			url := f.srv.serve("/hostile.whl", wheel)
			f.lock = writeLock(t, t.TempDir(), map[string]lockWheel{"linux-amd64": {URL: url, SHA256: sha256Hex(wheel)}})
			_, err := f.run(t, "-goos", "linux", "-goarch", "amd64")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "wheel pyarrow 26.0.1 ("+url+")") {
				t.Errorf("error %q does not name the wheel", err)
			}
			if got := topLevel(t, f.out); !sameSet(got, []string{readmeName}) {
				t.Errorf("-out = %v, want only README.md", got)
			}
		})
	}
}

func TestGeneratePlatforms(t *testing.T) {
	cases := []struct {
		name         string
		env          map[string]string
		args         []string
		wantPlatform string // "" : no bundle
		wantErr      string
	}{
		{name: "flags", args: []string{"-goos", "linux", "-goarch", "arm64"}, wantPlatform: "linux-arm64"},
		{name: "env when flags absent", env: map[string]string{"GOOS": "linux", "GOARCH": "arm64"}, wantPlatform: "linux-arm64"},
		{name: "flags override env", env: map[string]string{"GOOS": "linux", "GOARCH": "arm64"}, args: []string{"-goarch", "amd64"}, wantPlatform: "linux-amd64"},
		{name: "unknown platform", args: []string{"-goos", "linux", "-goarch", "riscv64"},
			wantErr: "no wheel of pyarrow is pinned for linux-riscv64 (pinned platforms: linux-amd64, linux-arm64)"},
		{name: "unknown platform from env", env: map[string]string{"GOOS": "darwin", "GOARCH": "arm64"},
			wantErr: "pinned for darwin-arm64 (pinned platforms: linux-amd64, linux-arm64)"},
		{name: "allow missing clears the bundle", args: []string{"-goos", "linux", "-goarch", "riscv64", "-allow-missing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			// Start from a built bundle, so clearing is visible.
			if stderr, err := f.run(t, "-goos", "linux", "-goarch", "amd64"); err != nil {
				t.Fatalf("setup: %v\n%s", err, stderr)
			}
			f.env = tc.env
			stderr, err := f.run(t, tc.args...)
			if tc.wantErr != "" {
				var mp *missingPlatformError
				if !errors.As(err, &mp) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want a missing platform error containing %q", err, tc.wantErr)
				}
				if readManifest(t, f.out).Platform != "linux-amd64" {
					t.Errorf("the failed run changed the bundle")
				}
				return
			}
			if err != nil {
				t.Fatalf("generate: %v\n%s", err, stderr)
			}
			checkReadme(t, f.out)
			if tc.wantPlatform == "" {
				if got := topLevel(t, f.out); !sameSet(got, []string{readmeName}) {
					t.Errorf("-out = %v, want only README.md", got)
				}
				return
			}
			if got := readManifest(t, f.out).Platform; got != tc.wantPlatform {
				t.Errorf("platform = %q, want %q", got, tc.wantPlatform)
			}
		})
	}
}

func TestGenerateRefusesForeignOutDir(t *testing.T) {
	f := newFixture(t)
	precious := filepath.Join(f.out, "main.go")
	if err := os.WriteFile(precious, []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-goos", "linux", "-goarch", "amd64"},
		{"-goos", "linux", "-goarch", "riscv64", "-allow-missing"},
	} {
		_, err := f.run(t, args...)
		if err == nil || !strings.Contains(err.Error(), "refusing to clear") {
			t.Errorf("%v: error = %v, want a refusal", args, err)
		}
		if _, err := os.Stat(precious); err != nil {
			t.Fatalf("%v: foreign file removed: %v", args, err)
		}
	}
}

func TestGenerateRemovesStagingLeftovers(t *testing.T) {
	f := newFixture(t)
	args := []string{"-goos", "linux", "-goarch", "amd64"}
	if stderr, err := f.run(t, args...); err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr)
	}
	for _, extra := range []string{"-force", ""} { // rebuild, then up to date
		leftover := filepath.Join(f.out, stagingPrefix+"123", "pyarrow")
		if err := os.MkdirAll(leftover, 0o755); err != nil {
			t.Fatal(err)
		}
		a := slices.Clone(args)
		if extra != "" {
			a = append(a, extra)
		}
		if stderr, err := f.run(t, a...); err != nil {
			t.Fatalf("generate %v: %v\n%s", a, err, stderr)
		}
		for _, name := range topLevel(t, f.out) {
			if strings.HasPrefix(name, stagingPrefix) {
				t.Errorf("run %v left %s", a, name)
			}
		}
	}
}

func TestExitCodes(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"-h"}, 0},
		{"unknown flag", []string{"-bogus"}, 2},
		{"positional argument", []string{"extra"}, 2},
		{"bad platform", []string{"-goos", "Linux"}, 2},
		{"missing lock", []string{"-lock", filepath.Join(t.TempDir(), "nope.json")}, 1},
		{"ok", []string{"-goos", "linux", "-goarch", "amd64"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.run(t, tc.args...)
			var stderr bytes.Buffer
			if got := exitCode(err, &stderr); got != tc.want {
				t.Errorf("exit code = %d (err %v), want %d", got, err, tc.want)
			}
			if tc.want == 2 && !strings.Contains(stderr.String(), "bundlegen -h") {
				t.Errorf("usage error message %q lacks the -h hint", stderr.String())
			}
		})
	}
	var stderr bytes.Buffer
	err := generate(context.Background(), []string{"-h"}, &stderr, deps{getenv: func(string) string { return "" }})
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "-allow-missing") {
		t.Errorf("-h: err %v, usage %q", err, stderr.String())
	}
}

func sameSet(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
