package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/handlers"
	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// count runs step and checks how many storage calls (table and queue) it made.
func (f *fixture) count(name string, want int64, step func()) {
	f.t.Helper()
	before := f.calls.n.Load()
	step()
	got := f.calls.n.Load() - before
	f.t.Logf("%s: %d storage calls", name, got)
	if got != want {
		f.t.Errorf("%s: %d storage calls, want %d", name, got, want)
	}
}

// TestStorageCallsPerStep pins the Table and Queue calls of each onboarding step on the
// domain's side (a worker adds a dequeue, shared by up to 32 messages, and a delete per
// job). One of create's calls is its guard's message, three the organization's credential
// counter (the first create of an organization initialises it; a later one on the same
// instance reads none), one its row of the open-window index; each submit writes that row
// too. Each submit also queues its window's backstop, which this fixture's scheduler
// leaves out (TestStorageTransactionsPerRequest counts it). No step reads the credential's
// row: each starts from the row the step before wrote, as the instance remembers it
// (credential.RecentRows), and the ETags of the transactions' answers.
func TestStorageCallsPerStep(t *testing.T) {
	f := newFixture(t, credential.Config{}, options{}, func(p *credentialtest.Ports, f *fixture) {
		p.Scheduler = credentialtest.WithoutBackstops(f.queues)
	})
	ctx := context.Background()
	var id string
	f.fake.Finder.Script(credentialtest.Found{Err: credentialtest.Provider(credential.ErrSPNotFound, "AADSTS700016")}, credentialtest.Found{ObjectID: "sp"})
	// The organization's first create: its credential counter is initialised (read,
	// count, insert); a later create on the same instance remembers it from the first's
	// transaction (4).
	f.count("create", 7, func() { id = f.Create("c1").ID })
	f.count("submit tenant", 3, func() {
		if _, err := f.Domain.Onboarding.SubmitTenant(ctx, "org", id, credentialtest.Tenant, "r"); err != nil {
			t.Fatal(err)
		}
	})
	first := f.Single(credential.JobSPPoll)
	f.count("sp poll, not yet", 2, func() { f.Run(first) })
	job := f.Single(credential.JobSPPoll)
	f.count("sp poll, found", 1, func() { f.Run(job) })
	// The window's backstop, a copy of its first job, comes a minute later: the row the
	// instance remembers shows it passed, and it is dropped unread.
	backstop := first
	backstop.Delivery = 1
	f.count("sp poll's backstop, after the window moved on", 0, func() { f.Run(backstop) })
	f.count("submit storage", 3, func() {
		if _, err := f.Domain.Onboarding.SubmitStorage(ctx, "org", id, credentialtest.Storage, "r"); err != nil {
			t.Fatal(err)
		}
	})
	f.fake.Prober.Script(credentialtest.Report("403", "403", "403", "skip"), credentialtest.Report("pass", "pass", "pass", "pass"))
	job = f.Single(credential.JobAccessProbe)
	f.count("access probe, waiting", 2, func() { f.Run(job) })
	job = f.Single(credential.JobAccessProbe)
	f.count("access probe, connected", 1, func() { f.Run(job) })
}

// trusting takes every bearer token as the organization it names, and a token
// "workload:<tenant>:<client>" as that workload identity: the subject here is storage, and
// the tokens' checks are internal/auth's.
type trusting struct{}

func (trusting) Authenticate(ctx context.Context, token string) (auth.Caller, error) {
	if rest, ok := strings.CutPrefix(token, "workload:"); ok {
		tenant, client, _ := strings.Cut(rest, ":")
		return auth.Caller{Kind: auth.CallerWorkload, Workload: auth.Workload{TenantID: tenant, ClientID: client, ObjectID: client}}, nil
	}
	return auth.Caller{Kind: auth.CallerUser, User: auth.Principal{Subject: "test", Orgs: []string{token}}}, nil
}

func (trusting) WorkloadIdentities() bool { return true }

// api serves the API and the queue functions on the fixture's domain, on one port as the
// Functions host calls them; call sends a request as a caller of f's organization and
// returns the status and the JSON body.
func (f *fixture) api() (call func(method, path string, body any) (int, map[string]any)) {
	return f.apiAs(f.Org)
}

