package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
	"github.com/activeloopai/azcreds/internal/dev/loadtest"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// tokenEnv carries the API token to `loadtest onboard`, so it never shows in a process
// listing.
const tokenEnv = "AZCREDS_LOADTEST_TOKEN"

const onboardUsage = `usage: loadtest onboard -api URL -org ORG -control URL -tenant ID -subscription ID
                [-resource-group RG] [-account ACCOUNT] [-n 1000] [-c 16] [-poll 1s]
                [-pid PID] [-storage-stats URL] [-cacert PEM] [-steady-c 64] [-steady-d 60s] [-json]

Scenario 1: onboards -n credentials at once against the local stack (the handler's API
and the stand-in's control endpoints, both loopback): creates them, installs each service
principal and grants its role as the customer, submits tenant and storage, and follows
them to verified. Prints the time until all are verified, the create-to-verified
distribution, the handler's CPU time and peak RSS (-pid), and the storage transactions
per onboarding (-storage-stats, a fault proxy's stats URL).
Scenario 2 (unless -steady-d 0): POST /creds and GET credential on one of the verified
credentials, -steady-c connections for -steady-d each.

The API token is read from $` + tokenEnv + `.

`

type onboardOptions struct {
	cfg                  loadtest.OnboardingConfig
	cacert, storageStats string
	pid                  int
	steadyC              int
	steadyD              time.Duration
	json                 bool
}

