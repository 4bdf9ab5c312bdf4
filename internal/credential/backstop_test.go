package credential_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// refuse makes the fake scheduler refuse the window's first job (attempt 0, no delay)
// when first is set, and every backstop (attempt 0, delayed) when backstop is: the queue
// failing at those two moments of a submit.
func (f *fixture) refuse(first, backstop bool) {
	f.fake.Scheduler.Refuse(func(job credential.Job, delay time.Duration) error {
		if job.Attempt == 0 && (job.Kind == credential.JobSPPoll || job.Kind == credential.JobAccessProbe) &&
			(delay == 0 && first || delay > 0 && backstop) {
			return errors.New("queue unavailable")
		}
		return nil
	})
}

// newBackstopFixture is the fixture with the backstops queued, three seconds after their
// submit.
func newBackstopFixture(t *testing.T) *fixture {
	return newFixture(t, credential.Config{WindowBackstop: 3 * time.Second},
		func(p *credentialtest.Ports, fake *credentialtest.Fakes) { p.Scheduler = fake.Scheduler })
}

// next takes the job of kind due first, delayed or not.
func (f *fixture) next(kind credential.JobKind) credential.Job {
	f.t.Helper()
	job, ok := f.fake.Scheduler.Next(kind)
	if !ok {
		f.t.Fatalf("no %s job queued", kind)
	}
	return job
}

// TestBackstopStartsAWindowWhoseFirstJobWasLost: the submit's write landed but its first
// job never reached the queue (the queue failed, or the process died in between): the
// submit still succeeds, and the backstop it queued before the write starts the window.
func TestBackstopStartsAWindowWhoseFirstJobWasLost(t *testing.T) {
	f := newBackstopFixture(t)
	ctx := context.Background()
	f.fake.Finder.Script(credentialtest.Found{ObjectID: "sp-object"})
	c, err := f.Domain.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "b1", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
	if err != nil {
		t.Fatal(err)
	}
	f.refuse(true, false)
	got, err := f.Domain.Onboarding.SubmitTenant(ctx, "org", c.ID, credentialtest.Tenant, "r1")
	if err != nil {
		t.Fatalf("submit with its first job lost: %v, want success (the backstop starts the window)", err)
	}
	job := f.next(credential.JobSPPoll)
	if job.Generation != got.Generation || job.Attempt != 0 {
		t.Fatalf("backstop %+v, want attempt 0 of generation %d", job, got.Generation)
	}
	f.Run(job)
	if c := f.Get(c.ID); c.State != credential.StateSPVerified {
		t.Fatalf("after the backstop: %s, want sp_verified", c.State)
	}

	got, err = f.Domain.Onboarding.SubmitStorage(ctx, "org", c.ID, credentialtest.Storage, "r2")
	if err != nil {
		t.Fatalf("storage submit with its first job lost: %v", err)
	}
	f.fake.Prober.Script(report("pass", "pass", "pass", "pass"))
	job = f.next(credential.JobAccessProbe)
	if job.Generation != got.Generation || job.Attempt != 0 {
		t.Fatalf("probe backstop %+v, want attempt 0 of generation %d", job, got.Generation)
	}
	f.Run(job)
	if c := f.Get(c.ID); c.State != credential.StateVerified {
		t.Fatalf("after the probe's backstop: %s, want verified", c.State)
	}
}

// TestBackstopAfterTheFirstJobChangesNothing: when the first job ran, the backstop finds
// its attempt counted and is dropped: no write, no second chain.
func TestBackstopAfterTheFirstJobChangesNothing(t *testing.T) {
	f := newBackstopFixture(t)
	f.fake.Finder.Script(credentialtest.Found{Err: provider(credential.ErrSPNotFound, "AADSTS700016")})
	id := f.Create("b2").ID
	if _, err := f.Domain.Onboarding.SubmitTenant(context.Background(), "org", id, credentialtest.Tenant, "r1"); err != nil {
		t.Fatal(err)
	}
	f.Run(f.next(credential.JobSPPoll))
	before := f.Get(id)
	followUp := f.next(credential.JobSPPoll)
	backstop := f.next(credential.JobSPPoll)
	if followUp.Attempt != 1 || backstop.Attempt != 0 || backstop.Generation != before.Generation {
		t.Fatalf("queue held %+v then %+v, want the follow-up (attempt 1) then the backstop (attempt 0)", followUp, backstop)
	}
	f.Run(backstop)
	after := f.Get(id)
	if after.Revision != before.Revision || after.Progress.Attempts != 1 {
		t.Fatalf("the backstop wrote: revision %d -> %d, attempts %d", before.Revision, after.Revision, after.Progress.Attempts)
	}
	if n := f.fake.Scheduler.Pending(credential.JobSPPoll); n != 0 {
		t.Fatalf("the backstop scheduled %d jobs, want none", n)
	}
}

// TestSubmitWithoutItsBackstopChangesNothing: when even the backstop cannot be queued, the
// submit fails before it writes; the credential is as it was.
func TestSubmitWithoutItsBackstopChangesNothing(t *testing.T) {
	f := newBackstopFixture(t)
	ctx := context.Background()
	c, err := f.Domain.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "b3", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
	if err != nil {
		t.Fatal(err)
	}
	f.refuse(false, true)
	if _, err := f.Domain.Onboarding.SubmitTenant(ctx, "org", c.ID, credentialtest.Tenant, "r1"); !errors.Is(err, credential.ErrUnavailable) {
		t.Fatalf("submit without its backstop: %v, want ErrUnavailable", err)
	}
	if got := f.Get(c.ID); got.State != credential.StateDraft || got.Generation != c.Generation || got.Revision != c.Revision {
		t.Fatalf("after the failed submit: %s generation %d revision %d, want draft %d %d", got.State, got.Generation, got.Revision, c.Generation, c.Revision)
	}
	if n := f.fake.Scheduler.Pending(credential.JobSPPoll); n != 0 {
		t.Fatalf("%d poll jobs after the failed submit, want none", n)
	}
}
