package pybridge

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// ErrSettings is wrapped by every settings and project-discovery error.
var ErrSettings = errors.New("invalid UDF project")

// SettingsFile is the settings file's name inside a package directory or zip.
const SettingsFile = "fletch.toml"

// settingsSuffix names a settings file beside a project: name.fletch.toml.
const settingsSuffix = ".fletch.toml"

// maxSettingsBytes bounds a settings file, which may come from an untrusted zip.
const maxSettingsBytes = 64 << 10

// Settings are one project's settings; zero values mean "the server's default".
type Settings struct {
	Python       string // absolute path, or "" for the server's interpreter
	Env          map[string]string
	Workers      int
	CallTimeout  time.Duration
	MaxBatchRows int
	Entry        string
}

// errorf returns an error wrapping ErrSettings (and any %w operands).
func errorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSettings}, args...)...)
}

// tomlError keeps BurntSushi's error (for its ErrorWithPosition) behind a
// shorter message.
type tomlError struct {
	msg string
	err error
}

func (e *tomlError) Error() string   { return e.msg }
func (e *tomlError) Unwrap() []error { return []error{ErrSettings, e.err} }

func decodeError(source string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		where := source
		if pe.Position.Line > 0 {
			where = fmt.Sprintf("%s: line %d", source, pe.Position.Line)
		}
		return &tomlError{msg: fmt.Sprintf("%v: %s: %s", ErrSettings, where, pe.Message), err: err}
	}
	return errorf("%s: %w", source, err)
}

// settingsKeys are the top-level keys of a settings file.
func settingsKeys() []string {
	return []string{"python", "env", "workers", "call_timeout", "max_batch_rows", "entry"}
}

func unknownKey(source string, key toml.Key) error {
	k := key.String()
	for _, known := range settingsKeys() {
		if len(key) == 1 && strings.EqualFold(strings.ReplaceAll(key[0], "-", "_"), known) {
			return errorf("%s: unknown key %q (did you mean %q?)", source, k, known)
		}
	}
	return errorf("%s: unknown key %q; the keys are %s", source, k, strings.Join(settingsKeys(), ", "))
}

// tomlType names the TOML type of a value BurntSushi decoded into any.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case time.Time:
		return "datetime"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	case []map[string]any:
		return "array of tables"
	}
	return fmt.Sprintf("%T", v)
}

