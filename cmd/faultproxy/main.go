// Command faultproxy serves internal/dev/faultproxy: an HTTPS proxy in front of Azurite's blob,
// queue and table endpoints, one listener each, that injects 503 ServerBusy, lost
// responses and timeouts at the rates given and counts every storage transaction
// (GET /_faultproxy/stats on any listener; POST /_faultproxy/config changes the rates).
// It only parses flags, wires the listeners and stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
	"github.com/activeloopai/azcreds/internal/dev/tlsserve"
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
	transport, err := tlsserve.AzuriteTransport(o.cert)
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

	var listeners []tlsserve.Listener
	var services []faultproxy.Service
	for _, svc := range faultproxy.Services {
		if _, ok := cfg.Targets[svc]; ok {
			listeners = append(listeners, tlsserve.Listener{Name: string(svc), Addr: *o.addrs[svc], Handler: p.Handler(svc)})
			services = append(services, svc)
		}
	}
	return tlsserve.Serve(ctx, log, cert, listeners, func(bound []string) {
		addrs := map[faultproxy.Service]string{}
		for i, svc := range services {
			addrs[svc] = bound[i]
			log.Info("faultproxy listening", "service", string(svc), "url", "https://"+bound[i], "azurite", cfg.Targets[svc])
		}
		log.Info("faultproxy rates", "busy", o.rates.Busy, "lost", o.rates.Lost, "timeout", o.rates.Timeout, "hold", o.hold.String(), "seed", o.seed)
		if ready != nil {
			ready(addrs)
		}
	})
}
