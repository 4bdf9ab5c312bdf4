package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// Bounds of an onboarding run.
const (
	DefaultOnboardingTimeout = 20 * time.Minute
	OnboardingTimeoutLimit   = time.Hour
	OnboardingLimit          = 10_000
	// DefaultWizardPoll is how often the wizard reads the credential's detail while a
	// window is open.
	DefaultWizardPoll = 3 * time.Second
)

// OnboardingConfig describes a run of many onboardings at once against the local stack:
// the handler's API and the stand-in's control endpoints, both on loopback.
type OnboardingConfig struct {
	// APIURL is the handler's base URL; Org and Token the organization every credential
	// is made in and an API token for it.
	APIURL, Org, Token string
	// ControlURL is the stand-in's control base (https://127.0.0.1:7443/control), which
	// plays the customer.
	ControlURL string
	// Client supplies TLS trust for the stand-in; its Transport must be nil or an
	// *http.Transport. Every dial is checked for loopback, as in Run.
	Client *http.Client

	// Credentials is how many onboardings run at once (default 100).
	Credentials int
	// Concurrency bounds the client's requests in flight in each of its two pools (the
	// creation steps, and the wizards' detail reads and storage forms), so at most twice
	// it (default 16).
	Concurrency int
	// TenantID is the customer tenant the service principals are installed in;
	// SubscriptionID, ResourceGroup and Account name the customer storage account
	// (registered with the stand-in already). Container is created by the run; a fresh
	// name when empty. Each credential has its own prefix in it.
	TenantID, SubscriptionID, ResourceGroup, Account, Container string
	// Poll is how often each onboarding's wizard reads its credential's detail while a
	// window is open (default DefaultWizardPoll), as the wizard does.
	Poll time.Duration
	// Timeout bounds the whole run (default DefaultOnboardingTimeout).
	Timeout time.Duration
	// Progress, when set, receives a line per poll.
	Progress io.Writer
	// Finished, when set, is called once every wizard has stopped, before the run reads
	// the credentials' events and the list for figures of its own: where a caller reads
	// the storage counters and the handler's CPU of the onboardings alone.
	Finished func()
}

// Durations are nearest-rank percentiles of a set of durations.
type Durations struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func durationsOf(ds []time.Duration) Durations {
	slices.Sort(ds)
	return Durations{N: len(ds), P50: percentile(ds, 50), P90: percentile(ds, 90), P99: percentile(ds, 99), Max: percentile(ds, 100)}
}

func (d Durations) String() string {
	r := func(x time.Duration) time.Duration { return x.Round(10 * time.Millisecond) }
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s", d.N, r(d.P50), r(d.P90), r(d.P99), r(d.Max))
}

// OnboardingResult is what an onboarding run measured.
type OnboardingResult struct {
	Credentials int `json:"credentials"`
	// Verified reached verified; Failed ended anywhere else (or never started).
	Verified int `json:"verified"`
	Failed   int `json:"failed"`
	// Errors are client calls that failed (API or control), each failing its onboarding.
	Errors      int    `json:"errors"`
	ErrorSample string `json:"error_sample,omitempty"`
	// FinalStates counts the last state seen of every credential that was created.
	FinalStates map[string]int `json:"final_states"`
	// Submitted is from the first create until every tenant was submitted; AllVerified
	// from the first create until the last credential was seen verified.
	Submitted   time.Duration `json:"submitted_ns"`
	AllVerified time.Duration `json:"all_verified_ns"`
	// ToVerified is created_at to verified_at per credential (the server's clock). It
	// includes the client's own steps, as a wizard's: installing the service principal,
	// granting the role, and noticing sp_verified before submitting the storage form.
	ToVerified Durations `json:"to_verified"`
	// SPFound is the tenant submit to sp_verified; Probe is the storage submit to
	// verified (from the credential's events).
	SPFound Durations `json:"sp_found"`
	Probe   Durations `json:"probe"`
	// DetailReads is how many times the wizards read a credential's detail.
	DetailReads int `json:"detail_reads"`
	// Lists is how many times the credential list was read (once, at the end); ListMisses
	// how many of those lacked a credential the run had made and not deleted, ListMissed
	// the credentials missing over all of them. Both are zero for a consistent list.
	Lists      int `json:"lists"`
	ListMisses int `json:"list_misses"`
	ListMissed int `json:"list_missed"`
	// VerifiedIDs are the credentials that reached verified, in creation order.
	VerifiedIDs []string `json:"-"`
}

