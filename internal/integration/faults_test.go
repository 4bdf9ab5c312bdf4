package integration

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
)

// TestCleanUpWhileTheDeleteIsSlow: the delete queues the app's clean-up before it removes
// the row, and a worker may run the job while the row's removal is still under way (here
// held by a storage timeout that the SDK then retries). The job must not give up on the
// app because the row was still there: the app is deleted once the row is gone.
func TestCleanUpWhileTheDeleteIsSlow(t *testing.T) {
	p := proxy(t, 3*time.Second)
	f := newFixture(t, credential.Config{}, options{proxy: p}, nil)
	ctx := context.Background()
	c, err := f.Domain.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "slow-delete", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata/p"}, "r0")
	if err != nil {
		t.Fatal(err)
	}
	// The create's guard waits (CreateGuardDelay) out of sight: every job seen here is
	// the delete's.
	if err := p.Inject(faultproxy.ServiceTable, "POST batch", faultproxy.FaultTimeout, 1); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- f.Domain.Onboarding.Delete(ctx, "org", c.ID) }()
	job, ok := f.Queue.Next(credential.JobAppCleanup)
	if !ok {
		t.Fatal("no clean-up job queued")
	}
	f.Run(job) // while the row's removal is held
	if err := <-deleted; err != nil {
		t.Fatalf("delete: %v", err)
	}
	if p.Stats().Services[faultproxy.ServiceTable].Faults.Timeout != 1 {
		t.Fatal("the delete was not held")
	}
	for !slices.Contains(f.fake.Directory.Deleted(), c.App.ObjectID) {
		job, ok := f.Queue.Next(credential.JobAppCleanup)
		if !ok {
			t.Fatalf("app %s of the deleted credential is left behind, and no clean-up job is queued", c.App.ObjectID)
		}
		f.Run(job)
	}
}

// TestDeleteRacingAPoller: a poller writes the row between the delete's read and its
// conditional removal. The delete still stands: it reads the row again and removes it.
func TestDeleteRacingAPoller(t *testing.T) {
	p := proxy(t, 3*time.Second)
	f := newFixture(t, credential.Config{}, options{proxy: p}, nil)
	ctx := context.Background()
	f.fake.Finder.Script(credentialtest.Found{ObjectID: "sp-object"})
	id, poll := f.Submitted()

	// Hold the delete's scheduling of its clean-up job (between its read and its write),
	// and let the poller write meanwhile.
	if err := p.Inject(faultproxy.ServiceQueue, "POST messages", faultproxy.FaultTimeout, 1); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- f.Domain.Onboarding.Delete(ctx, "org", id) }()
	for p.Stats().Services[faultproxy.ServiceQueue].Faults.Timeout == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	f.Run(poll)
	if got := f.Get(id); got.State != credential.StateSPVerified {
		t.Fatalf("the poller did not write: %s", got.State)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("delete racing the poller: %v", err)
	}
	if _, err := f.store.Get(ctx, "org", id); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("after the delete: %v", err)
	}
}

// TestDeleteWhoseAnswerWasLost: the removal lands, its answer is lost, and the SDK's retry
// finds the row gone. The delete succeeded.
func TestDeleteWhoseAnswerWasLost(t *testing.T) {
	p := proxy(t, time.Second)
	f := newFixture(t, credential.Config{}, options{proxy: p}, nil)
	ctx := context.Background()
	c, err := f.Domain.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "lost-delete", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata/p"}, "r0")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Inject(faultproxy.ServiceTable, "POST batch", faultproxy.FaultLostBusy, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.Domain.Onboarding.Delete(ctx, "org", c.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if p.Stats().Services[faultproxy.ServiceTable].OperationFaults["POST batch"] != 1 {
		t.Fatal("the fault did not fire")
	}
	if _, err := f.store.Get(ctx, "org", c.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("after the delete: %v", err)
	}
}
