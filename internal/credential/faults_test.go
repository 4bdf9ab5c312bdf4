package credential_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
	"github.com/activeloopai/azcreds/internal/faultproxy"
	"github.com/activeloopai/azcreds/internal/message"
	"github.com/activeloopai/azcreds/internal/queue"
	"github.com/activeloopai/azcreds/internal/store"
	"github.com/activeloopai/azcreds/internal/testenv"
)

// newProxiedFixture is newFixture with the tables and queues behind a fault proxy in
// front of the test Azurite; timeout faults hold a request for hold.
func newProxiedFixture(t *testing.T, hold time.Duration) (*fixture, *faultproxy.Proxy) {
	t.Helper()
	env := testenv.Azurite(t)
	ctx := context.Background()
	p, err := faultproxy.New(faultproxy.Config{Hold: hold, Targets: map[faultproxy.Service]string{
		faultproxy.ServiceTable: env.TableEndpoint, faultproxy.ServiceQueue: env.QueueEndpoint}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(env.CertFile, filepath.Join(filepath.Dir(env.CertFile), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []faultproxy.Service{faultproxy.ServiceTable, faultproxy.ServiceQueue} {
		srv := httptest.NewUnstartedServer(p.Handler(svc))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		if svc == faultproxy.ServiceTable {
			env.TableEndpoint = srv.URL
		} else {
			env.QueueEndpoint = srv.URL
		}
	}
	conn := env.ConnectionString(testenv.DevAccount)
	opts := azcore.ClientOptions{Retry: policy.RetryOptions{RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond}}
	tables, err := aztables.NewServiceClientFromConnectionString(conn, &aztables.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.UniqueName(t, "faults")
	st, err := store.Open(ctx, tables, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = tables.DeleteTable(context.Background(), name, nil) })
	qsvc, err := azqueue.NewServiceClientFromConnectionString(conn, &azqueue.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: st, fake: &scripted{}, calls: &callCounter{}, now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	qs, err := queue.Open(ctx, qsvc, queue.Options{NamePrefix: testenv.UniqueName(t, "f"), Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, k := range message.Kinds() {
			_, _ = qs.Client(k).Delete(context.Background(), nil)
		}
	})
	f.queues = qs
	f.svc = f.wire(credential.Config{}, func(p *credentialtest.Ports) { p.Scheduler = qs })
	return f, p
}

// nextJob dequeues the next job of kind, waiting up to limit for one to become visible.
func (f *fixture) nextJob(kind credential.JobKind, limit time.Duration) (credential.Job, bool) {
	f.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := f.queues.Client(kind).DequeueMessage(ctx, nil)
		if err != nil {
			f.t.Fatal(err)
		}
		if len(resp.Messages) == 1 {
			m := resp.Messages[0]
			job, err := message.Decode(*m.MessageText)
			if err != nil {
				f.t.Fatal(err)
			}
			_, _ = f.queues.Client(kind).DeleteMessage(ctx, *m.MessageID, *m.PopReceipt, nil)
			return job, true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return credential.Job{}, false
}

// TestCleanUpWhileTheDeleteIsSlow: the delete queues the app's clean-up before it removes
// the row, and a worker may run the job while the row's removal is still under way (here
// held by a storage timeout that the SDK then retries). The job must not give up on the
// app because the row was still there: the app is deleted once the row is gone.
func TestCleanUpWhileTheDeleteIsSlow(t *testing.T) {
	f, p := newProxiedFixture(t, 3*time.Second)
	ctx := context.Background()
	c, err := f.svc.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "slow-delete", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata/p"}, "r0")
	if err != nil {
		t.Fatal(err)
	}
	// The create's guard waits (CreateGuardDelay) out of sight: every job seen here is
	// the delete's.
	if err := p.Inject(faultproxy.ServiceTable, "POST batch", faultproxy.FaultTimeout, 1); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- f.svc.Onboarding.Delete(ctx, "org", c.ID) }()
	job, ok := f.nextJob(credential.JobAppCleanup, 10*time.Second)
	if !ok {
		t.Fatal("no clean-up job queued")
	}
	f.run(job) // while the row's removal is held
	if err := <-deleted; err != nil {
		t.Fatalf("delete: %v", err)
	}
	if p.Stats().Services[faultproxy.ServiceTable].Faults.Timeout != 1 {
		t.Fatal("the delete was not held")
	}
	for !slices.Contains(f.fake.deletedApps(), c.App.ObjectID) {
		job, ok := f.nextJob(credential.JobAppCleanup, credential.AppCleanupRecheck+5*time.Second)
		if !ok {
			t.Fatalf("app %s of the deleted credential is left behind, and no clean-up job is queued", c.App.ObjectID)
		}
		f.run(job)
	}
}

// TestCleanUpLeavesTheAppOfAFailedDelete: a delete that never removed the row leaves the
// app in place once the job has looked long enough.
func TestCleanUpLeavesTheAppOfAFailedDelete(t *testing.T) {
	f, _ := newProxiedFixture(t, time.Second)
	ctx := context.Background()
	c, err := f.svc.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "kept", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata/p"}, "r0")
	if err != nil {
		t.Fatal(err)
	}
	job := credential.Job{Kind: credential.JobAppCleanup, OrgID: "org", CredentialID: c.ID, AppObjectID: c.App.ObjectID,
		Deadline: f.now.Add(credential.AppCleanupSettle)}
	f.run(job)
	if _, ok := f.nextJob(credential.JobAppCleanup, credential.AppCleanupRecheck+5*time.Second); !ok {
		t.Fatal("within the settle time the job did not look again")
	}
	f.now = f.now.Add(credential.AppCleanupSettle + time.Second)
	f.run(job)
	if len(f.fake.deletedApps()) != 0 {
		t.Fatalf("the app of a credential that still exists was deleted: %v", f.fake.deletedApps())
	}
	if j, ok := f.nextJob(credential.JobAppCleanup, time.Second); ok && j.AppObjectID != "" {
		t.Fatalf("after the settle time the job looked again: %+v", j)
	}
}

func (s *scripted) deletedApps() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deleted)
}

// TestDeleteRacingAPoller: a poller writes the row between the delete's read and its
// conditional removal. The delete still stands: it reads the row again and removes it.
func TestDeleteRacingAPoller(t *testing.T) {
	f, p := newProxiedFixture(t, 3*time.Second)
	ctx := context.Background()
	f.fake.finds = []findResult{{objectID: "sp-object"}}
	id, poll := f.submitted()

	// Hold the delete's scheduling of its clean-up job (between its read and its write),
	// and let the poller write meanwhile.
	if err := p.Inject(faultproxy.ServiceQueue, "POST messages", faultproxy.FaultTimeout, 1); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- f.svc.Onboarding.Delete(ctx, "org", id) }()
	for p.Stats().Services[faultproxy.ServiceQueue].Faults.Timeout == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	f.run(poll)
	if got := f.get(id); got.State != credential.StateSPVerified {
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
	f, p := newProxiedFixture(t, time.Second)
	ctx := context.Background()
	c, err := f.svc.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "lost-delete", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata/p"}, "r0")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Inject(faultproxy.ServiceTable, "POST batch", faultproxy.FaultLostBusy, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Onboarding.Delete(ctx, "org", c.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if p.Stats().Services[faultproxy.ServiceTable].OperationFaults["POST batch"] != 1 {
		t.Fatal("the fault did not fire")
	}
	if _, err := f.store.Get(ctx, "org", c.ID); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("after the delete: %v", err)
	}
}
