package credential_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

func TestSPPollFoundAfterNotYet(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	f.fake.Finder.Script(credentialtest.Found{Err: provider(credential.ErrSPNotFound, "AADSTS700016")}, credentialtest.Found{Err: provider(credential.ErrUnavailable, "AADSTS70021")}, credentialtest.Found{ObjectID: "sp-object"})
	id, job := f.Submitted()
	f.Run(job)
	c := f.Get(id)
	if c.State != credential.StateSPPending || c.Progress.Attempts != 1 || c.Progress.Status != credential.StatusPolling {
		t.Fatalf("after not yet: %s attempts %d status %s", c.State, c.Progress.Attempts, c.Progress.Status)
	}
	next := f.Single(credential.JobSPPoll)
	if next.Attempt != 1 || next.Generation != job.Generation {
		t.Fatalf("next job %+v", next)
	}
	f.Run(next)
	f.Run(f.Single(credential.JobSPPoll))
	c = f.Get(id)
	if c.State != credential.StateSPVerified || c.SPObjectID != "sp-object" || c.Progress.Attempts != 3 || c.LastError != (credential.Problem{}) {
		t.Fatalf("after found: %+v", c)
	}
	if jobs := f.jobs(credential.JobSPPoll); len(jobs) != 0 {
		t.Fatalf("the chain went on after found: %+v", jobs)
	}
	want := []credential.Event{credential.EventCreated, credential.EventSubmitTenant, credential.EventSPFound}
	if diff := cmp.Diff(want, f.Causes(id)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

func TestSPPollTenantNotFound(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	f.fake.Finder.Script(credentialtest.Found{Err: provider(credential.ErrTenantNotFound, "AADSTS90002")})
	id, job := f.Submitted()
	f.Run(job)
	c := f.Get(id)
	if c.State != credential.StateDraft || c.LastError.ProviderError != "AADSTS90002" || c.LastError.Code != "tenant_not_found" || c.LastError.RequestID != "entra-req" {
		t.Fatalf("got %s %+v", c.State, c.LastError)
	}
	if len(f.jobs(credential.JobSPPoll)) != 0 {
		t.Fatal("polling went on for an unknown tenant")
	}
}

func TestSPPollFederationErrorKeepsPolling(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	f.fake.Finder.Script(credentialtest.Found{Err: provider(credential.ErrFederation, "AADSTS700213")})
	id, job := f.Submitted()
	f.Run(job)
	c := f.Get(id)
	if c.State != credential.StateSPPending || c.LastError.Code != "federation_error" || c.LastError.ProviderError != "AADSTS700213" {
		t.Fatalf("got %s %+v", c.State, c.LastError)
	}
	if f.Single(credential.JobSPPoll).Attempt != 1 {
		t.Fatal("no next poll")
	}
}

func TestSPPollDeadline(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	f.fake.Finder.Script(credentialtest.Found{Err: provider(credential.ErrSPNotFound, "AADSTS700016")})
	id, job := f.Submitted()
	f.fake.Clock.Advance(10 * time.Minute)
	f.Run(job)
	c := f.Get(id)
	if c.State != credential.StateDraft || c.LastError.Message != credential.SPNotFoundMessage || c.Progress.Status != credential.StatusNotFound {
		t.Fatalf("got %s %+v", c.State, c.LastError)
	}
	if len(f.jobs(credential.JobSPPoll)) != 0 {
		t.Fatal("polling went on past the deadline")
	}
}

// TestReplayedAndStaleJobsChangeNothing: a job delivered twice, and a job of a window
// that was restarted, neither transition nor schedule anything.
func TestReplayedAndStaleJobsChangeNothing(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	f.fake.Finder.Script(credentialtest.Found{Err: provider(credential.ErrSPNotFound, "AADSTS700016")})
	id, job := f.Submitted()
	f.Run(job)
	f.Run(job) // replay
	if jobs := f.jobs(credential.JobSPPoll); len(jobs) != 1 {
		t.Fatalf("replay scheduled again: %+v", jobs)
	}
	if c := f.Get(id); c.Progress.Attempts != 1 {
		t.Fatalf("replay counted: %d attempts", c.Progress.Attempts)
	}
	// Restart the window: the old generation's job is dead.
	if _, err := f.Domain.Onboarding.SubmitTenant(context.Background(), "org", id, credentialtest.Tenant, "r3"); err != nil {
		t.Fatal(err)
	}
	fresh := f.Single(credential.JobSPPoll)
	f.fake.Finder.Script(credentialtest.Found{ObjectID: "sp-object"})
	stale := job
	stale.Attempt = 1
	f.Run(stale)
	if c := f.Get(id); c.State != credential.StateSPPending || c.Progress.Attempts != 0 {
		t.Fatalf("stale job acted: %s attempts %d", c.State, c.Progress.Attempts)
	}
	f.Run(fresh)
	f.Run(fresh) // replay after the transition
	if c := f.Get(id); c.State != credential.StateSPVerified {
		t.Fatalf("state %s", c.State)
	}
	want := []credential.Event{credential.EventCreated, credential.EventSubmitTenant, credential.EventSubmitTenant, credential.EventSPFound}
	if diff := cmp.Diff(want, f.Causes(id)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	// A job for a deleted credential is done, not an error.
	if err := f.Domain.Onboarding.Delete(context.Background(), "org", id); err != nil {
		t.Fatal(err)
	}
	f.Run(fresh)
}

func TestConcurrentDuplicateDeliveries(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	f.fake.Finder.Script(credentialtest.Found{Err: provider(credential.ErrSPNotFound, "AADSTS700016")})
	id, job := f.Submitted()
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() { defer wg.Done(); f.Run(job) }()
	}
	wg.Wait()
	if c := f.Get(id); c.Progress.Attempts != 1 {
		t.Fatalf("%d attempts counted for one job", c.Progress.Attempts)
	}
	if jobs := f.jobs(credential.JobSPPoll); len(jobs) != 1 {
		t.Fatalf("duplicates scheduled %d follow-ups", len(jobs))
	}
}

func TestProbeWaitingThenConnected(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	id, job := f.AtStorage()
	f.fake.Prober.Script(report("403", "403", "403", "skip"), report("pass", "pass", "pass", "pass"))
	f.Run(job)
	c := f.Get(id)
	if c.State != credential.StateAccessPending || c.Progress.Status != credential.StatusWaitingForRolePropagation ||
		c.LastError.ProviderError != "AuthorizationPermissionMismatch" || len(c.Progress.Checks) != 4 || c.Progress.Checks[0].Result != "fail" {
		t.Fatalf("after 403: %s %s %+v %+v", c.State, c.Progress.Status, c.LastError, c.Progress.Checks)
	}
	f.fake.Clock.Advance(5 * time.Second)
	f.Run(f.Single(credential.JobAccessProbe))
	c = f.Get(id)
	if c.State != credential.StateVerified || c.VerifiedAt.IsZero() || c.Progress.Status != credential.StatusConnected {
		t.Fatalf("after grant: %s %s", c.State, c.Progress.Status)
	}
	targets := f.fake.Prober.Targets()
	if targets[0].FreshToken || !targets[1].FreshToken {
		t.Fatalf("fresh token flags %v %v: want a fresh token only after the 403", targets[0].FreshToken, targets[1].FreshToken)
	}
	if targets[0].Prefix != "p" || targets[0].Account != "bloblake" || targets[0].TenantID != credentialtest.Tenant.TenantID {
		t.Fatalf("target %+v", targets[0])
	}
}

func TestProbeTerminalAfterGrace(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	id, job := f.AtStorage()
	f.fake.Prober.Script(report("pass", "403", "pass", "skip"))
	f.fake.Clock.Advance(2 * time.Minute)
	f.Run(job)
	c := f.Get(id)
	if c.State != credential.StateSPVerified || c.LastError.Hint != credential.HintReaderRole || c.Progress.Status != credential.StatusRoleNotSufficient {
		t.Fatalf("got %s %+v", c.State, c.LastError)
	}
	if len(f.jobs(credential.JobAccessProbe)) != 0 {
		t.Fatal("probing went on after a terminal outcome")
	}
}

func TestProbeTimeoutThenSaveUnverified(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	id, job := f.AtStorage()
	busy := credential.ProbeReport{Checks: []credential.CheckResult{{Name: credential.CheckUserDelegationKey, Result: credential.ResultFail, Status: 503, Code: "ServerBusy", RequestID: "st-req"}}}
	f.fake.Prober.Script(report("403", "403", "403", "skip"), busy)
	f.fake.Clock.Advance(30 * time.Second)
	f.Run(job)
	next := f.Single(credential.JobAccessProbe)
	if _, err := f.Domain.Onboarding.SaveUnverified(context.Background(), "org", id, "r"); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("save before the deadline: %v", err)
	}
	f.fake.Clock.Advance(5 * time.Minute)
	f.Run(next)
	c := f.Get(id)
	if c.State != credential.StateAccessPending || c.Progress.Status != credential.StatusTimedOut || c.LastError.ProviderError != "ServerBusy" {
		t.Fatalf("got %s %s %+v", c.State, c.Progress.Status, c.LastError)
	}
	if len(f.jobs(credential.JobAccessProbe)) != 0 {
		t.Fatal("probing went on past the deadline")
	}
	if c, err := f.Domain.Onboarding.SaveUnverified(context.Background(), "org", id, "r"); err != nil || c.State != credential.StateUnverifiedSaved {
		t.Fatalf("save anyway: %v", err)
	}
}

// TestProbeNoRoleWaitsUntilTheDeadline is the contract's no-role row end to end on the
// domain: no grant at all keeps the window waiting (hint no_role and the role check after
// the grace) until the deadline, times out keeping the hint, Save anyway is refused before
// the deadline with a message naming the state, the rule and the deadline, then gives
// unverified_saved; the first SAS after the role arrives promotes the credential.
func TestProbeNoRoleWaitsUntilTheDeadline(t *testing.T) {
	f := newFixture(t, credential.Config{AccessProbeInterval: 5 * time.Second}, nil)
	ctx := context.Background()
	id, job := f.AtStorage()
	submitted := f.fake.Clock.Now()
	f.fake.Prober.Script(report("403", "403", "403", "skip"))
	var hinted time.Duration // when the no_role hint first showed
	for attempts := 1; ; attempts++ {
		f.Run(job)
		c := f.Get(id)
		if c.State != credential.StateAccessPending {
			t.Fatalf("attempt %d at %s: state %s (%s: %s)", attempts, f.fake.Clock.Now().Sub(submitted), c.State, c.Progress.Status, c.LastError.Message)
		}
		if c.Progress.Status == credential.StatusTimedOut {
			if took := f.fake.Clock.Now().Sub(submitted); took != credential.DefaultAccessProbeWindow {
				t.Errorf("timed out %s after the submit, want the window's %s", took, credential.DefaultAccessProbeWindow)
			}
			if c.LastError.Hint != credential.HintNoRole || c.LastError.Code != "timed_out" || c.LastError.ProviderError != "AuthorizationPermissionMismatch" ||
				!strings.Contains(c.LastError.Message, "az role assignment list --assignee sp-object --all") {
				t.Errorf("timed out with %+v, want the no_role hint and the role check kept", c.LastError)
			}
			break
		}
		if c.Progress.Status != credential.StatusWaitingForRolePropagation {
			t.Fatalf("attempt %d: status %s", attempts, c.Progress.Status)
		}
		elapsed := f.fake.Clock.Now().Sub(submitted)
		switch {
		case elapsed < credential.DefaultPropagationGrace && c.LastError.Hint != "":
			t.Fatalf("hint %q within the grace", c.LastError.Hint)
		case elapsed >= credential.DefaultPropagationGrace && c.LastError.Hint != credential.HintNoRole:
			t.Fatalf("after the grace (%s): hint %q, want no_role", elapsed, c.LastError.Hint)
		case elapsed >= credential.DefaultPropagationGrace && hinted == 0:
			hinted = elapsed
			if !strings.Contains(c.LastError.Message, credential.RoleCheckCommand("sp-object")) {
				t.Errorf("no-role message %q lacks the role check", c.LastError.Message)
			}
			_, err := f.Domain.Onboarding.SaveUnverified(ctx, "org", id, "r")
			var te *credential.TransitionError
			deadline := c.Progress.Deadline.UTC().Format(time.RFC3339)
			if !errors.As(err, &te) || !strings.Contains(err.Error(), `state "access_pending"`) ||
				!strings.Contains(err.Error(), "allowed only in state access_pending after the access probe's deadline ("+deadline+")") {
				t.Fatalf("save-unverified before the deadline: %v", err)
			}
		}
		scheduled := f.fake.Scheduler.History()
		job = f.Single(credential.JobAccessProbe)
		f.fake.Clock.Advance(scheduled[len(scheduled)-1].Delay) // delivered when due
	}
	if hinted != credential.DefaultPropagationGrace {
		t.Errorf("the no_role hint first showed %s after the submit, want at the grace's end (%s)", hinted, credential.DefaultPropagationGrace)
	}
	if n := len(f.jobs(credential.JobAccessProbe)); n != 0 {
		t.Fatalf("%d probes queued after the time-out", n)
	}
	c, err := f.Domain.Onboarding.SaveUnverified(ctx, "org", id, "r")
	if err != nil || c.State != credential.StateUnverifiedSaved {
		t.Fatalf("save anyway: %v", err)
	}
	if _, err := f.Domain.Issuance.RegisterWorkspace(ctx, "org", "ws", id); err != nil {
		t.Fatal(err)
	}
	// The role has not arrived: the SAS fails and the credential stays unverified_saved.
	f.fake.Signer.Inject(credentialtest.Fault{Times: 1, Err: &credential.ProviderError{Code: "AuthorizationPermissionMismatch", Status: 403}})
	if _, err := f.Domain.Issuance.IssueSAS(ctx, "org", "ws", "t", "r"); err == nil {
		t.Fatal("a SAS without the role")
	}
	if c := f.Get(id); c.State != credential.StateUnverifiedSaved {
		t.Fatalf("a failed SAS moved the credential to %s", c.State)
	}
	if _, err := f.Domain.Issuance.IssueSAS(ctx, "org", "ws", "t", "r"); err != nil {
		t.Fatal(err)
	}
	if c := f.Get(id); c.State != credential.StateVerified || c.VerifiedAt.IsZero() {
		t.Fatalf("after the first SAS: %s", c.State)
	}
}

func TestCleanUpApp(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	ctx := context.Background()
	c, err := f.Domain.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "c1", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
	if err != nil {
		t.Fatal(err)
	}
	f.jobs(credential.JobAppCleanup) // the create's guard, not this test's
	job := credential.Job{Kind: credential.JobAppCleanup, OrgID: "org", CredentialID: c.ID, AppObjectID: c.App.ObjectID}
	f.Run(job)
	if len(f.fake.Directory.Deleted()) != 0 {
		t.Fatal("deleted the app of a live credential")
	}
	if err := f.Domain.Onboarding.Delete(ctx, "org", c.ID); err != nil {
		t.Fatal(err)
	}
	f.Run(f.Single(credential.JobAppCleanup))
	if len(f.fake.Directory.Deleted()) != 1 || f.fake.Directory.Deleted()[0] != c.App.ObjectID {
		t.Fatalf("deleted %v", f.fake.Directory.Deleted())
	}
}

// TestGraceAsLongAsWindowTimesOut: when the grace spans the whole window, a 403 at the
// deadline is a time-out, not a terminal "role not sufficient".
func TestGraceAsLongAsWindowTimesOut(t *testing.T) {
	f := newFixture(t, credential.Config{AccessProbeWindow: time.Minute, PropagationGrace: time.Minute}, nil)
	id, job := f.AtStorage()
	f.fake.Prober.Script(report("403", "403", "403", "skip"))
	f.fake.Clock.Advance(time.Minute)
	f.Run(job)
	if c := f.Get(id); c.State != credential.StateAccessPending || c.Progress.Status != credential.StatusTimedOut {
		t.Fatalf("got %s %s", c.State, c.Progress.Status)
	}
}

// TestCleanUpLeavesTheAppOfAFailedDelete: a delete that never removed the row leaves the
// app in place once the job has looked long enough.
func TestCleanUpLeavesTheAppOfAFailedDelete(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	c := f.Create("kept")
	job := credential.Job{Kind: credential.JobAppCleanup, OrgID: "org", CredentialID: c.ID, AppObjectID: c.App.ObjectID,
		Deadline: f.fake.Clock.Now().Add(credential.AppCleanupSettle)}
	f.Run(job)
	if again, ok := f.fake.Scheduler.Next(credential.JobAppCleanup); !ok || again.AppObjectID != job.AppObjectID {
		t.Fatal("within the settle time the job did not look again")
	}
	if h := f.fake.Scheduler.History(); h[len(h)-1].Delay != credential.AppCleanupRecheck {
		t.Fatalf("looked again after %v, want %v", h[len(h)-1].Delay, credential.AppCleanupRecheck)
	}
	f.fake.Clock.Advance(credential.AppCleanupSettle + time.Second)
	f.Run(job)
	if len(f.fake.Directory.Deleted()) != 0 {
		t.Fatalf("the app of a credential that still exists was deleted: %v", f.fake.Directory.Deleted())
	}
	if j, ok := f.fake.Scheduler.Next(credential.JobAppCleanup); ok && j.AppObjectID != "" {
		t.Fatalf("after the settle time the job looked again: %+v", j)
	}
}

// TestRedeliveryReschedulesLostFollowUp: an attempt is saved, then its follow-up cannot be
// scheduled (storage went away, or the worker died in between). The message comes back;
// that redelivery finds its attempt already counted and schedules the follow-up again, so
// the window goes on. A first delivery of a replayed message does not, so duplicates do
// not multiply; nor does a redelivery after the window timed out.
func TestRedeliveryReschedulesLostFollowUp(t *testing.T) {
	for _, kind := range []credential.JobKind{credential.JobSPPoll, credential.JobAccessProbe} {
		t.Run(string(kind), func(t *testing.T) {
			f := newFixture(t, credential.Config{}, nil)
			var id string
			var job credential.Job
			if kind == credential.JobSPPoll {
				id, job = f.Submitted()
			} else {
				id, job = f.AtStorage()
			}
			f.fake.Finder.Script(credentialtest.Found{Err: provider(credential.ErrSPNotFound, "AADSTS700016")})
			f.fake.Prober.Script(report("403", "403", "403", "skip"))
			job.Delivery = 1
			f.fake.Scheduler.Inject(credentialtest.Fault{Times: 1, Err: credential.ErrUnavailable})
			if err := f.Domain.Runner.Run(context.Background(), job); !errors.Is(err, credential.ErrUnavailable) {
				t.Fatalf("run with the queue failing: %v, want it retried", err)
			}
			if c := f.Get(id); c.Progress.Attempts != 1 || f.fake.Scheduler.Pending(kind) != 0 {
				t.Fatalf("setup: attempts %d, %d queued", c.Progress.Attempts, f.fake.Scheduler.Pending(kind))
			}
			f.Run(job) // a first delivery of the same message: a duplicate, not a retry
			if n := f.fake.Scheduler.Pending(kind); n != 0 {
				t.Fatalf("a duplicate first delivery scheduled %d jobs", n)
			}
			job.Delivery = 2
			f.Run(job)
			next := f.Single(kind)
			if next.Attempt != 1 || next.Generation != job.Generation {
				t.Fatalf("rescheduled job %+v, want attempt 1 of generation %d", next, job.Generation)
			}
			// The window goes on from there, and times out as usual; a redelivery of its
			// last attempt then schedules nothing.
			f.fake.Clock.Advance(10 * time.Minute)
			next.Delivery = 1
			f.Run(next)
			c := f.Get(id)
			if c.Progress.Attempts != 2 || f.fake.Scheduler.Pending(kind) != 0 {
				t.Fatalf("after the deadline: %s status %s attempts %d, %d queued", c.State, c.Progress.Status, c.Progress.Attempts, f.fake.Scheduler.Pending(kind))
			}
			next.Delivery = 3
			f.Run(next)
			if n := f.fake.Scheduler.Pending(kind); n != 0 {
				t.Fatalf("a redelivery after the window ended scheduled %d jobs", n)
			}
		})
	}
}
