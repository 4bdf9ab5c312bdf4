package credential_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
)

type healthFixture struct {
	*fixture
}

// newHealthFixture is the fixture whose health sweep spreads its probes over spread.
func newHealthFixture(t *testing.T, spread time.Duration) *healthFixture {
	t.Helper()
	return &healthFixture{newFixture(t, credential.Config{HealthSpread: spread}, nil)}
}

// probe runs a health job for c issued a second from now, another second before it runs.
func (h *healthFixture) probe(c *credential.Credential, reports ...credential.ProbeReport) *credential.Credential {
	h.t.Helper()
	h.fake.Prober.Script(reports...)
	h.fake.Clock.Advance(time.Second)
	job := credential.Job{Kind: credential.JobHealthProbe, OrgID: c.OrgID, CredentialID: c.ID, Generation: c.Generation, IssuedAt: h.fake.Clock.Now()}
	h.fake.Clock.Advance(time.Second)
	h.Run(job)
	return h.Get(c.ID)
}

func (h *healthFixture) healthEvents(id string) []string {
	h.t.Helper()
	evs, err := h.Domain.Health.HealthEvents(context.Background(), "org", id)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, string(e.From)+">"+string(e.To)+":"+e.Code)
	}
	return out
}

var onboarded = []credential.Event{credential.EventCreated, credential.EventSubmitTenant, credential.EventSPFound,
	credential.EventSubmitStorage, credential.EventAccessConfirmed}

// stillVerified fails unless c is verified with the transition log of its onboarding.
func (h *healthFixture) stillVerified(c *credential.Credential) {
	h.t.Helper()
	if c.State != credential.StateVerified {
		h.t.Errorf("state %s, want verified: health never moves a credential", c.State)
	}
	if diff := cmp.Diff(onboarded, h.Causes(c.ID)); diff != "" {
		h.t.Errorf("transition log (-want +got):\n%s", diff)
	}
}

func TestHealthOK(t *testing.T) {
	h := newHealthFixture(t, 0)
	c := h.Verified()
	n, err := h.Domain.Health.SweepHealth(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("sweep scheduled %d, %v; want 1", n, err)
	}
	job := h.Single(credential.JobHealthProbe)
	if job.CredentialID != c.ID || job.Generation != c.Generation || !job.IssuedAt.Equal(h.fake.Clock.Now()) {
		t.Fatalf("health job %+v", job)
	}
	h.fake.Prober.Script(report("pass", "pass", "pass", "pass"))
	h.fake.Clock.Advance(time.Second)
	h.Run(job)
	got := h.Get(c.ID)
	want := credential.Health{Status: credential.HealthOK, CheckedAt: h.fake.Clock.Now(), Since: c.VerifiedAt,
		Checks: []credential.Check{{Name: "user_delegation_key", Result: "pass"}, {Name: "write", Result: "pass"},
			{Name: "list_read", Result: "pass"}, {Name: "delete", Result: "pass"}}}
	if diff := cmp.Diff(want, got.Health); diff != "" {
		t.Fatalf("health (-want +got):\n%s", diff)
	}
	if calls := h.fake.Prober.Targets(); len(calls) != 1 || calls[0].Account != "bloblake" || calls[0].Prefix != "p" || calls[0].FreshToken {
		t.Fatalf("probe targets %+v", calls)
	}
	h.stillVerified(got)
	if evs := h.healthEvents(c.ID); len(evs) != 0 {
		t.Fatalf("health events %v: a first check that is ok changes nothing", evs)
	}
	if got.LastError != c.LastError || got.Progress.Status != credential.StatusConnected {
		t.Fatalf("the onboarding's progress or last error changed: %+v %+v", got.Progress, got.LastError)
	}
}

