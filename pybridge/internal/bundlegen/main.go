package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// run is the whole command. stdout is unused: every message is a
// diagnostic and goes to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return generate(ctx, args, stderr, deps{client: &http.Client{}, getenv: os.Getenv})
}

// deps are the process-wide inputs generate uses, injectable by tests.
type deps struct {
	client *http.Client // zero Transport: http.DefaultTransport, so HTTPS_PROXY is honoured
	getenv func(string) string
}

// usageError is a bad command line (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "bundlegen: %v\nRun 'bundlegen -h' for usage.\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "bundlegen: %v\n", err)
		return 1
	}
}

type options struct {
	lock, out, cache string
	goos, goarch     string
	force            bool
	allowMissing     bool
}

func parseArgs(args []string, stderr io.Writer, getenv func(string) string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bundlegen", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by exitCode
	fs.StringVar(&o.lock, "lock", "pybridge/bundle.lock.json", "lock `file` with the pinned wheels")
	fs.StringVar(&o.out, "out", "pybridge/bundle", "output `dir`; everything in it but README.md is replaced")
	fs.StringVar(&o.cache, "cache", "", "wheel cache `dir` (default $XDG_CACHE_HOME/fletch/wheels or the OS equivalent)")
	fs.StringVar(&o.goos, "goos", "", "target OS (default $GOOS, else the host's)")
	fs.StringVar(&o.goarch, "goarch", "", "target architecture (default $GOARCH, else the host's)")
	fs.BoolVar(&o.force, "force", false, "rebuild even if the bundle is up to date")
	fs.BoolVar(&o.allowMissing, "allow-missing", false, "if the target platform has no pins, leave the output empty and succeed")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "Usage: bundlegen [flags]\n\nBuilds the embedded Python package bundle from a lock file.\n\n")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return o, err
		}
		return o, &usageError{err}
	}
	if fs.NArg() > 0 {
		return o, &usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	o.goos = firstNonEmpty(o.goos, getenv("GOOS"), runtime.GOOS)
	o.goarch = firstNonEmpty(o.goarch, getenv("GOARCH"), runtime.GOARCH)
	if err := checkPlatform(o.goos + "-" + o.goarch); err != nil {
		return o, &usageError{err}
	}
	if o.cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return o, fmt.Errorf("no -cache given and no user cache dir: %w", err)
		}
		o.cache = filepath.Join(dir, "fletch", "wheels")
	}
	return o, nil
}

func generate(ctx context.Context, args []string, stderr io.Writer, d deps) error {
	start := time.Now()
	o, err := parseArgs(args, stderr, d.getenv)
	if err != nil {
		return err
	}
	platform := o.goos + "-" + o.goarch

	lockBytes, err := os.ReadFile(o.lock)
	if err != nil {
		return fmt.Errorf("read lock: %w", err)
	}
	lock, err := parseLock(lockBytes)
	if err != nil {
		return fmt.Errorf("lock %s: %w", o.lock, err)
	}
	if _, err := clearable(o.out); err != nil { // fail before any download
		return err
	}
	wheels, err := lock.wheelsFor(platform)
	var missing *missingPlatformError
	if errors.As(err, &missing) && o.allowMissing {
		if err := clearOut(o.out); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bundlegen: nothing pinned for %s (pinned: %s); %s holds no bundle\n", platform, strings.Join(missing.Pinned, ", "), o.out)
		return nil
	}
	if err != nil {
		return err
	}
	lockSum := sha256.Sum256(lockBytes)
	want := newManifest(platform, lock, wheels, hex.EncodeToString(lockSum[:]))

	if !o.force {
		ok, err := upToDate(o.out, want)
		if err != nil {
			return fmt.Errorf("check %s: %w", o.out, err)
		}
		if ok {
			if err := removeStaging(o.out); err != nil {
				return fmt.Errorf("clean %s: %w", o.out, err)
			}
			fmt.Fprintf(stderr, "bundlegen: %s is up to date (%s)\n", o.out, platform)
			return nil
		}
	}

	f := &fetcher{client: d.client, cacheDir: o.cache, log: stderr}
	paths := make([]string, len(wheels))
	for i, w := range wheels {
		if paths[i], err = f.fetch(ctx, w); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	tree, err := os.MkdirTemp("", "fletch-bundle-")
	if err != nil {
		return fmt.Errorf("create site-packages dir: %w", err)
	}
	defer os.RemoveAll(tree)
	var total extractStats
	for i, w := range wheels {
		st, err := extractWheel(paths[i], tree)
		if err != nil {
			return fmt.Errorf("wheel %s %s (%s): %w", w.Name, w.Version, w.URL, err)
		}
		total.Files += st.Files
		total.Bytes += st.Bytes
		total.Pruned += st.Pruned
	}
	if err := removeEmptyDirs(tree); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	mb, err := want.encode()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tree, manifestName), mb, 0o644); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	fmt.Fprintf(stderr, "bundlegen: extracted %d files (%s), pruned %d\n", total.Files, mib(total.Bytes), total.Pruned)
	if err := ctx.Err(); err != nil {
		return err
	}

	if err := pack(tree, o.out); err != nil {
		return err
	}
	n, size, err := dirSize(o.out)
	if err != nil {
		return fmt.Errorf("measure %s: %w", o.out, err)
	}
	fmt.Fprintf(stderr, "bundlegen: wrote %s for %s: %d files, %s packed, in %s\n",
		o.out, platform, n, mib(size), time.Since(start).Round(100*time.Millisecond))
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
