// Package tlsserve runs the local stack's HTTPS listeners (the Entra/Graph stand-in, its
// storage front, the storage fault proxy) and reaches Azurite from them. Serve listens on
// every address before it serves any, so a port already taken fails the start, and shuts
// every server down gracefully when its context ends.
package tlsserve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// Listener is one HTTPS surface: a name for messages, the address, and its handler.
type Listener struct {
	Name    string
	Addr    string
	Handler http.Handler
}

// shutdownGrace bounds the graceful shutdown of every server.
const shutdownGrace = 10 * time.Second

// Serve serves ls over TLS with cert until ctx is done or a server fails, then shuts all
// of them down. ready, when set, receives the bound address of each listener, in order,
// once all of them accept connections.
func Serve(ctx context.Context, log *slog.Logger, cert tls.Certificate, ls []Listener, ready func(addrs []string)) error {
	servers := make([]*http.Server, 0, len(ls))
	listeners := make([]net.Listener, 0, len(ls))
	addrs := make([]string, 0, len(ls))
	for _, l := range ls {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			for _, prev := range listeners {
				prev.Close()
			}
			return fmt.Errorf("listen (%s): %w", l.Name, err)
		}
		listeners = append(listeners, ln)
		addrs = append(addrs, ln.Addr().String())
		servers = append(servers, &http.Server{
			Handler:           l.Handler,
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		})
	}
	served := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { served <- srv.ServeTLS(listeners[i], "", "") }()
	}
	if ready != nil {
		ready(addrs)
	}

	var serveErr error
	select {
	case err := <-served:
		serveErr = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil && serveErr == nil {
			serveErr = fmt.Errorf("shut down: %w", err)
		}
	}
	if serveErr != nil {
		return serveErr
	}
	for range servers {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	return nil
}

// AzuriteTransport reaches Azurite: it trusts the system roots (SSL_CERT_FILE included)
// and certFile, the local stack's certificate, which Azurite serves too. It keeps as many
// idle connections as the handler keeps to storage: with Go's default of 2 per host a
// proxy would open a connection per request under load and skew what it measures.
func AzuriteTransport(certFile string) (*http.Transport, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read certificate: no PEM certificate in %s", certFile)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	transport.MaxIdleConns = 256
	transport.MaxIdleConnsPerHost = 128
	return transport, nil
}
