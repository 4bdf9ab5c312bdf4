package graph

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
	"github.com/activeloopai/azcreds/internal/dev/localazure"
	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/queue"
	"github.com/activeloopai/azcreds/internal/queue/azurequeue"
	"github.com/activeloopai/azcreds/internal/store"
)

// serviceOnStandIn is the credential service with its real adapters: the Graph client
// against the stand-in, the store and the queues on Azurite. It logs to log (nowhere
// when nil).
func serviceOnStandIn(t *testing.T, si *standIn, log *slog.Logger) (*credentialtest.Domain, *azurequeue.Queues) {
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
	qs, err := azurequeue.Open(ctx, qsvc, azurequeue.Options{NamePrefix: testenv.UniqueName(t, "g")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, k := range queue.Kinds() {
			_, _ = qs.Client(k).Delete(context.Background(), nil)
		}
	})
	ports := credentialtest.NewFakes().Ports()
	ports.Store, ports.Workspaces, ports.Health, ports.Scheduler, ports.Directory = st, st, st, qs, si.directory()
	return credentialtest.Wire(t, credentialtest.Setup{Config: credential.Config{HomeTenantID: homeTenant, ManagedIdentityObjectID: miObjectID},
		Ports: ports, Log: log}), qs
}

func cleanupJobs(t *testing.T, qs *azurequeue.Queues) []credential.Job {
	t.Helper()
	n := int32(32)
	resp, err := qs.Client(credential.JobAppCleanup).DequeueMessages(context.Background(), &azqueue.DequeueMessagesOptions{NumberOfMessages: &n})
	if err != nil {
		t.Fatal(err)
	}
	var jobs []credential.Job
	for _, m := range resp.Messages {
		j, err := queue.Decode(*m.MessageText)
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
	svc, qs := serviceOnStandIn(t, si, nil)
	ctx := context.Background()
	c, err := svc.Onboarding.Create(ctx, "org", createInput, "req")
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
	if err := svc.Onboarding.Delete(ctx, "org", c.ID); err != nil {
		t.Fatal(err)
	}
	jobs := cleanupJobs(t, qs)
	if len(jobs) != 1 {
		t.Fatalf("clean-up jobs %+v", jobs)
	}
	if err := svc.Runner.Run(ctx, jobs[0]); err != nil {
		t.Fatal(err)
	}
	if err := svc.Runner.Run(ctx, jobs[0]); err != nil { // delivered twice: 404 counts as done
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
	svc, qs := serviceOnStandIn(t, si, nil)
	ctx := context.Background()

	si.fault(localazure.Fault{Operation: localazure.OpCreateFederatedCredential, Status: http.StatusInternalServerError, Count: 10})
	if _, err := svc.Onboarding.Create(ctx, "org", createInput, "req"); err == nil {
		t.Fatal("create succeeded with federated credentials failing")
	}
	if apps := si.controlApps(); len(apps) != 0 {
		t.Fatalf("orphaned apps: %+v", apps)
	}
	if cs, err := svc.Onboarding.List(ctx, "org"); err != nil || len(cs) != 0 {
		t.Fatalf("rows left: %v, %v", cs, err)
	}

	si.s.ClearFaults()
	si.fault(localazure.Fault{Operation: localazure.OpCreateFederatedCredential, Status: http.StatusInternalServerError, Count: 10})
	si.fault(localazure.Fault{Operation: localazure.OpDeleteApplication, Status: http.StatusInternalServerError, Count: 10})
	if _, err := svc.Onboarding.Create(ctx, "org", createInput, "req"); err == nil {
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
	if err := svc.Runner.Run(ctx, jobs[0]); err != nil {
		t.Fatal(err)
	}
	if apps := si.controlApps(); len(apps) != 0 {
		t.Fatalf("orphaned apps after clean-up: %+v", apps)
	}
	// The name is free again.
	if _, err := svc.Onboarding.Create(ctx, "org", createInput, "req-"+uuid.NewString()); err != nil {
		t.Fatal(err)
	}
}

// errorLog counts the error-level records of a JSON slog handler writing to it.
type errorLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *errorLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *errorLog) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			out = append(out, line)
		}
	}
	return out
}

func appObjectIDs(apps []map[string]any) []string {
	var out []string
	for _, a := range apps {
		out = append(out, a["id"].(string))
	}
	return out
}

// TestForgedCleanUpDeletesNothing: an app clean-up job naming another credential's app (a
// forged or stale message; the managed identity could delete any of them), or a
// credential that does not exist in the job's organization, deletes nothing and is logged
// at error level, whether the credential it names was deleted or not. The deleted
// credential's own job then deletes its own app, and only that.
func TestForgedCleanUpDeletesNothing(t *testing.T) {
	si := newStandIn(t)
	logs := &errorLog{}
	svc, qs := serviceOnStandIn(t, si, slog.New(slog.NewJSONHandler(logs, nil)))
	ctx := context.Background()
	a, err := svc.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "a", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Onboarding.Create(ctx, "org", credential.CreateInput{Name: "b", StorageType: "azure_federated", BasePath: "az://bloblake/lakedata"}, "r2")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Onboarding.Delete(ctx, "org", a.ID); err != nil {
		t.Fatal(err)
	}
	own := cleanupJobs(t, qs)
	if len(own) != 1 || own[0].AppObjectID != a.App.ObjectID {
		t.Fatalf("clean-up jobs %+v", own)
	}
	forged := []credential.Job{
		// the deleted credential, with the other's app
		{Kind: credential.JobAppCleanup, OrgID: "org", CredentialID: a.ID, AppObjectID: b.App.ObjectID},
		// the live credential, with the deleted one's app
		{Kind: credential.JobAppCleanup, OrgID: "org", CredentialID: b.ID, AppObjectID: a.App.ObjectID},
		// the live credential with its own app, under another organization, as a delete's
		// clean-up and as a create's guard
		{Kind: credential.JobAppCleanup, OrgID: "other-org", CredentialID: b.ID, AppObjectID: b.App.ObjectID},
		{Kind: credential.JobAppCleanup, OrgID: "other-org", CredentialID: b.ID},
		// a credential that never existed, with the live one's app
		{Kind: credential.JobAppCleanup, OrgID: "org", CredentialID: uuid.NewString(), AppObjectID: b.App.ObjectID},
	}
	for i, job := range forged {
		if err := svc.Runner.Run(ctx, job); err != nil {
			t.Fatalf("forged job %d: %v", i, err)
		}
		if got := appObjectIDs(si.controlApps()); len(got) != 2 {
			t.Fatalf("forged job %d %+v deleted an app: left %v", i, job, got)
		}
		if n := len(logs.errors()); n != i+1 {
			t.Fatalf("forged job %d: %d error-level records, want %d: %v", i, n, i+1, logs.errors())
		}
	}
	if err := svc.Runner.Run(ctx, own[0]); err != nil {
		t.Fatal(err)
	}
	if got := appObjectIDs(si.controlApps()); len(got) != 1 || got[0] != b.App.ObjectID {
		t.Fatalf("apps after the deleted credential's own clean-up: %v, want only %s", got, b.App.ObjectID)
	}
}
