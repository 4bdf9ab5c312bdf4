// Command faultproxy serves internal/faultproxy: an HTTPS proxy in front of Azurite's blob,
// queue and table endpoints, one listener each, that injects 503 ServerBusy, lost
// responses and timeouts at the rates given and counts every storage transaction
// (GET /_faultproxy/stats on any listener; POST /_faultproxy/config changes the rates).
// It only parses flags, wires the listeners and stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/activeloopai/azcreds/internal/faultproxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], log, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		log.Error("faultproxy failed", "error", err.Error())
		os.Exit(1)
	}
}

type options struct {
	cert, key string
	addrs     map[faultproxy.Service]*string
	targets   map[faultproxy.Service]*string
	rates     faultproxy.Rates
	hold      time.Duration
	seed      uint64
}

func parseFlags(args []string, output io.Writer) (options, error) {
	o := options{addrs: map[faultproxy.Service]*string{}, targets: map[faultproxy.Service]*string{}}
	fs := flag.NewFlagSet("faultproxy", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&o.cert, "cert", "", "TLS certificate, PEM (required; the local stack's, which Azurite serves too)")
	fs.StringVar(&o.key, "key", "", "TLS private key, PEM (required)")
	for i, svc := range faultproxy.Services {
		o.addrs[svc] = fs.String(string(svc)+"-addr", fmt.Sprintf("127.0.0.1:%d", 11000+i), "listen address (HTTPS) for "+string(svc))
		o.targets[svc] = fs.String("azurite-"+string(svc), "", "Azurite's "+string(svc)+" endpoint without account, e.g. https://127.0.0.1:1000"+fmt.Sprint(i)+"; empty: no "+string(svc)+" listener")
	}
	fs.Float64Var(&o.rates.Busy, "busy", 0, "chance (0-1) of 503 ServerBusy before forwarding")
	fs.Float64Var(&o.rates.Lost, "lost", 0, "chance (0-1) of forwarding, then losing the answer (503 or a dropped connection)")
	fs.Float64Var(&o.rates.Timeout, "timeout", 0, "chance (0-1) of holding the request for -hold, then dropping the connection")
	fs.DurationVar(&o.hold, "hold", faultproxy.DefaultHold, "how long a timeout fault holds a request")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the fault decisions")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.cert == "" || o.key == "" {
		return options{}, errors.New("-cert and -key are required: the storage SDKs reach Azurite over HTTPS")
	}
	return o, nil
}

// run serves until ctx is done, then shuts down gracefully. ready, when set, receives the
// listening address of each service once they all accept connections.
func run(ctx context.Context, args []string, log *slog.Logger, ready func(map[faultproxy.Service]string)) error {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(o.cert, o.key)
	if err != nil {
		return fmt.Errorf("load TLS key pair: %w", err)
	}
	transport, err := azuriteTransport(o.cert)
	if err != nil {
		return err
	}
	cfg := faultproxy.Config{Targets: map[faultproxy.Service]string{}, Transport: transport, Rates: o.rates,
		Hold: o.hold, Seed: o.seed, Logger: log}
	for svc, target := range o.targets {
		if *target != "" {
			cfg.Targets[svc] = *target
		}
	}
	p, err := faultproxy.New(cfg)
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}

	// Listen on every address before serving any, so that a taken port fails the start.
	var servers []*http.Server
	var listeners []net.Listener
	addrs := map[faultproxy.Service]string{}
	for _, svc := range faultproxy.Services {
		if _, ok := cfg.Targets[svc]; !ok {
			continue
		}
		ln, err := net.Listen("tcp", *o.addrs[svc])
		if err != nil {
			for _, prev := range listeners {
				prev.Close()
			}
			return fmt.Errorf("listen (%s): %w", svc, err)
		}
		listeners = append(listeners, ln)
		addrs[svc] = ln.Addr().String()
		servers = append(servers, &http.Server{
			Handler:           p.Handler(svc),
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		})
		log.Info("faultproxy listening", "service", string(svc), "url", "https://"+addrs[svc], "azurite", cfg.Targets[svc])
	}
	served := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { served <- srv.ServeTLS(listeners[i], "", "") }()
	}
	log.Info("faultproxy rates", "busy", o.rates.Busy, "lost", o.rates.Lost, "timeout", o.rates.Timeout, "hold", o.hold.String(), "seed", o.seed)
	if ready != nil {
		ready(addrs)
	}

	var serveErr error
	select {
	case err := <-served:
		serveErr = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil && serveErr == nil {
			serveErr = fmt.Errorf("shut down: %w", err)
		}
	}
	return serveErr
}

// azuriteTransport reaches Azurite, trusting the system roots (SSL_CERT_FILE included)
// and the local stack's certificate.
func azuriteTransport(certFile string) (*http.Transport, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	roots.AppendCertsFromPEM(pem)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	// As many idle connections as the handler keeps to storage: with Go's default of 2 per
	// host, the proxy itself would open a connection per request under load and skew what
	// it measures.
	transport.MaxIdleConns = 256
	transport.MaxIdleConnsPerHost = 128
	return transport, nil
}
