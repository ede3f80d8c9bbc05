package pybridge

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSettings(t *testing.T) {
	const source = "/udfs/a.fletch.toml"
	base := filepath.FromSlash("/udfs")
	tests := []struct {
		name    string
		toml    string
		want    Settings
		wantErr []string // substrings of the error, besides ErrSettings and source
	}{
		{name: "empty", toml: ""},
		{name: "comments only", toml: "# nothing\n\n"},
		{
			name: "every key",
			toml: `python = "/opt/venv"
workers = 2
call_timeout = "1m30s"
max_batch_rows = 10000
entry = "app.main"
[env]
API_URL = "https://example.com"
EMPTY = ""
`,
			want: Settings{
				Python: filepath.FromSlash("/opt/venv"), Workers: 2, CallTimeout: 90 * time.Second, MaxBatchRows: 10000,
				Entry: "app.main", Env: map[string]string{"API_URL": "https://example.com", "EMPTY": ""},
			},
		},
		{name: "relative python", toml: `python = "venv/bin/python"`, want: Settings{Python: filepath.Join(base, "venv", "bin", "python")}},
		{name: "relative python with dots", toml: `python = "../envs/./x"`, want: Settings{Python: filepath.FromSlash("/envs/x")}},
		{name: "absolute python cleaned", toml: `python = "/opt//venv/"`, want: Settings{Python: filepath.FromSlash("/opt/venv")}},
		{name: "env inline table", toml: `env = { A = "1", "B.C" = "2" }`, want: Settings{Env: map[string]string{"A": "1", "B.C": "2"}}},
		{name: "env dotted keys", toml: `env.A = "x"`, want: Settings{Env: map[string]string{"A": "x"}}},
		{name: "empty env table", toml: "[env]\n"},
		{name: "unicode entry", toml: `entry = "données.π"`, want: Settings{Entry: "données.π"}},
		{name: "soft keyword entry", toml: `entry = "match.type"`, want: Settings{Entry: "match.type"}},

		{name: "unknown key", toml: "workers = 1\nthreads = 4", wantErr: []string{`unknown key "threads"`}},
		{name: "unknown table", toml: "[tool]\nx = 1", wantErr: []string{`unknown key "tool"`}},
		{name: "key in wrong case", toml: "Workers = 2", wantErr: []string{`unknown key "Workers"`, `did you mean "workers"`}},
		{name: "key in two cases", toml: "workers = 2\nWORKERS = \"x\"", wantErr: []string{`unknown key "WORKERS"`}},
		{name: "dashed key", toml: `call-timeout = "1s"`, wantErr: []string{`unknown key "call-timeout"`, `"call_timeout"`}},

		{name: "python not a string", toml: "python = 3", wantErr: []string{"python: expected string, got integer"}},
		{name: "python empty", toml: `python = ""`, wantErr: []string{"python must be a non-empty path"}},
		{name: "workers a string", toml: `workers = "2"`, wantErr: []string{"workers: expected integer, got string"}},
		{name: "workers a float", toml: "workers = 2.0", wantErr: []string{"workers: expected integer, got float"}},
		{name: "workers a datetime", toml: "workers = 2024-01-01", wantErr: []string{"workers: expected integer, got datetime"}},
		{name: "call_timeout an integer", toml: "call_timeout = 30", wantErr: []string{"call_timeout: expected string, got integer"}},
		{name: "max_batch_rows a bool", toml: "max_batch_rows = true", wantErr: []string{"max_batch_rows: expected integer, got boolean"}},
		{name: "entry an array", toml: `entry = ["a"]`, wantErr: []string{"entry: expected string, got array"}},
		{name: "env a string", toml: `env = "A=1"`, wantErr: []string{"env: expected table, got string"}},
		{name: "env array of tables", toml: "[[env]]\nA = \"1\"", wantErr: []string{"env: expected table, got array of tables"}},
		{name: "env value an integer", toml: "[env]\nPORT = 8080", wantErr: []string{"env.PORT: expected string, got integer"}},
		{name: "env nested table", toml: "[env.sub]\nA = \"1\"", wantErr: []string{"env.sub: expected string, got table"}},

		{name: "zero workers", toml: "workers = 0", wantErr: []string{"workers must be a positive integer, got 0"}},
		{name: "negative workers", toml: "workers = -1", wantErr: []string{"workers must be a positive integer, got -1"}},
		{name: "zero max_batch_rows", toml: "max_batch_rows = 0", wantErr: []string{"max_batch_rows must be a positive integer"}},
		{name: "huge integer", toml: "workers = 99999999999999999999", wantErr: []string{"line 1", "out of range"}},
		{name: "zero call_timeout", toml: `call_timeout = "0s"`, wantErr: []string{"call_timeout must be positive"}},
		{name: "negative call_timeout", toml: `call_timeout = "-5s"`, wantErr: []string{"call_timeout must be positive"}},
		{name: "duration without unit", toml: `call_timeout = "30"`, wantErr: []string{`call_timeout: "30" is not a duration`}},
		{name: "duration nonsense", toml: `call_timeout = "soon"`, wantErr: []string{`"soon" is not a duration`}},

		{name: "env empty name", toml: "[env]\n\"\" = \"x\"", wantErr: []string{`env: "" is not an environment variable name`}},
		{name: "env name with =", toml: "[env]\n\"A=B\" = \"x\"", wantErr: []string{`env: "A=B" is not an environment variable name`}},
		{name: "env name with NUL", toml: "[env]\n\"A\\u0000\" = \"x\"", wantErr: []string{"is not an environment variable name"}},
		{name: "env value with NUL", toml: "[env]\nA = \"x\\u0000y\"", wantErr: []string{"env.A: the value contains NUL"}},

		{name: "entry empty", toml: `entry = ""`, wantErr: []string{`entry "" is not a Python module name`}},
		{name: "entry with dash", toml: `entry = "my-app"`, wantErr: []string{`entry "my-app"`, "contains '-'"}},
		{name: "entry starting with digit", toml: `entry = "1app"`, wantErr: []string{"starts with '1'"}},
		{name: "entry empty part", toml: `entry = "a..b"`, wantErr: []string{`part ""`, "empty"}},
		{name: "entry leading dot", toml: `entry = ".a"`, wantErr: []string{"empty"}},
		{name: "entry trailing dot", toml: `entry = "a."`, wantErr: []string{"empty"}},
		{name: "entry keyword", toml: `entry = "app.class"`, wantErr: []string{`part "class"`, "keyword"}},
		{name: "entry path", toml: `entry = "app/main.py"`, wantErr: []string{"contains '/'"}},

		{name: "malformed", toml: "workers = ", wantErr: []string{"line 1"}},
		{name: "malformed on line 3", toml: "# a\n\nworkers = = 2", wantErr: []string{"line 3"}},
		{name: "duplicate key", toml: "workers = 1\nworkers = 2", wantErr: []string{"line 2", "already been defined"}},
		{name: "unterminated string", toml: `python = "venv`, wantErr: []string{"line 1"}},
		{name: "invalid UTF-8", toml: "python = \"\xff\"", wantErr: []string{"line 1"}},
		{name: "too large", toml: "# " + strings.Repeat("x", maxSettingsBytes), wantErr: []string{"larger than 64 KiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSettings([]byte(tt.toml), source, base)
			if tt.wantErr != nil {
				checkErr(t, err, append([]string{source}, tt.wantErr...)...)
				return
			}
			if err != nil {
				t.Fatalf("ParseSettings: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseSettings = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseSettingsKeepsTOMLError(t *testing.T) {
	_, err := ParseSettings([]byte("workers = = 1"), "x.toml", "")
	var pe interface{ ErrorWithPosition() string }
	if !errors.As(err, &pe) || !strings.Contains(pe.ErrorWithPosition(), "workers = = 1") {
		t.Fatalf("error %v does not carry BurntSushi's ParseError", err)
	}
}

// checkErr fails unless err wraps ErrSettings and mentions every want.
func checkErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one mentioning %q", want)
	}
	if !errors.Is(err, ErrSettings) {
		t.Errorf("error %q does not wrap ErrSettings", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// mkzip returns a zip holding the given name, content pairs, in order.
func mkzip(t testing.TB, pairs ...string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(pairs); i += 2 {
		w, err := zw.Create(pairs[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(pairs[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// writeTree writes files (slash paths relative to root) and returns root.
func writeTree(t *testing.T, root string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestFindProjects(t *testing.T) {
	type want struct {
		name     string
		form     ProjectForm
		path     string // relative to the temp root
		settings string // SettingsPath relative to the temp root, or ""
		module   string // Module().Name
		python   string // Settings.Python relative to the temp root, or ""
		workers  int
	}
	tests := []struct {
		name    string
		files   map[string]string
		dirs    []string // relative to the temp root; default "udfs"
		want    []want
		wantErr []string // substrings; "$ROOT" is the temp root
	}{
		{name: "empty directory", files: map[string]string{"udfs/": ""}},
		{
			name:  "file",
			files: map[string]string{"udfs/a.py": "x = 1\n"},
			want:  []want{{name: "a", form: FormFile, path: "udfs/a.py", module: "a"}},
		},
		{
			name:  "package",
			files: map[string]string{"udfs/pkg/__init__.py": "", "udfs/pkg/mod.py": ""},
			want:  []want{{name: "pkg", form: FormPackage, path: "udfs/pkg", module: "pkg"}},
		},
		{
			name:  "zip with a module",
			files: map[string]string{"udfs/z.zip": mkzip(t, "z.py", "x = 1\n")},
			want:  []want{{name: "z", form: FormZip, path: "udfs/z.zip", module: "z"}},
		},
		{
			name:  "zip with a package",
			files: map[string]string{"udfs/z.zip": mkzip(t, "z/", "", "z/__init__.py", "", "z/util.py", "")},
			want:  []want{{name: "z", form: FormZip, path: "udfs/z.zip", module: "z"}},
		},
		{
			name:  "zip with bytecode only",
			files: map[string]string{"udfs/z.zip": mkzip(t, "z.pyc", "\x00")},
			want:  []want{{name: "z", form: FormZip, path: "udfs/z.zip", module: "z"}},
		},
		{
			name: "name order across forms",
			files: map[string]string{
				"udfs/c.py": "", "udfs/a/__init__.py": "", "udfs/b.zip": mkzip(t, "b.py", ""), "udfs/a_b.py": "",
			},
			want: []want{
				{name: "a", form: FormPackage, path: "udfs/a", module: "a"},
				{name: "a_b", form: FormFile, path: "udfs/a_b.py", module: "a_b"},
				{name: "b", form: FormZip, path: "udfs/b.zip", module: "b"},
				{name: "c", form: FormFile, path: "udfs/c.py", module: "c"},
			},
		},
		{
			name: "skipped entries",
			files: map[string]string{
				"udfs/a.py": "", "udfs/_private.py": "", "udfs/.hidden.py": "", "udfs/__init__.py": "",
				"udfs/__pycache__/a.cpython-313.pyc": "", "udfs/_pkg/__init__.py": "", "udfs/.pkg/__init__.py": "",
				"udfs/data/x.csv": "", "udfs/my-data/": "", "udfs/README.md": "", "udfs/a.pyc": "", "udfs/_z.zip": "junk",
				"udfs/.z.zip": "junk", "udfs/requirements.txt": "", "udfs/fletch.toml": "not toml [", "udfs/.x.fletch.toml": "",
			},
			want: []want{{name: "a", form: FormFile, path: "udfs/a.py", module: "a"}},
		},
		{
			name:  "several directories in order",
			files: map[string]string{"d2/a.py": "", "d1/b.py": "", "d1/c.py": ""},
			dirs:  []string{"d2", "d1"},
			want: []want{
				{name: "a", form: FormFile, path: "d2/a.py", module: "a"},
				{name: "b", form: FormFile, path: "d1/b.py", module: "b"},
				{name: "c", form: FormFile, path: "d1/c.py", module: "c"},
			},
		},
		{
			name:  "same directory twice",
			files: map[string]string{"udfs/a.py": ""},
			dirs:  []string{"udfs", "udfs/"},
			want:  []want{{name: "a", form: FormFile, path: "udfs/a.py", module: "a"}},
		},

		{
			name:  "settings beside a file",
			files: map[string]string{"udfs/a.py": "", "udfs/a.fletch.toml": "workers = 3\npython = \"venv\"\n"},
			want: []want{{name: "a", form: FormFile, path: "udfs/a.py", module: "a", settings: "udfs/a.fletch.toml",
				python: "udfs/venv", workers: 3}},
		},
		{
			name: "settings beside a package",
			files: map[string]string{"udfs/pkg/__init__.py": "", "udfs/pkg/main.py": "",
				"udfs/pkg.fletch.toml": "entry = \"pkg.main\"\npython = \"envs/p\""},
			want: []want{{name: "pkg", form: FormPackage, path: "udfs/pkg", module: "pkg.main", settings: "udfs/pkg.fletch.toml",
				python: "udfs/envs/p"}},
		},
		{
			name:  "settings inside a package",
			files: map[string]string{"udfs/pkg/__init__.py": "", "udfs/pkg/fletch.toml": "python = \".venv\"\nworkers = 1"},
			want: []want{{name: "pkg", form: FormPackage, path: "udfs/pkg", module: "pkg", settings: "udfs/pkg/fletch.toml",
				python: "udfs/pkg/.venv", workers: 1}},
		},
		{
			name:  "settings beside a zip",
			files: map[string]string{"udfs/z.zip": mkzip(t, "z.py", ""), "udfs/z.fletch.toml": "workers = 2"},
			want:  []want{{name: "z", form: FormZip, path: "udfs/z.zip", module: "z", settings: "udfs/z.fletch.toml", workers: 2}},
		},
		{
			name:  "settings inside a zip",
			files: map[string]string{"udfs/z.zip": mkzip(t, "fletch.toml", "entry = \"main\"\npython = \"venv\"", "main.py", "")},
			want: []want{{name: "z", form: FormZip, path: "udfs/z.zip", module: "main", settings: "udfs/z.zip/fletch.toml",
				python: "udfs/venv"}},
		},
		{
			name:  "empty settings inside a zip",
			files: map[string]string{"udfs/z.zip": mkzip(t, "fletch.toml", "", "z.py", "")},
			want:  []want{{name: "z", form: FormZip, path: "udfs/z.zip", module: "z", settings: "udfs/z.zip/fletch.toml"}},
		},
		{
			name:  "dotted zip entry in a package",
			files: map[string]string{"udfs/z.zip": mkzip(t, "fletch.toml", `entry = "app.udfs"`, "app/__init__.py", "", "app/udfs/__init__.py", "")},
			want:  []want{{name: "z", form: FormZip, path: "udfs/z.zip", module: "app.udfs", settings: "udfs/z.zip/fletch.toml"}},
		},

		{
			name:    "settings beside and inside a package",
			files:   map[string]string{"udfs/pkg/__init__.py": "", "udfs/pkg/fletch.toml": "", "udfs/pkg.fletch.toml": ""},
			wantErr: []string{"two settings files", "$ROOT/udfs/pkg.fletch.toml", "$ROOT/udfs/pkg/fletch.toml"},
		},
		{
			name:    "settings beside and inside a zip",
			files:   map[string]string{"udfs/z.zip": mkzip(t, "z.py", "", "fletch.toml", ""), "udfs/z.fletch.toml": ""},
			wantErr: []string{"two settings files", "$ROOT/udfs/z.fletch.toml", "$ROOT/udfs/z.zip/fletch.toml"},
		},
		{
			name:    "orphan settings",
			files:   map[string]string{"udfs/a.py": "", "udfs/b.fletch.toml": "workers = 1"},
			wantErr: []string{"$ROOT/udfs/b.fletch.toml", "no project b"},
		},
		{
			name:    "settings for a skipped file",
			files:   map[string]string{"udfs/_a.py": "", "udfs/_a.fletch.toml": ""},
			wantErr: []string{"$ROOT/udfs/_a.fletch.toml", "names starting with _ are not loaded"},
		},
		{
			name:    "bad settings beside",
			files:   map[string]string{"udfs/a.py": "", "udfs/a.fletch.toml": "workers = \"many\""},
			wantErr: []string{"$ROOT/udfs/a.fletch.toml", "workers: expected integer, got string"},
		},
		{
			name:    "bad settings inside a zip",
			files:   map[string]string{"udfs/z.zip": mkzip(t, "z.py", "", "fletch.toml", "\n[[oops")},
			wantErr: []string{"$ROOT/udfs/z.zip/fletch.toml", "line 2"},
		},
		{
			name:    "oversized settings inside a zip",
			files:   map[string]string{"udfs/z.zip": mkzip(t, "z.py", "", "fletch.toml", strings.Repeat("#", maxSettingsBytes+1))},
			wantErr: []string{"$ROOT/udfs/z.zip/fletch.toml", "larger than 64 KiB"},
		},
		{
			name:    "settings file twice in a zip",
			files:   map[string]string{"udfs/z.zip": mkzip(t, "z.py", "", "fletch.toml", "", "fletch.toml", "")},
			wantErr: []string{"$ROOT/udfs/z.zip", "fletch.toml twice"},
		},
		{
			name:    "settings file is a directory",
			files:   map[string]string{"udfs/a.py": "", "udfs/a.fletch.toml/x": ""},
			wantErr: []string{"$ROOT/udfs/a.fletch.toml", "not a regular file"},
		},

		{
			name:    "file and package of one name",
			files:   map[string]string{"udfs/a.py": "", "udfs/a/__init__.py": ""},
			wantErr: []string{"two projects are named a", "$ROOT/udfs/a", "$ROOT/udfs/a.py"},
		},
		{
			name:    "file and zip of one name",
			files:   map[string]string{"udfs/a.py": "", "udfs/a.zip": mkzip(t, "a.py", "")},
			wantErr: []string{"two projects are named a", "$ROOT/udfs/a.py", "$ROOT/udfs/a.zip"},
		},
		{
			name:    "one name in two directories",
			files:   map[string]string{"d1/a.py": "", "d2/a/__init__.py": ""},
			dirs:    []string{"d1", "d2"},
			wantErr: []string{"two projects are named a", "$ROOT/d1/a.py", "$ROOT/d2/a"},
		},
		{
			name:    "dashed file name",
			files:   map[string]string{"udfs/my-udfs.py": ""},
			wantErr: []string{"$ROOT/udfs/my-udfs.py", `"my-udfs" cannot be a Python module name`, "contains '-'"},
		},
		{
			name:    "dotted file name",
			files:   map[string]string{"udfs/a.b.py": ""},
			wantErr: []string{"$ROOT/udfs/a.b.py", "contains '.'"},
		},
		{
			name:    "zip name starting with a digit",
			files:   map[string]string{"udfs/1st.zip": mkzip(t, "1st.py", "")},
			wantErr: []string{"$ROOT/udfs/1st.zip", "starts with '1'"},
		},
		{
			name:    "dashed package name",
			files:   map[string]string{"udfs/my-pkg/__init__.py": ""},
			wantErr: []string{"$ROOT/udfs/my-pkg", "contains '-'"},
		},
		{
			name:    "keyword file name",
			files:   map[string]string{"udfs/class.py": ""},
			wantErr: []string{"$ROOT/udfs/class.py", "keyword"},
		},

		{name: "missing directory", files: map[string]string{}, dirs: []string{"nope"}, wantErr: []string{"$ROOT/nope"}},
		{
			name:    "not a directory",
			files:   map[string]string{"udfs/a.py": ""},
			dirs:    []string{"udfs/a.py"},
			wantErr: []string{"$ROOT/udfs/a.py", "not a directory"},
		},

		{
			name:    "zip without its module",
			files:   map[string]string{"udfs/z.zip": mkzip(t, "other.py", "", "zz/__init__.py", "")},
			wantErr: []string{"$ROOT/udfs/z.zip", "no module z", "z.py", "z/__init__.py"},
		},
		{
			name:    "zip without its entry",
			files:   map[string]string{"udfs/z.zip": mkzip(t, "fletch.toml", `entry = "app.main"`, "z.py", "", "app/other.py", "")},
			wantErr: []string{"$ROOT/udfs/z.zip", "no module app.main", "app/main.py"},
		},
		{
			name:    "zip with module nested in a folder",
			files:   map[string]string{"udfs/z.zip": mkzip(t, "src/z.py", "")},
			wantErr: []string{"$ROOT/udfs/z.zip", "no module z"},
		},
		{
			name:    "not a zip",
			files:   map[string]string{"udfs/z.zip": "z.py"},
			wantErr: []string{"$ROOT/udfs/z.zip", "not a readable zip file"},
		},
		{
			name:    "empty zip file",
			files:   map[string]string{"udfs/z.zip": ""},
			wantErr: []string{"$ROOT/udfs/z.zip", "not a readable zip file"},
		},
		{
			name:    "zip slip with ..",
			files:   map[string]string{"udfs/z.zip": mkzip(t, "z.py", "", "../evil.py", "")},
			wantErr: []string{"$ROOT/udfs/z.zip", `"../evil.py"`, ".. component"},
		},
		{
			name:    "zip slip nested ..",
			files:   map[string]string{"udfs/z.zip": mkzip(t, "z.py", "", "z/../../evil.py", "")},
			wantErr: []string{"$ROOT/udfs/z.zip", ".. component"},
		},
		{
			name:    "zip slip with backslashes",
			files:   map[string]string{"udfs/z.zip": mkzip(t, "z.py", "", `z\..\..\evil.py`, "")},
			wantErr: []string{"$ROOT/udfs/z.zip", ".. component"},
		},
		{
			name:    "zip with an absolute path",
			files:   map[string]string{"udfs/z.zip": mkzip(t, "z.py", "", "/etc/evil.py", "")},
			wantErr: []string{"$ROOT/udfs/z.zip", "absolute path"},
		},
		{
			name:    "zip with a drive letter",
			files:   map[string]string{"udfs/z.zip": mkzip(t, "z.py", "", "C:evil.py", "")},
			wantErr: []string{"$ROOT/udfs/z.zip", "drive letter"},
		},

		{
			name:    "entry for a single file",
			files:   map[string]string{"udfs/a.py": "", "udfs/a.fletch.toml": `entry = "b"`},
			wantErr: []string{"$ROOT/udfs/a.fletch.toml", "entry applies only to a package or zip"},
		},
		{
			name:    "package entry outside the package",
			files:   map[string]string{"udfs/pkg/__init__.py": "", "udfs/pkg/fletch.toml": `entry = "main"`, "udfs/main.py": ""},
			wantErr: []string{"$ROOT/udfs/pkg/fletch.toml", `entry "main" is not pkg or one of its submodules`},
		},
		{
			name:    "package entry missing",
			files:   map[string]string{"udfs/pkg/__init__.py": "", "udfs/pkg/fletch.toml": `entry = "pkg.main"`},
			wantErr: []string{"$ROOT/udfs/pkg/fletch.toml", `entry "pkg.main"`, "$ROOT/udfs/pkg/main.py"},
		},
		{
			name: "package entry subpackage",
			files: map[string]string{"udfs/pkg/__init__.py": "", "udfs/pkg/fletch.toml": `entry = "pkg.sub"`,
				"udfs/pkg/sub/__init__.py": ""},
			want: []want{{name: "pkg", form: FormPackage, path: "udfs/pkg", module: "pkg.sub", settings: "udfs/pkg/fletch.toml"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, t.TempDir(), tt.files)
			dirs := tt.dirs
			if dirs == nil {
				dirs = []string{"udfs"}
			}
			var abs []string
			for _, d := range dirs {
				abs = append(abs, filepath.Join(root, filepath.FromSlash(d)))
			}
			got, err := FindProjects(abs)
			if tt.wantErr != nil {
				var want []string
				for _, w := range tt.wantErr {
					want = append(want, strings.ReplaceAll(w, "$ROOT/", root+string(filepath.Separator)))
				}
				checkErr(t, err, want...)
				return
			}
			if err != nil {
				t.Fatalf("FindProjects: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("found %d projects (%+v), want %d", len(got), got, len(tt.want))
			}
			rel := func(s string) string {
				if s == "" {
					return ""
				}
				r, err := filepath.Rel(root, s)
				if err != nil {
					t.Fatal(err)
				}
				return filepath.ToSlash(r)
			}
			for i, w := range tt.want {
				p := got[i]
				g := want{name: p.Name, form: p.Form, path: rel(p.Path), settings: rel(p.SettingsPath), module: p.Module().Name,
					python: rel(p.Settings.Python), workers: p.Settings.Workers}
				if g != w {
					t.Errorf("project %d = %+v, want %+v", i, g, w)
				}
				if p.HasSettings() != (w.settings != "") {
					t.Errorf("%s: HasSettings() = %v", p.Name, p.HasSettings())
				}
				if !filepath.IsAbs(p.Dir) || filepath.Dir(p.Path) != p.Dir {
					t.Errorf("%s: Dir %q, Path %q", p.Name, p.Dir, p.Path)
				}
				if len(p.Digest) != 64 {
					t.Errorf("%s: Digest %q is not a hex sha256", p.Name, p.Digest)
				}
			}
		})
	}
}

func TestFindProjectsRelativeDir(t *testing.T) {
	root := writeTree(t, t.TempDir(), map[string]string{"udfs/a.py": ""})
	t.Chdir(root)
	got, err := FindProjects([]string{"udfs"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Dir != filepath.Join(root, "udfs") || got[0].Path != filepath.Join(root, "udfs", "a.py") {
		t.Fatalf("FindProjects = %+v; want absolute paths under %s", got, root)
	}
}

func TestFindProjectsSymlinks(t *testing.T) {
	root := writeTree(t, t.TempDir(), map[string]string{"src/a.py": "", "src/pkg/__init__.py": "", "udfs/": ""})
	for _, l := range [][2]string{{"../src/a.py", "udfs/a.py"}, {"../src/pkg", "udfs/pkg"}} {
		if err := os.Symlink(l[0], filepath.Join(root, "udfs", filepath.Base(l[1]))); err != nil {
			t.Skip("no symlinks:", err)
		}
	}
	got, err := FindProjects([]string{filepath.Join(root, "udfs")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Form != FormFile || got[1].Form != FormPackage {
		t.Fatalf("FindProjects = %+v; want a.py and pkg/ through their links", got)
	}
	// The digests follow the links to the content.
	writeTree(t, root, map[string]string{"src/a.py": "x = 1", "src/pkg/__init__.py": "x = 1"})
	after := digestOf(t, filepath.Join(root, "udfs"))
	for _, p := range got {
		if after[p.Name] == p.Digest {
			t.Errorf("%s: digest did not change when the linked content did", p.Name)
		}
	}
}

func TestProjectModuleAndPaths(t *testing.T) {
	dir := filepath.FromSlash("/udfs")
	tests := []struct {
		p          Project
		wantModule Module
		wantPaths  []string
	}{
		{
			p:          Project{Name: "a", Dir: dir, Path: filepath.Join(dir, "a.py"), Form: FormFile, Digest: "d1"},
			wantModule: Module{Name: "a", Path: filepath.Join(dir, "a.py"), Digest: "d1"},
			wantPaths:  []string{dir},
		},
		{
			p:          Project{Name: "pkg", Dir: dir, Path: filepath.Join(dir, "pkg"), Form: FormPackage, Digest: "d2"},
			wantModule: Module{Name: "pkg", Digest: "d2"},
			wantPaths:  []string{dir},
		},
		{
			p: Project{Name: "pkg", Dir: dir, Path: filepath.Join(dir, "pkg"), Form: FormPackage, Digest: "d3",
				Settings: Settings{Entry: "pkg.main"}},
			wantModule: Module{Name: "pkg.main", Digest: "d3"},
			wantPaths:  []string{dir},
		},
		{
			p:          Project{Name: "z", Dir: dir, Path: filepath.Join(dir, "z.zip"), Form: FormZip, Digest: "d4"},
			wantModule: Module{Name: "z", Digest: "d4"},
			wantPaths:  []string{filepath.Join(dir, "z.zip")},
		},
		{
			p: Project{Name: "z", Dir: dir, Path: filepath.Join(dir, "z.zip"), Form: FormZip, Digest: "d5",
				Settings: Settings{Entry: "main"}, SettingsPath: filepath.Join(dir, "z.zip", SettingsFile)},
			wantModule: Module{Name: "main", Digest: "d5"},
			wantPaths:  []string{filepath.Join(dir, "z.zip")},
		},
	}
	for _, tt := range tests {
		if got := tt.p.Module(); got != tt.wantModule {
			t.Errorf("%s (%v).Module() = %+v, want %+v", tt.p.Name, tt.p.Form, got, tt.wantModule)
		}
		if got := tt.p.Paths(); !reflect.DeepEqual(got, tt.wantPaths) {
			t.Errorf("%s (%v).Paths() = %q, want %q", tt.p.Name, tt.p.Form, got, tt.wantPaths)
		}
		if got := tt.p.HasSettings(); got != (tt.p.SettingsPath != "") {
			t.Errorf("%s.HasSettings() = %v", tt.p.Name, got)
		}
	}
}

// digestOf finds the projects in dir and returns their digests by name.
func digestOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	ps, err := FindProjects([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, p := range ps {
		out[p.Name] = p.Digest
	}
	return out
}

func TestProjectDigest(t *testing.T) {
	base := map[string]string{
		"a.py":               "def f(): pass\n",
		"pkg/__init__.py":    "from .x import *\n",
		"pkg/x.py":           "X = 1\n",
		"pkg/y.py":           "Y = 2\n",
		"pkg/data/table.csv": "a,b\n",
		"z.zip":              mkzip(t, "z.py", "Z = 1\n"),
		"s.py":               "S = 1\n",
		"s.fletch.toml":      "workers = 1\n",
	}
	tests := []struct {
		name    string
		change  map[string]string // files written over the base tree
		remove  []string
		changed []string // projects whose digest must change; the others must not
	}{
		{name: "nothing"},
		{name: "same bytes rewritten", change: map[string]string{"a.py": base["a.py"], "pkg/x.py": base["pkg/x.py"]}},
		{name: "file edited", change: map[string]string{"a.py": "def f(): return 1\n"}, changed: []string{"a"}},
		{name: "package file edited", change: map[string]string{"pkg/y.py": "Y = 3\n"}, changed: []string{"pkg"}},
		{name: "package data edited", change: map[string]string{"pkg/data/table.csv": "a,b\n1,2\n"}, changed: []string{"pkg"}},
		{name: "package file added", change: map[string]string{"pkg/new.py": ""}, changed: []string{"pkg"}},
		{name: "package file removed", remove: []string{"pkg/y.py"}, changed: []string{"pkg"}},
		{name: "package contents swapped", change: map[string]string{"pkg/x.py": "Y = 2\n", "pkg/y.py": "X = 1\n"}, changed: []string{"pkg"}},
		{name: "package settings added inside", change: map[string]string{"pkg/fletch.toml": "workers = 2\n"}, changed: []string{"pkg"}},
		{name: "package settings added beside", change: map[string]string{"pkg.fletch.toml": "workers = 2\n"}, changed: []string{"pkg"}},
		{
			name: "bytecode, caches and hidden files",
			change: map[string]string{
				"pkg/__pycache__/x.cpython-313.pyc": "\x00", "pkg/x.pyc": "\x00", "pkg/.DS_Store": "\x00",
				"pkg/.git/HEAD": "ref", "pkg/venv/pyvenv.cfg": "home = /usr", "pkg/venv/lib/site.py": "",
				"__pycache__/a.cpython-313.pyc": "", "README.md": "docs",
			},
		},
		{name: "zip edited", change: map[string]string{"z.zip": mkzip(t, "z.py", "Z = 2\n")}, changed: []string{"z"}},
		{name: "zip settings added inside", change: map[string]string{"z.zip": mkzip(t, "z.py", "Z = 1\n", "fletch.toml", "")}, changed: []string{"z"}},
		{name: "zip settings added beside", change: map[string]string{"z.fletch.toml": "workers = 1\n"}, changed: []string{"z"}},
		{name: "settings edited", change: map[string]string{"s.fletch.toml": "workers = 2\n"}, changed: []string{"s"}},
		{name: "settings comment edited", change: map[string]string{"s.fletch.toml": "workers = 1 # one\n"}, changed: []string{"s"}},
		{name: "settings removed", remove: []string{"s.fletch.toml"}, changed: []string{"s"}},
		{name: "file with settings edited", change: map[string]string{"s.py": "S = 2\n"}, changed: []string{"s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, t.TempDir(), base)
			before := digestOf(t, dir)
			if again := digestOf(t, dir); !reflect.DeepEqual(before, again) {
				t.Fatalf("digests differ between two scans: %v, %v", before, again)
			}
			writeTree(t, dir, tt.change)
			for _, r := range tt.remove {
				if err := os.Remove(filepath.Join(dir, filepath.FromSlash(r))); err != nil {
					t.Fatal(err)
				}
			}
			after := digestOf(t, dir)
			for name, d := range before {
				want := false
				for _, c := range tt.changed {
					want = want || c == name
				}
				if got := after[name] != d; got != want {
					t.Errorf("%s: digest changed = %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestProjectDigestMatchesSourceHash(t *testing.T) {
	// A bare file or zip digests to its sha256, as the worker hashes a
	// bare .py file: UDF versions stay as they were before projects.
	src, zipped := "def f(): pass\n", mkzip(t, "z.py", "")
	dir := writeTree(t, t.TempDir(), map[string]string{"a.py": src, "z.zip": zipped})
	got := digestOf(t, dir)
	for name, content := range map[string]string{"a": src, "z": zipped} {
		sum := sha256.Sum256([]byte(content))
		if want := hex.EncodeToString(sum[:]); got[name] != want {
			t.Errorf("%s: Digest = %s, want sha256 %s", name, got[name], want)
		}
	}
	// The same package in two places digests the same: names are relative.
	files := map[string]string{"p/__init__.py": "x", "p/sub/m.py": "y"}
	d1, d2 := digestOf(t, writeTree(t, t.TempDir(), files)), digestOf(t, writeTree(t, t.TempDir(), files))
	if d1["p"] != d2["p"] {
		t.Errorf("package digests differ across directories: %s, %s", d1["p"], d2["p"])
	}
}

func TestProjectIdentifiers(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "_a": true, "a1": true, "données": true, "π": true, "名前": true, "match": true, "type": true,
		"": false, "1a": false, "a-b": false, "a.b": false, "a b": false, "None": false, "async": false, "\xff": false,
	} {
		if why := identifierProblem(name); (why == "") != ok {
			t.Errorf("identifierProblem(%q) = %q, want ok=%v", name, why, ok)
		}
	}
}

func FuzzParseSettings(f *testing.F) {
	for _, seed := range []string{
		"", "workers = 2", `python = "venv"`, `call_timeout = "30s"`, "max_batch_rows = 10000", `entry = "a.b"`,
		"[env]\nA = \"b\"", `env = { A = "1" }`, "workers = = 1", "[[env]]", "Workers = 1", "workers = 1.5",
		"env.a.b = 1", `call_timeout = "-1h"`, "x = 1979-05-27T07:32:00Z", `entry = "a..b"`, "[env]\n\"A=B\" = \"c\"",
	} {
		f.Add([]byte(seed), "/base")
	}
	f.Fuzz(func(t *testing.T, data []byte, base string) {
		const source = "fuzz.fletch.toml"
		s, err := ParseSettings(data, source, base)
		if err != nil {
			if !errors.Is(err, ErrSettings) {
				t.Fatalf("error %q does not wrap ErrSettings", err)
			}
			if !strings.Contains(err.Error(), source) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if s.Python != "" && !filepath.IsAbs(s.Python) {
			t.Fatalf("Python %q is not absolute", s.Python)
		}
		if s.Workers < 0 || s.MaxBatchRows < 0 || s.CallTimeout < 0 {
			t.Fatalf("negative setting: %+v", s)
		}
		if s.Entry != "" && moduleNameProblem(s.Entry) != "" {
			t.Fatalf("invalid entry %q accepted", s.Entry)
		}
		for k, v := range s.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
				t.Fatalf("invalid env %q=%q accepted", k, v)
			}
		}
	})
}

func FuzzProjectZip(f *testing.F) {
	f.Add([]byte(mkzip(f, "z.py", "x = 1\n")))
	f.Add([]byte(mkzip(f, "z/__init__.py", "", "fletch.toml", "workers = 2\n[env]\nA = \"b\"")))
	f.Add([]byte(mkzip(f, "fletch.toml", `entry = "app.main"`, "app/main.py", "")))
	f.Add([]byte(mkzip(f, "z.py", "", "../evil.py", "")))
	f.Add([]byte(mkzip(f, "z.py", "", "fletch.toml", "workers = = 1")))
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "z.zip"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		ps, err := FindProjects([]string{dir})
		if err != nil {
			if !errors.Is(err, ErrSettings) {
				t.Fatalf("error %q does not wrap ErrSettings", err)
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, "z.zip")) {
				t.Fatalf("error %q does not name the zip", err)
			}
			return
		}
		if len(ps) != 1 || ps[0].Form != FormZip || ps[0].Name != "z" || len(ps[0].Digest) != 64 {
			t.Fatalf("FindProjects = %+v, want the one zip", ps)
		}
	})
}