// onboardingRun is the state of one RunOnboarding.
type onboardingRun struct {
	cfg      OnboardingConfig
	api      *walkthrough.API
	customer *walkthrough.Customer
	client   *http.Client
	// calls bounds the wizards' requests in flight (detail reads and storage forms).
	calls chan struct{}
	// wizards are the onboardings past their tenant step, each reading its detail.
	wizards sync.WaitGroup

	mu       sync.Mutex
	errs     int
	firstErr string
	// last is the last detail read of each credential, verifiedAt when its wizard first
	// saw it verified; reads counts the detail reads.
	last       map[string]summary
	verifiedAt map[string]time.Time
	reads      int
}

func (c OnboardingConfig) normalize() (OnboardingConfig, error) {
	if c.Credentials == 0 {
		c.Credentials = 100
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.Poll == 0 {
		c.Poll = DefaultWizardPoll
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultOnboardingTimeout
	}
	if c.Container == "" {
		c.Container = fmt.Sprintf("load%d", time.Now().UnixNano()%1_000_000_000)
	}
	switch {
	case c.APIURL == "" || c.ControlURL == "" || c.Org == "" || c.Token == "":
		return c, errors.New("onboarding config: API URL, control URL, org and token are required")
	case c.TenantID == "" || c.SubscriptionID == "" || c.ResourceGroup == "" || c.Account == "":
		return c, errors.New("onboarding config: tenant, subscription, resource group and account are required")
	case c.Credentials < 1 || c.Credentials > OnboardingLimit:
		return c, fmt.Errorf("onboarding config: credentials %d outside 1..%d", c.Credentials, OnboardingLimit)
	case c.Concurrency < 1 || c.Concurrency > ConcurrencyLimit:
		return c, fmt.Errorf("onboarding config: concurrency %d outside 1..%d", c.Concurrency, ConcurrencyLimit)
	case c.Poll < 10*time.Millisecond || c.Poll > time.Minute:
		return c, fmt.Errorf("onboarding config: poll %s outside 10ms..1m", c.Poll)
	case c.Timeout < 0 || c.Timeout > OnboardingTimeoutLimit:
		return c, fmt.Errorf("onboarding config: timeout %s outside (0, %s]", c.Timeout, OnboardingTimeoutLimit)
	}
	if c.Client != nil && c.Client.Transport != nil {
		if _, ok := c.Client.Transport.(*http.Transport); !ok {
			return c, fmt.Errorf("onboarding config: client transport is %T, want *http.Transport", c.Client.Transport)
		}
	}
	return c, nil
}

// GuardedClient returns a client like base (nil: a default one) whose every dial is
// checked for loopback, with an idle pool of conns connections. Refusals wrap
// ErrNotLoopback.
func GuardedClient(base *http.Client, conns int) (*http.Client, error) {
	var t *http.Transport
	out := &http.Client{Timeout: DefaultTimeout}
	if base != nil {
		t, _ = base.Transport.(*http.Transport)
		if base.Transport != nil && t == nil {
			return nil, fmt.Errorf("client transport is %T, want *http.Transport", base.Transport)
		}
		if base.Timeout > 0 {
			out.Timeout = base.Timeout
		}
	}
	g := &guard{resolve: systemLookup, refused: func(error) {}}
	tr, err := newTransport(t, conns, g)
	if err != nil {
		return nil, err
	}
	out.Transport = tr
	return out, nil
}

// RunOnboarding creates cfg.Credentials credentials and takes every one through the
// wizard at once: as the customer (through the stand-in's control endpoints) it installs
// each app's service principal and grants Storage Blob Data Contributor on the account,
// submits the tenant; then each onboarding's wizard reads its credential's detail every
// Poll while a window is open, submits the storage form when it shows sp_verified, and
// stops when the credential is verified or has failed. Then it reads their events for the
// per-step times, and the credential list once, to check that it holds them all.
func RunOnboarding(ctx context.Context, cfg OnboardingConfig) (OnboardingResult, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return OnboardingResult{}, err
	}
	for _, raw := range []string{cfg.APIURL, cfg.ControlURL} {
		u, err := url.Parse(raw)
		if err != nil {
			return OnboardingResult{}, fmt.Errorf("onboarding config: %w", err)
		}
		if err := CheckTarget(ctx, u); err != nil {
			return OnboardingResult{}, err
		}
	}
	client, err := GuardedClient(cfg.Client, 2*cfg.Concurrency+2)
	if err != nil {
		return OnboardingResult{}, fmt.Errorf("onboarding config: %w", err)
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	r := &onboardingRun{cfg: cfg, client: client, calls: make(chan struct{}, cfg.Concurrency),
		api:      &walkthrough.API{BaseURL: cfg.APIURL, Org: cfg.Org, Token: cfg.Token, HTTP: client},
		customer: &walkthrough.Customer{ControlURL: cfg.ControlURL, HTTP: client},
		last:     map[string]summary{}, verifiedAt: map[string]time.Time{}}
	if err := r.customer.CreateContainer(ctx, cfg.Account, cfg.Container); err != nil {
		return OnboardingResult{}, fmt.Errorf("create container %s: %w", cfg.Container, err)
	}

	// Each onboarding goes on as soon as its tenant is submitted, as a wizard would: its
	// wizard reads the detail alongside the creation of the others.
	start := time.Now()
	stopProgress := r.progress(start)
	ids := r.startAll(ctx, start)
	submitted := time.Since(start)
	r.wizards.Wait()
	stopProgress()
	if cfg.Finished != nil {
		cfg.Finished()
	}
	res := OnboardingResult{Credentials: cfg.Credentials, Submitted: submitted, FinalStates: map[string]int{}}
	var last time.Time
	var toVerified []time.Duration
	for _, id := range ids {
		if id == "" {
			res.Failed++
			continue
		}
		s := r.last[id]
		res.FinalStates[s.State]++
		if s.State != stateVerified {
			res.Failed++
			continue
		}
		res.Verified++
		res.VerifiedIDs = append(res.VerifiedIDs, id)
		if t := r.verifiedAt[id]; t.After(last) {
			last = t
		}
		if s.VerifiedAt != nil {
			toVerified = append(toVerified, s.VerifiedAt.Sub(s.CreatedAt))
		}
	}
	if !last.IsZero() {
		res.AllVerified = last.Sub(start)
	}
	res.ToVerified = durationsOf(toVerified)
	res.SPFound, res.Probe = r.stepTimes(ctx, res.VerifiedIDs)
	res.Lists, res.ListMisses, res.ListMissed = r.checkList(ctx, ids)
	res.Errors, res.ErrorSample, res.DetailReads = r.errs, r.firstErr, r.reads
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("onboarding run stopped early: %w", err)
	}
	return res, nil
}

