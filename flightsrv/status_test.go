package flightsrv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-udf/fletch/udfcatalog"
)

func TestToStatus(t *testing.T) {
	tests := []struct {
		err  error
		code codes.Code
	}{
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{&udfcatalog.NotFoundError{Name: "f"}, codes.NotFound},
		{udfcatalog.ErrSchemaMismatch, codes.InvalidArgument},
		{udfcatalog.ErrTypeSyntax, codes.InvalidArgument},
		{errBadRequest, codes.InvalidArgument},
		{errMalformedIPC, codes.InvalidArgument},
		{errTooLarge, codes.ResourceExhausted},
		{errUnknownAction, codes.Unimplemented},
		{udfcatalog.ErrFunctionFailed, codes.Unknown},
		{udfcatalog.ErrWorkerCrashed, codes.Aborted},
		{udfcatalog.ErrTimeout, codes.DeadlineExceeded},
		{udfcatalog.ErrUnavailable, codes.Unavailable},
		{udfcatalog.ErrStale, codes.Unavailable},
		{udfcatalog.ErrInvalidOptions, codes.InvalidArgument},
		{udfcatalog.ErrModuleNotFound, codes.NotFound},
		{udfcatalog.ErrModuleFailed, codes.InvalidArgument},
		{udfcatalog.ErrModuleReadOnly, codes.FailedPrecondition},
		{udfcatalog.ErrDuplicate, codes.AlreadyExists},
		{errDisabled, codes.PermissionDenied},
		{udfcatalog.ErrBadOutput, codes.Internal},
		{panicError("boom"), codes.Internal},
		{errors.New("anything else"), codes.Internal},
		{fromRecv(status.Error(codes.ResourceExhausted, "grpc: received message larger than max (9 vs. 8)")), codes.ResourceExhausted},
		{fromRecv(status.Error(codes.Canceled, "context canceled")), codes.Canceled},
		{fromRecv(status.Error(codes.Unavailable, "transport is closing")), codes.Internal},
	}
	for _, tt := range tests {
		for _, err := range []error{tt.err, fmt.Errorf("batch 3: %w", tt.err), fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", tt.err))} {
			got := status.Convert(toStatus(err))
			if got.Code() != tt.code || got.Message() != err.Error() {
				t.Errorf("toStatus(%v) = %s %q, want %s with the error's text", err, got.Code(), got.Message(), tt.code)
			}
		}
	}
	if toStatus(nil) != nil {
		t.Error("toStatus(nil) != nil")
	}
	bare := status.Error(codes.PermissionDenied, "no")
	if got := toStatus(bare); status.Code(got) != codes.PermissionDenied {
		t.Errorf("a bare status passes through unchanged, got %v", got)
	}
}

func TestCapMessage(t *testing.T) {
	long := strings.Repeat("é", maxMessageBytes) // two bytes a rune: the cut falls inside one
	tests := []struct {
		name    string
		err     error
		want    string // the message's start
		wantCut bool
	}{
		{"short", status.Error(codes.InvalidArgument, "bad"), "bad", false},
		{"long", status.Error(codes.InvalidArgument, long), strings.Repeat("é", maxMessageBytes/2), true},
		{"not a status", errors.New("plain"), "plain", false},
	}
	for _, tt := range tests {
		got := capMessage(tt.err)
		msg := status.Convert(got).Message()
		if !strings.HasPrefix(msg, tt.want) || strings.Contains(msg, "bytes more") != tt.wantCut || !utf8.ValidString(msg) {
			t.Errorf("%s: capMessage = %.80q…", tt.name, msg)
		}
		if tt.wantCut && (status.Code(got) != codes.InvalidArgument || len(msg) > maxMessageBytes+100) {
			t.Errorf("%s: code %s, %d bytes", tt.name, status.Code(got), len(msg))
		}
	}
}
