package flightsrv_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/fletch-udf/fletch/flightsrv"
)

// staticAuth knows a call token and an admin token.
type staticAuth map[string]flightsrv.Caller

func (a staticAuth) Authenticate(token string) (flightsrv.Caller, bool) {
	c, ok := a[token]
	return c, ok
}

var testTokens = staticAuth{
	"call-token-0123456789":  {Name: "alice", Call: true},
	"admin-token-0123456789": {Name: "root", Call: true, Admin: true},
}

// credential is one way a client presents itself.
type credential struct {
	name string
	// ctx adds the credential's headers to a call.
	ctx func(t *testing.T, h *harness) context.Context
}

func bearer(token string) func(*testing.T, *harness) context.Context {
	return func(*testing.T, *harness) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	}
}

// basicHandshake logs in as arrow-go's AuthenticateBasicToken does and
// sends the bearer header the server answered with.
func basicHandshake(name, token string) func(*testing.T, *harness) context.Context {
	return func(t *testing.T, h *harness) context.Context {
		ctx, err := h.client.AuthenticateBasicToken(context.Background(), name, token)
		if err != nil {
			t.Fatalf("AuthenticateBasicToken(%s): %v", name, err)
		}
		return ctx
	}
}

var callerCredentials = []credential{
	{"none", func(*testing.T, *harness) context.Context { return context.Background() }},
	{"wrong token", bearer("not-a-token-0123456789")},
	{"call token", bearer("call-token-0123456789")},
	{"admin token", bearer("admin-token-0123456789")},
	{"basic handshake", basicHandshake("alice", "call-token-0123456789")},
}

// rpc is one call of the matrix; it returns the call's error.
type rpc struct {
	name  string
	admin bool // needs the admin scope
	call  func(ctx context.Context, h *harness) error
}

var rpcs = []rpc{
	{"ListFlights", false, func(ctx context.Context, h *harness) error {
		s, err := h.client.ListFlights(ctx, &flight.Criteria{})
		if err != nil {
			return err
		}
		for {
			if _, err := s.Recv(); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
		}
	}},
	{"GetFlightInfo", false, func(ctx context.Context, h *harness) error {
		_, err := h.client.GetFlightInfo(ctx, path("echo_int64"))
		return err
	}},
	{"GetSchema", false, func(ctx context.Context, h *harness) error {
		_, err := h.client.GetSchema(ctx, path("echo_int64"))
		return err
	}},
	{"ListActions", false, func(ctx context.Context, h *harness) error {
		s, err := h.client.ListActions(ctx, &flight.Empty{})
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}},
	{"DoAction list", false, func(ctx context.Context, h *harness) error { return callAction(ctx, h, "list") }},
	{"DoAction reload", true, func(ctx context.Context, h *harness) error { return callAction(ctx, h, "reload") }},
	{"DoExchange", false, func(ctx context.Context, h *harness) error {
		in := int64Batch(h.mem, "x", []*int64{ptr(int64(7))})
		defer in.Release()
		out, err := h.exchange(ctx, "echo_int64", in.Schema(), in)
		release(out)
		return err
	}},
}

func callAction(ctx context.Context, h *harness, typ string) error {
	s, err := h.client.DoAction(ctx, &flight.Action{Type: typ})
	if err != nil {
		return err
	}
	_, err = s.Recv()
	return err
}

func ptr[T any](v T) *T { return &v }

// TestAuthMatrix calls every RPC with every kind of credential, over
// plaintext and TLS, and checks the status each gets.
func TestAuthMatrix(t *testing.T) {
	pki := newTestPKI(t)
	transports := []struct {
		name   string
		server *tls.Config
		client credentials.TransportCredentials
	}{
		{"plaintext", nil, nil},
		{"tls", pki.serverTLS(false), credentials.NewTLS(pki.clientTLS(false))},
	}
	for _, tr := range transports {
		for _, cred := range callerCredentials {
			t.Run(tr.name+"/"+cred.name, func(t *testing.T) {
				h := newHarness(t, harnessConfig{
					opts:        flightsrv.Options{Auth: testTokens, Admin: &recordingAdmin{}, TLS: tr.server},
					clientCreds: tr.client,
				})
				ctx := cred.ctx(t, h)
				for _, r := range rpcs {
					err := r.call(ctx, h)
					want := codes.OK
					switch {
					case cred.name == "none" || cred.name == "wrong token":
						want = codes.Unauthenticated
					case r.admin && cred.name != "admin token":
						want = codes.PermissionDenied
					}
					if got := status.Code(err); got != want {
						t.Errorf("%s: got %v (%v), want %v", r.name, got, err, want)
					}
				}
				// Health stays open for probes whatever the credentials.
				resp, err := healthpb.NewHealthClient(h.conn(t, tr.client)).Check(ctx, &healthpb.HealthCheckRequest{})
				if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
					t.Errorf("health: %v, %v", resp, err)
				}
			})
		}
	}
}

