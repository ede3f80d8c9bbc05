package flightsrv

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-udf/fletch/udfcatalog"
)

// Failures detected at the Flight surface itself.
var (
	errBadRequest    = errors.New("bad request")
	errMalformedIPC  = errors.New("malformed Arrow IPC")
	errTooLarge      = errors.New("message too large")
	errUnknownAction = errors.New("unknown action")
	errDisabled      = errors.New("action disabled")
	errPanic         = errors.New("internal error")
)

// recvError is an error from the gRPC stream itself, as opposed to one
// from decoding what arrived on it. kind, when set, is the sentinel it
// matches.
type recvError struct {
	msg  string
	kind error
	err  error
}

func (e *recvError) Error() string        { return e.msg }
func (e *recvError) Unwrap() []error      { return []error{e.kind, e.err} }
func (e *recvError) Is(target error) bool { return e.kind != nil && target == e.kind }

// toStatus is the only place that chooses gRPC status codes.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !isWrapped(err) {
		return err // already a status, from gRPC itself
	}
	var code codes.Code
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, udfcatalog.ErrTimeout):
		code = codes.DeadlineExceeded
	case errors.Is(err, udfcatalog.ErrNotFound), errors.Is(err, udfcatalog.ErrModuleNotFound):
		code = codes.NotFound
	case errors.Is(err, errUnauthenticated):
		code = codes.Unauthenticated
	case errors.Is(err, errDisabled), errors.Is(err, errForbidden):
		code = codes.PermissionDenied
	case errors.Is(err, udfcatalog.ErrDuplicate):
		code = codes.AlreadyExists
	case errors.Is(err, udfcatalog.ErrModuleReadOnly):
		code = codes.FailedPrecondition
	case errors.Is(err, errBadRequest), errors.Is(err, errMalformedIPC),
		errors.Is(err, udfcatalog.ErrSchemaMismatch), errors.Is(err, udfcatalog.ErrTypeSyntax),
		errors.Is(err, udfcatalog.ErrInvalidOptions), errors.Is(err, udfcatalog.ErrModuleFailed):
		code = codes.InvalidArgument
	case errors.Is(err, errTooLarge):
		code = codes.ResourceExhausted
	case errors.Is(err, errUnknownAction):
		code = codes.Unimplemented
	case errors.Is(err, udfcatalog.ErrFunctionFailed):
		code = codes.Unknown
	case errors.Is(err, udfcatalog.ErrWorkerCrashed):
		code = codes.Aborted
	case errors.Is(err, udfcatalog.ErrUnavailable), errors.Is(err, udfcatalog.ErrStale):
		code = codes.Unavailable
	default:
		// errPanic, udfcatalog.ErrBadOutput and anything unforeseen.
		code = codes.Internal
	}
	return status.Error(code, err.Error())
}

// maxMessageBytes bounds a status message: a wrong column count at
// thousands of columns, or a crash report quoting a worker's output, must
// still reach the client as its real status, not as a reset stream. The
// call's log line has the whole message.
const maxMessageBytes = 4 << 10

// capMessage cuts a status's message to maxMessageBytes, saying how much
// was cut; the code and any details stay.
func capMessage(err error) error {
	st, ok := status.FromError(err)
	if !ok || len(st.Message()) <= maxMessageBytes {
		return err
	}
	p := st.Proto()
	cut := strings.ToValidUTF8(p.Message[:maxMessageBytes], "")
	p.Message = fmt.Sprintf("%s … %d bytes more (the server's log has the whole message)", cut, len(p.Message)-len(cut))
	return status.FromProto(p).Err()
}

// isWrapped reports whether err carries more than a bare gRPC status,
// so that our own sentinels decide the code.
func isWrapped(err error) bool {
	return errors.Unwrap(err) != nil || isMulti(err)
}

func isMulti(err error) bool {
	_, ok := err.(interface{ Unwrap() []error })
	return ok
}

// fromRecv classifies an error returned by the stream's Recv.
func fromRecv(err error) error {
	e := &recvError{msg: "receive: " + status.Convert(err).Message(), err: err}
	switch status.Code(err) {
	case codes.ResourceExhausted:
		e.kind = errTooLarge
		e.msg = fmt.Sprintf("input message too large (%s); send smaller record batches or raise the server's --max-message-bytes",
			status.Convert(err).Message())
	case codes.Canceled:
		e.kind, e.msg = context.Canceled, "the client cancelled the exchange"
	case codes.DeadlineExceeded:
		e.kind, e.msg = context.DeadlineExceeded, "the exchange's deadline passed"
	}
	return e
}

// panicError turns a recovered panic into an error that maps to INTERNAL.
func panicError(p any) error {
	return fmt.Errorf("%w: panic: %v", errPanic, p)
}