func (r *onboardingRun) fail(what string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs++
	if r.firstErr == "" {
		r.firstErr = what + ": " + err.Error()
	}
}

// each runs f(i) for i in [0, n) on cfg.Concurrency workers.
func (r *onboardingRun) each(ctx context.Context, n int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, n) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
}

// startAll creates every credential, installs its service principal, grants its role,
// submits its tenant and starts its wizard. It returns the credential ids by index; ""
// where a step failed.
func (r *onboardingRun) startAll(ctx context.Context, start time.Time) []string {
	cfg := r.cfg
	ids := make([]string, cfg.Credentials)
	scope := walkthrough.AccountScope(cfg.SubscriptionID, cfg.ResourceGroup, cfg.Account)
	run := start.UnixMilli() % 1_000_000
	r.each(ctx, cfg.Credentials, func(i int) {
		name := fmt.Sprintf("load-%d-%05d", run, i)
		c, err := r.api.Create(ctx, name, fmt.Sprintf("az://%s/%s/c%05d", cfg.Account, cfg.Container, i))
		if err != nil {
			r.fail("create", err)
			return
		}
		sp, err := r.customer.InstallServicePrincipal(ctx, cfg.TenantID, c.Azure.AppID)
		if err != nil {
			r.fail("install service principal", err)
			return
		}
		if _, err := r.customer.GrantRole(ctx, sp, walkthrough.RoleContributor, scope); err != nil {
			r.fail("grant role", err)
			return
		}
		if _, err := r.api.SubmitTenant(ctx, c.ID, cfg.TenantID); err != nil {
			r.fail("submit tenant", err)
			return
		}
		ids[i] = c.ID
		r.wizards.Go(func() { r.wizard(ctx, c.ID) })
	})
	return ids
}

// summary is one line of the credential list.
type summary struct {
	ID         string     `json:"id"`
	State      string     `json:"state"`
	CreatedAt  time.Time  `json:"created_at"`
	VerifiedAt *time.Time `json:"verified_at"`
}

// maxReadFailures is how many detail reads in a row may fail before a wizard gives up.
const maxReadFailures = 5

// The states a wizard acts on; any other ends its onboarding.
const (
	stateSPPending     = "sp_pending"
	stateSPVerified    = "sp_verified"
	stateAccessPending = "access_pending"
	stateVerified      = "verified"
)

