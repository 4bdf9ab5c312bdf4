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
	"sync/atomic"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// Bounds of an onboarding run.
const (
	DefaultOnboardingTimeout = 20 * time.Minute
	OnboardingTimeoutLimit   = time.Hour
	OnboardingLimit          = 10_000
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
	// creation steps, and the storage forms), so at most twice it plus a list (default 16).
	Concurrency int
	// TenantID is the customer tenant the service principals are installed in;
	// SubscriptionID, ResourceGroup and Account name the customer storage account
	// (registered with the stand-in already). Container is created by the run; a fresh
	// name when empty. Each credential has its own prefix in it.
	TenantID, SubscriptionID, ResourceGroup, Account, Container string
	// Poll is how often the credential list is read to follow the onboardings (default
	// 1 s), as the wizard polls.
	Poll time.Duration
	// Timeout bounds the whole run (default DefaultOnboardingTimeout).
	Timeout time.Duration
	// Progress, when set, receives a line per poll.
	Progress io.Writer
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
	// Lists is how many times the credential list was read; ListMisses how many of those
	// lacked a credential the run had made and not deleted, ListMissed the credentials
	// missing over all of them. Both are zero for a consistent list.
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

	mu       sync.Mutex
	errs     int
	firstErr string

	// tracks are the onboardings follow watches, added as their tenants are submitted.
	trackMu sync.Mutex
	tracks  map[string]*track
	// listMisses counts the lists that lacked a tracked credential, listMissed the
	// credentials they lacked, over all of them.
	lists, listMisses, listMissed int
}

// track is where one onboarding is, as the client knows it.
type track struct {
	since     time.Time // when its tenant submit was answered: older lists say nothing of it
	submitted bool
	accepted  time.Time // when the storage form's 202 arrived
	done      bool
}

