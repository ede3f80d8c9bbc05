package udfcatalog

import (
	"errors"
	"fmt"
)

// Failure classes shared by the executors and the Flight surface. Inner
// packages wrap these; only the Flight edge turns them into status codes.
var (
	// ErrFunctionFailed: the user's function raised or returned an error.
	ErrFunctionFailed = errors.New("function failed")
	// ErrBadOutput: a function produced output that breaks its declared
	// contract (wrong row count, wrong type, invalid data).
	ErrBadOutput = errors.New("function returned invalid output")
	// ErrUnavailable: the executor cannot run the function right now, for
	// example because its worker pool is shut down.
	ErrUnavailable = errors.New("executor unavailable")
	// ErrWorkerCrashed: the process running the function died mid-call.
	ErrWorkerCrashed = errors.New("worker crashed")
	// ErrTimeout: the function did not finish within its time limit.
	ErrTimeout = errors.New("function timed out")
	// ErrStale: the function version a caller looked up has been replaced
	// and is no longer served; look it up again.
	ErrStale = errors.New("function version no longer served")

	// ErrModuleNotFound: no module of that name is served.
	ErrModuleNotFound = errors.New("module not found")
	// ErrModuleFailed: a module failed to import.
	ErrModuleFailed = errors.New("module failed to import")
	// ErrModuleReadOnly: the module cannot be changed at run time, for
	// example because it comes from a UDF directory rather than from
	// registration.
	ErrModuleReadOnly = errors.New("module cannot be changed at run time")
)

// FunctionError is a failure of the user's function on one batch. It
// matches ErrFunctionFailed.
type FunctionError struct {
	Function string
	// Row is the failing row's index within the batch, or -1 if unknown.
	Row int64
	Err error
}

func (e *FunctionError) Error() string {
	if e.Row < 0 {
		return e.Function + ": " + e.Err.Error()
	}
	return fmt.Sprintf("%s: row %d: %v", e.Function, e.Row, e.Err)
}

func (e *FunctionError) Unwrap() []error { return []error{ErrFunctionFailed, e.Err} }
