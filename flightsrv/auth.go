package flightsrv

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Caller is who made a call, and what it may do.
type Caller struct {
	// Name is the token's name or the client certificate's subject; empty
	// on a server without authentication.
	Name string
	// Call allows the UDFs and their descriptions; Admin also allows the
	// live-registration actions.
	Call, Admin bool
}

// Authenticator checks bearer tokens.
type Authenticator interface {
	// Authenticate returns the caller a token belongs to, or false.
	Authenticate(token string) (Caller, bool)
}

// Authentication failures, mapped to UNAUTHENTICATED and PERMISSION_DENIED.
var (
	errUnauthenticated = errors.New("unauthenticated")
	errForbidden       = errors.New("permission denied")
)

const (
	healthPrefix    = "/grpc.health.v1.Health/"
	handshakeMethod = "/arrow.flight.protocol.FlightService/Handshake"
)

// authRequired reports whether calls must bring credentials: a token, or
// a verified client certificate.
func (s *Server) authRequired() bool {
	return s.opts.Auth != nil || s.clientCertAuth()
}

// clientCertAuth: with mutual TLS a verified certificate is a credential.
func (s *Server) clientCertAuth() bool {
	return s.opts.TLS != nil && s.opts.TLS.ClientAuth == tls.RequireAndVerifyClientCert
}

// authenticate decides who makes a call to method. Health stays open for
// probes, and the Handshake checks its own basic credentials.
func (s *Server) authenticate(ctx context.Context, method string) (Caller, error) {
	if !s.authRequired() {
		return Caller{Call: true, Admin: true}, nil
	}
	if strings.HasPrefix(method, healthPrefix) || method == handshakeMethod {
		return Caller{}, nil
	}
	if s.opts.Auth != nil {
		for _, v := range metadata.ValueFromIncomingContext(ctx, "authorization") {
			scheme, token, _ := strings.Cut(v, " ")
			if !strings.EqualFold(scheme, "bearer") {
				continue
			}
			if c, ok := s.opts.Auth.Authenticate(strings.TrimSpace(token)); ok {
				return c, nil
			}
			return Caller{}, fmt.Errorf("%w: the bearer token is not valid on this server", errUnauthenticated)
		}
	}
	if s.clientCertAuth() {
		if name, ok := certSubject(ctx); ok {
			return Caller{Name: name, Call: true}, nil
		}
	}
	return Caller{}, fmt.Errorf("%w: this server needs credentials: send the header \"authorization: Bearer TOKEN\", "+
		"or call Handshake with basic credentials (name, token) first", errUnauthenticated)
}

// certSubject is the common name of a verified client certificate.
func certSubject(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	cert := info.State.VerifiedChains[0][0]
	if cert.Subject.CommonName != "" {
		return cert.Subject.CommonName, true
	}
	return cert.Subject.String(), true
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// Handshake trades basic credentials (the token's name and the token, as
// pyarrow's authenticate_basic_token sends them) for the bearer header
// later calls send. Without authentication it accepts any login, as
// Flight servers do, and echoes the token so that clients written for a
// server with authentication work unchanged.
func (s *Server) Handshake(stream flight.FlightService_HandshakeServer) error {
	ctx := stream.Context()
	token, err := s.basicLogin(ctx)
	switch {
	case err != nil && s.opts.Auth != nil:
		return toStatus(err)
	case err == nil:
		if err := stream.SetHeader(metadata.Pairs("authorization", "Bearer "+token)); err != nil {
			return err
		}
	}
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := stream.Send(&flight.HandshakeResponse{ProtocolVersion: req.ProtocolVersion}); err != nil {
			return err
		}
	}
}

func (s *Server) basicLogin(ctx context.Context) (string, error) {
	for _, v := range metadata.ValueFromIncomingContext(ctx, "authorization") {
		scheme, payload, _ := strings.Cut(v, " ")
		if !strings.EqualFold(scheme, "basic") {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
		if err != nil {
			return "", fmt.Errorf("%w: the basic credentials are not base64: %w", errUnauthenticated, err)
		}
		name, token, _ := strings.Cut(string(raw), ":")
		if s.opts.Auth == nil {
			return token, nil // an open server takes any login; later calls need nothing
		}
		c, ok := s.opts.Auth.Authenticate(token)
		if !ok || subtle.ConstantTimeCompare([]byte(c.Name), []byte(name)) != 1 {
			return "", fmt.Errorf("%w: name or token not valid on this server", errUnauthenticated)
		}
		callInfoFrom(ctx).caller = c.Name
		return token, nil
	}
	return "", fmt.Errorf("%w: Handshake needs basic credentials (the header \"authorization: Basic base64(NAME:TOKEN)\")", errUnauthenticated)
}

// callerKey holds the Caller of a call in its context.
type callerKey struct{}

func callerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// authorizeMethod checks that an authenticated caller may use method at
// all; admin actions are checked where the action type is known.
func authorizeMethod(c Caller, method string) error {
	if c.Call || strings.HasPrefix(method, healthPrefix) || method == handshakeMethod {
		return nil
	}
	return fmt.Errorf("%w: %q may not call %s", errForbidden, c.Name, method)
}
