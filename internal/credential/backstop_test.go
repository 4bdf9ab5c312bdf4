package credential_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
	"github.com/activeloopai/azcreds/internal/message"
)

// refusingScheduler refuses the window's first job (attempt 0, no delay) while
// refuseFirst is set, and every backstop (attempt 0, delayed) while refuseBackstop is:
// the queue failing at those two moments of a submit.
type refusingScheduler struct {
	credential.Scheduler
	refuseFirst, refuseBackstop atomic.Bool
}

func (s *refusingScheduler) Schedule(ctx context.Context, job credential.Job, delay time.Duration) error {
	if job.Attempt == 0 && (job.Kind == credential.JobSPPoll || job.Kind == credential.JobAccessProbe) {
		if delay == 0 && s.refuseFirst.Load() || delay > 0 && s.refuseBackstop.Load() {
			return errors.New("queue unavailable")
		}
	}
	return s.Scheduler.Schedule(ctx, job, delay)
}

// backstopService is the fixture's service on sched.
func (f *fixture) backstopService(sched credential.Scheduler) {
	f.t.Helper()
	f.svc = f.wire(credential.Config{SPPollInterval: time.Second, AccessProbeInterval: time.Second, WindowBackstop: 3 * time.Second},
		func(p *credentialtest.Ports) { p.Scheduler = sched })
}

// next waits (up to 10 s) for the next message of kind, delayed ones included, and takes it.
func (f *fixture) next(kind credential.JobKind) credential.Job {
	f.t.Helper()
	ctx := context.Background()
	q := f.queues.Client(kind)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		one := int32(1)
		resp, err := q.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &one})
		if err != nil {
			f.t.Fatal(err)
		}
		for _, m := range resp.Messages {
			job, err := message.Decode(*m.MessageText)
			if err != nil {
				f.t.Fatal(err)
			}
			if _, err := q.DeleteMessage(ctx, *m.MessageID, *m.PopReceipt, nil); err != nil {
				f.t.Fatal(err)
			}
			job.Delivery = 1
			return job
		}
	}
	f.t.Fatalf("no %s message within 10 s", kind)
	return credential.Job{}
}

// TestBackstopStartsAWindowWhoseFirstJobWasLost: the submit's write landed but its first
// job never reached the queue (the queue failed, or the process died in between): the
// submit still succeeds, and the backstop it queued before the write starts the window.
func TestBackstopStartsAWindowWhoseFirstJobWasLost(t *testing.T) {
	f := newFixture(t)
	sched := &refusingScheduler{Scheduler: f.queues}
	f.backstopService(sched)
	ctx := context.Background()
	f.fake.finds = []findResult{{objectID: "sp-object"}}
	c, err := f.svc.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "b1", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
	if err != nil {
		t.Fatal(err)
	}
	sched.refuseFirst.Store(true)
	got, err := f.svc.Onboarding.SubmitTenant(ctx, "org", c.ID, credential.TenantInput{TenantID: tenant}, "r1")
	if err != nil {
		t.Fatalf("submit with its first job lost: %v, want success (the backstop starts the window)", err)
	}
	job := f.next(credential.JobSPPoll)
	if job.Generation != got.Generation || job.Attempt != 0 {
		t.Fatalf("backstop %+v, want attempt 0 of generation %d", job, got.Generation)
	}
	f.run(job)
	if c := f.get(c.ID); c.State != credential.StateSPVerified {
		t.Fatalf("after the backstop: %s, want sp_verified", c.State)
	}

	got, err = f.svc.Onboarding.SubmitStorage(ctx, "org", c.ID, raceStorage, "r2")
	if err != nil {
		t.Fatalf("storage submit with its first job lost: %v", err)
	}
	f.fake.reports = []credential.ProbeReport{report("pass", "pass", "pass", "pass")}
	job = f.next(credential.JobAccessProbe)
	if job.Generation != got.Generation || job.Attempt != 0 {
		t.Fatalf("probe backstop %+v, want attempt 0 of generation %d", job, got.Generation)
	}
	f.run(job)
	if c := f.get(c.ID); c.State != credential.StateVerified {
		t.Fatalf("after the probe's backstop: %s, want verified", c.State)
	}
}

// TestBackstopAfterTheFirstJobChangesNothing: when the first job ran, the backstop finds
// its attempt counted and is dropped: no write, no second chain.
func TestBackstopAfterTheFirstJobChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.backstopService(f.queues)
	f.fake.finds = []findResult{{err: provider(credential.ErrSPNotFound, "AADSTS700016")}}
	id, first := f.submitted()
	f.run(first)
	before := f.get(id)
	followUp := f.next(credential.JobSPPoll)
	backstop := f.next(credential.JobSPPoll)
	if followUp.Attempt != 1 || backstop.Attempt != 0 || backstop.Generation != before.Generation {
		t.Fatalf("queue held %+v then %+v, want the follow-up (attempt 1) then the backstop (attempt 0)", followUp, backstop)
	}
	f.run(backstop)
	after := f.get(id)
	if after.Revision != before.Revision || after.Progress.Attempts != 1 {
		t.Fatalf("the backstop wrote: revision %d -> %d, attempts %d", before.Revision, after.Revision, after.Progress.Attempts)
	}
	if n := len(f.jobs(credential.JobSPPoll)); n != 0 {
		t.Fatalf("the backstop scheduled %d jobs, want none", n)
	}
}

// TestSubmitWithoutItsBackstopChangesNothing: when even the backstop cannot be queued, the
// submit fails before it writes; the credential is as it was.
func TestSubmitWithoutItsBackstopChangesNothing(t *testing.T) {
	f := newFixture(t)
	sched := &refusingScheduler{Scheduler: f.queues}
	f.backstopService(sched)
	ctx := context.Background()
	c, err := f.svc.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "b3", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r")
	if err != nil {
		t.Fatal(err)
	}
	sched.refuseBackstop.Store(true)
	if _, err := f.svc.Onboarding.SubmitTenant(ctx, "org", c.ID, credential.TenantInput{TenantID: tenant}, "r1"); !errors.Is(err, credential.ErrUnavailable) {
		t.Fatalf("submit without its backstop: %v, want ErrUnavailable", err)
	}
	if got := f.get(c.ID); got.State != credential.StateDraft || got.Generation != c.Generation || got.Revision != c.Revision {
		t.Fatalf("after the failed submit: %s generation %d revision %d, want draft %d %d", got.State, got.Generation, got.Revision, c.Generation, c.Revision)
	}
	if n := len(f.jobs(credential.JobSPPoll)); n != 0 {
		t.Fatalf("%d poll jobs after the failed submit, want none", n)
	}
}