// ParseSettings parses TOML settings. baseDir resolves a relative python path. source names the file in errors.
func ParseSettings(data []byte, source, baseDir string) (Settings, error) {
	if len(data) > maxSettingsBytes {
		return Settings{}, errorf("%s: larger than %d KiB", source, maxSettingsBytes>>10)
	}
	var raw struct {
		Python       toml.Primitive `toml:"python"`
		Env          toml.Primitive `toml:"env"`
		Workers      toml.Primitive `toml:"workers"`
		CallTimeout  toml.Primitive `toml:"call_timeout"`
		MaxBatchRows toml.Primitive `toml:"max_batch_rows"`
		Entry        toml.Primitive `toml:"entry"`
	}
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return Settings{}, decodeError(source, err)
	}
	// BurntSushi matches keys case-insensitively, so "Workers" would be
	// taken silently (and which of two spellings wins is random).
	for _, k := range md.Keys() {
		if len(k) == 1 && !slices.Contains(settingsKeys(), k[0]) {
			for _, known := range settingsKeys() {
				if strings.EqualFold(k[0], known) {
					return Settings{}, unknownKey(source, k)
				}
			}
		}
	}

	// value decodes key (if present) and checks its TOML type.
	value := func(key, want string, p toml.Primitive) (any, error) {
		if !md.IsDefined(key) {
			return nil, nil
		}
		var v any
		if err := md.PrimitiveDecode(p, &v); err != nil {
			return nil, decodeError(source, err)
		}
		if got := tomlType(v); got != want {
			return nil, errorf("%s: %s: expected %s, got %s", source, key, want, got)
		}
		return v, nil
	}
	positive := func(key string, p toml.Primitive) (int, error) {
		v, err := value(key, "integer", p)
		if v == nil || err != nil {
			return 0, err
		}
		n := v.(int64)
		if n <= 0 || int64(int(n)) != n {
			return 0, errorf("%s: %s must be a positive integer, got %d", source, key, n)
		}
		return int(n), nil
	}

	var s Settings
	if v, err := value("python", "string", raw.Python); err != nil {
		return Settings{}, err
	} else if v != nil {
		py := v.(string)
		if py == "" || strings.ContainsRune(py, 0) {
			return Settings{}, errorf("%s: python must be a non-empty path without NUL (omit it to use the server's interpreter)", source)
		}
		if !filepath.IsAbs(py) {
			py = filepath.Join(baseDir, py)
		}
		if s.Python, err = filepath.Abs(py); err != nil {
			return Settings{}, errorf("%s: python: %w", source, err)
		}
	}
	if s.Workers, err = positive("workers", raw.Workers); err != nil {
		return Settings{}, err
	}
	if s.MaxBatchRows, err = positive("max_batch_rows", raw.MaxBatchRows); err != nil {
		return Settings{}, err
	}
	if v, err := value("call_timeout", "string", raw.CallTimeout); err != nil {
		return Settings{}, err
	} else if v != nil {
		d, err := time.ParseDuration(v.(string))
		if err != nil {
			return Settings{}, errorf("%s: call_timeout: %q is not a duration such as \"30s\" or \"2m\"", source, v)
		}
		if d <= 0 {
			return Settings{}, errorf("%s: call_timeout must be positive, got %q", source, v)
		}
		s.CallTimeout = d
	}
	if v, err := value("entry", "string", raw.Entry); err != nil {
		return Settings{}, err
	} else if v != nil {
		if why := moduleNameProblem(v.(string)); why != "" {
			return Settings{}, errorf("%s: entry %q is not a Python module name: %s", source, v, why)
		}
		s.Entry = v.(string)
	}
	if v, err := value("env", "table", raw.Env); err != nil {
		return Settings{}, err
	} else if v != nil {
		table := v.(map[string]any)
		names := make([]string, 0, len(table))
		for name := range table {
			names = append(names, name)
		}
		slices.Sort(names) // report the same problem every time
		for _, name := range names {
			val, ok := table[name].(string)
			if !ok {
				return Settings{}, errorf("%s: %s: expected string, got %s", source, toml.Key{"env", name}, tomlType(table[name]))
			}
			if name == "" || strings.ContainsAny(name, "=\x00") {
				return Settings{}, errorf("%s: env: %q is not an environment variable name (it must be non-empty, without '=' or NUL)", source, name)
			}
			if strings.ContainsRune(val, 0) {
				return Settings{}, errorf("%s: %s: the value contains NUL", source, toml.Key{"env", name})
			}
		}
		// Decoding into a concrete type marks the keys decoded for Undecoded.
		if err := md.PrimitiveDecode(raw.Env, &s.Env); err != nil {
			return Settings{}, decodeError(source, err)
		}
		if len(s.Env) == 0 {
			s.Env = nil
		}
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return Settings{}, unknownKey(source, undecoded[0])
	}
	return s, nil
}

// ProjectForm says what a project is on disk.
type ProjectForm int

const (
	FormFile    ProjectForm = iota // name.py
	FormPackage                    // name/__init__.py
	FormZip                        // name.zip
)

func (f ProjectForm) String() string {
	switch f {
	case FormFile:
		return "file"
	case FormPackage:
		return "package"
	case FormZip:
		return "zip"
	}
	return fmt.Sprintf("ProjectForm(%d)", int(f))
}

// Project is one importable unit found in a UDF directory.
type Project struct {
	Name         string // file stem, directory name or zip stem: a valid Python identifier
	Dir          string // the UDF directory it was found in (absolute)
	Path         string // the .py file, package directory or .zip (absolute)
	Form         ProjectForm
	Settings     Settings
	SettingsPath string // "" when the project has no settings file; for one inside a zip: "<zip path>/fletch.toml"
	// Digest is a hex sha256 over the project's content and settings file.
	// A file or zip without a settings file beside it digests to the
	// sha256 of its bytes, as the worker computes for a bare .py file.
	Digest string
}

