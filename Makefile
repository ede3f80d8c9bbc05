# The two commands a newcomer needs:
#   make serve   build ./bin/fletch and serve the example UDFs
#   make test    run every test, Go and Python (builds its own venv)

GO      ?= go
PYTHON  ?= python3
# The platform to build for; bundlegen fetches the pinned pyarrow wheels for it.
TARGET_GOOS   ?= $(shell $(GO) env GOOS)
TARGET_GOARCH ?= $(shell $(GO) env GOARCH)
VENV    ?= .venv
BIN     := bin/fletch
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PY      := $(VENV)/bin/python

.PHONY: all build bundle serve test test-go test-python test-python-pipe lint lint-go lint-python bench bench-quick bench-full \
  build-arm64 test-arm64 fuzz clean FORCE

all: build

build: $(BIN)

# Unpack the pinned pyarrow wheels for the target platform into
# pybridge/bundle, which the binary embeds (a no-op when up to date).
# Platforms without pins build without it: Python UDFs then need --python.
bundle:
	GOOS= GOARCH= $(GO) run ./pybridge/internal/bundlegen -lock pybridge/bundle.lock.json \
	  -goos $(TARGET_GOOS) -goarch $(TARGET_GOARCH) -out pybridge/bundle -allow-missing

$(BIN): bundle FORCE
	GOOS=$(TARGET_GOOS) GOARCH=$(TARGET_GOARCH) CGO_ENABLED=0 \
	  $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/fletch

serve: build
	./$(BIN) serve --udf-dir examples/udfs

# The venv holds the pinned test dependencies from PyPI.
$(VENV)/.installed: clients/python/requirements-test.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "the Python tests need python3 >= 3.10 (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r clients/python/requirements-test.txt
	touch $@

test: lint test-go test-python test-python-pipe test-engines bench-quick

lint: lint-go lint-python

lint-go:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

lint-python: $(VENV)/.installed
	cd clients/python && $(CURDIR)/$(PY) -m ruff check src tests && \
	  $(CURDIR)/$(PY) -m ruff format --check src tests && \
	  $(CURDIR)/$(PY) -m mypy --strict src
# The benchmark and example UDF code follows the package's rules; the examples
# spell Optional[T] on purpose, to show that @udf reads it like T | None.
	$(PY) -m ruff check --config clients/python/pyproject.toml --ignore UP045 benchmarks examples tests/engines
	$(PY) -m ruff format --config clients/python/pyproject.toml --check benchmarks examples tests/engines

test-go: bundle
	$(GO) test -race -count=1 ./...

test-python: build $(VENV)/.installed
	cd clients/python && FLETCH_BIN=$(CURDIR)/$(BIN) $(CURDIR)/$(PY) -m pytest -q tests

# The end-to-end Python UDF tests again with every body through the pipes, so
# the fallback transport (the only one elsewhere than Linux) stays alive.
test-python-pipe: build $(VENV)/.installed
	cd clients/python && FLETCH_BIN=$(CURDIR)/$(BIN) FLETCH_TEST_WORKER_TRANSPORT=pipe $(CURDIR)/$(PY) -m pytest -q \
	  tests/test_python_udfs.py tests/test_kinds.py tests/test_udf_policies.py tests/test_nullability.py tests/test_exchange.py \
	  tests/test_coalescing.py

# RisingWave's own UDF client (Rust crate arrow-udf-runtime 0.9.0, feature remote) against a fresh
# bin/fletch; see tests/engines/risingwave/README.md. Needs cargo: fails without it, never skips.
CARGO ?= cargo
.PHONY: test-engines
test-engines: build
	@command -v $(CARGO) >/dev/null 2>&1 || { echo "test-engines: '$(CARGO)' not found: the RisingWave client test in tests/engines/risingwave needs a Rust toolchain (cargo on PATH, or CARGO=/path/to/cargo)" >&2; exit 1; }
	$(CARGO) run --locked --manifest-path tests/engines/risingwave/Cargo.toml -- --fletch $(CURDIR)/$(BIN)

# Go exchange benchmarks beside the bare arrow-go echo baseline, summarised
# as medians and ratios (see docs/benchmarks.md).
bench: bundle
	$(GO) test -run '^$$' -bench . -benchtime 20x -count 6 ./benchmarks/ | tee /dev/stderr | \
	  $(GO) run ./benchmarks/cmd/benchratio -metric rows/s \
	    -pair Exchange/fletch/echo_int64=Exchange/baseline-echo/1col \
	    -pair Exchange/fletch/add_int64=Exchange/baseline-echo/2col \
	    -pair PythonExchange/py_add=PythonExchange/add_int64 \
	    -pair PythonExchange/py_plus_one=PythonExchange/add_int64

# fletch beside a bare echo server and peer UDF servers, each its own process
# (docs/benchmarks.md). Quick mode checks every answer of every server on every
# workload in about half a minute; full mode writes benchmarks/results/<date>-<arch>/.
bench-quick: build
	$(GO) run ./benchmarks/harness -mode quick -fletch $(BIN) -python $(PYTHON)

bench-full: build
	$(GO) run ./benchmarks/harness -mode full -fletch $(BIN) -python $(PYTHON) -note "$(BENCH_NOTE)"

# linux/arm64: cross-build with the arm64 bundle, then restore the native one.
build-arm64:
	$(MAKE) build TARGET_GOOS=linux TARGET_GOARCH=arm64 BIN=bin/fletch-linux-arm64
	$(MAKE) bundle

# The Go tests for linux/arm64 under qemu-user (binfmt registered; see .ci/qemu-arm64).
# The arm64 bundle stays in place while they run, and the native one comes back after.
test-arm64:
	$(MAKE) build TARGET_GOOS=linux TARGET_GOARCH=arm64 BIN=bin/fletch-linux-arm64
	QEMU_LD_PREFIX=/usr/aarch64-linux-gnu GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) test -count=1 ./... ; \
	  status=$$?; $(MAKE) bundle; exit $$status

# Every fuzz target in the module, FUZZTIME each.
FUZZTIME ?= 30s
fuzz: bundle
	@for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin $(VENV)

FORCE:
