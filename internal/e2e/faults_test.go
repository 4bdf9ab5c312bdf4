package e2e

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// storageFaults are the soak's storage fault rates, per request: 503 ServerBusy before
// Azurite, a response lost after Azurite did the work, and a request held and dropped.
var storageFaults = faultproxy.Rates{Busy: 0.04, Lost: 0.03, Timeout: 0.01}

// directoryFaults is the chance that a Graph, Entra token or managed identity token call
// answers 429 (with Retry-After) or 503.
const directoryFaults = 0.1

// startFaultProxy serves a fault proxy in front of the test Azurite, one listener per
// service with Azurite's certificate, its rates at 0, and returns it with an Env whose
// endpoints are the proxy's.
func startFaultProxy(t testing.TB, env testenv.Env) (*faultproxy.Proxy, testenv.Env) {
	t.Helper()
	p, err := faultproxy.New(faultproxy.Config{
		Targets: map[faultproxy.Service]string{faultproxy.ServiceBlob: env.BlobEndpoint,
			faultproxy.ServiceQueue: env.QueueEndpoint, faultproxy.ServiceTable: env.TableEndpoint},
		Hold: 2 * time.Second, Seed: 20261123,
	})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(env.CertFile, filepath.Join(filepath.Dir(env.CertFile), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	proxied := env
	for _, svc := range faultproxy.Services {
		srv := httptest.NewUnstartedServer(p.Handler(svc))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		switch svc {
		case faultproxy.ServiceBlob:
			proxied.BlobEndpoint = srv.URL
		case faultproxy.ServiceQueue:
			proxied.QueueEndpoint = srv.URL
		case faultproxy.ServiceTable:
			proxied.TableEndpoint = srv.URL
		}
	}
	proxied.ConnString = proxied.ConnectionString(testenv.DevAccount)
	return p, proxied
}

// patient is the wizard as the platform SDK drives it: it retries its own calls on 5xx,
// 429 and transport failures, reads again freely, and before it resubmits a write it
// reads the credential to see whether the write landed after all.
type patient struct {
	api     *walkthrough.API
	retries *atomic.Int64
}

// transient reports whether err is worth another try.
func transient(err error) bool {
	if err == nil {
		return false
	}
	var e *walkthrough.Error
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	}
	return true // no answer: a transport failure or a timeout
}

func isStatus(err error, status int) bool {
	var e *walkthrough.Error
	return errors.As(err, &e) && e.Status == status
}

// retry runs call until it is not transient, for at most two minutes.
func (p *patient) retry(ctx context.Context, what string, call func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	delay := 200 * time.Millisecond
	for {
		err := call()
		if !transient(err) {
			return err
		}
		p.retries.Add(1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: gave up: %w", what, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (p *patient) get(ctx context.Context, id string) (c walkthrough.Credential, err error) {
	err = p.retry(ctx, "get "+id, func() error { c, err = p.api.Get(ctx, id); return err })
	return c, err
}

// list reads the organization's credentials (id and name).
func (p *patient) list(ctx context.Context) (out []walkthrough.Credential, err error) {
	err = p.retry(ctx, "list", func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.api.BaseURL+"/organizations/"+p.api.Org+"/credentials", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+p.api.Token)
		req.Header.Set("X-Activeloop-Org-Id", p.api.Org)
		resp, err := p.api.HTTP.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &walkthrough.Error{Status: resp.StatusCode}
		}
		var body struct {
			Credentials []walkthrough.Credential `json:"credentials"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		out = body.Credentials
		return nil
	})
	return out, err
}

// create makes the credential named name. After a failed attempt it looks for the name:
// a credential with its app is the one the lost attempt made; one without an app is a
// create still running or being undone, so it waits for either; none, it creates again.
func (p *patient) create(ctx context.Context, name, basePath string) (walkthrough.Credential, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		c, err := p.api.Create(ctx, name, basePath)
		if err == nil {
			return c, nil
		}
		if !transient(err) && !isStatus(err, http.StatusConflict) {
			return c, err
		}
		p.retries.Add(1)
		for {
			cs, err := p.list(ctx)
			if err != nil {
				return walkthrough.Credential{}, err
			}
			i := slices.IndexFunc(cs, func(c walkthrough.Credential) bool { return c.Name == name })
			if i < 0 {
				break // nothing landed: create again
			}
			c, err := p.get(ctx, cs[i].ID)
			if err == nil && c.Azure.AppID != "" {
				return c, nil
			}
			if err != nil && !isStatus(err, http.StatusNotFound) {
				return c, err
			}
			select {
			case <-ctx.Done():
				return c, fmt.Errorf("create %s: credential %s never got its app: %w", name, cs[i].ID, ctx.Err())
			case <-time.After(time.Second):
			}
		}
	}
}

// submit sends a window-starting write (tenant or storage); after a failure it reads the
// credential and resubmits only when the generation shows the write did not land.
func (p *patient) submit(ctx context.Context, id string, send func() (walkthrough.Credential, error)) (walkthrough.Credential, error) {
	before, err := p.get(ctx, id)
	if err != nil {
		return before, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var earlier []string // what the tries before the last one met
	for {
		c, err := send()
		if !transient(err) {
			if err != nil && len(earlier) > 0 {
				err = fmt.Errorf("%w (after %d earlier tries: %s)", err, len(earlier), strings.Join(earlier, "; "))
			}
			return c, err
		}
		earlier = append(earlier, time.Now().Format("15:04:05.000")+" "+err.Error())
		p.retries.Add(1)
		now, err := p.get(ctx, id)
		if err != nil {
			return now, err
		}
		if now.Generation > before.Generation {
			return now, nil
		}
		select {
		case <-ctx.Done():
			return now, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (p *patient) delete(ctx context.Context, id string) error {
	return p.retry(ctx, "delete "+id, func() error {
		err := p.api.Delete(ctx, id)
		if isStatus(err, http.StatusNotFound) {
			return nil // an earlier attempt whose answer was lost
		}
		return err
	})
}

func (p *patient) wait(ctx context.Context, id string, limit time.Duration, done func(walkthrough.Credential) bool) (walkthrough.Credential, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		c, err := p.get(ctx, id)
		if err != nil {
			return c, err
		}
		if done(c) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("credential %s stuck in %s/%s (%s): %w", id, c.State, c.Status(), c.LastError, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func (p *patient) events(ctx context.Context, id string) (out []string, err error) {
	var evs []walkthrough.Event
	err = p.retry(ctx, "events "+id, func() error { evs, err = p.api.Events(ctx, id); return err })
	for _, e := range evs {
		out = append(out, e.From+">"+e.To+":"+e.Cause)
	}
	return out, err
}

// scenario is what one soak onboarding does and where it must end.
type scenario string

const (
	scenarioVerified    scenario = "verified"     // the customer does everything right
	scenarioWrongTenant scenario = "wrong_tenant" // the SP is installed in another tenant: back to draft
	scenarioReaderRole  scenario = "reader_role"  // Reader instead of Contributor: role_not_sufficient
	scenarioDeleted     scenario = "deleted"      // the credential is deleted midway
)

func scenarioOf(i int) scenario {
	switch i % 10 {
	case 7:
		return scenarioWrongTenant
	case 8:
		return scenarioReaderRole
	case 9:
		return scenarioDeleted
	}
	return scenarioVerified
}

var wantEvents = map[scenario][]string{
	scenarioVerified: {">draft:created", "draft>sp_pending:submit_tenant", "sp_pending>sp_verified:sp_found",
		"sp_verified>access_pending:submit_storage", "access_pending>verified:access_confirmed"},
	scenarioWrongTenant: {">draft:created", "draft>sp_pending:submit_tenant", "sp_pending>draft:sp_timed_out"},
	scenarioReaderRole: {">draft:created", "draft>sp_pending:submit_tenant", "sp_pending>sp_verified:sp_found",
		"sp_verified>access_pending:submit_storage", "access_pending>sp_verified:access_failed"},
}

// soakRun is one onboarding of the soak and what became of it.
type soakRun struct {
	i        int
	scenario scenario
	p        *patient
	name     string
	id       string
	appID    string
	final    walkthrough.Credential
	err      error
	// windows is how long each window took, from its submit's answer to the end state seen.
	windows []windowTime
	// account holds the customer's container (custacct1 unless set).
	account string
	// onTenant, when set, runs right after the tenant submit landed.
	onTenant func()
	// installLate installs the service principal after the submit (and onTenant), not
	// before it: the window's poll keeps polling until it finds it.
	installLate bool
	// lastErrors are the distinct last_error texts the wizard saw.
	lastErrors map[string]bool
}

// windowTime is how long one window of an onboarding took.
type windowTime struct {
	kind    string
	window  time.Duration
	elapsed time.Duration
}

// customerRetry retries a customer-side call: the customer reruns a failed az command.
func customerRetry(ctx context.Context, call func() error) error {
	var err error
	for range 20 {
		if err = call(); err == nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(300 * time.Millisecond):
		}
	}
	return err
}

func (r *soakRun) run(ctx context.Context, si *standIn, spWindow, probeWindow time.Duration) error {
	account := cmp.Or(r.account, "custacct1")
	container := fmt.Sprintf("soak%03d%s", r.i, strings.ToLower(r.p.api.Org[4:]))
	if err := customerRetry(ctx, func() error { return si.customer.CreateContainer(ctx, account, container) }); err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	r.name = "soak-" + container
	c, err := r.p.create(ctx, r.name, "az://"+account+"/"+container+"/tables")
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	r.id, r.appID = c.ID, c.Azure.AppID

	var spID string
	install := func(tenant string) error {
		return customerRetry(ctx, func() error {
			id, err := si.customer.InstallServicePrincipal(ctx, tenant, r.appID)
			spID = id
			return err
		})
	}
	tenant := tenantA
	if r.scenario == scenarioWrongTenant {
		tenant = tenantB
	}
	if !r.installLate {
		if err := install(tenantA); err != nil {
			return fmt.Errorf("install the service principal: %w", err)
		}
	}
	if _, err := r.p.submit(ctx, r.id, func() (walkthrough.Credential, error) { return r.p.api.SubmitTenant(ctx, r.id, tenant) }); err != nil {
		return fmt.Errorf("submit tenant: %w", err)
	}
	submitted := time.Now()
	if r.onTenant != nil {
		r.onTenant()
	}
	if r.installLate {
		if err := install(tenantA); err != nil {
			return fmt.Errorf("install the service principal: %w", err)
		}
	}
	if r.scenario == scenarioDeleted && r.i%20 == 9 {
		// Deleted while the service principal poll runs.
		return r.p.delete(ctx, r.id)
	}
	c, err = r.wait(ctx, spWindow, walkthrough.InState("sp_verified", "draft"))
	if err != nil {
		return err
	}
	r.windows = append(r.windows, windowTime{kind: "sp_poll", window: spWindow, elapsed: time.Since(submitted)})
	if r.scenario == scenarioWrongTenant {
		r.final = c
		return nil
	}
	if c.State != "sp_verified" {
		return fmt.Errorf("after the tenant step: %s (%s)", c.State, c.LastError)
	}
	role := walkthrough.RoleContributor
	if r.scenario == scenarioReaderRole {
		role = walkthrough.RoleReader
	}
	scope := walkthrough.AccountScope(subscriptionID, resourceGroup, account)
	if err := customerRetry(ctx, func() error { _, err := si.customer.GrantRole(ctx, spID, role, scope); return err }); err != nil {
		return fmt.Errorf("grant %s: %w", role, err)
	}
	form := walkthrough.StorageForm{SubscriptionID: subscriptionID, ResourceGroup: resourceGroup, StorageAccount: account, ContainerName: container}
	if _, err := r.p.submit(ctx, r.id, func() (walkthrough.Credential, error) { return r.p.api.SubmitStorage(ctx, r.id, form) }); err != nil {
		return fmt.Errorf("submit storage: %w", err)
	}
	submitted = time.Now()
	if r.scenario == scenarioDeleted {
		// Deleted while the access probe runs.
		return r.p.delete(ctx, r.id)
	}
	r.final, err = r.wait(ctx, probeWindow, walkthrough.InState("verified", "sp_verified"))
	if err == nil {
		r.windows = append(r.windows, windowTime{kind: "access_probe", window: probeWindow, elapsed: time.Since(submitted)})
	}
	return err
}

// wait polls the credential until done, for at most soakWindowWait(window), and keeps
// the last_error texts it sees on the way.
func (r *soakRun) wait(ctx context.Context, window time.Duration, done func(walkthrough.Credential) bool) (walkthrough.Credential, error) {
	return r.p.wait(ctx, r.id, soakWindowWait(window), func(c walkthrough.Credential) bool {
		if c.LastError != "" {
			if r.lastErrors == nil {
				r.lastErrors = map[string]bool{}
			}
			r.lastErrors[c.LastError] = true
		}
		return done(c)
	})
}

// check says what is wrong with the run's end state, "" when nothing.
func (r *soakRun) check(ctx context.Context) string {
	if r.err != nil {
		if r.id != "" {
			c, _ := r.p.get(ctx, r.id)
			evs, _ := r.p.events(ctx, r.id)
			attempts := 0
			if c.Progress != nil {
				attempts = c.Progress.Attempts
			}
			return fmt.Sprintf("%v; now %s/%s after %d attempts, events %v", r.err, c.State, c.Status(), attempts, evs)
		}
		return r.err.Error()
	}
	cs, err := r.p.list(ctx)
	if err != nil {
		return "list: " + err.Error()
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	if r.scenario == scenarioDeleted {
		if len(ids) != 0 {
			return fmt.Sprintf("deleted, but the organization still lists %v", ids)
		}
		if _, err := r.p.get(ctx, r.id); !isStatus(err, http.StatusNotFound) {
			return fmt.Sprintf("deleted, but GET answers %v", err)
		}
		return ""
	}
	if len(ids) != 1 || ids[0] != r.id {
		return fmt.Sprintf("the organization lists %v, want exactly %s", ids, r.id)
	}
	c := r.final
	switch r.scenario {
	case scenarioVerified:
		if c.State != "verified" {
			return fmt.Sprintf("state %s/%s (%s), want verified", c.State, c.Status(), c.LastError)
		}
	case scenarioWrongTenant:
		if c.State != "draft" || c.LastError != "Couldn't find the service principal in your tenant" {
			return fmt.Sprintf("state %s (%q), want draft with the SP not found", c.State, c.LastError)
		}
	case scenarioReaderRole:
		if c.State != "sp_verified" || c.LastErrorCode != "role_not_sufficient" {
			return fmt.Sprintf("state %s, code %s (%s), want sp_verified with role_not_sufficient", c.State, c.LastErrorCode, c.LastError)
		}
	}
	evs, err := r.p.events(ctx, r.id)
	if err != nil {
		return "events: " + err.Error()
	}
	if diff := gocmp.Diff(wantEvents[r.scenario], evs); diff != "" {
		return "events (-want +got):\n" + diff
	}
	return ""
}

// standInChaos sets or reads the stand-in's random faults.
func standInChaos(t *testing.T, si *standIn, method string, body any) (stats struct {
	Calls map[string]int            `json:"calls"`
	Fired map[string]map[string]int `json:"fired"`
	Total int                       `json:"total"`
}) {
	t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, si.url+"/control/chaos", strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s /control/chaos: %d", method, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	return stats
}

// applications lists the stand-in's app registrations as "<app id> <display name>".
func applications(ctx context.Context, si *standIn) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, si.url+"/control/applications", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var apps []struct {
		AppID       string `json:"appId"`
		DisplayName string `json:"displayName"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&apps); err != nil {
		return nil, err
	}
	var out []string
	for _, a := range apps {
		out = append(out, a.AppID+" "+a.DisplayName)
	}
	slices.Sort(out)
	return out, nil
}

// The soak's windows: the SP poll's and the access probe's.
const (
	soakSPWindow    = 30 * time.Second
	soakProbeWindow = 60 * time.Second
)

// soakWindowWait is how long a soak onboarding may wait for the end of a window: the
// window, plus two reconciler periods (a chain that stopped, a message lost or hidden by
// a lost answer, moves again within one), plus the time of the closing attempt itself
// under faults (a probe attempt may take 20 s) and the wizard's poll.
func soakWindowWait(window time.Duration) time.Duration {
	return window + soakWindowSlack
}

// soakWindowSlack is what soakWindowWait allows beyond a window.
const soakWindowSlack = 2*soakReconcile + 25*time.Second

// reportWindows logs how long the runs' windows took beyond their length, and fails for
// any beyond the window plus two reconciler periods and the closing attempt's time.
func reportWindows(t *testing.T, runs []*soakRun) {
	t.Helper()
	var over []time.Duration
	worst, lengths := map[string]time.Duration{}, map[string]time.Duration{}
	n := 0
	for _, r := range runs {
		for _, w := range r.windows {
			n++
			lengths[w.kind] = w.window
			beyond := w.elapsed - w.window
			worst[w.kind] = max(worst[w.kind], w.elapsed)
			if beyond > 2*soakReconcile {
				over = append(over, beyond)
			}
		}
	}
	t.Logf("%d windows ended; the longest took %v (windows %v); %d ended more than two reconciler periods (%v) past their window, by %v",
		n, worst, lengths, len(over), 2*soakReconcile, over)
}

// TestSoakFaults runs onboardings concurrently through the real handler and stand-in
// while Graph and Entra answer 429 and 503 at random and the handler's tables and queues
// and the customer's blob storage sit behind the fault proxy (ServerBusy, lost responses,
// timeouts). Every credential must end where its scenario leads, nothing may be lost or
// left behind, every transition must be recorded once, and no app registration may
// outlive its credential.
func TestSoakFaults(t *testing.T) {
	t.Parallel()
	env := testenv.Azurite(t)
	n := soakCount(t, "onboardings", 10, 100)
	proxy, proxied := startFaultProxy(t, env)
	si := startStandIn(t, proxied, 2*time.Second)
	s := defaultSettings()
	s.instances, s.reconcile = soakInstances, soakReconcile
	s.spWindow, s.probeWindow, s.grace = soakSPWindow, soakProbeWindow, 8*time.Second
	// A create's guard looks for orphans after 20 s, beyond any create under these faults.
	s.createGuard = 20 * time.Second
	// Each onboarding has an organization of its own, holding one credential and no
	// workspace: the product's limits hold that many times over. They are set here so
	// that a change of the defaults leaves the soak as it was.
	s.maxCredentials, s.maxWorkspaces, s.createRate = 50, 1000, "30/1m"
	h := startHandler(t, proxied, si, s)

	start := time.Now()
	before := proxy.Stats()
	standInChaos(t, si, http.MethodPost, map[string]any{"probability": directoryFaults, "statuses": []int{429, 503}, "retry_after": 1, "seed": 20261123})
	if err := proxy.SetRates(storageFaults); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	var retries atomic.Int64
	runs := make([]*soakRun, n)
	var wg sync.WaitGroup
	for i := range runs {
		api := h.apiOn(t, i)
		api.HTTP = apiCheck.Client(&http.Client{Timeout: 30 * time.Second})
		r := &soakRun{i: i, scenario: scenarioOf(i), p: &patient{api: api, retries: &retries}}
		runs[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.err = r.run(ctx, si, soakSPWindow, soakProbeWindow)
		}()
	}
	wg.Wait()
	onboarded := time.Since(start)

	// Faults off: the background clean-up drains, then the books must balance.
	chaos := standInChaos(t, si, http.MethodDelete, nil)
	if err := proxy.SetRates(faultproxy.Rates{}); err != nil {
		t.Fatal(err)
	}
	storage := proxy.Stats().Sub(before)

	counts := map[scenario]int{}
	failed := 0
	var want []string
	for _, r := range runs {
		counts[r.scenario]++
		if msg := r.check(ctx); msg != "" {
			failed++
			t.Errorf("onboarding %d (%s, credential %s): %s", r.i, r.scenario, r.id, msg)
		}
		// The apps that may remain are those of the credentials that still exist.
		if r.appID == "" {
			continue
		}
		if _, err := r.p.get(ctx, r.id); !isStatus(err, http.StatusNotFound) {
			want = append(want, r.appID+" deeplake-"+r.name)
		}
	}
	slices.Sort(want)
	var apps []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		var err error
		if apps, err = applications(ctx, si); err != nil {
			t.Fatal(err)
		}
		if slices.Equal(apps, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if diff := gocmp.Diff(want, apps); diff != "" {
		t.Errorf("app registrations (-credentials' apps +stand-in's apps):\n%s", diff)
	}

	t.Logf("%d onboardings %v in %s (%d failed); wizard retries: %d", n, counts, onboarded.Round(time.Second), failed, retries.Load())
	t.Logf("Graph/Entra faults: %d fired over %v calls: %v", chaos.Total, chaos.Calls, chaos.Fired)
	for _, svc := range faultproxy.Services {
		st := storage.Services[svc]
		t.Logf("storage %s: %d requests, %d forwarded, faults %+v; faulted operations %v", svc, st.Requests, st.Forwarded, st.Faults, st.OperationFaults)
	}
	// The faults must have fired in every layer, or the run proved nothing.
	if chaos.Total == 0 {
		t.Error("no Graph or Entra fault fired")
	}
	for _, svc := range faultproxy.Services {
		if f := storage.Services[svc].Faults; f.Total() == 0 {
			t.Errorf("no storage fault fired on %s", svc)
		}
	}
	if f := storage.Services[faultproxy.ServiceTable].Faults; f.LostBusy+f.LostDropped == 0 {
		t.Error("no table response was lost")
	}
	reportWindows(t, runs)
	t.Logf("all instances: %s", reportInstances(t, h))
	checkEveryInstanceWorked(t, h)
}