// HasSettings reports whether the project has its own settings file (and so its own environment).
func (p Project) HasSettings() bool { return p.SettingsPath != "" }

// Module is what the worker pool loads for p: a file by its path; a
// package or zip by its entry module name, imported from Paths.
func (p Project) Module() Module {
	if p.Form == FormFile {
		return Module{Name: p.Name, Path: p.Path, Digest: p.Digest}
	}
	return Module{Name: p.entry(), Digest: p.Digest}
}

func (p Project) entry() string {
	if p.Settings.Entry != "" {
		return p.Settings.Entry
	}
	return p.Name
}

// Paths are the sys.path entries p needs: the UDF directory, or the zip.
func (p Project) Paths() []string {
	if p.Form == FormZip {
		return []string{p.Path}
	}
	return []string{p.Dir}
}

// candidate is a project found by name, before its settings are read.
type candidate struct {
	name, path string
	form       ProjectForm
	beside     string // name.fletch.toml, if any
}

// FindProjects scans each directory (non-recursively, in name order) and returns its projects in directory order then name order.
func FindProjects(dirs []string) ([]Project, error) {
	type found struct {
		dir        string
		candidates []candidate
	}
	var all []found
	seen := make(map[string]bool)
	byName := make(map[string]string)
	// Names are checked across every directory before any file is read.
	for _, dir := range dirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, errorf("UDF directory %s: %w", dir, err)
		}
		if seen[abs] {
			continue // the same directory named twice
		}
		seen[abs] = true
		cs, err := scanDir(abs)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if other, ok := byName[c.name]; ok {
				return nil, errorf("two projects are named %s: %s and %s; Python can import only one", c.name, other, c.path)
			}
			byName[c.name] = c.path
		}
		all = append(all, found{abs, cs})
	}
	var projects []Project
	for _, f := range all {
		for _, c := range f.candidates {
			p, err := loadProject(f.dir, c)
			if err != nil {
				return nil, err
			}
			projects = append(projects, p)
		}
	}
	return projects, nil
}

// scanDir lists the projects in dir by name, with their settings files beside them.
func scanDir(dir string) ([]candidate, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, errorf("UDF directory %s: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, errorf("UDF directory %s is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, errorf("UDF directory %s: %w", dir, err)
	}
	var cs []candidate
	var settings []string // stems of *.fletch.toml, in name order
	besides := make(map[string]string)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			if fi, err := os.Stat(path); err == nil {
				isDir = fi.IsDir()
			}
		}
		var c candidate
		switch {
		case strings.HasSuffix(name, settingsSuffix): // even a directory: reading it says what is wrong
			stem := strings.TrimSuffix(name, settingsSuffix)
			settings = append(settings, stem)
			besides[stem] = path
			continue
		case isDir:
			if strings.HasPrefix(name, "_") {
				continue
			}
			if fi, err := os.Stat(filepath.Join(path, "__init__.py")); err != nil || fi.IsDir() {
				continue // not a package: data, a venv, ...
			}
			c = candidate{name: name, path: path, form: FormPackage}
		case strings.HasSuffix(name, ".py") && !strings.HasPrefix(name, "_"):
			c = candidate{name: strings.TrimSuffix(name, ".py"), path: path, form: FormFile}
		case strings.HasSuffix(name, ".zip") && !strings.HasPrefix(name, "_"):
			c = candidate{name: strings.TrimSuffix(name, ".zip"), path: path, form: FormZip}
		default:
			continue
		}
		if why := identifierProblem(c.name); why != "" {
			return nil, errorf("%s: %q cannot be a Python module name: %s", path, c.name, why)
		}
		cs = append(cs, c)
	}
	slices.SortStableFunc(cs, func(a, b candidate) int { return strings.Compare(a.name, b.name) })
	for i := range cs {
		if i > 0 && cs[i].name == cs[i-1].name {
			return nil, errorf("two projects are named %s: %s and %s; Python can import only one", cs[i].name, cs[i-1].path, cs[i].path)
		}
		cs[i].beside = besides[cs[i].name]
	}
	for _, stem := range settings {
		if _, ok := slices.BinarySearchFunc(cs, stem, func(c candidate, s string) int { return strings.Compare(c.name, s) }); ok {
			continue
		}
		if strings.HasPrefix(stem, "_") {
			return nil, errorf("%s: names starting with _ are not loaded, so it applies to nothing", besides[stem])
		}
		return nil, errorf("%s: there is no project %s beside it (%s.py, %s/__init__.py or %s.zip); is the name misspelled?",
			besides[stem], stem, stem, stem, stem)
	}
	return cs, nil
}

