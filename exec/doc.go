// Package exec runs UDFs for the Flight surface. Native Go functions are
// compiled in and registered through generic constructors, so their Arrow
// signatures come from their Go types:
//
//	exec.Scalar2("add", func(a, b int64) int64 { return a + b })
//
// Python functions run in the worker pool of package pybridge. A Router
// sends each catalog entry to the executor for its language.
package exec