// wizard plays one onboarding's wizard from its tenant step on: while a window is open it
// reads the credential's detail every Poll; it submits the storage form when the detail
// shows sp_verified, and ends when the credential is verified or has failed: back in
// draft (no service principal found), back in sp_verified after its storage form was
// accepted (a terminal probe outcome), or in any state the wizard does not wait on.
func (r *onboardingRun) wizard(ctx context.Context, id string) {
	submitted := false
	failures := 0
	tick := time.NewTicker(r.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s, err := r.detail(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.fail("read credential", err)
			// A wizard retries a failed read, but not for ever.
			if failures++; failures == maxReadFailures {
				return
			}
			continue
		}
		failures = 0
		switch {
		case s.State == stateVerified:
			r.mu.Lock()
			r.verifiedAt[id] = time.Now()
			r.mu.Unlock()
			return
		case s.State == stateSPVerified && !submitted:
			submitted = true
			if err := r.submitStorage(ctx, id); err != nil {
				r.fail("submit storage", err)
				return
			}
		case s.State == stateSPPending, s.State == stateAccessPending:
		default: // draft, sp_verified after the storage form, or a state not waited on
			return
		}
	}
}

// detail reads the credential as the wizard does, and records what it saw.
func (r *onboardingRun) detail(ctx context.Context, id string) (summary, error) {
	r.calls <- struct{}{}
	defer func() { <-r.calls }()
	var s summary
	err := r.get(ctx, "/organizations/"+url.PathEscape(r.cfg.Org)+"/credentials/"+url.PathEscape(id), &s)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads++
	if err != nil {
		return s, fmt.Errorf("get credential: %w", err)
	}
	r.last[id] = s
	return s, nil
}

func (r *onboardingRun) submitStorage(ctx context.Context, id string) error {
	r.calls <- struct{}{}
	defer func() { <-r.calls }()
	cfg := r.cfg
	_, err := r.api.SubmitStorage(ctx, id, walkthrough.StorageForm{SubscriptionID: cfg.SubscriptionID,
		ResourceGroup: cfg.ResourceGroup, StorageAccount: cfg.Account, ContainerName: cfg.Container})
	return err
}

// get reads path of the API into out.
func (r *onboardingRun) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.APIURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.cfg.Token)
	req.Header.Set("X-Activeloop-Org-Id", r.cfg.Org)
	resp, err := r.client.Do(req)
	if err != nil {
		return errors.New(describe(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// checkList reads the credential list once, after the wizards are done, and counts the
// credentials of the run it lacks.
func (r *onboardingRun) checkList(ctx context.Context, ids []string) (lists, misses, missed int) {
	var out struct {
		Credentials []summary `json:"credentials"`
	}
	if err := r.get(ctx, "/organizations/"+url.PathEscape(r.cfg.Org)+"/credentials", &out); err != nil {
		r.fail("list credentials", err)
		return 1, 0, 0
	}
	listed := make(map[string]bool, len(out.Credentials))
	for _, s := range out.Credentials {
		listed[s.ID] = true
	}
	for _, id := range ids {
		if id != "" && !listed[id] {
			missed++
		}
	}
	if missed > 0 {
		misses = 1
	}
	return 1, misses, missed
}

// progress prints, every Poll until stopped, how many credentials the wizards last saw in
// each state.
func (r *onboardingRun) progress(start time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(max(r.cfg.Poll, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			r.mu.Lock()
			counts := map[string]int{}
			for _, s := range r.last {
				counts[s.State]++
			}
			reads := r.reads
			r.mu.Unlock()
			fmt.Fprintf(r.cfg.Progress, "  %6.1fs detail reads=%d%s\n", time.Since(start).Seconds(), reads, formatCounts(counts))
		}
	}()
	return func() { close(done); <-finished }
}

func formatCounts(m map[string]int) string {
	var out string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out += fmt.Sprintf(" %s=%d", k, m[k])
	}
	return out
}

// stepTimes reads the events of the credentials and returns the tenant submit to
// sp_verified and the storage submit to verified durations.
func (r *onboardingRun) stepTimes(ctx context.Context, ids []string) (spFound, probe Durations) {
	var mu sync.Mutex
	var sp, pr []time.Duration
	r.each(ctx, len(ids), func(i int) {
		evs, err := r.api.Events(ctx, ids[i])
		if err != nil {
			r.fail("events", err)
			return
		}
		var tenantAt, storageAt time.Time
		mu.Lock()
		defer mu.Unlock()
		for _, e := range evs {
			switch e.To {
			case "sp_pending":
				tenantAt = e.Time
			case "sp_verified":
				if !tenantAt.IsZero() {
					sp = append(sp, e.Time.Sub(tenantAt))
				}
			case "access_pending":
				storageAt = e.Time
			case "verified":
				if !storageAt.IsZero() {
					pr = append(pr, e.Time.Sub(storageAt))
				}
			}
		}
	})
	return durationsOf(sp), durationsOf(pr)
}