// apiAs is api with token as the bearer token.
func (f *fixture) apiAs(token string) (call func(method, path string, body any) (int, map[string]any)) {
	f.t.Helper()
	log := slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(handlers.Compose(handlers.New(f.Domain.Onboarding, f.Domain.Issuance, f.Domain.WorkloadIdentities, trusting{}, log),
		handlers.NewInvoker(f.Domain.Runner, log)))
	f.t.Cleanup(srv.Close)
	return func(method, path string, body any) (int, map[string]any) {
		f.t.Helper()
		var rd bytes.Buffer
		if body != nil {
			if err := json.NewEncoder(&rd).Encode(body); err != nil {
				f.t.Fatal(err)
			}
		}
		req, err := http.NewRequest(method, srv.URL+path, &rd)
		if err != nil {
			f.t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set(handlers.OrgHeader, f.Org)
		resp, err := srv.Client().Do(req)
		if err != nil {
			f.t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
}

// TestStorageTransactionsPerRequest pins how many Table and Queue calls each endpoint
// makes, so a change that adds a round trip to a hot path shows up here.
func TestStorageTransactionsPerRequest(t *testing.T) {
	f := newFixture(t, credential.Config{EnvironmentDefault: credential.EnvironmentDefault{Account: "platformacct", ContainerPrefix: "lake-", Prefix: "lake"}},
		options{}, nil)
	call := f.api()
	base := "/organizations/" + f.Org + "/credentials"
	want := func(name string, calls int64, status int, method, path string, body any) map[string]any {
		t.Helper()
		var got int
		var out map[string]any
		f.count(name, calls, func() { got, out = call(method, path, body) })
		if got != status {
			t.Fatalf("%s: status %d, want %d: %v", name, got, status, out)
		}
		return out
	}
	create := func(name string) map[string]any {
		return map[string]any{"name": name, "storage_type": "azure_federated", "base_path": "az://bloblake/lakedata"}
	}
	// The organization's first create also initialises its credential counter: reads it
	// (missing), counts the credential rows, inserts it.
	want("create, the organization's first", 7, http.StatusCreated, "POST", base, create("c0"))
	// its open-window row, the insert (transaction; its answer names the row's and the
	// counter's ETags, so neither is read), the create's guard message, record the app
	id := want("create", 4, http.StatusCreated, "POST", base, create("c1"))["id"].(string)
	// the row alone: it carries the org-default mark
	want("get", 1, http.StatusOK, "GET", base+"/"+id, nil)
	want("list", 1, http.StatusOK, "GET", base, nil)
	// the open-window row, the window's backstop, transition (transaction), first poll
	// job: no read, the instance remembers the row as the get left it
	want("tenant", 4, http.StatusAccepted, "POST", base+"/"+id+"/tenant", map[string]string{"tenant_id": credentialtest.Tenant.TenantID})
	f.Advance(id, credential.EventSPFound, nil)
	// the remembered row is stale (the advance wrote underneath the instance) and in
	// sp_pending refuses the submit: the row is read, and the submit goes on as above
	want("storage", 5, http.StatusAccepted, "POST", base+"/"+id+"/storage", map[string]string{"subscription_id": credentialtest.Storage.SubscriptionID,
		"resource_group": "rg", "storage_account": "bloblake", "container_name": "lakedata"})
	f.Advance(id, credential.EventAccessConfirmed, nil)
	if status, out := call("POST", "/organizations/"+f.Org+"/workspaces", map[string]string{"workspace_id": "ws", "credential_id": id}); status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, out)
	}
	creds := func(ws string) string { return "/api/org/" + ws + "/ds/t/creds" }
	// workspace, its credential, the lock (first table only)
	want("creds, first table", 3, http.StatusOK, "POST", creds("ws"), nil)
	want("creds", 2, http.StatusOK, "POST", creds("ws"), nil)
	// an unregistered workspace: its (missing) row, the org default pointer, the workspace
	// counter, recording it
	want("creds, environment default, first table", 4, http.StatusOK, "POST", creds("ws-other"), nil)
	// pinned to the environment default: the workspace row alone, never the org default
	want("creds, environment default", 1, http.StatusOK, "POST", creds("ws-other"), nil)
	// read the credential, the default (its ETag), the transaction that points it here,
	// marks the credential and clears the former default's mark
	want("set default", 3, http.StatusOK, "PUT", "/organizations/"+f.Org+"/credential", map[string]string{"credential_id": id})
	// read the default (the domain's read, then the store's for its ETag, as before the
	// mark), the transaction that deletes it and clears the mark
	want("clear default", 3, http.StatusNoContent, "DELETE", "/organizations/"+f.Org+"/credential", nil)
	// read the row, its open-window row, clean-up job, the default, the counter, the
	// transaction (the links are the job's)
	want("delete", 6, http.StatusNoContent, "DELETE", base+"/"+id, nil)
}

// TestResolutionCache: a locked workspace's /creds needs no storage call while its
// resolution is cached; a delete on this instance drops it at once; it expires.
func TestResolutionCache(t *testing.T) {
	f := newFixture(t, credential.Config{ResolutionCacheTTL: time.Minute}, options{}, nil)
	call := f.api()
	a := f.Verified()
	if status, out := call("POST", "/organizations/"+f.Org+"/workspaces", map[string]string{"workspace_id": "ws", "credential_id": a.ID}); status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, out)
	}
	creds := func() {
		t.Helper()
		if status, out := call("POST", "/api/org/ws/ds/t/creds", nil); status != http.StatusOK {
			t.Fatalf("creds: %d %v", status, out)
		}
	}
	creds() // locks and caches
	f.count("cached /creds", 0, creds)
	f.fake.Clock.Advance(time.Minute)
	f.count("/creds after the entry expired", 2, creds)
	if status, out := call("DELETE", "/organizations/"+f.Org+"/credentials/"+a.ID, nil); status != http.StatusNoContent {
		t.Fatalf("delete: %d %v", status, out)
	}
	status, out := call("POST", "/api/org/ws/ds/t/creds", nil)
	if e, _ := out["error"].(map[string]any); status != http.StatusConflict || e["code"] != "credential_deleted" {
		t.Fatalf("after the delete: %d %v, want credential_deleted, not the cached resolution", status, out)
	}
}

