package credential_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
	"github.com/activeloopai/azcreds/internal/message"
	"github.com/activeloopai/azcreds/internal/queue"
	"github.com/activeloopai/azcreds/internal/store"
	"github.com/activeloopai/azcreds/internal/testenv"
)

// scripted answers the service principal lookup and the access probe from a script, one
// entry per call, repeating the last; it records what it was asked.
type scripted struct {
	mu        sync.Mutex
	finds     []findResult
	reports   []credential.ProbeReport
	targets   []credential.ProbeTarget
	findCalls int
	deleted   []string
	apps      map[string]credential.App // by unique name
}

type findResult struct {
	objectID string
	err      error
}

func (s *scripted) FindServicePrincipal(ctx context.Context, tenantID, appID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.finds[min(s.findCalls, len(s.finds)-1)]
	s.findCalls++
	return r.objectID, r.err
}

func (s *scripted) Probe(ctx context.Context, t credential.ProbeTarget) credential.ProbeReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reports[min(len(s.targets), len(s.reports)-1)]
	s.targets = append(s.targets, t)
	return r
}

// CreateApp is an upsert by unique name, as Graph's is.
func (s *scripted) CreateApp(ctx context.Context, name, uniqueName string) (credential.App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if app, ok := s.apps[uniqueName]; ok {
		return app, nil
	}
	app := credential.App{ObjectID: uuid.NewString(), AppID: uuid.NewString()}
	if s.apps == nil {
		s.apps = map[string]credential.App{}
	}
	s.apps[uniqueName] = app
	return app, nil
}

func (s *scripted) FindApp(ctx context.Context, uniqueName string) (credential.App, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.apps[uniqueName]
	return app, ok, nil
}
func (s *scripted) AddFederatedCredential(context.Context, string, credential.FederatedCredential) error {
	return nil
}
func (s *scripted) DeleteApp(ctx context.Context, objectID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = append(s.deleted, objectID)
	for name, app := range s.apps {
		if app.ObjectID == objectID {
			delete(s.apps, name)
		}
	}
	return nil
}

type fixture struct {
	t      *testing.T
	svc    *credentialtest.Domain
	store  *store.Store
	queues *queue.Queues
	fake   *scripted
	calls  *callCounter
	now    time.Time
}

// callCounter is an azcore pipeline policy that counts storage calls.
type callCounter struct{ n atomic.Int64 }

func (c *callCounter) Do(req *policy.Request) (*http.Response, error) {
	c.n.Add(1)
	return req.Next()
}

func (f *fixture) clock() time.Time { return f.now }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := testenv.Azurite(t)
	ctx := context.Background()
	calls := &callCounter{}
	opts := azcore.ClientOptions{PerCallPolicies: []policy.Policy{calls}}
	tables, err := aztables.NewServiceClientFromConnectionString(env.ConnString, &aztables.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.UniqueName(t, "verify")
	st, err := store.Open(ctx, tables, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = tables.DeleteTable(context.Background(), name, nil) })
	qsvc, err := azqueue.NewServiceClientFromConnectionString(env.ConnString, &azqueue.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: st, fake: &scripted{}, calls: calls, now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	qs, err := queue.Open(ctx, qsvc, queue.Options{NamePrefix: testenv.UniqueName(t, "v"), Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, k := range message.Kinds() {
			_, _ = qs.Client(k).Delete(context.Background(), nil)
		}
	})
	f.queues = qs
	f.svc = f.wire(credential.Config{SPPollInterval: time.Second, AccessProbeInterval: time.Second}, nil)
	return f
}

// wire builds the fixture's domain with cfg on the fixture's ports (the scheduler leaving
// out the backstops), changed by with when it is not nil.
func (f *fixture) wire(cfg credential.Config, with func(*credentialtest.Ports)) *credentialtest.Domain {
	f.t.Helper()
	p := credentialtest.Ports{Store: f.store, Workspaces: f.store, Health: f.store, Scheduler: chainsOnly{f.queues}, Directory: f.fake,
		Finder: f.fake, Prober: f.fake, Signer: &credentialtest.Signer{}, Containers: &credentialtest.Containers{}}
	if with != nil {
		with(&p)
	}
	return credentialtest.Wire(f.t, credentialtest.Setup{Config: cfg, Ports: p, Now: f.clock})
}

