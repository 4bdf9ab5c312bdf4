package credential_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// instances are two instances of the domain, each with its own remembered rows, on one
// set of in-memory ports: what two handler processes on one table and queue are.
type instances struct {
	t    *testing.T
	fake *credentialtest.Fakes
	a, b *credentialtest.Domain
}

func newInstances(t *testing.T, readEveryRow bool) *instances {
	t.Helper()
	fake := credentialtest.NewFakes()
	p := fake.Ports()
	p.Scheduler = credentialtest.WithoutBackstops(fake.Scheduler)
	cfg := credential.Config{SPPollInterval: time.Second, AccessProbeInterval: time.Second}
	wire := func() *credentialtest.Domain {
		return credentialtest.Wire(t, credentialtest.Setup{Config: cfg, Ports: p, Now: fake.Clock.Now, ReadEveryRow: readEveryRow})
	}
	return &instances{t: t, fake: fake, a: wire(), b: wire()}
}

func (in *instances) create(d *credentialtest.Domain, name string) *credential.Credential {
	in.t.Helper()
	c, err := d.Onboarding.Create(context.Background(), "org", credential.CreateInput{Name: name,
		StorageType: credential.StorageTypeAzureFederated, BasePath: "az://bloblake/lakedata/p"}, "r0")
	if err != nil {
		in.t.Fatal(err)
	}
	return c
}

func (in *instances) run(d *credentialtest.Domain, job credential.Job) {
	in.t.Helper()
	if err := d.Runner.Run(context.Background(), job); err != nil {
		in.t.Fatalf("run %+v: %v", job, err)
	}
}

// submitTenant submits the customer's tenant of credential id on d.
func (in *instances) submitTenant(d *credentialtest.Domain, id string) {
	in.t.Helper()
	if _, err := d.Onboarding.SubmitTenant(context.Background(), "org", id, credentialtest.Tenant, "r1"); err != nil {
		in.t.Fatal(err)
	}
}

// single takes the one queued job of kind.
func (in *instances) single(kind credential.JobKind) credential.Job {
	in.t.Helper()
	jobs := in.fake.Scheduler.Take(kind)
	if len(jobs) != 1 {
		in.t.Fatalf("want one %s job, got %+v", kind, jobs)
	}
	return jobs[0]
}

func (in *instances) row(id string) *credential.Credential {
	in.t.Helper()
	c, err := in.fake.Store.Get(context.Background(), "org", id)
	if err != nil {
		in.t.Fatal(err)
	}
	return c
}

func (in *instances) causes(id string) []credential.Event {
	in.t.Helper()
	evs, err := in.fake.Store.Events(context.Background(), "org", id)
	if err != nil {
		in.t.Fatal(err)
	}
	var out []credential.Event
	for _, e := range evs {
		out = append(out, e.Cause)
	}
	return out
}

// TestOnboardingStartsFromRememberedRows: on one instance, an onboarding's submits and
// window attempts read no row: each starts from the row the step before it wrote (the
// create, a transition, an attempt that found nothing yet). Without remembered rows each
// of the six reads its row. Both end verified through the same transitions.
func TestOnboardingStartsFromRememberedRows(t *testing.T) {
	for _, tc := range []struct {
		name         string
		readEveryRow bool
		reads        int
	}{{"remembered", false, 0}, {"read every row", true, 6}} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInstances(t, tc.readEveryRow)
			ctx := context.Background()
			c := in.create(in.a, "prod")
			before := in.fake.Store.Calls("Get")
			in.fake.Finder.Script(credentialtest.Found{Err: credential.ErrSPNotFound}, credentialtest.Found{ObjectID: "sp-object"})
			in.fake.Prober.Script(credentialtest.Report("403", "skip", "skip", "skip"),
				credentialtest.Report("pass", "pass", "pass", "pass"))
			in.submitTenant(in.a, c.ID)
			in.run(in.a, in.single(credential.JobSPPoll)) // not installed yet
			in.run(in.a, in.single(credential.JobSPPoll)) // found
			if _, err := in.a.Onboarding.SubmitStorage(ctx, "org", c.ID, credentialtest.Storage, "r2"); err != nil {
				t.Fatal(err)
			}
			in.run(in.a, in.single(credential.JobAccessProbe)) // no role yet
			in.run(in.a, in.single(credential.JobAccessProbe)) // confirmed
			if reads := in.fake.Store.Calls("Get") - before; reads != tc.reads {
				t.Errorf("%d reads of the credential's row, want %d", reads, tc.reads)
			}
			if got := in.row(c.ID); got.State != credential.StateVerified || got.Progress.Attempts != 2 {
				t.Fatalf("ended %s after %d attempts, want verified after 2", got.State, got.Progress.Attempts)
			}
			want := []credential.Event{credential.EventCreated, credential.EventSubmitTenant, credential.EventSPFound,
				credential.EventSubmitStorage, credential.EventAccessConfirmed}
			if got := in.causes(c.ID); !slices.Equal(got, want) {
				t.Fatalf("transitions %v, want %v", got, want)
			}
		})
	}
}