// recheck runs the re-check a first failed check scheduled, after its delay, with report.
func (h *healthFixture) recheck(c *credential.Credential, report credential.ProbeReport) *credential.Credential {
	h.t.Helper()
	hist := h.fake.Scheduler.History()
	if len(hist) == 0 || hist[len(hist)-1].Job.Kind != credential.JobHealthProbe || hist[len(hist)-1].Delay != credential.DefaultHealthRecheck {
		h.t.Fatalf("no re-check scheduled after %s: %+v", credential.DefaultHealthRecheck, hist)
	}
	job := h.Single(credential.JobHealthProbe)
	h.fake.Prober.Script(report)
	h.fake.Clock.Advance(credential.DefaultHealthRecheck)
	h.Run(job)
	return h.Get(c.ID)
}

// TestHealthDegradedOutcomes: every failing probe outcome is first a suspicion (still ok,
// one failure, the problem shown, a re-check scheduled), then, failing again on the
// re-check, degraded with the access probe's classification; the credential stays verified.
func TestHealthDegradedOutcomes(t *testing.T) {
	h := newHealthFixture(t, 0)
	fail := func(name string, status int, code string) credential.CheckResult {
		return credential.CheckResult{Name: name, Result: credential.ResultFail, Status: status, Code: code, RequestID: "st-req"}
	}
	pass := func(name string) credential.CheckResult {
		return credential.CheckResult{Name: name, Result: credential.ResultPass}
	}
	skip := func(name string) credential.CheckResult {
		return credential.CheckResult{Name: name, Result: credential.ResultSkip}
	}
	for _, tc := range []struct {
		name           string
		report         credential.ProbeReport
		code, hint, pe string
	}{
		{"role revoked", report("403", "403", "403", "skip"), "role_not_sufficient", credential.HintNoRole, "AuthorizationPermissionMismatch"},
		{"reader only", report("pass", "403", "pass", "skip"), "role_not_sufficient", credential.HintReaderRole, "AuthorizationPermissionMismatch"},
		{"container scope", report("403", "pass", "pass", "pass"), "role_not_sufficient", credential.HintContainerScope, "AuthorizationPermissionMismatch"},
		{"container deleted", credential.ProbeReport{Checks: []credential.CheckResult{pass("user_delegation_key"),
			fail("write", 404, "ContainerNotFound"), skip("list_read"), skip("delete")}}, "container_not_found", "", "ContainerNotFound"},
		{"account gone", credential.ProbeReport{AccountNotFound: true}, "storage_account_not_found", "", ""},
		{"firewall", credential.ProbeReport{Checks: []credential.CheckResult{fail("user_delegation_key", 403, "AuthorizationFailure"),
			skip("write"), skip("list_read"), skip("delete")}}, "network_blocked", credential.HintAllowNetwork, "AuthorizationFailure"},
		{"storage unavailable", credential.ProbeReport{Checks: []credential.CheckResult{fail("user_delegation_key", 503, "ServerBusy"),
			skip("write"), skip("list_read"), skip("delete")}}, "unexpected_error", "", "ServerBusy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.Verified()
			h.fake.Scheduler.Forget()
			first := h.probe(c, tc.report)
			if hl := first.Health; hl.Status != credential.HealthOK || hl.Failures != 1 || hl.Problem.Code != tc.code || !hl.Since.Equal(c.VerifiedAt) {
				t.Fatalf("after one failed check: health %+v, want ok with one failure (%s) since the verification", hl, tc.code)
			}
			if evs := h.healthEvents(c.ID); len(evs) != 0 {
				t.Fatalf("health events %v after one failed check, want none", evs)
			}
			got := h.recheck(c, tc.report)
			hl := got.Health
			if hl.Failures != 2 {
				t.Errorf("failures %d, want 2", hl.Failures)
			}
			if hl.Status != credential.HealthDegraded || hl.Problem.Code != tc.code || hl.Problem.Hint != tc.hint ||
				hl.Problem.ProviderError != tc.pe || hl.Problem.Message == "" || !hl.CheckedAt.Equal(h.fake.Clock.Now()) || !hl.Since.Equal(h.fake.Clock.Now()) {
				t.Fatalf("health %+v, want degraded %s/%s/%s", hl, tc.code, tc.hint, tc.pe)
			}
			if len(hl.Checks) != len(tc.report.Checks) {
				t.Fatalf("checks %+v, want the probe's %d", hl.Checks, len(tc.report.Checks))
			}
			h.stillVerified(got)
			if got.LastError != (credential.Problem{}) {
				t.Errorf("last error %+v: health has its own problem", got.LastError)
			}
			if diff := cmp.Diff([]string{"ok>degraded:" + tc.code}, h.healthEvents(c.ID)); diff != "" {
				t.Errorf("health events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHealthRecoversAndOnlyChangesMakeEvents: ok, ok, failed, failed, ok, ok is ok, ok,
// suspected, degraded, ok, ok: two health events; a fresh token after a 403; the
// transition log as it was.
func TestHealthRecoversAndOnlyChangesMakeEvents(t *testing.T) {
	h := newHealthFixture(t, 0)
	c := h.Verified()
	ok, revoked := report("pass", "pass", "pass", "pass"), report("403", "403", "403", "skip")
	var tokens []bool
	var degradedSince time.Time
	for i, r := range []credential.ProbeReport{ok, ok, revoked, revoked, ok, ok} {
		got := h.probe(c, r)
		tokens = append(tokens, h.fake.Prober.Targets()[0].FreshToken)
		want := credential.HealthOK
		if i == 3 {
			want = credential.HealthDegraded
		}
		if got.Health.Status != want || got.Health.Failures != []int{0, 0, 1, 2, 0, 0}[i] {
			t.Fatalf("check %d: %s after %d failures, want %s", i, got.Health.Status, got.Health.Failures, want)
		}
		switch i {
		case 2:
			degradedSince = got.Health.Since
		case 3:
			if !got.Health.Since.Equal(got.Health.CheckedAt) || got.Health.Since.Equal(degradedSince) {
				t.Errorf("degraded since %v, want this check's time %v", got.Health.Since, got.Health.CheckedAt)
			}
		case 4:
			if got.Health.Problem != (credential.Problem{}) || !got.Health.Since.Equal(got.Health.CheckedAt) {
				t.Errorf("recovered health %+v: want no problem, ok since this check", got.Health)
			}
		}
		h.stillVerified(got)
	}
	if diff := cmp.Diff([]bool{false, false, false, true, true, false}, tokens); diff != "" {
		t.Errorf("fresh token per check (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ok>degraded:role_not_sufficient", "degraded>ok:"}, h.healthEvents(c.ID)); diff != "" {
		t.Errorf("health events (-want +got):\n%s", diff)
	}
}

// TestHealthStaleAndDuplicateJobs: a job delivered twice, a job issued before the last
// check, a job of another generation, and duplicates delivered at once each check at most
// once.
func TestHealthStaleAndDuplicateJobs(t *testing.T) {
	h := newHealthFixture(t, 0)
	c := h.Verified()
	h.fake.Prober.Script(report("403", "403", "403", "skip"))
	job := credential.Job{Kind: credential.JobHealthProbe, OrgID: "org", CredentialID: c.ID, Generation: c.Generation, IssuedAt: h.fake.Clock.Now()}
	h.fake.Clock.Advance(time.Second)
	h.Run(job)
	first := h.recheck(c, report("403", "403", "403", "skip"))
	if first.Health.Status != credential.HealthDegraded {
		t.Fatalf("health %+v after two failed checks", first.Health)
	}
	h.fake.Clock.Advance(time.Second)
	h.Run(job) // delivered again
	stale := job
	stale.IssuedAt = job.IssuedAt.Add(-time.Minute)
	h.Run(stale) // issued by an older sweep
	other := job
	other.Generation++
	other.IssuedAt = h.fake.Clock.Now()
	h.Run(other) // another generation
	if n := len(h.fake.Prober.Targets()); n != 1 {
		t.Fatalf("probed %d times since the re-check, want once (the re-check)", n)
	}
	if got := h.Get(c.ID); !got.Health.CheckedAt.Equal(first.Health.CheckedAt) || got.Revision != first.Revision {
		t.Fatalf("a dropped job wrote: checked %v revision %d, want %v %d", got.Health.CheckedAt, got.Revision, first.Health.CheckedAt, first.Revision)
	}

	// Six deliveries of one job at once: each may probe, one result lands, one event.
	h.fake.Prober.Script(report("pass", "pass", "pass", "pass"))
	dup := credential.Job{Kind: credential.JobHealthProbe, OrgID: "org", CredentialID: c.ID, Generation: c.Generation, IssuedAt: h.fake.Clock.Now()}
	h.fake.Clock.Advance(time.Second)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() { h.Run(dup) })
	}
	wg.Wait()
	got := h.Get(c.ID)
	if got.Health.Status != credential.HealthOK || got.Revision != first.Revision+1 {
		t.Fatalf("after duplicates: %s at revision %d, want ok written once (revision %d)", got.Health.Status, got.Revision, first.Revision+1)
	}
	if diff := cmp.Diff([]string{"ok>degraded:role_not_sufficient", "degraded>ok:"}, h.healthEvents(c.ID)); diff != "" {
		t.Errorf("health events (-want +got):\n%s", diff)
	}
	h.stillVerified(got)
}

// TestHealthWriteRaces: an unrelated write during the probe makes the result's write
// conflict; it is written again on the fresh row. A delete during the probe ends the job
// quietly.
func TestHealthWriteRaces(t *testing.T) {
	h := newHealthFixture(t, 0)
	ctx := context.Background()
	c := h.Verified()
	h.probe(c, report("403", "403", "403", "skip"))
	h.fake.Prober.During(func() {
		if _, err := h.Domain.Onboarding.SetOrgDefault(ctx, "org", c.ID); err != nil {
			t.Error(err)
		}
	})
	got := h.recheck(c, report("403", "403", "403", "skip"))
	if got.Health.Status != credential.HealthDegraded {
		t.Fatalf("health %+v after a racing write, want degraded", got.Health)
	}
	if def, err := h.fake.Store.OrgDefault(ctx, "org"); err != nil || def != c.ID {
		t.Fatalf("org default %q, %v: the racing write was lost", def, err)
	}
	if diff := cmp.Diff([]string{"ok>degraded:role_not_sufficient"}, h.healthEvents(c.ID)); diff != "" {
		t.Errorf("health events (-want +got):\n%s", diff)
	}

	d := h.Verified()
	h.fake.Prober.During(func() {
		if err := h.Domain.Onboarding.Delete(ctx, "org", d.ID); err != nil {
			t.Error(err)
		}
	})
	h.fake.Prober.Script(report("pass", "pass", "pass", "pass"))
	h.fake.Clock.Advance(time.Second)
	h.Run(credential.Job{Kind: credential.JobHealthProbe, OrgID: "org", CredentialID: d.ID, Generation: d.Generation, IssuedAt: h.fake.Clock.Now()}) // fails the test on an error
	if _, err := h.fake.Store.Get(ctx, "org", d.ID); err == nil {
		t.Fatal("the deleted credential came back")
	}
	h.fake.Prober.During(nil)
	// A job for a credential deleted before it runs probes nothing.
	before := len(h.fake.Prober.Targets())
	h.Run(credential.Job{Kind: credential.JobHealthProbe, OrgID: "org", CredentialID: d.ID, Generation: d.Generation, IssuedAt: h.fake.Clock.Now()})
	if len(h.fake.Prober.Targets()) != before {
		t.Fatal("probed a deleted credential")
	}
}

// TestHealthSkipsUnverified: the sweep schedules nothing for credentials that are not
// verified, and a health job that finds one not verified probes nothing.
func TestHealthSkipsUnverified(t *testing.T) {
	h := newHealthFixture(t, 0)
	ctx := context.Background()
	draft, err := h.Domain.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "draft", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
	if err != nil {
		t.Fatal(err)
	}
	pendingID, _ := h.AtStorage() // access_pending; its probe job is left alone
	n, err := h.Domain.Health.SweepHealth(ctx)
	if err != nil || n != 0 {
		t.Fatalf("sweep scheduled %d, %v; want none", n, err)
	}
	for _, id := range []string{draft.ID, pendingID} {
		c := h.Get(id)
		h.Run(credential.Job{Kind: credential.JobHealthProbe, OrgID: "org", CredentialID: id, Generation: c.Generation, IssuedAt: h.fake.Clock.Now()})
		if after := h.Get(id); after.Revision != c.Revision || after.Health.Status != "" {
			t.Errorf("%s credential: a health job wrote it", c.State)
		}
	}
	if n := len(h.fake.Prober.Targets()); n != 0 {
		t.Fatalf("probed %d times, want never", n)
	}
}

// TestHealthSweepSpread: the probes of one sweep are spread within the configured bound,
// each credential at the same point every sweep, and each job's deadline is when it is due.
func TestHealthSweepSpread(t *testing.T) {
	const spread = 2 * time.Minute
	h := newHealthFixture(t, spread)
	ids := map[string]bool{}
	for range 5 {
		ids[h.Verified().ID] = true
	}
	ctx := context.Background()
	sweep := func() map[string]time.Duration {
		t.Helper()
		h.fake.Scheduler.Forget()
		n, err := h.Domain.Health.SweepHealth(ctx)
		if err != nil || n != len(ids) {
			t.Fatalf("sweep scheduled %d, %v; want %d", n, err, len(ids))
		}
		out := map[string]time.Duration{}
		for _, sc := range h.fake.Scheduler.History() {
			job, d := sc.Job, sc.Delay
			if !ids[job.CredentialID] || d < 0 || d >= spread || !job.Deadline.Equal(job.IssuedAt.Add(d)) {
				t.Errorf("job %+v with delay %v: want a verified credential due within %v", job, d, spread)
			}
			out[job.CredentialID] = d
		}
		return out
	}
	first := sweep()
	h.fake.Clock.Advance(15 * time.Minute)
	if diff := cmp.Diff(first, sweep()); diff != "" {
		t.Errorf("a credential's point in the spread moved between sweeps (-first +second):\n%s", diff)
	}
	distinct := map[time.Duration]bool{}
	for _, d := range first {
		distinct[d] = true
	}
	if len(distinct) < 2 {
		t.Errorf("delays %v: the sweep did not spread its probes", first)
	}
}

// TestHealthPassingFaultRaisesNoAlarm: one failed check (storage busy for a moment) whose
// re-check passes never makes the credential degraded: no health event, the suspicion
// cleared, the status ok all along.
func TestHealthPassingFaultRaisesNoAlarm(t *testing.T) {
	h := newHealthFixture(t, 0)
	c := h.Verified()
	busy := credential.ProbeReport{Checks: []credential.CheckResult{{Name: credential.CheckUserDelegationKey, Result: credential.ResultFail,
		Status: 503, Code: "ServerBusy", RequestID: "st-req"}}}
	h.fake.Scheduler.Forget()
	first := h.probe(c, busy)
	if first.Health.Status != credential.HealthOK || first.Health.Failures != 1 || first.Health.Problem.ProviderError != "ServerBusy" {
		t.Fatalf("after the failed check: %+v, want ok with the suspicion shown", first.Health)
	}
	got := h.recheck(c, report("pass", "pass", "pass", "pass"))
	if got.Health.Status != credential.HealthOK || got.Health.Failures != 0 || got.Health.Problem != (credential.Problem{}) ||
		!got.Health.Since.Equal(c.VerifiedAt) {
		t.Fatalf("after the re-check passed: %+v, want ok since the verification, nothing suspected", got.Health)
	}
	if evs := h.healthEvents(c.ID); len(evs) != 0 {
		t.Fatalf("health events %v, want none", evs)
	}
}
