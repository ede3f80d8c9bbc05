package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fletch-udf/fletch/pybridge"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEnvironments checks how projects are grouped into pools and what
// each pool is configured with, without starting any.
func TestEnvironments(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.py":                 "",
		"b/__init__.py":        "",
		"c.py":                 "",
		"c.fletch.toml":        "workers = 3\ncall_timeout = \"5s\"\nmax_batch_rows = 10\npython = \"/opt/venv\"\n[env]\nZ = \"1\"\nA = \"2\"\n",
		"d/__init__.py":        "",
		"d/main.py":            "",
		"d/fletch.toml":        "entry = \"d.main\"\n",
		"notes.txt":            "ignored",
		"_private.py":          "",
		"e/no_init_here.py":    "",
		".hidden/__init__.py":  "",
		"b/__pycache__/x.pyc":  "",
		"b/sub/__init__.py":    "",
		"b/sub/module_file.py": "",
	})
	projects, err := pybridge.FindProjects([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	envs := environments(projects)
	got := make(map[string][]string)
	for name, members := range envs {
		for _, pr := range members {
			got[name] = append(got[name], pr.Name)
		}
	}
	want := map[string][]string{DefaultEnvironment: {"a", "b"}, "module c": {"c"}, "module d": {"d"}}
	if len(got) != len(want) {
		t.Fatalf("environments = %v, want %v", got, want)
	}
	for name, members := range want {
		if !slices.Equal(got[name], members) {
			t.Errorf("environment %q = %v, want %v", name, got[name], members)
		}
	}

	var asked []string
	p := NewProjects(nil, ProjectsConfig{
		Interpreter: func(_ context.Context, python string) (pybridge.Interpreter, error) {
			asked = append(asked, python)
			return pybridge.Interpreter{Path: "python-for:" + python}, nil
		},
		Base: pybridge.Config{Workers: 2, CallTimeout: time.Minute, Env: []string{"BASE=1"}},
	})
	tests := []struct {
		env          string
		interpreter  string
		workers      int
		timeout      time.Duration
		maxBatchRows int
		envVars      []string
		paths        []string
		modules      []pybridge.Module
	}{
		{DefaultEnvironment, "python-for:", 2, time.Minute, 0, []string{"BASE=1"}, []string{dir},
			[]pybridge.Module{envs[DefaultEnvironment][0].Module(), envs[DefaultEnvironment][1].Module()}},
		{"module c", "python-for:/opt/venv", 3, 5 * time.Second, 10, []string{"BASE=1", "A=2", "Z=1"}, []string{dir},
			[]pybridge.Module{envs["module c"][0].Module()}},
		{"module d", "python-for:", 2, time.Minute, 0, []string{"BASE=1"}, []string{dir},
			[]pybridge.Module{{Name: "d.main", Digest: envs["module d"][0].Digest}}},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			env, err := p.environment(context.Background(), tt.env, envs[tt.env])
			if err != nil {
				t.Fatal(err)
			}
			cfg := env.Pool
			if env.Name != tt.env || cfg.Interpreter.Path != tt.interpreter || cfg.Workers != tt.workers ||
				cfg.CallTimeout != tt.timeout || env.MaxBatchRows != tt.maxBatchRows {
				t.Errorf("environment = %+v (max rows %d)", cfg, env.MaxBatchRows)
			}
			if !slices.Equal(cfg.Env, tt.envVars) || !slices.Equal(cfg.Paths, tt.paths) || !slices.Equal(cfg.Modules, tt.modules) {
				t.Errorf("env %q paths %q modules %+v; want %q %q %+v", cfg.Env, cfg.Paths, cfg.Modules, tt.envVars, tt.paths, tt.modules)
			}
		})
	}
	if !slices.Equal(p.cfg.Base.Env, []string{"BASE=1"}) {
		t.Errorf("building environments changed the base: %q", p.cfg.Base.Env)
	}

	// Digests move with content only.
	before := envDigest(envs["module c"])
	writeFiles(t, dir, map[string]string{"c.fletch.toml": "workers = 4\n"})
	again, err := pybridge.FindProjects([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if after := envDigest(environments(again)["module c"]); after == before {
		t.Error("editing c's settings left its environment's digest unchanged")
	}
	if envDigest(environments(again)[DefaultEnvironment]) != envDigest(envs[DefaultEnvironment]) {
		t.Error("editing c's settings changed the default environment's digest")
	}
}

// TestSyncSkipsFailedUntilChanged checks that an environment that failed to
// load is not retried on every sync (the watcher would log it each poll),
// only once its content changes or a reload forces it.
func TestSyncSkipsFailedUntilChanged(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"c.py": "", "c.fletch.toml": "python = \"/missing/venv\"\n"})
	var asked int
	p := NewProjects(nil, ProjectsConfig{
		Dirs: []string{dir},
		Interpreter: func(_ context.Context, python string) (pybridge.Interpreter, error) {
			asked++
			return pybridge.Interpreter{}, fmt.Errorf("no interpreter at %s", python)
		},
	})
	steps := []struct {
		name      string
		edit      map[string]string
		force     []string
		wantAsked int
		wantTried bool // the report names the environment as failed
	}{
		{"first sync tries", nil, nil, 1, true},
		{"unchanged is skipped", nil, nil, 1, false},
		{"forced reload retries", nil, []string{"module c"}, 2, true},
		{"edited settings retry", map[string]string{"c.fletch.toml": "python = \"/other/venv\"\n"}, nil, 3, true},
		{"unchanged again is skipped", nil, nil, 3, false},
	}
	for _, step := range steps {
		writeFiles(t, dir, step.edit)
		report, err := p.Sync(context.Background(), step.force...)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if asked != step.wantAsked {
			t.Errorf("%s: interpreter asked %d times, want %d", step.name, asked, step.wantAsked)
		}
		if tried := report.Failed["module c"] != nil; tried != step.wantTried {
			t.Errorf("%s: report.Failed = %v, want module c in it: %v", step.name, report.Failed, step.wantTried)
		}
	}
}
