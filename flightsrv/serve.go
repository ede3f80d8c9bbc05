package flightsrv

import (
	"context"
	"errors"
	"net"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Serve accepts connections on lis until ctx ends, then drains: health
// turns NOT_SERVING, new calls are refused, and open exchanges get up to
// DrainTimeout to finish before they are cancelled. Serve returns once
// every goroutine it started has stopped.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	served := make(chan error, 1)
	go func() { served <- s.grpc.Serve(lis) }()
	s.log.Info("serving", "address", lis.Addr().String(), "functions", len(s.catalog.List()))

	var err error
	select {
	case err = <-served:
	case <-ctx.Done():
		s.drain()
		err = <-served
	}
	s.readers.Wait()
	s.bodies.drain()
	if errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return err
}

func (s *Server) drain() {
	s.log.Info("draining", "timeout", s.opts.DrainTimeout)
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(s.opts.DrainTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.log.Warn("drain timeout passed; cancelling open exchanges")
		s.grpc.Stop()
		<-stopped
	}
	s.log.Info("stopped")
}

// callInfo collects what a handler learns for the one log line per call.
type callInfo struct {
	function string
	batches  int64
	rows     int64
	// caller and peer say who called, for servers with authentication.
	caller, peer string
}

type callInfoKey struct{}

func callInfoFrom(ctx context.Context) *callInfo {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		return ci
	}
	return &callInfo{}
}

type streamWithContext struct {
	grpc.ServerStream
	ctx context.Context
}

func (s streamWithContext) Context() context.Context { return s.ctx }

// streamInterceptor recovers handler panics as INTERNAL and logs each call once.
func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	ci := &callInfo{}
	start := time.Now()
	defer func() {
		s.recoverInto(&err, info.FullMethod, ci.function)
		err = toStatus(err)
		s.logCall(info.FullMethod, ci, time.Since(start), err)
		err = capMessage(err)
	}()
	ctx, err := s.admit(ss.Context(), info.FullMethod, ci)
	if err != nil {
		return err
	}
	return handler(srv, streamWithContext{ss, ctx})
}

func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	ci := &callInfo{}
	start := time.Now()
	defer func() {
		s.recoverInto(&err, info.FullMethod, "")
		err = toStatus(err)
		s.logCall(info.FullMethod, ci, time.Since(start), err)
		err = capMessage(err)
	}()
	ctx, err = s.admit(ctx, info.FullMethod, ci)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// admit authenticates a call and returns its context, which carries ci
// and the Caller.
func (s *Server) admit(ctx context.Context, method string, ci *callInfo) (context.Context, error) {
	if s.authRequired() {
		ci.peer = peerAddr(ctx)
	}
	caller, err := s.authenticate(ctx, method)
	if err == nil {
		err = authorizeMethod(caller, method)
	}
	ci.caller = caller.Name
	if err != nil {
		return nil, err
	}
	return context.WithValue(context.WithValue(ctx, callInfoKey{}, ci), callerKey{}, caller), nil
}

// recoverInto turns a panic in the calling goroutine into an INTERNAL error.
// It must be deferred directly.
func (s *Server) recoverInto(err *error, where, function string) {
	if p := recover(); p != nil {
		s.log.Error("recovered panic", "where", where, "function", function, "panic", p, "stack", string(debug.Stack()))
		*err = panicError(p)
	}
}

// logCall logs one line per call, louder when the server is at fault.
func (s *Server) logCall(method string, ci *callInfo, took time.Duration, err error) {
	args := []any{"method", method, "duration", took}
	if ci.function != "" {
		args = append(args, "function", ci.function, "batches", ci.batches, "rows", ci.rows)
	}
	if ci.peer != "" {
		args = append(args, "peer", ci.peer, "caller", ci.caller)
	}
	level := hclog.Debug
	if err != nil {
		st := status.Convert(err)
		args = append(args, "code", st.Code(), "error", st.Message())
		switch st.Code() {
		case codes.Internal, codes.DataLoss:
			level = hclog.Error
		case codes.Unknown, codes.Aborted, codes.Unavailable:
			level = hclog.Warn
		default:
			level = hclog.Info
		}
	}
	s.log.Log(level, "call", args...)
}
