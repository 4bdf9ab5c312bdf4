package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
)

// healthDetail is the part of the credential detail the health tests read.
type healthDetail struct {
	State  string `json:"state"`
	Health *struct {
		Status    string    `json:"status"`
		CheckedAt time.Time `json:"checked_at"`
		Checks    []struct {
			Name         string `json:"name"`
			Result       string `json:"result"`
			ProviderCode string `json:"provider_code"`
		} `json:"checks"`
		Problem *struct {
			Code          string `json:"code"`
			Hint          string `json:"hint"`
			ProviderError string `json:"provider_error"`
		} `json:"problem"`
	} `json:"health"`
}

func (d healthDetail) status() string {
	if d.Health == nil {
		return "none"
	}
	return d.Health.Status
}

// detail reads the credential's detail as the API serves it.
func (o *onboarding) detail() healthDetail {
	o.t.Helper()
	req, err := http.NewRequest(http.MethodGet, o.api.BaseURL+"/organizations/"+o.api.Org+"/credentials/"+o.cred.ID, nil)
	if err != nil {
		o.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+o.api.Token)
	req.Header.Set("X-Activeloop-Org-Id", o.api.Org)
	resp, err := apiCheck.Client(nil).Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	var d healthDetail
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		o.t.Fatalf("GET credential: %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		o.t.Fatal(err)
	}
	return d
}

