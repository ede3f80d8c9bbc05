// Package benchmarks measures fletch against a bare arrow-go Flight echo
// server in the same run. Run it with `make bench`; quote medians and
// ratios, since single timings on shared machines mean little
// (see docs/benchmarks.md).
package benchmarks
