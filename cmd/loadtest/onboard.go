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
                [-resource-group RG] [-account ACCOUNT] [-n 1000] [-c 16] [-poll 3s]
                [-pid PID] [-storage-stats URL] [-cacert PEM] [-steady-c 64] [-creds-c 1,16,64]
                [-steady-d 60s] [-profile-url URL -profile-out FILE] [-json]

Scenario 1: onboards -n credentials at once against the local stack (the handler's API
and the stand-in's control endpoints, both loopback): creates them, installs each service
principal and grants its role as the customer, submits the tenant; each onboarding's
wizard then reads its credential's detail every -poll while a window is open, submits the
storage form when it shows sp_verified, and stops at verified or a failure. Prints the
time until all are verified, the create-to-verified distribution, the handler's CPU time
and peak RSS (-pid), and the storage transactions per onboarding (-storage-stats, a fault
proxy's stats URL).
Scenario 2 (unless -steady-d 0): on one of the verified credentials, POST /creds at each
of the -creds-c connection counts (default: -steady-c), then GET credential at -steady-c
connections, -steady-d each, with the handler's CPU and the storage transactions per
request. With -profile-url (the handler's /debug/pprof/profile, AZCREDS_LOCAL_PPROF_ADDR),
one more /creds run at the highest count records the handler's CPU profile into
-profile-out.

The API token is read from $` + tokenEnv + `.

`

type onboardOptions struct {
	cfg                  loadtest.OnboardingConfig
	cacert, storageStats string
	pid                  int
	steadyC              int
	credsC               []int
	steadyD              time.Duration
	profileURL           string
	profileOut           string
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
	fs.DurationVar(&c.Poll, "poll", loadtest.DefaultWizardPoll, "how often each wizard reads its credential's detail while a window is open")
	fs.DurationVar(&c.Timeout, "timeout", loadtest.DefaultOnboardingTimeout, "bound of the whole onboarding run")
	fs.IntVar(&o.pid, "pid", 0, "the handler's process id, for its CPU time and peak RSS (0: not measured)")
	fs.StringVar(&o.storageStats, "storage-stats", "", "stats URL of the fault proxy in front of the handler's storage (empty: not counted)")
	fs.StringVar(&o.cacert, "cacert", "", "PEM file of a CA to trust for https URLs, besides the system roots")
	fs.IntVar(&o.steadyC, "steady-c", 64, "connections of scenario 2's GET credential run (and of /creds without -creds-c)")
	credsC := fs.String("creds-c", "", "connection counts of scenario 2's /creds runs, comma-separated, run in turn (default: -steady-c)")
	fs.DurationVar(&o.steadyD, "steady-d", 60*time.Second, "duration of each scenario 2 run (0 skips scenario 2)")
	fs.StringVar(&o.profileURL, "profile-url", "", "the handler's CPU profile URL (http://127.0.0.1:PORT/debug/pprof/profile), loopback; with -profile-out")
	fs.StringVar(&o.profileOut, "profile-out", "", "file for the CPU profile of the profiled /creds run")
	fs.BoolVar(&o.json, "json", false, "print the figures as JSON on stdout (the report goes to stderr)")
	if err := fs.Parse(args); err != nil {
		return onboardOptions{}, err
	}
	if fs.NArg() > 0 {
		return onboardOptions{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.Token = getenv(tokenEnv)
	o.credsC = []int{o.steadyC}
	if *credsC != "" {
		levels, err := loadtest.ParseLevels(*credsC)
		if err != nil {
			return onboardOptions{}, fmt.Errorf("-creds-c: %w", err)
		}
		o.credsC = levels
	}
	switch {
	case c.APIURL == "" || c.Org == "" || c.ControlURL == "" || c.TenantID == "" || c.SubscriptionID == "":
		return onboardOptions{}, errors.New("-api, -org, -control, -tenant and -subscription are required")
	case c.Token == "":
		return onboardOptions{}, fmt.Errorf("$%s must hold an API token for -org", tokenEnv)
	case o.steadyD < 0 || o.steadyD > loadtest.DurationLimit || o.steadyC < 1 || o.steadyC > loadtest.ConcurrencyLimit:
		return onboardOptions{}, errors.New("-steady-d must be within 0 and 10m, -steady-c within 1 and 4096")
	case o.pid < 0:
		return onboardOptions{}, errors.New("-pid must not be negative")
	case (o.profileURL == "") != (o.profileOut == ""):
		return onboardOptions{}, errors.New("-profile-url and -profile-out go together")
	case o.profileURL != "" && o.steadyD < time.Second:
		return onboardOptions{}, errors.New("-profile-url needs scenario 2 (-steady-d of 1s or more)")
	}
	return o, nil
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

	m := &meter{pid: o.pid, client: client, statsURL: o.storageStats, stderr: stderr}
	var rep loadtest.Report
	before, err := m.read(ctx)
	if err != nil {
		return err
	}
	// The onboardings' figures end when the last wizard stops, before the run reads
	// events and the list for figures of its own.
	var after reading
	var afterErr error
	o.cfg.Finished = func() { after, afterErr = m.read(ctx) }
	fmt.Fprintf(out, "scenario 1: %d onboardings at once (client concurrency %d)\n", o.cfg.Credentials, o.cfg.Concurrency)
	res, runErr := loadtest.RunOnboarding(ctx, o.cfg)
	if runErr == nil && afterErr != nil {
		return afterErr
	}
	rep.Onboarding = res
	rep.HandlerCPU, rep.HandlerPeakRSS = after.usage.CPU-before.usage.CPU, after.usage.PeakRSS
	rep.Storage = after.storageSince(before)
	writeOnboarding(out, rep, o.pid != 0)
	if runErr != nil {
		return runErr
	}

	if o.steadyD > 0 {
		if len(res.VerifiedIDs) == 0 {
			return errors.New("scenario 2 needs a verified credential; none was")
		}
		err := runSteady(ctx, o, client, base, res.VerifiedIDs[0], m, &rep, out)
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

// meter reads the handler's CPU (with a pid) and the storage counters (with a fault
// proxy's stats URL).
type meter struct {
	pid      int
	client   *http.Client
	statsURL string
	stderr   io.Writer
}

// reading is the meter at one moment.
type reading struct {
	usage   loadtest.ProcessUsage
	storage *faultproxy.Stats
}

func (m *meter) read(ctx context.Context) (reading, error) {
	var r reading
	if m.pid != 0 {
		u, err := loadtest.ReadProcessUsage(m.pid)
		if err != nil {
			fmt.Fprintln(m.stderr, "loadtest:", err)
		}
		r.usage = u
	}
	if m.statsURL != "" {
		s, err := loadtest.StorageStats(ctx, m.client, m.statsURL)
		if err != nil {
			return r, err
		}
		r.storage = &s
	}
	return r, nil
}

// storageSince is the storage transactions from before to r; nil when not counted.
func (r reading) storageSince(before reading) *faultproxy.Stats {
	if r.storage == nil || before.storage == nil {
		return nil
	}
	d := r.storage.Sub(*before.storage)
	return &d
}

// spec is one run of scenario 2: its name in the report, the request, the connections.
type spec struct {
	name, method, url string
	c                 int
}

// runSteady is scenario 2: /creds of a workspace linked to id at each -creds-c level, then
// GET id at -steady-c, each for -steady-d; then, with -profile-url, one more /creds run at
// the highest level while the handler records a CPU profile. guarded makes the set-up
// calls; Run guards base itself.
func runSteady(ctx context.Context, o onboardOptions, guarded, base *http.Client, id string, m *meter,
	rep *loadtest.Report, out io.Writer) error {
	api := &walkthrough.API{BaseURL: o.cfg.APIURL, Org: o.cfg.Org, Token: o.cfg.Token, HTTP: guarded}
	ws := fmt.Sprintf("loadws%d", time.Now().UnixMilli()%1_000_000)
	if err := api.RegisterWorkspace(ctx, ws, id); err != nil {
		return fmt.Errorf("register workspace: %w", err)
	}
	header := http.Header{"Authorization": {"Bearer " + o.cfg.Token}, "X-Activeloop-Org-Id": {o.cfg.Org}}
	credsURL := o.cfg.APIURL + "/api/org/" + ws + "/ds/events/creds"
	var runs []spec
	for _, c := range o.credsC {
		runs = append(runs, spec{loadtest.CredsRun, http.MethodPost, credsURL, c})
	}
	runs = append(runs, spec{loadtest.DetailRun, http.MethodGet, o.cfg.APIURL + "/organizations/" + o.cfg.Org + "/credentials/" + id, o.steadyC})
	fmt.Fprintf(out, "\nscenario 2: %s each, after a 2 s warm-up\n", o.steadyD)
	fmt.Fprintf(out, "%-42s %s %12s %12s %14s\n", "", loadtest.TableHeader(), "handler_cpu_s", "cpu_per_req", "storage_per_req")
	steady := func(r spec, warmup time.Duration) (loadtest.SteadyRun, error) {
		before, err := m.read(ctx)
		if err != nil {
			return loadtest.SteadyRun{}, err
		}
		res, err := loadtest.Run(ctx, loadtest.Config{Method: r.method, URL: r.url, Header: header, Client: base,
			Concurrency: r.c, Duration: o.steadyD, Warmup: warmup})
		if err != nil {
			return loadtest.SteadyRun{}, fmt.Errorf("%s: %w", r.name, err)
		}
		after, err := m.read(ctx)
		if err != nil {
			return loadtest.SteadyRun{}, err
		}
		run := loadtest.SteadyRun{Name: r.name, Result: res, HandlerCPU: after.usage.CPU - before.usage.CPU,
			Storage: after.storageSince(before)}
		writeSteady(out, run)
		return run, nil
	}
	for _, r := range runs {
		run, err := steady(r, 2*time.Second)
		if err != nil {
			return err
		}
		rep.AddSteady(run)
	}
	if o.profileURL == "" {
		return nil
	}
	return profiled(ctx, o, base, spec{loadtest.CredsRun, http.MethodPost, credsURL, slices.Max(o.credsC)}, steady, rep, out)
}

// profiled runs /creds once more while the handler records a CPU profile of the run's
// length into -profile-out. The run has no warm-up of its own: the runs before it warmed
// every cache.
func profiled(ctx context.Context, o onboardOptions, base *http.Client, r spec,
	steady func(spec, time.Duration) (loadtest.SteadyRun, error), rep *loadtest.Report, out io.Writer) error {
	client, err := loadtest.GuardedClient(base, 1)
	if err != nil {
		return err
	}
	seconds := int((o.steadyD + time.Second - 1) / time.Second)
	client.Timeout = time.Duration(seconds)*time.Second + 30*time.Second
	f, err := os.Create(o.profileOut)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(out, "profiled (the handler records a CPU profile of %d s into %s):\n", seconds, o.profileOut)
	errc := make(chan error, 1)
	go func() { errc <- loadtest.FetchProfile(ctx, client, o.profileURL, seconds, f) }()
	run, runErr := steady(r, 0)
	if err := <-errc; err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	if err := f.Close(); err != nil {
		return err
	}
	rep.SetProfiled(run, o.profileOut)
	return nil
}

// writeSteady prints a run's row: the latencies, the handler's CPU over the run and per
// request, and the storage transactions per request.
func writeSteady(out io.Writer, run loadtest.SteadyRun) {
	perCPU, perStorage := "-", "-"
	if d, ok := run.CPUPerRequest(); ok {
		perCPU = fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	}
	if t, ok := run.TransactionsPerRequest(); ok {
		perStorage = fmt.Sprintf("%.3f", t)
	}
	fmt.Fprintf(out, "%-42s %s %12.1f %12s %14s\n", run.Name, run.Result.TableRow(), run.HandlerCPU.Seconds(), perCPU, perStorage)
	if run.Result.Errors > 0 {
		fmt.Fprintln(out, errorDetail(run.Result))
	}
}

func writeOnboarding(w io.Writer, rep loadtest.Report, measured bool) {
	r := rep.Onboarding
	fmt.Fprintf(w, "  verified %d of %d, failed %d, client errors %d", r.Verified, r.Credentials, r.Failed, r.Errors)
	if r.ErrorSample != "" {
		fmt.Fprintf(w, " (first: %s)", r.ErrorSample)
	}
	fmt.Fprintln(w)
	if r.Failed > 0 {
		fmt.Fprintf(w, "  final states:%s\n", formatStates(r.FinalStates))
	}
	fmt.Fprintf(w, "  credential detail read %d times by the wizards; the list, read at the end,", r.DetailReads)
	if r.ListMissed > 0 {
		fmt.Fprintf(w, " lacked %d credentials that exist\n", r.ListMissed)
	} else {
		fmt.Fprintln(w, " held every one")
	}
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