// TestStaleRememberedRowsAnswerAsFreshReads: what one instance remembers goes stale when
// another instance writes the row; every command and job then acts as a fresh read would
// have made it act, at the cost of one read.
func TestStaleRememberedRowsAnswerAsFreshReads(t *testing.T) {
	ctx := context.Background()

	t.Run("a submit refused by the remembered state", func(t *testing.T) {
		// a remembers sp_pending; b's job finds the service principal. a's storage submit
		// is allowed, as on the row as it is.
		in := newInstances(t, false)
		c := in.create(in.a, "prod")
		in.submitTenant(in.a, c.ID)
		in.fake.Finder.Script(credentialtest.Found{ObjectID: "sp-object"})
		in.run(in.b, in.single(credential.JobSPPoll))
		windows := in.fake.Store.Calls("OpenWindow")
		got, err := in.a.Onboarding.SubmitStorage(ctx, "org", c.ID, credentialtest.Storage, "r2")
		if err != nil || got.State != credential.StateAccessPending {
			t.Fatalf("storage submit on a stale row: %v, %+v; want access_pending", err, got)
		}
		if n := in.fake.Store.Calls("OpenWindow") - windows; n != 1 {
			t.Errorf("%d index writes, want 1: the refusal on the stale row writes nothing", n)
		}
		in.single(credential.JobAccessProbe)
	})

	t.Run("a submit on a row deleted since", func(t *testing.T) {
		in := newInstances(t, false)
		c := in.create(in.a, "prod")
		if err := in.b.Onboarding.Delete(ctx, "org", c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := in.a.Onboarding.SubmitTenant(ctx, "org", c.ID, credentialtest.Tenant, "r1"); !errors.Is(err, credential.ErrNotFound) {
			t.Fatalf("tenant submit of a credential deleted on another instance: %v, want not found", err)
		}
	})

	t.Run("an attempt on a row another writer moved", func(t *testing.T) {
		// The window is as a remembers it, but the row's ETag moved (the health sweep, the
		// reconciler, an org-default mark): the attempt's write conflicts, and the attempt
		// is made again on a fresh read instead of ending the window's chain.
		in := newInstances(t, false)
		c := in.create(in.a, "prod")
		in.submitTenant(in.a, c.ID)
		moved := in.row(c.ID)
		moved.UpdatedAt = moved.UpdatedAt.Add(time.Millisecond)
		if err := in.fake.Store.Update(ctx, moved, nil); err != nil {
			t.Fatal(err)
		}
		in.fake.Finder.Script(credentialtest.Found{Err: credential.ErrSPNotFound})
		in.run(in.a, in.single(credential.JobSPPoll))
		if got := in.row(c.ID); got.Progress.Attempts != 1 {
			t.Fatalf("attempts %d after the attempt, want 1", got.Progress.Attempts)
		}
		if in.fake.Finder.Calls() != 2 {
			t.Errorf("the service principal was looked for %d times, want 2 (the attempt in vain, then on the fresh row)", in.fake.Finder.Calls())
		}
		next := in.single(credential.JobSPPoll)
		if next.Attempt != 1 {
			t.Fatalf("next job %+v, want the window's second attempt", next)
		}
		in.fake.Finder.Script(credentialtest.Found{ObjectID: "sp-object"})
		in.run(in.a, next)
		if got := in.row(c.ID); got.State != credential.StateSPVerified {
			t.Fatalf("state %s, want sp_verified", got.State)
		}
	})

	t.Run("a job of a window that moved on", func(t *testing.T) {
		// a remembers generation 1; b submits the tenant again (generation 2). The old
		// job, due on a's row, is found stale on the fresh one and changes nothing; the
		// new window goes on.
		in := newInstances(t, false)
		c := in.create(in.a, "prod")
		in.submitTenant(in.a, c.ID)
		old := in.single(credential.JobSPPoll)
		in.submitTenant(in.b, c.ID)
		in.fake.Finder.Script(credentialtest.Found{ObjectID: "sp-object"})
		in.run(in.a, old)
		got := in.row(c.ID)
		if got.State != credential.StateSPPending || got.Generation != old.Generation+1 || got.Progress.Attempts != 0 {
			t.Fatalf("the old window's job moved the credential: %s, generation %d, attempts %d", got.State, got.Generation, got.Progress.Attempts)
		}
		in.run(in.a, in.single(credential.JobSPPoll))
		if got := in.row(c.ID); got.State != credential.StateSPVerified {
			t.Fatalf("state %s after the new window's job, want sp_verified", got.State)
		}
		want := []credential.Event{credential.EventCreated, credential.EventSubmitTenant, credential.EventSubmitTenant, credential.EventSPFound}
		if got := in.causes(c.ID); !slices.Equal(got, want) {
			t.Fatalf("transitions %v, want %v", got, want)
		}
	})
}

// TestRefusedSubmitWritesNothing: a submit the credential's state refuses writes no
// index row and queues no backstop.
func TestRefusedSubmitWritesNothing(t *testing.T) {
	f := newBackstopFixture(t)
	c := f.Create("prod")
	windows := f.fake.Store.Calls("OpenWindow")
	_, err := f.Domain.Onboarding.SubmitStorage(context.Background(), "org", c.ID, credentialtest.Storage, "r")
	var te *credential.TransitionError
	if !errors.As(err, &te) {
		t.Fatalf("storage submit in draft: %v, want a refused transition", err)
	}
	if n := f.fake.Store.Calls("OpenWindow") - windows; n != 0 {
		t.Errorf("%d index writes for a refused submit", n)
	}
	if n := f.fake.Scheduler.Pending(credential.JobAccessProbe); n != 0 {
		t.Errorf("%d probe jobs queued for a refused submit", n)
	}
}

// TestPassedJobsDroppedWithoutARead: a job the remembered row shows behind its window (a
// backstop after the window's first attempt, a replay) is dropped without reading the row
// and changes nothing; a redelivery of the attempt the row counted last still reads it, and
// schedules the window's next attempt again.
func TestPassedJobsDroppedWithoutARead(t *testing.T) {
	in := newInstances(t, false)
	c := in.create(in.a, "prod")
	in.submitTenant(in.a, c.ID)
	first := in.single(credential.JobSPPoll)
	in.run(in.a, first) // not installed yet: attempt 1 counted, attempt 2 queued
	in.single(credential.JobSPPoll)
	backstop := first
	backstop.Delivery = 1
	before := in.row(c.ID)
	reads := in.fake.Store.Calls("Get")
	in.run(in.a, backstop)
	if n := in.fake.Store.Calls("Get") - reads; n != 0 {
		t.Errorf("the backstop read the row %d times", n)
	}
	if got := in.row(c.ID); got.ETag != before.ETag || in.fake.Scheduler.Pending(credential.JobSPPoll) != 0 {
		t.Fatalf("the backstop changed the row (%q, was %q) or queued %d jobs", got.ETag, before.ETag, in.fake.Scheduler.Pending(credential.JobSPPoll))
	}
	redelivered := first
	redelivered.Delivery = 2
	reads = in.fake.Store.Calls("Get")
	in.run(in.a, redelivered)
	if n := in.fake.Store.Calls("Get") - reads; n != 1 {
		t.Errorf("the redelivery read the row %d times, want once", n)
	}
	if next := in.single(credential.JobSPPoll); next.Attempt != 1 {
		t.Fatalf("the redelivery scheduled %+v, want the window's second attempt again", next)
	}
}