func parseOnboardFlags(args []string, output io.Writer, getenv func(string) string) (onboardOptions, error) {
	var o onboardOptions
	fs := flag.NewFlagSet("loadtest onboard", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), onboardUsage)
		fs.PrintDefaults()
	}
	c := &o.cfg
	fs.StringVar(&c.APIURL, "api", "", "the handler's base URL, loopback (required)")
	fs.StringVar(&c.Org, "org", "", "organization the credentials are made in; the token must cover it (required)")
	fs.StringVar(&c.ControlURL, "control", "", "the stand-in's control base URL, e.g. https://127.0.0.1:7443/control (required)")
	fs.StringVar(&c.TenantID, "tenant", "", "customer tenant the service principals are installed in (required)")
	fs.StringVar(&c.SubscriptionID, "subscription", "", "subscription of the customer storage account (required)")
	fs.StringVar(&c.ResourceGroup, "resource-group", "lake-rg", "resource group of the customer storage account")
	fs.StringVar(&c.Account, "account", "custacct1", "customer storage account, registered with the stand-in")
	fs.IntVar(&c.Credentials, "n", 1000, fmt.Sprintf("onboardings at once (at most %d)", loadtest.OnboardingLimit))
	fs.IntVar(&c.Concurrency, "c", 16, "client requests in flight")
	fs.DurationVar(&c.Poll, "poll", time.Second, "how often the credential list is read")
	fs.DurationVar(&c.Timeout, "timeout", loadtest.DefaultOnboardingTimeout, "bound of the whole onboarding run")
	fs.IntVar(&o.pid, "pid", 0, "the handler's process id, for its CPU time and peak RSS (0: not measured)")
	fs.StringVar(&o.storageStats, "storage-stats", "", "stats URL of the fault proxy in front of the handler's storage (empty: not counted)")
	fs.StringVar(&o.cacert, "cacert", "", "PEM file of a CA to trust for https URLs, besides the system roots")
	fs.IntVar(&o.steadyC, "steady-c", 64, "connections of scenario 2")
	fs.DurationVar(&o.steadyD, "steady-d", 60*time.Second, "duration of each scenario 2 run (0 skips scenario 2)")
	fs.BoolVar(&o.json, "json", false, "print the figures as JSON on stdout (the report goes to stderr)")
	if err := fs.Parse(args); err != nil {
		return onboardOptions{}, err
	}
	if fs.NArg() > 0 {
		return onboardOptions{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.Token = getenv(tokenEnv)
	switch {
	case c.APIURL == "" || c.Org == "" || c.ControlURL == "" || c.TenantID == "" || c.SubscriptionID == "":
		return onboardOptions{}, errors.New("-api, -org, -control, -tenant and -subscription are required")
	case c.Token == "":
		return onboardOptions{}, fmt.Errorf("$%s must hold an API token for -org", tokenEnv)
	case o.steadyD < 0 || o.steadyD > loadtest.DurationLimit || o.steadyC < 1 || o.steadyC > loadtest.ConcurrencyLimit:
		return onboardOptions{}, errors.New("-steady-d must be within 0 and 10m, -steady-c within 1 and 4096")
	case o.pid < 0:
		return onboardOptions{}, errors.New("-pid must not be negative")
	}
	return o, nil
}

// onboardReport is everything `loadtest onboard` measured.
type onboardReport struct {
	Onboarding loadtest.OnboardingResult `json:"onboarding"`
	// HandlerCPU is the handler's CPU time over the onboarding run, and PeakRSS its
	// resident high-water mark at the end of it (zero without -pid).
	HandlerCPU     time.Duration `json:"handler_cpu_ns"`
	HandlerPeakRSS int64         `json:"handler_peak_rss_bytes"`
	// Storage is the storage transactions of the run (nil without -storage-stats).
	Storage *faultproxy.Stats `json:"storage,omitempty"`
	Steady  []steadyRun       `json:"steady,omitempty"`
}

type steadyRun struct {
	Name       string          `json:"name"`
	Result     loadtest.Result `json:"result"`
	HandlerCPU time.Duration   `json:"handler_cpu_ns"`
	// Storage is the storage transactions during the run, warm-up included (nil
	// without -storage-stats).
	Storage *faultproxy.Stats `json:"storage,omitempty"`
}

func runOnboard(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOnboardFlags(args, stderr, os.Getenv)
	if err != nil {
		return err
	}
	var base *http.Client
	if o.cacert != "" {
		if base, err = clientTrusting(o.cacert); err != nil {
			return err
		}
	}
	client, err := loadtest.GuardedClient(base, 4)
	if err != nil {
		return err
	}
	o.cfg.Client = base
	o.cfg.Progress = stderr
	out := stdout
	if o.json {
		out = stderr
	}

	var rep onboardReport
	usage := func() loadtest.ProcessUsage {
		if o.pid == 0 {
			return loadtest.ProcessUsage{}
		}
		u, err := loadtest.ReadProcessUsage(o.pid)
		if err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
		}
		return u
	}
	var storageBefore faultproxy.Stats
	if o.storageStats != "" {
		if storageBefore, err = loadtest.StorageStats(ctx, client, o.storageStats); err != nil {
			return err
		}
	}
	before := usage()
	fmt.Fprintf(out, "scenario 1: %d onboardings at once (client concurrency %d)\n", o.cfg.Credentials, o.cfg.Concurrency)
	res, runErr := loadtest.RunOnboarding(ctx, o.cfg)
	after := usage()
	rep.Onboarding = res
	rep.HandlerCPU, rep.HandlerPeakRSS = after.CPU-before.CPU, after.PeakRSS
	if o.storageStats != "" {
		now, err := loadtest.StorageStats(ctx, client, o.storageStats)
		if err != nil {
			return err
		}
		d := now.Sub(storageBefore)
		rep.Storage = &d
	}
	writeOnboarding(out, rep, o.pid != 0)
	if runErr != nil {
		return runErr
	}

	if o.steadyD > 0 {
		if len(res.VerifiedIDs) == 0 {
			return errors.New("scenario 2 needs a verified credential; none was")
		}
		storage := func() (faultproxy.Stats, error) { return loadtest.StorageStats(ctx, client, o.storageStats) }
		if o.storageStats == "" {
			storage = nil
		}
		steady, err := runSteady(ctx, o, client, base, res.VerifiedIDs[0], usage, storage, out)
		rep.Steady = steady
		if err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	if res.Failed > 0 || res.Errors > 0 {
		return fmt.Errorf("%d onboardings failed, %d client errors", res.Failed, res.Errors)
	}
	return nil
}

// runSteady is scenario 2: /creds of a workspace linked to id, then GET id, each with
// steadyC connections for steadyD. guarded makes the set-up calls; Run guards base itself.
func runSteady(ctx context.Context, o onboardOptions, guarded, base *http.Client, id string,
	usage func() loadtest.ProcessUsage, storage func() (faultproxy.Stats, error), out io.Writer) ([]steadyRun, error) {
	api := &walkthrough.API{BaseURL: o.cfg.APIURL, Org: o.cfg.Org, Token: o.cfg.Token, HTTP: guarded}
	ws := fmt.Sprintf("loadws%d", time.Now().UnixMilli()%1_000_000)
	if err := api.RegisterWorkspace(ctx, ws, id); err != nil {
		return nil, fmt.Errorf("register workspace: %w", err)
	}
	header := http.Header{"Authorization": {"Bearer " + o.cfg.Token}, "X-Activeloop-Org-Id": {o.cfg.Org}}
	runs := []struct{ name, method, url string }{
		{"POST /api/org/{ws}/ds/{table}/creds", http.MethodPost, o.cfg.APIURL + "/api/org/" + ws + "/ds/events/creds"},
		{"GET /organizations/{org}/credentials/{id}", http.MethodGet, o.cfg.APIURL + "/organizations/" + o.cfg.Org + "/credentials/" + id},
	}
	fmt.Fprintf(out, "\nscenario 2: %d connections for %s each, after a 2 s warm-up\n", o.steadyC, o.steadyD)
	fmt.Fprintf(out, "%-42s %s %12s %14s\n", "", loadtest.TableHeader(), "handler_cpu_s", "storage_per_req")
	var done []steadyRun
	for _, r := range runs {
		var storageBefore faultproxy.Stats
		var err error
		if storage != nil {
			if storageBefore, err = storage(); err != nil {
				return done, err
			}
		}
		before := usage()
		res, err := loadtest.Run(ctx, loadtest.Config{Method: r.method, URL: r.url, Header: header, Client: base,
			Concurrency: o.steadyC, Duration: o.steadyD, Warmup: 2 * time.Second})
		cpu := usage().CPU - before.CPU
		if err != nil {
			return done, fmt.Errorf("%s: %w", r.name, err)
		}
		run := steadyRun{Name: r.name, Result: res, HandlerCPU: cpu}
		perRequest := "-"
		if storage != nil {
			now, err := storage()
			if err != nil {
				return done, err
			}
			d := now.Sub(storageBefore)
			run.Storage = &d
			if n := res.Requests + res.WarmupRequests; n > 0 {
				perRequest = fmt.Sprintf("%.3f", float64(d.Requests())/float64(n))
			}
		}
		fmt.Fprintf(out, "%-42s %s %12.1f %14s\n", r.name, res.TableRow(), cpu.Seconds(), perRequest)
		if res.Errors > 0 {
			fmt.Fprintln(out, errorDetail(res))
		}
		done = append(done, run)
	}
	return done, nil
}

func writeOnboarding(w io.Writer, rep onboardReport, measured bool) {
	r := rep.Onboarding
	fmt.Fprintf(w, "  verified %d of %d, failed %d, client errors %d", r.Verified, r.Credentials, r.Failed, r.Errors)
	if r.ErrorSample != "" {
		fmt.Fprintf(w, " (first: %s)", r.ErrorSample)
	}
	fmt.Fprintln(w)
	if r.Failed > 0 {
		fmt.Fprintf(w, "  final states:%s\n", formatStates(r.FinalStates))
	}
	fmt.Fprintf(w, "  credential list read %d times", r.Lists)
	if r.ListMisses > 0 {
		fmt.Fprintf(w, "; %d of them lacked credentials that exist (%d missing in all)", r.ListMisses, r.ListMissed)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  every tenant submitted after %s; every credential verified after %s\n",
		r.Submitted.Round(100*time.Millisecond), r.AllVerified.Round(100*time.Millisecond))
	fmt.Fprintf(w, "  create -> verified       %s\n", r.ToVerified)
	fmt.Fprintf(w, "  tenant -> sp_verified    %s\n", r.SPFound)
	fmt.Fprintf(w, "  storage -> verified      %s\n", r.Probe)
	if measured {
		per := 0.0
		if r.Credentials > 0 {
			per = rep.HandlerCPU.Seconds() / float64(r.Credentials) * 1000
		}
		fmt.Fprintf(w, "  handler CPU %.1f s (%.1f ms per onboarding), peak RSS %.1f MiB\n",
			rep.HandlerCPU.Seconds(), per, float64(rep.HandlerPeakRSS)/(1<<20))
	}
	if s := rep.Storage; s != nil && r.Credentials > 0 {
		n := float64(r.Credentials)
		fmt.Fprintf(w, "  storage transactions %d, %.1f per onboarding\n", s.Requests(), float64(s.Requests())/n)
		for _, svc := range faultproxy.Services {
			st, ok := s.Services[svc]
			if !ok || st.Requests == 0 {
				continue
			}
			fmt.Fprintf(w, "    %-6s %7.2f per onboarding:", svc, float64(st.Requests)/n)
			ops := slices.Sorted(maps.Keys(st.Operations))
			slices.SortStableFunc(ops, func(a, b string) int { return int(st.Operations[b] - st.Operations[a]) })
			var parts []string
			for _, op := range ops {
				parts = append(parts, fmt.Sprintf("%s %.2f", op, float64(st.Operations[op])/n))
			}
			fmt.Fprintln(w, " "+strings.Join(parts, ", "))
		}
	}
}

func formatStates(m map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return b.String()
}
