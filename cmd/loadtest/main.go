// Command loadtest measures an HTTP server on this machine (package internal/dev/loadtest) at
// one or more concurrency levels, each after the same warm-up, and prints a line per level.
// It refuses any target that is not loopback and every run is bounded in time and count.
//
//	loadtest -url http://127.0.0.1:7071/api/health -c 1,16,64 -d 10s
//	loadtest -url http://localhost:7071/api/credentials -H 'Authorization: Bearer ...' -json > out.json
//
// `loadtest onboard` runs the scenarios of `make load` against a local stack: many
// onboardings at once, then /creds and GET credential under steady load (onboard.go).
//
// It only parses flags, runs the levels in turn and prints; Ctrl-C stops the run.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

type options struct {
	url, method, body, cacert string
	header                    http.Header
	levels                    []int
	duration, warmup, timeout time.Duration
	requests                  int
	json                      bool
}

const usage = `usage: loadtest -url URL [-method GET] [-H 'Name: value' ...] [-body JSON]
                [-c 1,16,64] [-d 10s] [-n 1000000] [-warmup 2s] [-timeout 10s] [-cacert PEM] [-json]
       loadtest onboard ...   (the scenarios of make load; loadtest onboard -h)

Sends closed-loop requests to URL, which must be loopback (127.0.0.0/8, ::1, localhost),
at each concurrency level in turn and prints one line per level: c, requests, rps,
p50/p90/p99/max latency in ms (exact), errors (non-2xx and transport). A level stops at
-d or -n, whichever comes first; the warm-up before it is not counted.

`

func parseFlags(args []string, output io.Writer) (options, error) {
	var o options
	var levels string
	var headers headerFlag
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.url, "url", "", "target URL, on a loopback address (required)")
	fs.StringVar(&o.method, "method", http.MethodGet, "request method (POST when -body is given and -method is not)")
	fs.Var(&headers, "H", "request header 'Name: value', repeatable (Host sets the Host header)")
	fs.StringVar(&o.body, "body", "", "request body, sent as application/json unless -H sets Content-Type")
	fs.StringVar(&levels, "c", "1", "concurrency levels, comma-separated, run in turn")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "measured duration per level (at most "+loadtest.DurationLimit.String()+")")
	fs.IntVar(&o.requests, "n", loadtest.DefaultMaxRequests, "at most this many measured requests per level")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each level, not measured (0 for none)")
	fs.DurationVar(&o.timeout, "timeout", loadtest.DefaultTimeout, "timeout of one request, body included")
	fs.StringVar(&o.cacert, "cacert", "", "PEM file of a CA to trust for an https URL, besides the system roots")
	fs.BoolVar(&o.json, "json", false, "print the results as a JSON array on stdout (the table goes to stderr)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.url == "" {
		return options{}, errors.New("-url is required")
	}
	var err error
	if o.levels, err = parseLevels(levels); err != nil {
		return options{}, err
	}
	if o.header, err = parseHeaders(headers); err != nil {
		return options{}, err
	}
	if o.duration <= 0 || o.requests <= 0 || o.warmup < 0 || o.timeout <= 0 {
		return options{}, errors.New("-d, -n and -timeout must be positive, -warmup not negative")
	}
	methodSet := false
	fs.Visit(func(f *flag.Flag) { methodSet = methodSet || f.Name == "method" })
	if o.body != "" {
		if !methodSet {
			o.method = http.MethodPost
		}
		if o.header.Get("Content-Type") == "" {
			o.header.Set("Content-Type", "application/json")
		}
	}
	return o, nil
}

// parseLevels reads -c's "1,16,64".
func parseLevels(s string) ([]int, error) {
	levels, err := loadtest.ParseLevels(s)
	if err != nil {
		return nil, fmt.Errorf("-c %w", err)
	}
	return levels, nil
}

// headerFlag collects each -H as given; parseHeaders reads them after flag parsing, so an
// error never repeats the value, which may be a token (the flag package would quote it).
type headerFlag []string

func (h *headerFlag) String() string { return "" }

func (h *headerFlag) Set(v string) error {
	*h = append(*h, v)
	return nil
}

// parseHeaders reads 'Name: value' lines.
func parseHeaders(lines []string) (http.Header, error) {
	h := http.Header{}
	for i, line := range lines {
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("-H number %d: want 'Name: value'", i+1)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, nil
}

// run measures every level in turn and prints a row as each finishes.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "onboard" {
		return runOnboard(ctx, args[1:], stdout, stderr)
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg := loadtest.Config{
		Method:      o.method,
		URL:         o.url,
		Header:      o.header,
		Duration:    o.duration,
		MaxRequests: o.requests,
		Warmup:      o.warmup,
		Timeout:     o.timeout,
	}
	if o.body != "" {
		cfg.Body = []byte(o.body)
	}
	if o.cacert != "" {
		if cfg.Client, err = clientTrusting(o.cacert); err != nil {
			return err
		}
	}

	// Refuse a remote target before printing anything; Run checks again, and every dial.
	u, err := url.Parse(o.url)
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	if err := loadtest.CheckTarget(ctx, u); err != nil {
		return fmt.Errorf("-url: %w", err)
	}

	table := stdout
	if o.json {
		table = stderr
	}
	fmt.Fprintln(table, loadtest.TableHeader())
	var results []loadtest.Result
	for _, c := range o.levels {
		cfg.Concurrency = c
		res, err := loadtest.Run(ctx, cfg)
		if err != nil {
			if res.Requests > 0 {
				fmt.Fprintln(table, res.TableRow(), "(partial)")
			}
			return fmt.Errorf("c=%d: %w", c, err)
		}
		fmt.Fprintln(table, res.TableRow())
		if res.Errors > 0 {
			fmt.Fprintln(stderr, errorDetail(res))
		}
		results = append(results, res)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	return nil
}

// errorDetail says what the errors of a level were: statuses and a transport error.
func errorDetail(r loadtest.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  c=%d errors:", r.Concurrency)
	for _, code := range slices.Sorted(maps.Keys(r.StatusCounts)) {
		if code < 200 || code > 299 {
			fmt.Fprintf(&b, " %d×%d", r.StatusCounts[code], code)
		}
	}
	if r.TransportErrors > 0 {
		fmt.Fprintf(&b, " %d transport (%s)", r.TransportErrors, r.ErrorSample)
	}
	return b.String()
}

// clientTrusting returns a client that trusts the system roots and the CAs in pemFile,
// for a loopback server with a local certificate.
func clientTrusting(pemFile string) (*http.Client, error) {
	pem, err := os.ReadFile(pemFile)
	if err != nil {
		return nil, fmt.Errorf("read -cacert: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-cacert %s: no PEM certificate", pemFile)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 5 * time.Second,
	}}, nil
}