func (c OnboardingConfig) normalize() (OnboardingConfig, error) {
	if c.Credentials == 0 {
		c.Credentials = 100
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.Poll == 0 {
		c.Poll = time.Second
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
// submits the tenant, and submits the storage form when the credential shows
// sp_verified. It follows them all through the credential list until each is verified
// or has failed, then reads their events for the per-step times.
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

	r := &onboardingRun{cfg: cfg, client: client,
		api:      &walkthrough.API{BaseURL: cfg.APIURL, Org: cfg.Org, Token: cfg.Token, HTTP: client},
		customer: &walkthrough.Customer{ControlURL: cfg.ControlURL, HTTP: client}}
	if err := r.customer.CreateContainer(ctx, cfg.Account, cfg.Container); err != nil {
		return OnboardingResult{}, fmt.Errorf("create container %s: %w", cfg.Container, err)
	}

	// Each onboarding goes on as soon as its tenant is submitted, as a wizard would: the
	// follower runs alongside the creation of the others.
	start := time.Now()
	r.tracks = map[string]*track{}
	var creating atomic.Bool
	creating.Store(true)
	var states map[string]summary
	var verifiedAt map[string]time.Time
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		states, verifiedAt = r.follow(ctx, start, &creating)
	}()
	ids := r.startAll(ctx, start)
	submitted := time.Since(start)
	creating.Store(false)
	<-followed
	res := OnboardingResult{Credentials: cfg.Credentials, Submitted: submitted, FinalStates: map[string]int{}}
	var last time.Time
	for i, id := range ids {
		if id == "" {
			res.Failed++
			continue
		}
		s := states[id]
		res.FinalStates[s.State]++
		if s.State != "verified" {
			res.Failed++
			continue
		}
		res.Verified++
		res.VerifiedIDs = append(res.VerifiedIDs, ids[i])
		if t := verifiedAt[id]; t.After(last) {
			last = t
		}
	}
	if !last.IsZero() {
		res.AllVerified = last.Sub(start)
	}
	var toVerified []time.Duration
	for _, id := range res.VerifiedIDs {
		if s := states[id]; s.VerifiedAt != nil {
			toVerified = append(toVerified, s.VerifiedAt.Sub(s.CreatedAt))
		}
	}
	res.ToVerified = durationsOf(toVerified)
	res.SPFound, res.Probe = r.stepTimes(ctx, res.VerifiedIDs)
	res.Errors, res.ErrorSample = r.errs, r.firstErr
	res.Lists, res.ListMisses, res.ListMissed = r.lists, r.listMisses, r.listMissed
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

// startAll creates every credential, installs its service principal, grants its role and
// submits its tenant. It returns the credential ids by index; "" where a step failed.
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
		r.trackMu.Lock()
		r.tracks[c.ID] = &track{since: time.Now()}
		r.trackMu.Unlock()
		ids[i] = c.ID
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

func (r *onboardingRun) list(ctx context.Context) (map[string]summary, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.APIURL+"/organizations/"+url.PathEscape(r.cfg.Org)+"/credentials", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.cfg.Token)
	req.Header.Set("X-Activeloop-Org-Id", r.cfg.Org)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %s", describe(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list credentials: HTTP %d", resp.StatusCode)
	}
	var out struct {
		Credentials []summary `json:"credentials"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	m := make(map[string]summary, len(out.Credentials))
	for _, s := range out.Credentials {
		m[s.ID] = s
	}
	return m, nil
}

// follow reads the list every Poll, submits the storage form of each tracked credential
// that shows sp_verified, and returns once creating is false and every tracked credential
// is verified or has failed: back in draft (no service principal found), or back in
// sp_verified after its storage form was accepted (a terminal probe outcome). It returns
// the last state of each and when the client first saw it verified.
func (r *onboardingRun) follow(ctx context.Context, start time.Time, creating *atomic.Bool) (map[string]summary, map[string]time.Time) {
	cfg := r.cfg
	verifiedAt := map[string]time.Time{}
	last := map[string]summary{}

	submit := make(chan string, cfg.Credentials)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for id := range submit {
				_, err := r.api.SubmitStorage(ctx, id, walkthrough.StorageForm{SubscriptionID: cfg.SubscriptionID,
					ResourceGroup: cfg.ResourceGroup, StorageAccount: cfg.Account, ContainerName: cfg.Container})
				if err != nil {
					r.fail("submit storage", err)
				}
				r.trackMu.Lock()
				if err != nil {
					r.tracks[id].done = true
				} else {
					r.tracks[id].accepted = time.Now()
				}
				r.trackMu.Unlock()
			}
		})
	}
	defer func() { close(submit); wg.Wait() }()

	tick := time.NewTicker(cfg.Poll)
	defer tick.Stop()
	for {
		stillCreating := creating.Load() // before counting, so no track added later is missed
		asOf := time.Now()
		states, err := r.list(ctx)
		r.trackMu.Lock()
		r.lists++
		r.trackMu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return last, verifiedAt
			}
			r.fail("list", err)
		}
		r.trackMu.Lock()
		open, counts := 0, map[string]int{}
		missing := 0
		for id, t := range r.tracks {
			s, ok := states[id]
			if !ok {
				// Not in this list (or the list failed): still open. A list that
				// misses a credential it should hold is counted, not believed.
				if states != nil && !asOf.Before(t.since) {
					missing++
				}
				if !t.done {
					open++
				}
				continue
			}
			if asOf.Before(t.since) { // this list was read before the tenant was submitted
				open++
				continue
			}
			last[id] = s
			counts[s.State]++
			switch {
			case t.done:
			case s.State == "verified":
				t.done = true
				verifiedAt[id] = asOf
			case s.State == "draft":
				t.done = true
			case s.State == "sp_verified" && !t.submitted:
				t.submitted = true
				submit <- id
			case s.State == "sp_verified" && !t.accepted.IsZero() && asOf.After(t.accepted):
				t.done = true
			}
			if !t.done {
				open++
			}
		}
		tracked := len(r.tracks)
		if missing > 0 {
			r.listMisses++
			r.listMissed += missing
		}
		r.trackMu.Unlock()
		if cfg.Progress != nil && states != nil {
			fmt.Fprintf(cfg.Progress, "  %6.1fs tracked=%d listed=%d%s\n", asOf.Sub(start).Seconds(), tracked, len(states), formatCounts(counts))
		}
		if !stillCreating && open == 0 && states != nil {
			return last, verifiedAt
		}
		select {
		case <-ctx.Done():
			return last, verifiedAt
		case <-tick.C:
		}
	}
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