// TestMutualTLS: a verified client certificate authenticates (scope call),
// a client without one cannot even connect, and a token still works on top.
func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	h := newHarness(t, harnessConfig{
		opts:        flightsrv.Options{Auth: testTokens, Admin: &recordingAdmin{}, TLS: pki.serverTLS(true)},
		clientCreds: credentials.NewTLS(pki.clientTLS(true)),
	})
	for _, r := range rpcs {
		want := codes.OK
		if r.admin {
			want = codes.PermissionDenied
		}
		if got := status.Code(r.call(context.Background(), h)); got != want {
			t.Errorf("certificate only, %s: got %v, want %v", r.name, got, want)
		}
	}
	if err := rpcs[5].call(bearer("admin-token-0123456789")(t, h), h); err != nil {
		t.Errorf("certificate and admin token, reload: %v", err)
	}

	noCert := newHarnessClient(t, h.addr, credentials.NewTLS(pki.clientTLS(false)))
	_, err := noCert.GetSchema(context.Background(), path("echo_int64"))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("no client certificate: got %v, want UNAVAILABLE (the TLS handshake fails)", err)
	}
}

// TestHandshakeRefusals: wrong or missing basic credentials are
// UNAUTHENTICATED, and so is a token under another name.
func TestHandshakeRefusals(t *testing.T) {
	h := newHarness(t, harnessConfig{opts: flightsrv.Options{Auth: testTokens}})
	cases := []struct{ name, header string }{
		{"no header", ""},
		{"wrong token", basic("alice", "not-a-token-0123456789")},
		{"another's token", basic("root", "call-token-0123456789")},
		{"not base64", "Basic %%%"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			if c.header != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", c.header)
			}
			s, err := h.client.Handshake(ctx)
			if err == nil {
				_ = s.CloseSend()
				_, err = s.Recv()
			}
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("got %v, want UNAUTHENTICATED", err)
			}
		})
	}
}

// TestNoAuthIsOpen: without an Authenticator everything is allowed, the
// Handshake included, as before.
func TestNoAuthIsOpen(t *testing.T) {
	h := newHarness(t, harnessConfig{opts: flightsrv.Options{Admin: &recordingAdmin{}}})
	for _, r := range rpcs {
		if err := r.call(context.Background(), h); err != nil {
			t.Errorf("%s: %v", r.name, err)
		}
	}
	if _, err := h.client.AuthenticateBasicToken(context.Background(), "anyone", "anything"); err != nil {
		t.Errorf("handshake: %v", err)
	}
}

func basic(name, token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(name+":"+token))
}

// conn is a raw gRPC connection to the harness's server, closed with the
// test; nil creds is plaintext.
func (h *harness) conn(t *testing.T, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	cc, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// newHarnessClient is a second Flight client of a harness's server.
func newHarnessClient(t *testing.T, addr string, creds credentials.TransportCredentials) flight.Client {
	t.Helper()
	c, err := flight.NewClientWithMiddleware(addr, nil, nil, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testPKI is a CA, a server certificate for 127.0.0.1 and a client
// certificate for "carol", all made for one test.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fletch test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) tls.Certificate {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{
		pool:   pool,
		server: leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth),
		client: leaf(3, "carol", x509.ExtKeyUsageClientAuth),
	}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *testPKI) serverTLS(mutual bool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{p.server}}
	if mutual {
		cfg.ClientCAs, cfg.ClientAuth = p.pool, tls.RequireAndVerifyClientCert
	}
	return cfg
}

func (p *testPKI) clientTLS(withCert bool) *tls.Config {
	cfg := &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1"}
	if withCert {
		cfg.Certificates = []tls.Certificate{p.client}
	}
	return cfg
}