func loadProject(dir string, c candidate) (Project, error) {
	p := Project{Name: c.name, Dir: dir, Path: c.path, Form: c.form}
	var data []byte // the settings file's content
	baseDir := dir  // where a relative python path starts
	var zipNames []string
	var zipReader io.ReaderAt
	var zipSize int64
	switch c.form {
	case FormFile:
		if err := regularFile(c.path); err != nil {
			return Project{}, err
		}
	case FormPackage:
		inside := filepath.Join(c.path, SettingsFile)
		if _, err := os.Lstat(inside); err == nil {
			p.SettingsPath, baseDir = inside, c.path
		} else if !errors.Is(err, fs.ErrNotExist) {
			return Project{}, errorf("%w", err)
		}
	case FormZip:
		f, err := os.Open(c.path)
		if err != nil {
			return Project{}, errorf("%w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return Project{}, errorf("%w", err)
		}
		if !fi.Mode().IsRegular() {
			return Project{}, errorf("%s is not a regular file", c.path)
		}
		zipReader, zipSize = f, fi.Size()
		var inside []byte
		if zipNames, inside, err = readZip(c.path, f, zipSize); err != nil {
			return Project{}, err
		}
		if inside != nil {
			p.SettingsPath, data = filepath.Join(c.path, SettingsFile), inside
		}
	}
	if c.beside != "" {
		if p.SettingsPath != "" {
			return Project{}, errorf("%s has two settings files, %s and %s; keep one", c.path, c.beside, p.SettingsPath)
		}
		p.SettingsPath = c.beside
	}
	var err error
	if p.SettingsPath != "" {
		if data == nil { // not read from the zip
			if data, err = readSettings(p.SettingsPath); err != nil {
				return Project{}, err
			}
		}
		if p.Settings, err = ParseSettings(data, p.SettingsPath, baseDir); err != nil {
			return Project{}, err
		}
	}
	if err := checkEntry(p, zipNames); err != nil {
		return Project{}, err
	}

	switch c.form {
	case FormPackage:
		p.Digest, err = packageDigest(p.Path, c.beside)
	case FormZip:
		p.Digest, err = fileDigest(c.path, io.NewSectionReader(zipReader, 0, zipSize), c.beside)
	default:
		var f *os.File
		if f, err = os.Open(c.path); err != nil {
			return Project{}, errorf("%w", err)
		}
		defer f.Close()
		p.Digest, err = fileDigest(c.path, f, c.beside)
	}
	if err != nil {
		return Project{}, err
	}
	return p, nil
}

// checkEntry checks that the module the worker will import exists.
func checkEntry(p Project, zipNames []string) error {
	entry := p.entry()
	switch p.Form {
	case FormFile:
		if p.Settings.Entry != "" {
			return errorf("%s: entry applies only to a package or zip; %s is a single file", p.SettingsPath, p.Path)
		}
	case FormPackage:
		// The UDF directory is on sys.path, so any other name would import
		// a neighbour, not this package.
		if entry != p.Name && !strings.HasPrefix(entry, p.Name+".") {
			return errorf("%s: entry %q is not %s or one of its submodules (%s.NAME)", p.SettingsPath, entry, p.Name, p.Name)
		}
		rel := filepath.Join(p.Dir, filepath.FromSlash(strings.ReplaceAll(entry, ".", "/")))
		if regularFile(rel+".py") != nil && regularFile(filepath.Join(rel, "__init__.py")) != nil {
			return errorf("%s: entry %q: neither %s.py nor %s exists", p.SettingsPath, entry, rel, filepath.Join(rel, "__init__.py"))
		}
	case FormZip:
		rel := strings.ReplaceAll(entry, ".", "/")
		for _, n := range []string{rel + ".py", rel + "/__init__.py", rel + ".pyc", rel + "/__init__.pyc"} {
			if _, ok := slices.BinarySearch(zipNames, n); ok {
				return nil
			}
		}
		return errorf("%s has no module %s: expected %s.py or %s/__init__.py at the top of the zip", p.Path, entry, rel, rel)
	}
	return nil
}

// readZip checks a zip's entry names and returns them sorted, with the
// content of its fletch.toml (nil if it has none).
func readZip(path string, r io.ReaderAt, size int64) ([]string, []byte, error) {
	zr, err := zip.NewReader(r, size)
	// ErrInsecurePath (with GODEBUG=zipinsecurepath=0) comes with a usable
	// reader; the names are checked below either way.
	if err != nil && (zr == nil || !errors.Is(err, zip.ErrInsecurePath)) {
		return nil, nil, errorf("%s: not a readable zip file: %w", path, err)
	}
	names := make([]string, 0, len(zr.File))
	var settings *zip.File
	for _, f := range zr.File {
		if why := unsafeZipName(f.Name); why != "" {
			return nil, nil, errorf("%s: entry %q %s; workers import from the zip, so it must hold only relative paths inside it", path, f.Name, why)
		}
		names = append(names, f.Name)
		if f.Name == SettingsFile {
			if settings != nil {
				return nil, nil, errorf("%s holds %s twice", path, SettingsFile)
			}
			settings = f
		}
	}
	slices.Sort(names)
	if settings == nil {
		return names, nil, nil
	}
	source := filepath.Join(path, SettingsFile)
	if settings.UncompressedSize64 > maxSettingsBytes {
		return nil, nil, errorf("%s: larger than %d KiB", source, maxSettingsBytes>>10)
	}
	rc, err := settings.Open()
	if err != nil {
		return nil, nil, errorf("%s: %w", source, err)
	}
	defer rc.Close()
	// The header's size may lie; bound the read itself.
	data, err := io.ReadAll(io.LimitReader(rc, maxSettingsBytes+1))
	if err != nil {
		return nil, nil, errorf("%s: %w", source, err)
	}
	if len(data) > maxSettingsBytes {
		return nil, nil, errorf("%s: larger than %d KiB", source, maxSettingsBytes>>10)
	}
	if data == nil {
		data = []byte{} // present but empty
	}
	return names, data, nil
}

// unsafeZipName says why a zip entry's name points outside the zip, or "".
func unsafeZipName(name string) string {
	switch {
	case strings.ContainsRune(name, 0):
		return "contains NUL"
	case strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`):
		return "is an absolute path"
	case len(name) >= 2 && name[1] == ':':
		return "has a drive letter"
	}
	for part := range strings.FieldsFuncSeq(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return "has a .. component"
		}
	}
	return ""
}

func regularFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return errorf("%w", err)
	}
	if !fi.Mode().IsRegular() {
		return errorf("%s is not a regular file", path)
	}
	return nil
}

func readSettings(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errorf("%w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, errorf("%w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSettingsBytes+1))
	if err != nil {
		return nil, errorf("%s: %w", path, err)
	}
	return data, nil // ParseSettings rejects an oversized file
}

// Digest records are (kind, name, sha256 of content), sorted; the kind
// keeps a package file apart from a settings file of the same name.
const (
	recordFile     = 'f'
	recordLink     = 'l' // a symlink not to a regular file: its target text
	recordSettings = 's'
)

type record struct {
	kind byte
	name string
	sum  [sha256.Size]byte
}

func combine(records []record) string {
	slices.SortFunc(records, func(a, b record) int {
		if a.kind != b.kind {
			return int(a.kind) - int(b.kind)
		}
		return strings.Compare(a.name, b.name)
	})
	h := sha256.New()
	h.Write([]byte("fletch project v1\n"))
	for _, r := range records {
		h.Write([]byte{r.kind})
		h.Write(binary.AppendUvarint(nil, uint64(len(r.name))))
		h.Write([]byte(r.name))
		h.Write(r.sum[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sumReader(path string, r io.Reader) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return sum, errorf("%s: %w", path, err)
	}
	h.Sum(sum[:0])
	return sum, nil
}

func sumFile(path string) ([sha256.Size]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [sha256.Size]byte{}, errorf("%w", err)
	}
	defer f.Close()
	return sumReader(path, f)
}

// fileDigest digests a .py file or zip and the settings file beside it.
func fileDigest(path string, r io.Reader, beside string) (string, error) {
	sum, err := sumReader(path, r)
	if err != nil {
		return "", err
	}
	if beside == "" {
		return hex.EncodeToString(sum[:]), nil
	}
	settings, err := sumFile(beside)
	if err != nil {
		return "", err
	}
	return combine([]record{
		{recordFile, filepath.Base(path), sum},
		{recordSettings, filepath.Base(beside), settings},
	}), nil
}

// packageDigest digests a package's files and the settings file beside it.
// It skips what is not source: bytecode, hidden files (.git, editor
// state) and virtual environments, which may live in the package.
func packageDigest(root, beside string) (string, error) {
	// WalkDir does not descend into a root that is a symlink.
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", errorf("%w", err)
	}
	var records []record
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		name := d.Name()
		if d.IsDir() {
			if name == "__pycache__" || strings.HasPrefix(name, ".") {
				return fs.SkipDir
			}
			if _, err := os.Lstat(filepath.Join(path, "pyvenv.cfg")); err == nil {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".pyc") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		r := record{kind: recordFile, name: filepath.ToSlash(rel)}
		switch {
		case d.Type().IsRegular():
			r.sum, err = sumFile(path)
		case d.Type()&fs.ModeSymlink != 0:
			// Follow links to files; hash other links' targets rather than
			// walking them, which could loop.
			if fi, serr := os.Stat(path); serr == nil && fi.Mode().IsRegular() {
				r.sum, err = sumFile(path)
			} else {
				var target string
				if target, err = os.Readlink(path); err == nil {
					r.kind, r.sum = recordLink, sha256.Sum256([]byte(target))
				}
			}
		default:
			return nil // a socket or device is not source
		}
		if err != nil {
			return err
		}
		records = append(records, r)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrSettings) {
			return "", err
		}
		return "", errorf("%s: %w", root, err)
	}
	if beside != "" {
		sum, err := sumFile(beside)
		if err != nil {
			return "", err
		}
		records = append(records, record{recordSettings, filepath.Base(beside), sum})
	}
	return combine(records), nil
}

// identifierProblem says why name is not a Python identifier that an
// import statement accepts, or "".
func identifierProblem(name string) string {
	if name == "" {
		return "it is empty"
	}
	if !utf8.ValidString(name) {
		return "it is not valid UTF-8"
	}
	for i, r := range name {
		if i == 0 && !isIDStart(r) {
			return fmt.Sprintf("it starts with %q; a name starts with a letter or _", r)
		}
		if !isIDStart(r) && !unicode.In(r, unicode.Mn, unicode.Mc, unicode.Nd, unicode.Pc, unicode.Other_ID_Continue) {
			return fmt.Sprintf("it contains %q; a name has only letters, digits and _", r)
		}
	}
	if isKeyword(name) {
		return "it is a Python keyword"
	}
	return ""
}

func isIDStart(r rune) bool {
	return r == '_' || unicode.In(r, unicode.L, unicode.Nl, unicode.Other_ID_Start)
}

// moduleNameProblem says why name is not a dotted Python module name, or "".
func moduleNameProblem(name string) string {
	for part := range strings.SplitSeq(name, ".") {
		if why := identifierProblem(part); why != "" {
			if part != name {
				return fmt.Sprintf("part %q: %s", part, why)
			}
			return why
		}
	}
	return ""
}

func isKeyword(s string) bool {
	switch s {
	case "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def",
		"del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
		"nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield":
		return true
	}
	return false
}
