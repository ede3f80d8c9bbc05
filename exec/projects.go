package exec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/fletch-udf/fletch/pybridge"
	"github.com/fletch-udf/fletch/udfcatalog"
)

// DefaultEnvironment serves the projects that have no settings file.
const DefaultEnvironment = "default"

// ProjectsConfig configures Projects.
type ProjectsConfig struct {
	// Dirs are the UDF directories (--udf-dir), read-only to Projects.
	Dirs []string
	// RegisterDir receives modules registered at run time; "" refuses
	// registration.
	RegisterDir string
	// Interpreter returns the interpreter for a settings file's python
	// path, or the server's for "".
	Interpreter func(ctx context.Context, python string) (pybridge.Interpreter, error)
	// Base holds the pool settings a project does not override: workers,
	// timeouts, environment variables, logger and reply limit.
	Base pybridge.Config
	Log  hclog.Logger
}

// Projects keeps the Python environments in step with the UDF projects on
// disk: those in the UDF directories and those registered at run time.
// Projects without a settings file share the default environment; each
// project with one is an environment of its own.
type Projects struct {
	python *Python
	cfg    ProjectsConfig

	mu     sync.Mutex         // serialises every change
	loaded map[string]string  // environment → digest of what it loaded
	failed map[string]string  // environment → digest that failed to load, not retried until it changes
	found  []pybridge.Project // as of the last sync
}

// NewProjects returns a Projects that loads environments into python.
func NewProjects(python *Python, cfg ProjectsConfig) *Projects {
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	return &Projects{python: python, cfg: cfg, loaded: make(map[string]string), failed: make(map[string]string)}
}

// SyncReport says what a sync changed.
type SyncReport struct {
	// Loaded maps each environment (re)loaded to its report.
	Loaded map[string]LoadReport
	// Unloaded lists the environments that no longer exist.
	Unloaded []string
	// Failed maps each environment that could not be loaded to why; it
	// keeps serving what it served before.
	Failed map[string]error
}

// ModuleErrors lists every module that failed to import in the sync.
func (r SyncReport) ModuleErrors() []pybridge.ModuleError {
	var out []pybridge.ModuleError
	for _, env := range slices.Sorted(maps.Keys(r.Loaded)) {
		out = append(out, r.Loaded[env].ModuleErrors...)
	}
	return out
}

// Problems lists the modules that failed to import and the functions not
// registered, one line each, for --strict.
func (r SyncReport) Problems() []string {
	var out []string
	for _, me := range r.ModuleErrors() {
		out = append(out, fmt.Sprintf("%s (%s)", me.Path, me.Error))
	}
	for _, env := range slices.Sorted(maps.Keys(r.Loaded)) {
		for _, rj := range r.Loaded[env].Rejected {
			out = append(out, fmt.Sprintf("module %s: %v", rj.Module, rj.Err))
		}
	}
	return out
}

// Sync reads the projects on disk and loads every environment that is new
// or changed, and every environment in force; environments without
// projects are unloaded. A project directory that cannot be read fails the
// sync and changes nothing.
func (p *Projects) Sync(ctx context.Context, force ...string) (SyncReport, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.syncLocked(ctx, force)
}

func (p *Projects) syncLocked(ctx context.Context, force []string) (SyncReport, error) {
	projects, err := pybridge.FindProjects(p.dirs())
	if err != nil {
		return SyncReport{}, err
	}
	p.found = projects
	envs := environments(projects)
	report := SyncReport{Loaded: make(map[string]LoadReport), Failed: make(map[string]error)}
	for _, name := range slices.Sorted(maps.Keys(envs)) {
		members := envs[name]
		digest := envDigest(members)
		if (p.loaded[name] == digest || p.failed[name] == digest) && !slices.Contains(force, name) {
			continue
		}
		env, err := p.environment(ctx, name, members)
		if err == nil {
			var lr LoadReport
			if lr, err = p.python.Load(ctx, env); err == nil {
				withPaths(lr.ModuleErrors, members)
				report.Loaded[name] = lr
				p.loaded[name] = digest
				delete(p.failed, name)
				continue
			}
		}
		report.Failed[name] = err
		p.failed[name] = digest
	}
	for _, name := range slices.Sorted(maps.Keys(p.loaded)) {
		if _, ok := envs[name]; !ok {
			p.python.Unload(name)
			delete(p.loaded, name)
			report.Unloaded = append(report.Unloaded, name)
		}
	}
	for name := range p.failed {
		if _, ok := envs[name]; !ok {
			delete(p.failed, name)
		}
	}
	return report, nil
}

func (p *Projects) dirs() []string {
	if p.cfg.RegisterDir == "" {
		return p.cfg.Dirs
	}
	return append(slices.Clip(p.cfg.Dirs), p.cfg.RegisterDir)
}