// TestWorkloadIdentityStorageCalls pins the Table calls of the registry and of a workload
// identity's calls: a warm call costs what a platform user's does, its registry lookup
// being cached; only its first call reads the registration (one point read).
func TestWorkloadIdentityStorageCalls(t *testing.T) {
	const tenant, client = "6069b94b-fef6-4670-9fb7-f7b155ce22d1", "7ab7e149-fa92-4d13-b4f5-3968577a83a7"
	f := newFixture(t, credential.Config{WorkloadIdentityCacheTTL: time.Minute,
		EnvironmentDefault: credential.EnvironmentDefault{Account: "platformacct", ContainerPrefix: "lake-", Prefix: "lake"}}, options{}, nil)
	user, job := f.api(), f.apiAs("workload:"+tenant+":"+client)
	base := "/organizations/" + f.Org + "/workload-identities"
	want := func(call func(string, string, any) (int, map[string]any), name string, calls int64, status int, method, path string, body any) map[string]any {
		t.Helper()
		var got int
		var out map[string]any
		f.count(name, calls, func() { got, out = call(method, path, body) })
		if got != status {
			t.Fatalf("%s: status %d, want %d: %v", name, got, status, out)
		}
		return out
	}
	register := func(client string) map[string]string {
		return map[string]string{"display_name": "job", "client_id": client, "tenant_id": tenant}
	}
	// The organization's first: its counter is initialised (read, count, insert), then the
	// transaction (row, index, event, counter).
	id := want(user, "register, the organization's first", 4, http.StatusCreated, "POST", base, register(client))["id"].(string)
	// the transaction alone: the counter is remembered from the first's answer
	want(user, "register", 1, http.StatusCreated, "POST", base, register("0a6f4c1e-8b0a-4e59-9d0e-3c6f1b1e2d3c"))
	want(user, "list", 1, http.StatusOK, "GET", base, nil)
	want(user, "events", 1, http.StatusOK, "GET", base+"/events", nil)

	creds := "/api/org/ws/ds/t/creds"
	// the (missing) workspace, the org default, the workspace counter's initialisation
	// (read, count, insert), recording it
	want(user, "creds, environment default, first table", 6, http.StatusOK, "POST", creds, nil)
	want(user, "creds as the user", 1, http.StatusOK, "POST", creds, nil)
	// The workload identity's first call reads its registration once.
	want(job, "creds as the workload identity, first", 2, http.StatusOK, "POST", creds, nil)
	for range 3 {
		want(job, "creds as the workload identity, warm", 1, http.StatusOK, "POST", creds, nil)
	}
	// the index, the registration, the counter, the transaction
	want(user, "remove", 4, http.StatusNoContent, "DELETE", base+"/"+id, nil)
}
