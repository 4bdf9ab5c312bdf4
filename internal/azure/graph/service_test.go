package graph

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/localazure"
	"github.com/activeloopai/azcreds/internal/message"
	"github.com/activeloopai/azcreds/internal/queue"
	"github.com/activeloopai/azcreds/internal/store"
	"github.com/activeloopai/azcreds/internal/testenv"
)

// serviceOnStandIn is the credential service with its real adapters: the Graph client
// against the stand-in, the store and the queues on Azurite.
func serviceOnStandIn(t *testing.T, si *standIn) (*credential.Service, *queue.Queues) {
	t.Helper()
	env := testenv.Azurite(t)
	ctx := context.Background()
	tables, err := aztables.NewServiceClientFromConnectionString(env.ConnString, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.UniqueName(t, "graph")
	st, err := store.Open(ctx, tables, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = tables.DeleteTable(context.Background(), name, nil) })
	qsvc, err := azqueue.NewServiceClientFromConnectionString(env.ConnString, nil)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := queue.Open(ctx, qsvc, queue.Options{NamePrefix: testenv.UniqueName(t, "g")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, k := range message.Kinds() {
			_, _ = qs.Client(k).Delete(context.Background(), nil)
		}
	})
	svc, err := credential.NewService(credential.Config{HomeTenantID: homeTenant, ManagedIdentityObjectID: miObjectID},
		credential.Deps{Store: st, Directory: si.directory(), Scheduler: qs}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return svc, qs
}

func cleanupJobs(t *testing.T, qs *queue.Queues) []credential.Job {
	t.Helper()
	n := int32(32)
	resp, err := qs.Client(credential.JobAppCleanup).DequeueMessages(context.Background(), &azqueue.DequeueMessagesOptions{NumberOfMessages: &n})
	if err != nil {
		t.Fatal(err)
	}
	var jobs []credential.Job
	for _, m := range resp.Messages {
		j, err := message.Decode(*m.MessageText)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	return jobs
}

var createInput = credential.CreateInput{Name: "prod-azure-bloblake", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}

// TestCreateProvisionsThroughGraph: create makes a multi-tenant app named after the
// credential, with a federated credential that trusts the backend's managed identity.
func TestCreateProvisionsThroughGraph(t *testing.T) {
	si := newStandIn(t)
	svc, qs := serviceOnStandIn(t, si)
	ctx := context.Background()
	c, err := svc.Create(ctx, "org", createInput, "req")
	if err != nil {
		t.Fatal(err)
	}
	apps := si.controlApps()
	if len(apps) != 1 || apps[0]["appId"] != c.App.AppID || apps[0]["displayName"] != "deeplake-prod-azure-bloblake" ||
		apps[0]["signInAudience"] != "AzureADMultipleOrgs" {
		t.Fatalf("apps %+v, credential app %+v", apps, c.App)
	}
	// The FIC works: the app can sign in to a customer tenant once its SP is installed there.
	if _, _, err := si.s.InstallServicePrincipal(custTenant, c.App.AppID); err != nil {
		t.Fatal(err)
	}
	if _, err := si.directory().FindServicePrincipal(ctx, si.appCredential(custTenant, c.App.AppID), c.App.AppID); err != nil {
		t.Fatalf("the provisioned app cannot sign in through its federated credential: %v", err)
	}
	// Delete queues the clean-up; the clean-up job deletes the app through Graph.
	if err := svc.Delete(ctx, "org", c.ID); err != nil {
		t.Fatal(err)
	}
	jobs := cleanupJobs(t, qs)
	if len(jobs) != 1 {
		t.Fatalf("clean-up jobs %+v", jobs)
	}
	if err := svc.Run(ctx, jobs[0]); err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(ctx, jobs[0]); err != nil { // delivered twice: 404 counts as done
		t.Fatal(err)
	}
	if apps := si.controlApps(); len(apps) != 0 {
		t.Fatalf("app left after clean-up: %+v", apps)
	}
}

// TestFailedCreateLeavesNoApp: Graph fails after the app exists; the app is deleted again.
// When the delete fails too, the clean-up is queued and finishes the job later.
func TestFailedCreateLeavesNoApp(t *testing.T) {
	si := newStandIn(t)
	svc, qs := serviceOnStandIn(t, si)
	ctx := context.Background()

	si.fault(localazure.Fault{Operation: localazure.OpCreateFederatedCredential, Status: http.StatusInternalServerError, Count: 10})
	if _, err := svc.Create(ctx, "org", createInput, "req"); err == nil {
		t.Fatal("create succeeded with federated credentials failing")
	}
	if apps := si.controlApps(); len(apps) != 0 {
		t.Fatalf("orphaned apps: %+v", apps)
	}
	if cs, err := svc.List(ctx, "org"); err != nil || len(cs) != 0 {
		t.Fatalf("rows left: %v, %v", cs, err)
	}

	si.s.ClearFaults()
	si.fault(localazure.Fault{Operation: localazure.OpCreateFederatedCredential, Status: http.StatusInternalServerError, Count: 10})
	si.fault(localazure.Fault{Operation: localazure.OpDeleteApplication, Status: http.StatusInternalServerError, Count: 10})
	if _, err := svc.Create(ctx, "org", createInput, "req"); err == nil {
		t.Fatal("create succeeded")
	}
	if apps := si.controlApps(); len(apps) != 1 {
		t.Fatalf("want the one app whose delete failed, got %+v", apps)
	}
	jobs := cleanupJobs(t, qs)
	if len(jobs) != 1 {
		t.Fatalf("clean-up jobs %+v", jobs)
	}
	si.s.ClearFaults()
	if err := svc.Run(ctx, jobs[0]); err != nil {
		t.Fatal(err)
	}
	if apps := si.controlApps(); len(apps) != 0 {
		t.Fatalf("orphaned apps after clean-up: %+v", apps)
	}
	// The name is free again.
	if _, err := svc.Create(ctx, "org", createInput, "req-"+uuid.NewString()); err != nil {
		t.Fatal(err)
	}
}