// waitHealth polls the detail until its health has status and was checked after since,
// for at most limit, and returns it with how long after since it got there.
func (o *onboarding) waitHealth(status string, since time.Time, limit time.Duration) (healthDetail, time.Duration) {
	o.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		d := o.detail()
		if d.Health != nil && d.Health.Status == status && d.Health.CheckedAt.After(since) {
			return d, time.Since(since)
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("health %s after %s, want %s checked after %s", d.status(), limit, status, since.Format(time.RFC3339Nano))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// withSettings restarts the handler with extra settings (later values win).
func (h *handler) withSettings(t *testing.T, vars ...string) {
	t.Helper()
	h.proc.stop()
	env := h.env
	h.env = func(listen string) []string { return append(env(listen), vars...) }
	h.restart(t)
}

// verifiedWithRole onboards o to verified with an account-scope Contributor grant and
// returns the grant's name.
func (o *onboarding) verifiedWithRole(propagation time.Duration) string {
	o.t.Helper()
	o.toSPVerified()
	grant, err := o.customer.GrantRole(context.Background(), o.spID, walkthrough.RoleContributor, o.accountScope())
	if err != nil {
		o.t.Fatal(err)
	}
	time.Sleep(propagation)
	o.submitStorage()
	if c := o.wait(20*time.Second, walkthrough.InState("verified", "sp_verified")); c.State != "verified" {
		o.t.Fatalf("state %s/%s: %s", c.State, c.Status(), c.LastError)
	}
	return grant
}

var onboardedCauses = []string{">draft:created", "draft>sp_pending:submit_tenant", "sp_pending>sp_verified:sp_found",
	"sp_verified>access_pending:submit_storage", "access_pending>verified:access_confirmed"}

// checkDegraded holds a degraded detail to a revoked account-scope role.
func checkDegraded(t *testing.T, d healthDetail) {
	t.Helper()
	if d.State != "verified" {
		t.Errorf("state %s while degraded, want verified", d.State)
	}
	p := d.Health.Problem
	if p == nil || p.Code != "role_not_sufficient" || p.Hint != "no_role" || p.ProviderError != "AuthorizationPermissionMismatch" {
		t.Errorf("problem %+v, want role_not_sufficient/no_role/AuthorizationPermissionMismatch", p)
	}
	if len(d.Health.Checks) == 0 || d.Health.Checks[0].Result != "fail" {
		t.Errorf("checks %+v, want the failing probe's", d.Health.Checks)
	}
}

// TestHealthDriftStandalone: the standalone handler sweeps on its interval. A verified
// credential whose role is revoked shows degraded within one period and its re-check
// (after the revoke took effect), stays verified, and recovers to ok by itself once the
// role is back; the transition log never sees any of it.
func TestHealthDriftStandalone(t *testing.T) {
	t.Parallel()
	env := testenv.Azurite(t)
	const propagation = time.Second
	const interval, spread = 2 * time.Second, 500 * time.Millisecond
	si := startStandIn(t, env, propagation)
	h := startHandler(t, env, si, defaultSettings())
	const recheck = time.Second
	h.withSettings(t, "AZCREDS_HEALTH_INTERVAL="+interval.String(), "AZCREDS_HEALTH_SPREAD="+spread.String(),
		"AZCREDS_HEALTH_RECHECK="+recheck.String())
	o := newOnboarding(t, h, si, "custacct1", true)
	grant := o.verifiedWithRole(propagation)
	// One period plus the spread, the re-check and the probes' own time; the slack absorbs
	// a loaded machine.
	period := interval + spread + recheck + 5*time.Second
	ctx := context.Background()

	start := time.Now()
	d, took := o.waitHealth("ok", start, period)
	t.Logf("first check ok %s after verified", took.Round(time.Millisecond))
	if d.State != "verified" || d.Health.Problem != nil || len(d.Health.Checks) != 4 {
		t.Fatalf("first check: %+v", d)
	}

	if err := o.customer.RevokeRole(ctx, grant); err != nil {
		t.Fatal(err)
	}
	effective := time.Now().Add(propagation)
	time.Sleep(propagation)
	d, took = o.waitHealth("degraded", effective, period)
	t.Logf("degraded %s after the revoke took effect (interval %s, spread %s)", took.Round(time.Millisecond), interval, spread)
	checkDegraded(t, d)

	if _, err := o.customer.GrantRole(ctx, o.spID, walkthrough.RoleContributor, o.accountScope()); err != nil {
		t.Fatal(err)
	}
	effective = time.Now().Add(propagation)
	time.Sleep(propagation)
	d, took = o.waitHealth("ok", effective, period)
	t.Logf("recovered %s after the grant took effect", took.Round(time.Millisecond))
	if d.State != "verified" || d.Health.Problem != nil {
		t.Fatalf("after recovery: %+v", d)
	}
	if diff := cmp.Diff(onboardedCauses, o.causes()); diff != "" {
		t.Fatalf("transition log (-want +got):\n%s", diff)
	}
}

// sweepInvocation posts the host's timer invocation of the health-sweep function and
// returns the answer's Logs.
func sweepInvocation(t *testing.T, h *handler) []string {
	t.Helper()
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":%q,"Next":%q,"LastUpdated":%q},"IsPastDue":false}},`+
		`"Metadata":{"sys":{"MethodName":"health-sweep","UtcNow":%q,"RandGuid":"0f4b9a61-3c2d-4e8f-9a7b-6c5d4e3f2a1b"}}}`,
		now.Add(-15*time.Minute).Format(time.RFC3339), now.Add(15*time.Minute).Format(time.RFC3339), now.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
	resp, err := http.Post(h.url+"/health-sweep", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Outputs     map[string]any
		Logs        []string
		ReturnValue any
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &answer) != nil || answer.Outputs == nil || answer.ReturnValue != nil {
		t.Fatalf("timer invocation: %d %s, want 200 in the host's shape", resp.StatusCode, raw)
	}
	return answer.Logs
}

// TestHealthSweepFunctionsHost: under the Functions host nothing sweeps by itself; the
// host's timer invocation POSTed to the handler sweeps, and the health-probe queue
// function (each message delivered twice by the fake host) records the health: a revoked
// role is degraded once its re-check, a message of its own, failed too.
func TestHealthSweepFunctionsHost(t *testing.T) {
	t.Parallel()
	env := testenv.Azurite(t)
	const propagation = time.Second
	si := startStandIn(t, env, propagation)
	s := defaultSettings()
	s.hostInvocations = true
	h := startHandler(t, env, si, s)
	// A short standalone interval must not matter under the host: only the timer sweeps.
	h.withSettings(t, "AZCREDS_HEALTH_SPREAD=0s", "AZCREDS_HEALTH_INTERVAL=1s", "AZCREDS_HEALTH_RECHECK=1s")

	qsvc, err := azqueue.NewServiceClientFromConnectionString(env.ConnectionString(s.storageAccount), nil)
	if err != nil {
		t.Fatal(err)
	}
	host := &fakeHost{t: t, url: h.url, sent: map[string][]string{}, queues: map[string]*azqueue.QueueClient{
		"sp-poll": qsvc.NewQueueClient(h.queuePrefix + "sppoll"), "access-probe": qsvc.NewQueueClient(h.queuePrefix + "accessprobe"),
		"app-cleanup": qsvc.NewQueueClient(h.queuePrefix + "appcleanup"), "health-probe": qsvc.NewQueueClient(h.queuePrefix + "healthprobe")}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { host.run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	o := newOnboarding(t, h, si, "custacct1", true)
	grant := o.verifiedWithRole(propagation)
	time.Sleep(2 * time.Second)
	if d := o.detail(); d.Health != nil {
		t.Fatalf("health %+v before any timer invocation: something swept by itself under the host", d.Health)
	}

	sweep := func() {
		t.Helper()
		logs := sweepInvocation(t, h)
		if !strings.Contains(strings.Join(logs, "\n"), "scheduled 1 probe") {
			t.Fatalf("timer invocation Logs %q, want one probe scheduled", logs)
		}
	}
	start := time.Now()
	sweep()
	o.waitHealth("ok", start, 15*time.Second)

	if err := o.customer.RevokeRole(ctx, grant); err != nil {
		t.Fatal(err)
	}
	time.Sleep(propagation + 200*time.Millisecond)
	start = time.Now()
	sweep()
	d, _ := o.waitHealth("degraded", start, 15*time.Second)
	checkDegraded(t, d)

	if _, err := o.customer.GrantRole(ctx, o.spID, walkthrough.RoleContributor, o.accountScope()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(propagation + 200*time.Millisecond)
	start = time.Now()
	sweep()
	o.waitHealth("ok", start, 15*time.Second)
	if diff := cmp.Diff(onboardedCauses, o.causes()); diff != "" {
		t.Fatalf("transition log (-want +got):\n%s", diff)
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	if n := len(host.sent["health-probe"]); n < 3 {
		t.Fatalf("%d health-probe messages went through the fake host, want one per sweep", n)
	}
}