const tenant = "ceeafc3d-f026-420b-a75b-9df0c970e6d1"

// created makes a credential and submits its tenant; it returns the id and the first job.
func (f *fixture) submitted() (string, credential.Job) {
	f.t.Helper()
	ctx := context.Background()
	c, err := f.svc.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "c-" + uuid.NewString()[:8], StorageType: "azure_federated", BasePath: "az://bloblake/lakedata/p"}, "r0")
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.svc.Onboarding.SubmitTenant(ctx, "org", c.ID, credential.TenantInput{TenantID: tenant}, "r1"); err != nil {
		f.t.Fatal(err)
	}
	return c.ID, f.single(credential.JobSPPoll)
}

// atStorage moves a fresh credential to access_pending and returns the first probe job.
func (f *fixture) atStorage() (string, credential.Job) {
	f.t.Helper()
	f.fake.finds = []findResult{{objectID: "sp-object"}}
	id, job := f.submitted()
	f.run(job)
	if _, err := f.svc.Onboarding.SubmitStorage(context.Background(), "org", id, credential.StorageInput{
		SubscriptionID: "0b1f6471-1bf0-4dda-aec3-cb9272f09590", ResourceGroup: "rg", StorageAccount: "bloblake", ContainerName: "lakedata"}, "r2"); err != nil {
		f.t.Fatal(err)
	}
	return id, f.single(credential.JobAccessProbe)
}

func (f *fixture) run(job credential.Job) {
	f.t.Helper()
	if err := f.svc.Runner.Run(context.Background(), job); err != nil {
		f.t.Fatalf("run %+v: %v", job, err)
	}
}

// jobs drains the queue of kind, returning its jobs, delayed ones included.
func (f *fixture) jobs(kind credential.JobKind) []credential.Job {
	f.t.Helper()
	ctx := context.Background()
	var out []credential.Job
	// Peek does not see invisible (delayed) messages; wait them out briefly.
	deadline := time.Now().Add(3 * time.Second)
	for {
		n := int32(32)
		resp, err := f.queues.Client(kind).DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &n})
		if err != nil {
			f.t.Fatal(err)
		}
		for _, m := range resp.Messages {
			job, err := message.Decode(*m.MessageText)
			if err != nil {
				f.t.Fatal(err)
			}
			out = append(out, job)
			_, _ = f.queues.Client(kind).DeleteMessage(ctx, *m.MessageID, *m.PopReceipt, nil)
		}
		if len(resp.Messages) == 0 && (len(out) > 0 || time.Now().After(deadline)) {
			return out
		}
		if len(resp.Messages) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (f *fixture) single(kind credential.JobKind) credential.Job {
	f.t.Helper()
	jobs := f.jobs(kind)
	if len(jobs) != 1 {
		f.t.Fatalf("want one %s job, got %+v", kind, jobs)
	}
	return jobs[0]
}

func (f *fixture) get(id string) *credential.Credential {
	f.t.Helper()
	c, err := f.store.Get(context.Background(), "org", id)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) causes(id string) []credential.Event {
	f.t.Helper()
	evs, err := f.store.Events(context.Background(), "org", id)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []credential.Event
	for _, e := range evs {
		out = append(out, e.Cause)
	}
	return out
}

func provider(kind error, code string) error {
	return &credential.ProviderError{Kind: kind, Code: code, Status: 400, RequestID: "entra-req"}
}

