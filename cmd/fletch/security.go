package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/fletch-udf/fletch/flightsrv"
	"github.com/fletch-udf/fletch/internal/tokens"
)

// tokenAuth lets a tokens file authenticate Flight calls; admin implies call.
type tokenAuth struct{ file *tokens.File }

func (a tokenAuth) Authenticate(secret string) (flightsrv.Caller, bool) {
	t, ok := a.file.Lookup(secret)
	if !ok {
		return flightsrv.Caller{}, false
	}
	admin := t.Has(tokens.ScopeAdmin)
	return flightsrv.Caller{Name: t.Name, Call: admin || t.Has(tokens.ScopeCall), Admin: admin}, true
}

// loadAuth reads --auth-tokens and re-reads it on SIGHUP until ctx ends;
// the returned stop joins the goroutine that does so.
func loadAuth(ctx context.Context, path string, log hclog.Logger) (flightsrv.Authenticator, func(), error) {
	file, err := tokens.Load(path)
	if err != nil {
		return nil, nil, &usageError{msg: fmt.Sprintf("--auth-tokens: %v", err)}
	}
	log.Info("authentication on", "tokens", file.Len(), "file", path)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := file.Reload(); err != nil {
					log.Error("auth tokens not reloaded; the previous ones stay", "error", err)
					continue
				}
				log.Info("auth tokens reloaded", "tokens", file.Len())
			}
		}
	}()
	stop := func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
	return tokenAuth{file}, stop, nil
}

// loadTLS builds the server's TLS configuration from --tls-cert, --tls-key
// and --tls-client-ca; nil when TLS is off.
func loadTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		if clientCA != "" {
			return nil, &usageError{msg: "--tls-client-ca needs --tls-cert and --tls-key"}
		}
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, &usageError{msg: "--tls-cert and --tls-key go together"}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, &usageError{msg: fmt.Sprintf("--tls-cert/--tls-key: %v", err)}
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, &usageError{msg: fmt.Sprintf("--tls-client-ca: %v", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &usageError{msg: fmt.Sprintf("--tls-client-ca %s: no PEM certificate in it", clientCA)}
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// isLoopback reports whether a listen address only takes local connections.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
