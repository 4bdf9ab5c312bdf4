package credentialtest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
)

// Queue is where a test takes the jobs the domain scheduled: the in-memory Scheduler, or
// real queues.
type Queue interface {
	// Take removes and returns every queued job of kind, delayed ones included, in the
	// order they become due.
	Take(kind credential.JobKind) []credential.Job
	// Next removes and returns the queued job of kind due first, delayed or not, with its
	// delivery count.
	Next(kind credential.JobKind) (credential.Job, bool)
	// Pending counts the queued jobs of kind, delayed ones included.
	Pending(kind credential.JobKind) int
}

var _ Queue = (*Scheduler)(nil)

// Sample inputs of the wizard's forms.
var (
	// Tenant is a customer's tenant.
	Tenant = credential.TenantInput{TenantID: "ceeafc3d-f026-420b-a75b-9df0c970e6d1"}
	// Storage names the account and container of the base paths Onboarder creates.
	Storage = credential.StorageInput{SubscriptionID: "0b1f6471-1bf0-4dda-aec3-cb9272f09590", ResourceGroup: "rg",
		StorageAccount: "bloblake", ContainerName: "lakedata"}
)

// Onboarder drives credentials of one organization through onboarding on a Domain, as
// the wizard and the workers would, and fails its test on any error.
type Onboarder struct {
	T      testing.TB
	Org    string
	Domain *Domain
	// Store reads the rows as they are.
	Store credential.Store
	// Queue holds the jobs the domain scheduled.
	Queue Queue
	// Finder, when set, is scripted to find the service principal in AtStorage.
	Finder *Finder
	// Prober, when set, is scripted to confirm access in Verified.
	Prober *Prober
	// Now stamps the events of Advance; time.Now when nil.
	Now func() time.Time
}

// Create makes a credential named name under the base path az://bloblake/lakedata/p.
func (o *Onboarder) Create(name string) *credential.Credential {
	o.T.Helper()
	c, err := o.Domain.Onboarding.Create(context.Background(), o.Org, credential.CreateInput{Name: name,
		StorageType: credential.StorageTypeAzureFederated, BasePath: "az://bloblake/lakedata/p"}, "r0")
	if err != nil {
		o.T.Fatal(err)
	}
	return c
}

// Submitted makes a credential and submits its tenant; it returns the credential's id and
// the window's first job.
func (o *Onboarder) Submitted() (string, credential.Job) {
	o.T.Helper()
	c := o.Create("c-" + uuid.NewString()[:8])
	if _, err := o.Domain.Onboarding.SubmitTenant(context.Background(), o.Org, c.ID, Tenant, "r1"); err != nil {
		o.T.Fatal(err)
	}
	return c.ID, o.Single(credential.JobSPPoll)
}

// AtStorage moves a new credential to access_pending and returns its id and the probe's
// first job. The service principal must be found (Finder, when set, is told to).
func (o *Onboarder) AtStorage() (string, credential.Job) {
	o.T.Helper()
	if o.Finder != nil {
		o.Finder.Script(Found{ObjectID: "sp-object"})
	}
	id, job := o.Submitted()
	o.Run(job)
	if _, err := o.Domain.Onboarding.SubmitStorage(context.Background(), o.Org, id, Storage, "r2"); err != nil {
		o.T.Fatal(err)
	}
	return id, o.Single(credential.JobAccessProbe)
}

// Verified onboards a new credential to verified and returns it. Access must be
// confirmed (Prober, when set, is told to).
func (o *Onboarder) Verified() *credential.Credential {
	o.T.Helper()
	id, job := o.AtStorage()
	if o.Prober != nil {
		o.Prober.Script(Report("pass", "pass", "pass", "pass"))
	}
	o.Run(job)
	c := o.Get(id)
	if c.State != credential.StateVerified {
		o.T.Fatalf("onboarding ended in %s", c.State)
	}
	return c
}

// Run runs one job as a worker would.
func (o *Onboarder) Run(job credential.Job) {
	o.T.Helper()
	if err := o.Domain.Runner.Run(context.Background(), job); err != nil {
		o.T.Fatalf("run %+v: %v", job, err)
	}
}

// Single takes the one queued job of kind.
func (o *Onboarder) Single(kind credential.JobKind) credential.Job {
	o.T.Helper()
	jobs := o.Queue.Take(kind)
	if len(jobs) != 1 {
		o.T.Fatalf("want one %s job, got %+v", kind, jobs)
	}
	return jobs[0]
}

// Get reads a credential as stored.
func (o *Onboarder) Get(id string) *credential.Credential {
	o.T.Helper()
	c, err := o.Store.Get(context.Background(), o.Org, id)
	if err != nil {
		o.T.Fatal(err)
	}
	return c
}

// Causes are the causes of a credential's transitions, oldest first.
func (o *Onboarder) Causes(id string) []credential.Event {
	o.T.Helper()
	return causes(o.T, o.Store, o.Org, id)
}

// causes are the causes of a credential's transitions in s, oldest first.
func causes(t testing.TB, s credential.Store, org, id string) []credential.Event {
	t.Helper()
	evs, err := s.Events(context.Background(), org, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []credential.Event
	for _, e := range evs {
		out = append(out, e.Cause)
	}
	return out
}

// Advance moves a credential as a poller would, through the transition table, written
// by the store with its event; change, when not nil, edits it first.
func (o *Onboarder) Advance(id string, ev credential.Event, change func(*credential.Credential)) {
	o.T.Helper()
	c := o.Get(id)
	to, err := credential.Next(c.State, ev)
	if err != nil {
		o.T.Fatal(err)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	rec := &credential.EventRecord{Time: now(), From: c.State, To: to, Cause: ev, Generation: c.Generation}
	c.State = to
	if change != nil {
		change(c)
	}
	if err := o.Store.Update(context.Background(), c, rec); err != nil {
		o.T.Fatal(err)
	}
}

// Provider is an error of Entra or Azure as an adapter hands it over: kind (a sentinel of
// the domain, or nil) with the provider's code and a request id.
func Provider(kind error, code string) error {
	return &credential.ProviderError{Kind: kind, Code: code, Status: 400, RequestID: "entra-req"}
}

// WithoutBackstops is s leaving out the backstops, the delayed copies of a window's first
// job that a submit queues before its write (attempt 0, delayed; the first job proper
// goes at once, the follow-ups have later attempts): for tests that count the jobs of a
// window's chain.
func WithoutBackstops(s credential.Scheduler) credential.Scheduler { return chainsOnly{s} }

type chainsOnly struct{ credential.Scheduler }

func (s chainsOnly) Schedule(ctx context.Context, job credential.Job, delay time.Duration) error {
	if job.Attempt == 0 && delay > 0 && (job.Kind == credential.JobSPPoll || job.Kind == credential.JobAccessProbe) {
		return nil
	}
	return s.Scheduler.Schedule(ctx, job, delay)
}