func TestSPPollFoundAfterNotYet(t *testing.T) {
	f := newFixture(t)
	f.fake.finds = []findResult{{err: provider(credential.ErrSPNotFound, "AADSTS700016")}, {err: provider(credential.ErrUnavailable, "AADSTS70021")}, {objectID: "sp-object"}}
	id, job := f.submitted()
	f.run(job)
	c := f.get(id)
	if c.State != credential.StateSPPending || c.Progress.Attempts != 1 || c.Progress.Status != credential.StatusPolling {
		t.Fatalf("after not yet: %s attempts %d status %s", c.State, c.Progress.Attempts, c.Progress.Status)
	}
	next := f.single(credential.JobSPPoll)
	if next.Attempt != 1 || next.Generation != job.Generation {
		t.Fatalf("next job %+v", next)
	}
	f.run(next)
	f.run(f.single(credential.JobSPPoll))
	c = f.get(id)
	if c.State != credential.StateSPVerified || c.SPObjectID != "sp-object" || c.Progress.Attempts != 3 || c.LastError != (credential.Problem{}) {
		t.Fatalf("after found: %+v", c)
	}
	if jobs := f.jobs(credential.JobSPPoll); len(jobs) != 0 {
		t.Fatalf("the chain went on after found: %+v", jobs)
	}
	want := []credential.Event{credential.EventCreated, credential.EventSubmitTenant, credential.EventSPFound}
	if diff := cmp.Diff(want, f.causes(id)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

func TestSPPollTenantNotFound(t *testing.T) {
	f := newFixture(t)
	f.fake.finds = []findResult{{err: provider(credential.ErrTenantNotFound, "AADSTS90002")}}
	id, job := f.submitted()
	f.run(job)
	c := f.get(id)
	if c.State != credential.StateDraft || c.LastError.ProviderError != "AADSTS90002" || c.LastError.Code != "tenant_not_found" || c.LastError.RequestID != "entra-req" {
		t.Fatalf("got %s %+v", c.State, c.LastError)
	}
	if len(f.jobs(credential.JobSPPoll)) != 0 {
		t.Fatal("polling went on for an unknown tenant")
	}
}

func TestSPPollFederationErrorKeepsPolling(t *testing.T) {
	f := newFixture(t)
	f.fake.finds = []findResult{{err: provider(credential.ErrFederation, "AADSTS700213")}}
	id, job := f.submitted()
	f.run(job)
	c := f.get(id)
	if c.State != credential.StateSPPending || c.LastError.Code != "federation_error" || c.LastError.ProviderError != "AADSTS700213" {
		t.Fatalf("got %s %+v", c.State, c.LastError)
	}
	if f.single(credential.JobSPPoll).Attempt != 1 {
		t.Fatal("no next poll")
	}
}

func TestSPPollDeadline(t *testing.T) {
	f := newFixture(t)
	f.fake.finds = []findResult{{err: provider(credential.ErrSPNotFound, "AADSTS700016")}}
	id, job := f.submitted()
	f.now = f.now.Add(10 * time.Minute)
	f.run(job)
	c := f.get(id)
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
	f := newFixture(t)
	f.fake.finds = []findResult{{err: provider(credential.ErrSPNotFound, "AADSTS700016")}}
	id, job := f.submitted()
	f.run(job)
	f.run(job) // replay
	if jobs := f.jobs(credential.JobSPPoll); len(jobs) != 1 {
		t.Fatalf("replay scheduled again: %+v", jobs)
	}
	if c := f.get(id); c.Progress.Attempts != 1 {
		t.Fatalf("replay counted: %d attempts", c.Progress.Attempts)
	}
	// Restart the window: the old generation's job is dead.
	if _, err := f.svc.Onboarding.SubmitTenant(context.Background(), "org", id, credential.TenantInput{TenantID: tenant}, "r3"); err != nil {
		t.Fatal(err)
	}
	fresh := f.single(credential.JobSPPoll)
	f.fake.finds = []findResult{{objectID: "sp-object"}}
	stale := job
	stale.Attempt = 1
	f.run(stale)
	if c := f.get(id); c.State != credential.StateSPPending || c.Progress.Attempts != 0 {
		t.Fatalf("stale job acted: %s attempts %d", c.State, c.Progress.Attempts)
	}
	f.run(fresh)
	f.run(fresh) // replay after the transition
	if c := f.get(id); c.State != credential.StateSPVerified {
		t.Fatalf("state %s", c.State)
	}
	want := []credential.Event{credential.EventCreated, credential.EventSubmitTenant, credential.EventSubmitTenant, credential.EventSPFound}
	if diff := cmp.Diff(want, f.causes(id)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	// A job for a deleted credential is done, not an error.
	if err := f.svc.Onboarding.Delete(context.Background(), "org", id); err != nil {
		t.Fatal(err)
	}
	f.run(fresh)
}

func TestConcurrentDuplicateDeliveries(t *testing.T) {
	f := newFixture(t)
	f.fake.finds = []findResult{{err: provider(credential.ErrSPNotFound, "AADSTS700016")}}
	id, job := f.submitted()
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() { defer wg.Done(); f.run(job) }()
	}
	wg.Wait()
	if c := f.get(id); c.Progress.Attempts != 1 {
		t.Fatalf("%d attempts counted for one job", c.Progress.Attempts)
	}
	if jobs := f.jobs(credential.JobSPPoll); len(jobs) != 1 {
		t.Fatalf("duplicates scheduled %d follow-ups", len(jobs))
	}
}

func report(results ...string) credential.ProbeReport {
	names := []string{credential.CheckUserDelegationKey, credential.CheckWrite, credential.CheckListRead, credential.CheckDelete}
	var r credential.ProbeReport
	for i, res := range results {
		c := credential.CheckResult{Name: names[i], Result: credential.ResultPass}
		switch res {
		case "403":
			c = credential.CheckResult{Name: names[i], Result: credential.ResultFail, Status: 403, Code: "AuthorizationPermissionMismatch", RequestID: "st-req"}
		case "skip":
			c.Result = credential.ResultSkip
		}
		r.Checks = append(r.Checks, c)
	}
	return r
}

func TestProbeWaitingThenConnected(t *testing.T) {
	f := newFixture(t)
	id, job := f.atStorage()
	f.fake.reports = []credential.ProbeReport{report("403", "403", "403", "skip"), report("pass", "pass", "pass", "pass")}
	f.run(job)
	c := f.get(id)
	if c.State != credential.StateAccessPending || c.Progress.Status != credential.StatusWaitingForRolePropagation ||
		c.LastError.ProviderError != "AuthorizationPermissionMismatch" || len(c.Progress.Checks) != 4 || c.Progress.Checks[0].Result != "fail" {
		t.Fatalf("after 403: %s %s %+v %+v", c.State, c.Progress.Status, c.LastError, c.Progress.Checks)
	}
	f.now = f.now.Add(5 * time.Second)
	f.run(f.single(credential.JobAccessProbe))
	c = f.get(id)
	if c.State != credential.StateVerified || c.VerifiedAt.IsZero() || c.Progress.Status != credential.StatusConnected {
		t.Fatalf("after grant: %s %s", c.State, c.Progress.Status)
	}
	if f.fake.targets[0].FreshToken || !f.fake.targets[1].FreshToken {
		t.Fatalf("fresh token flags %v %v: want a fresh token only after the 403", f.fake.targets[0].FreshToken, f.fake.targets[1].FreshToken)
	}
	if f.fake.targets[0].Prefix != "p" || f.fake.targets[0].Account != "bloblake" || f.fake.targets[0].TenantID != tenant {
		t.Fatalf("target %+v", f.fake.targets[0])
	}
}

func TestProbeTerminalAfterGrace(t *testing.T) {
	f := newFixture(t)
	id, job := f.atStorage()
	f.fake.reports = []credential.ProbeReport{report("pass", "403", "pass", "skip")}
	f.now = f.now.Add(2 * time.Minute)
	f.run(job)
	c := f.get(id)
	if c.State != credential.StateSPVerified || c.LastError.Hint != credential.HintReaderRole || c.Progress.Status != credential.StatusRoleNotSufficient {
		t.Fatalf("got %s %+v", c.State, c.LastError)
	}
	if len(f.jobs(credential.JobAccessProbe)) != 0 {
		t.Fatal("probing went on after a terminal outcome")
	}
}

func TestProbeTimeoutThenSaveUnverified(t *testing.T) {
	f := newFixture(t)
	id, job := f.atStorage()
	busy := credential.ProbeReport{Checks: []credential.CheckResult{{Name: credential.CheckUserDelegationKey, Result: credential.ResultFail, Status: 503, Code: "ServerBusy", RequestID: "st-req"}}}
	f.fake.reports = []credential.ProbeReport{report("403", "403", "403", "skip"), busy}
	f.now = f.now.Add(30 * time.Second)
	f.run(job)
	next := f.single(credential.JobAccessProbe)
	if _, err := f.svc.Onboarding.SaveUnverified(context.Background(), "org", id, "r"); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("save before the deadline: %v", err)
	}
	f.now = f.now.Add(5 * time.Minute)
	f.run(next)
	c := f.get(id)
	if c.State != credential.StateAccessPending || c.Progress.Status != credential.StatusTimedOut || c.LastError.ProviderError != "ServerBusy" {
		t.Fatalf("got %s %s %+v", c.State, c.Progress.Status, c.LastError)
	}
	if len(f.jobs(credential.JobAccessProbe)) != 0 {
		t.Fatal("probing went on past the deadline")
	}
	if c, err := f.svc.Onboarding.SaveUnverified(context.Background(), "org", id, "r"); err != nil || c.State != credential.StateUnverifiedSaved {
		t.Fatalf("save anyway: %v", err)
	}
}

func TestCleanUpApp(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, err := f.svc.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "c1", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
	if err != nil {
		t.Fatal(err)
	}
	job := credential.Job{Kind: credential.JobAppCleanup, OrgID: "org", CredentialID: c.ID, AppObjectID: c.App.ObjectID}
	f.run(job)
	if len(f.fake.deleted) != 0 {
		t.Fatal("deleted the app of a live credential")
	}
	if err := f.svc.Onboarding.Delete(ctx, "org", c.ID); err != nil {
		t.Fatal(err)
	}
	f.run(f.single(credential.JobAppCleanup))
	if len(f.fake.deleted) != 1 || f.fake.deleted[0] != c.App.ObjectID {
		t.Fatalf("deleted %v", f.fake.deleted)
	}
}

// TestStorageCallsPerStep pins the Table and Queue calls of each onboarding step on the
// service's side (a worker adds a dequeue, shared by up to 32 messages, and a delete per
// job). One of create's calls is its guard's message, three the organization's credential
// counter (the first create of an organization initialises it). Each submit also queues
// its window's backstop, which the fixture's scheduler leaves out (handlers' transactions
// test counts it).
func TestStorageCallsPerStep(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	count := func(name string, want int64, step func()) {
		t.Helper()
		before := f.calls.n.Load()
		step()
		got := f.calls.n.Load() - before
		t.Logf("%s: %d storage calls", name, got)
		if got != want {
			t.Errorf("%s: %d storage calls, want %d", name, got, want)
		}
	}
	var id string
	var job credential.Job
	f.fake.finds = []findResult{{err: provider(credential.ErrSPNotFound, "AADSTS700016")}, {objectID: "sp"}}
	// The organization's first create: its credential counter is initialised (read,
	// count, insert); a later create reads it once (5).
	count("create", 7, func() {
		c, err := f.svc.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "c1", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
		if err != nil {
			t.Fatal(err)
		}
		id = c.ID
	})
	count("submit tenant", 4, func() {
		if _, err := f.svc.Onboarding.SubmitTenant(ctx, "org", id, credential.TenantInput{TenantID: tenant}, "r"); err != nil {
			t.Fatal(err)
		}
	})
	job = f.single(credential.JobSPPoll)
	count("sp poll, not yet", 3, func() { f.run(job) })
	job = f.single(credential.JobSPPoll)
	count("sp poll, found", 2, func() { f.run(job) })
	count("submit storage", 4, func() {
		if _, err := f.svc.Onboarding.SubmitStorage(ctx, "org", id, credential.StorageInput{SubscriptionID: "0b1f6471-1bf0-4dda-aec3-cb9272f09590",
			ResourceGroup: "rg", StorageAccount: "bloblake", ContainerName: "lakedata"}, "r"); err != nil {
			t.Fatal(err)
		}
	})
	f.fake.reports = []credential.ProbeReport{report("403", "403", "403", "skip"), report("pass", "pass", "pass", "pass")}
	job = f.single(credential.JobAccessProbe)
	count("access probe, waiting", 3, func() { f.run(job) })
	job = f.single(credential.JobAccessProbe)
	count("access probe, connected", 2, func() { f.run(job) })
}

// TestGraceAsLongAsWindowTimesOut: when the grace spans the whole window, a 403 at the
// deadline is a time-out, not a terminal "role not sufficient".
func TestGraceAsLongAsWindowTimesOut(t *testing.T) {
	f := newFixture(t)
	f.svc = f.wire(credential.Config{AccessProbeWindow: time.Minute, PropagationGrace: time.Minute,
		SPPollInterval: time.Second, AccessProbeInterval: time.Second}, nil)
	id, job := f.atStorage()
	f.fake.reports = []credential.ProbeReport{report("403", "403", "403", "skip")}
	f.now = f.now.Add(time.Minute)
	f.run(job)
	if c := f.get(id); c.State != credential.StateAccessPending || c.Progress.Status != credential.StatusTimedOut {
		t.Fatalf("got %s %s", c.State, c.Progress.Status)
	}
}
