package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"

	"github.com/fletch-udf/fletch/exec"
	"github.com/fletch-udf/fletch/flightsrv"
	"github.com/fletch-udf/fletch/pybridge"
	"github.com/fletch-udf/fletch/udfcatalog"
)

func defaultTransport() string {
	if pybridge.SharedMemory {
		return "shm"
	}
	return "pipe"
}

type serveConfig struct {
	listen           string
	logLevel         string
	logFormat        string
	maxMessageBytes  byteSize
	maxBatchRows     int
	maxBatchBytes    byteSize
	tableBatchRows   int
	drainTimeout     time.Duration
	noBuiltins       bool
	udfDirs          stringList
	python           string
	workers          int
	strict           bool
	stateDir         string
	callTimeout      time.Duration
	stateKeyFile     string
	watch            bool
	watchInterval    time.Duration
	liveRegistration bool
	workerTransport  string
	pprofListen      string
	authTokens       string
	tlsCert          string
	tlsKey           string
	tlsClientCA      string
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8815", "`address` to listen on (host:port)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `level`: trace, debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log `format`: text or json")
	c.maxMessageBytes = flightsrv.DefaultMaxMessageBytes
	fs.Var(&c.maxMessageBytes, "max-message-bytes", "largest gRPC `size` accepted or sent, e.g. 256MiB")
	fs.IntVar(&c.maxBatchRows, "max-batch-rows", flightsrv.DefaultMaxBatchRows, "input batches with more `rows` are sliced before execution")
	c.maxBatchBytes = flightsrv.DefaultMaxBatchBytes
	fs.Var(&c.maxBatchBytes, "max-batch-bytes", "input batches larger than `size` are sliced before execution")
	fs.IntVar(&c.tableBatchRows, "table-batch-rows", flightsrv.DefaultMaxTableRows, "a table function's output batches have at most this many `rows`")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", flightsrv.DefaultDrainTimeout, "on SIGINT/SIGTERM, how long open exchanges may finish before they are cancelled")
	fs.BoolVar(&c.noBuiltins, "no-builtins", false, "do not serve the built-in Go functions")
	fs.Var(&c.udfDirs, "udf-dir", "serve the Python UDFs of every module, package and zip in `dir` (repeatable)")
	fs.StringVar(&c.python, "python", "", "run Python UDFs with this interpreter or venv `path` instead of the embedded one")
	fs.IntVar(&c.workers, "workers", runtime.NumCPU(), "number of Python worker `processes`")
	fs.BoolVar(&c.strict, "strict", false, "fail to start if any Python module fails to import")
	fs.StringVar(&c.stateDir, "state-dir", "", "`dir` for the extracted embedded Python (default: the user cache dir, e.g. ~/.cache/fletch)")
	fs.StringVar(&c.stateKeyFile, "state-key-file", "", "`file` whose contents sign aggregate states (servers that exchange states need the same one; default: a random key per process)")
	fs.BoolVar(&c.watch, "watch", false, "reload Python modules when their files in --udf-dir change")
	fs.DurationVar(&c.watchInterval, "watch-interval", time.Second, "how often --watch looks for changes")
	fs.BoolVar(&c.liveRegistration, "live-registration", false, "allow the register, unregister and reload actions (with --auth-tokens, to tokens with the admin scope)")
	fs.StringVar(&c.authTokens, "auth-tokens", "", "require a bearer token on every call but health: `file` with lines NAME TOKEN [call] [admin], re-read on SIGHUP")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "serve TLS with this PEM certificate `file` (chain)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "the PEM private key `file` of --tls-cert")
	fs.StringVar(&c.tlsClientCA, "tls-client-ca", "", "require client certificates signed by the CAs in this PEM `file` (mutual TLS); a verified certificate authenticates with scope call")
	fs.DurationVar(&c.callTimeout, "call-timeout", 60*time.Second, "a Python UDF call taking longer is cancelled and its worker replaced")
	fs.StringVar(&c.workerTransport, "worker-transport", defaultTransport(), "how batches reach Python workers: `shm` (shared memory, Linux) or pipe")
	fs.StringVar(&c.pprofListen, "pprof-listen", "", "serve Go's net/http/pprof profiles on `address` (for profiling; never expose it)")
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg serveConfig
	fs := flag.NewFlagSet("fletch serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: fletch serve [flags]\n\nEvery flag can also be set by its environment variable, e.g. --max-batch-rows by %s.\n\n", envName("max-batch-rows"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error(), reported: true} // flag has printed it
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("unexpected arguments: %q", fs.Args())}
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	log, err := newLogger(cfg.logLevel, cfg.logFormat, stderr)
	if err != nil {
		return err
	}
	if cfg.maxBatchRows <= 0 {
		return &usageError{msg: fmt.Sprintf("--max-batch-rows must be positive, got %d", cfg.maxBatchRows)}
	}
	if cfg.watch && cfg.watchInterval <= 0 {
		return &usageError{msg: fmt.Sprintf("--watch-interval must be positive, got %s", cfg.watchInterval)}
	}
	if cfg.tableBatchRows <= 0 {
		return &usageError{msg: fmt.Sprintf("--table-batch-rows must be positive, got %d", cfg.tableBatchRows)}
	}
	if cfg.workers <= 0 {
		return &usageError{msg: fmt.Sprintf("--workers must be positive, got %d", cfg.workers)}
	}
	if cfg.workerTransport != "shm" && cfg.workerTransport != "pipe" {
		return &usageError{msg: fmt.Sprintf("--worker-transport %q: want shm or pipe", cfg.workerTransport)}
	}
	if cfg.workerTransport == "shm" && !pybridge.SharedMemory {
		return &usageError{msg: "--worker-transport shm: shared memory is only built for Linux; use pipe"}
	}
	tlsConfig, err := loadTLS(cfg.tlsCert, cfg.tlsKey, cfg.tlsClientCA)
	if err != nil {
		return err
	}
	var auth flightsrv.Authenticator
	if cfg.authTokens != "" {
		var stop func()
		if auth, stop, err = loadAuth(ctx, cfg.authTokens, log); err != nil {
			return err
		}
		defer stop()
	}
	if !isLoopback(cfg.listen) && auth == nil && cfg.tlsClientCA == "" {
		if cfg.liveRegistration {
			return &usageError{msg: fmt.Sprintf("--live-registration on %s, which is not a loopback address, needs --auth-tokens or --tls-client-ca: anyone who reaches it could run code as this server's user", cfg.listen)}
		}
		log.Warn("serving on a non-loopback address without authentication: anyone who reaches it may call every UDF; see --auth-tokens", "address", cfg.listen)
	}
	if cfg.pprofListen != "" {
		stop, err := servePprof(cfg.pprofListen, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	mem := memory.NewGoAllocator()
	catalog := udfcatalog.NewRegistry()
	native := exec.NewNative(mem)
	if !cfg.noBuiltins {
		if err := native.Register(catalog, exec.Builtins()...); err != nil {
			return fmt.Errorf("register built-in functions: %w", err)
		}
	}

	var python *exec.Python
	var admin flightsrv.Admin
	if len(cfg.udfDirs) > 0 || cfg.liveRegistration {
		var projects *exec.Projects
		var stop func()
		if python, projects, stop, err = pythonUDFs(ctx, &cfg, catalog, mem, log); err != nil {
			return err
		}
		defer stop()
		if cfg.liveRegistration {
			admin = projects
		}
		if cfg.watch {
			watchCtx, cancel := context.WithCancel(ctx)
			var watching sync.WaitGroup
			watching.Add(1)
			go func() { defer watching.Done(); projects.Watch(watchCtx, cfg.watchInterval) }()
			defer watching.Wait()
			defer cancel()
		}
	} else if cfg.python != "" {
		log.Warn("--python has no effect without --udf-dir")
	}

	srv := flightsrv.New(catalog, exec.NewRouter(native, python).Open, mem, flightsrv.Options{
		Logger:          log.Named("flight"),
		MaxMessageBytes: int(cfg.maxMessageBytes),
		MaxBatchRows:    cfg.maxBatchRows,
		MaxBatchBytes:   int(cfg.maxBatchBytes),
		MaxTableRows:    cfg.tableBatchRows,
		DrainTimeout:    cfg.drainTimeout,
		Admin:           admin,
		Auth:            auth,
		TLS:             tlsConfig,
	})
	for _, fn := range catalog.List() {
		log.Info("function", "signature", fn.Signature(), "language", fn.Language, "version", fn.Version)
	}
	lis, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return srv.Serve(ctx, lis)
}

func newLogger(level, format string, out io.Writer) (hclog.Logger, error) {
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		return nil, &usageError{msg: fmt.Sprintf("--log-level %q: want trace, debug, info, warn or error", level)}
	}
	if format != "text" && format != "json" {
		return nil, &usageError{msg: fmt.Sprintf("--log-format %q: want text or json", format)}
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "fletch",
		Level:      lvl,
		JSONFormat: format == "json",
		Output:     out,
	}), nil
}