// withPaths names the project of module errors that have no file path:
// packages and zips are imported by name.
func withPaths(errs []pybridge.ModuleError, members []pybridge.Project) {
	for i, me := range errs {
		for _, pr := range members {
			if me.Path == "" && pr.Module().Name == me.Module {
				errs[i].Path = pr.Path
			}
		}
	}
}

// environments groups projects by the environment that serves them.
func environments(projects []pybridge.Project) map[string][]pybridge.Project {
	envs := make(map[string][]pybridge.Project)
	for _, pr := range projects {
		name := environmentOf(pr)
		envs[name] = append(envs[name], pr)
	}
	return envs
}

// environmentOf names the environment that serves pr.
func environmentOf(pr pybridge.Project) string {
	if pr.HasSettings() {
		return "module " + pr.Name
	}
	return DefaultEnvironment
}

// envDigest changes whenever any member's content or settings do.
func envDigest(members []pybridge.Project) string {
	h := sha256.New()
	for _, pr := range members {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", pr.Name, pr.Path, pr.Digest)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// environment builds the pool configuration for members.
func (p *Projects) environment(ctx context.Context, name string, members []pybridge.Project) (Environment, error) {
	cfg := p.cfg.Base
	cfg.Env = slices.Clone(cfg.Env)
	cfg.Paths, cfg.Modules = nil, nil
	var settings pybridge.Settings
	if len(members) == 1 && members[0].HasSettings() {
		settings = members[0].Settings
	}
	interp, err := p.cfg.Interpreter(ctx, settings.Python)
	if err != nil {
		return Environment{}, fmt.Errorf("environment %s: %w", name, err)
	}
	cfg.Interpreter = interp
	for _, pr := range members {
		for _, path := range pr.Paths() {
			if !slices.Contains(cfg.Paths, path) {
				cfg.Paths = append(cfg.Paths, path)
			}
		}
		cfg.Modules = append(cfg.Modules, pr.Module())
	}
	for _, k := range slices.Sorted(maps.Keys(settings.Env)) {
		cfg.Env = append(cfg.Env, k+"="+settings.Env[k])
	}
	if settings.Workers > 0 {
		cfg.Workers = settings.Workers
	}
	if settings.CallTimeout > 0 {
		cfg.CallTimeout = settings.CallTimeout
	}
	cfg.Logger = p.cfg.Log.With("environment", name)
	return Environment{Name: name, Pool: cfg, MaxBatchRows: settings.MaxBatchRows}, nil
}

// moduleName is what a registered module may be called: it becomes a file
// name and a Python import name.
var moduleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,99}$`)

// Register writes module to the registration directory and serves it. If
// it fails to import, or its UDFs clash with others, the previous state is
// restored and the error says why.
func (p *Projects) Register(ctx context.Context, module string, source []byte, zip bool) ([]*udfcatalog.UDF, error) {
	if p.cfg.RegisterDir == "" {
		return nil, fmt.Errorf("%w: %s: this server has no registration directory", udfcatalog.ErrModuleReadOnly, module)
	}
	if !moduleName.MatchString(module) {
		return nil, fmt.Errorf("%w: module name %q must be a Python identifier of at most 100 characters", udfcatalog.ErrModuleFailed, module)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr, ok := p.project(module); ok && filepath.Dir(pr.Path) != p.cfg.RegisterDir {
		return nil, fmt.Errorf("%w: module %s is served from %s", udfcatalog.ErrDuplicate, module, pr.Path)
	}
	ext := ".py"
	if zip {
		ext = ".zip"
	}
	path := filepath.Join(p.cfg.RegisterDir, module+ext)
	restore, err := p.replaceRegistered(module, path, source)
	if err != nil {
		return nil, err
	}
	fns, err := p.serveModule(ctx, module)
	if err != nil {
		restore()
		if _, serr := p.syncLocked(ctx, nil); serr != nil {
			p.cfg.Log.Error("restoring the previous modules after a failed registration", "module", module, "error", serr)
		}
		return nil, err
	}
	return fns, nil
}

// replaceRegistered writes source to path, removing any other registered
// file of module, and returns a function that puts the old files back.
func (p *Projects) replaceRegistered(module, path string, source []byte) (restore func(), err error) {
	old := make(map[string][]byte)
	for _, ext := range []string{".py", ".zip"} {
		prev := filepath.Join(p.cfg.RegisterDir, module+ext)
		if data, err := os.ReadFile(prev); err == nil {
			old[prev] = data
		}
	}
	restore = func() {
		for _, ext := range []string{".py", ".zip"} {
			os.Remove(filepath.Join(p.cfg.RegisterDir, module+ext))
		}
		for prev, data := range old {
			if err := writeFileAtomic(prev, data); err != nil {
				p.cfg.Log.Error("restoring a registered module", "path", prev, "error", err)
			}
		}
	}
	for prev := range old {
		if prev != path {
			if err := os.Remove(prev); err != nil {
				return nil, err
			}
		}
	}
	if err := writeFileAtomic(path, source); err != nil {
		restore()
		return nil, fmt.Errorf("register %s: %w", module, err)
	}
	return restore, nil
}

// serveModule syncs, reloading module's environment, and returns module's
// UDFs, or why it is not served.
func (p *Projects) serveModule(ctx context.Context, module string) ([]*udfcatalog.UDF, error) {
	report, err := p.syncLocked(ctx, nil) // finds the module and its environment
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", udfcatalog.ErrModuleFailed, module, err)
	}
	pr, ok := p.project(module)
	if !ok {
		return nil, fmt.Errorf("%w: %q", udfcatalog.ErrModuleNotFound, module)
	}
	env := environmentOf(pr)
	lr, loaded := report.Loaded[env]
	if !loaded && report.Failed[env] == nil {
		// Unchanged on disk since the last sync: import it again anyway.
		if report, err = p.syncLocked(ctx, []string{env}); err != nil {
			return nil, err
		}
		lr = report.Loaded[env]
	}
	if err := report.Failed[env]; err != nil {
		return nil, err
	}
	return lr.module(pr.Module().Name)
}

// Watch syncs every interval until ctx ends, so edits to the UDF
// directories are served without a restart. A failed sync is logged and
// the previous state keeps serving.
func (p *Projects) Watch(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		report, err := p.Sync(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.cfg.Log.Error("reading the UDF directories", "error", err)
			}
			continue
		}
		report.Log(p.cfg.Log)
	}
}

// Log reports the sync's changes: what was loaded, what failed.
func (r SyncReport) Log(log hclog.Logger) {
	for _, env := range slices.Sorted(maps.Keys(r.Loaded)) {
		lr := r.Loaded[env]
		log.Info("environment loaded", "environment", env, "functions", len(lr.Functions), "failed_modules", len(lr.ModuleErrors))
		for _, me := range lr.ModuleErrors {
			log.Error("module failed to import", "module", me.Module, "path", me.Path, "error", me.Error, "traceback", me.Traceback)
		}
		for _, rj := range lr.Rejected {
			log.Error("function not registered", "module", rj.Module, "error", rj.Err)
		}
	}
	for _, env := range r.Unloaded {
		log.Info("environment unloaded", "environment", env)
	}
	for _, env := range slices.Sorted(maps.Keys(r.Failed)) {
		log.Error("environment not loaded; it keeps serving its previous version", "environment", env, "error", r.Failed[env])
	}
}

// Unregister removes a registered module and stops serving it.
func (p *Projects) Unregister(ctx context.Context, module string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, ok := p.project(module)
	switch {
	case !ok:
		return fmt.Errorf("%w: %q", udfcatalog.ErrModuleNotFound, module)
	case p.cfg.RegisterDir == "" || filepath.Dir(pr.Path) != p.cfg.RegisterDir:
		return fmt.Errorf("%w: module %s comes from %s; remove it there", udfcatalog.ErrModuleReadOnly, module, pr.Path)
	}
	if err := os.RemoveAll(pr.Path); err != nil {
		return err
	}
	report, err := p.syncLocked(ctx, nil)
	if err != nil {
		return err
	}
	return errors.Join(slices.Collect(maps.Values(report.Failed))...)
}

// Reload imports module again (every module if module is ""), even if its
// files have not changed, and returns the UDFs it serves.
func (p *Projects) Reload(ctx context.Context, module string) ([]*udfcatalog.UDF, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if module == "" {
		report, err := p.syncLocked(ctx, slices.Collect(maps.Keys(p.loaded)))
		if err != nil {
			return nil, err
		}
		if err := errors.Join(slices.Collect(maps.Values(report.Failed))...); err != nil {
			return nil, err
		}
		var fns []*udfcatalog.UDF
		for _, lr := range report.Loaded {
			fns = append(fns, lr.Functions...)
		}
		slices.SortFunc(fns, func(a, b *udfcatalog.UDF) int { return strings.Compare(a.Name, b.Name) })
		return fns, nil
	}
	if _, ok := p.project(module); !ok {
		if _, err := p.syncLocked(ctx, nil); err != nil { // it may be new on disk
			return nil, err
		}
		if _, ok := p.project(module); !ok {
			return nil, fmt.Errorf("%w: %q", udfcatalog.ErrModuleNotFound, module)
		}
	}
	return p.serveModule(ctx, module)
}

func (p *Projects) project(name string) (pybridge.Project, bool) {
	for _, pr := range p.found {
		if pr.Name == name {
			return pr, true
		}
	}
	return pybridge.Project{}, false
}

// writeFileAtomic replaces path with data, so a concurrent scan sees the
// old file or the new one, never a partial one.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".register-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
