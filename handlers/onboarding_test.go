package handlers

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

const (
	org      = "org-a"
	tenantID = "ceeafc3d-f026-420b-a75b-9df0c970e6d1"
	subID    = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
)

func storageBody(account, container string) map[string]string {
	return map[string]string{"subscription_id": subID, "resource_group": "data-rg", "storage_account": account, "container_name": container}
}

// TestLifecycle walks a credential through create -> get -> list -> tenant -> storage
// (after the store moved it to sp_verified) -> save-unverified -> org default -> delete.
func TestLifecycle(t *testing.T) {
	h := newHarness(t)
	base := "/organizations/" + org + "/credentials"

	d := h.create(org, "prod-azure-bloblake", "az://bloblake/lakedata/data")
	if d.State != "draft" || d.Azure.AppID == "" || d.ID == "" {
		t.Fatalf("created %+v", d)
	}
	if d.InstallCommand != "az ad sp create --id "+d.Azure.AppID {
		t.Errorf("install command %q", d.InstallCommand)
	}
	if !strings.HasPrefix(d.AdminConsentURL, "https://login.microsoftonline.com/organizations/adminconsent?client_id="+d.Azure.AppID) {
		t.Errorf("consent URL %q", d.AdminConsentURL)
	}
	if d.Azure.StorageAccount != "bloblake" || d.Azure.ContainerName != "lakedata" || d.Azure.Prefix != "data" {
		t.Errorf("azure %+v", d.Azure)
	}
	if h.dir.Apps() != 1 || len(h.dir.FederatedCredentials()) != 1 {
		t.Fatalf("directory holds %d apps", h.dir.Apps())
	}
	for _, fc := range h.dir.FederatedCredentials() {
		want := []credential.FederatedCredential{{Name: "azcreds-backend", Issuer: "https://login.microsoftonline.com/" + homeTenant + "/v2.0",
			Subject: miObjectID, Audiences: []string{"api://AzureADTokenExchange"}, Description: fc[0].Description}}
		if diff := cmp.Diff(want, fc); diff != "" {
			t.Errorf("federated credential (-want +got):\n%s", diff)
		}
	}

	var got detailView
	h.call("GET", org, base+"/"+d.ID, nil).decode(t, &got)
	if diff := cmp.Diff(d, got); diff != "" {
		t.Errorf("GET differs from create (-create +get):\n%s", diff)
	}
	var list listView
	h.call("GET", org, base, nil).decode(t, &list)
	if len(list.Credentials) != 1 || list.Credentials[0].ID != d.ID || list.Credentials[0].State != "draft" {
		t.Fatalf("list %+v", list)
	}

	// Storage before the service principal is known: refused, naming the state.
	r := h.call("POST", org, base+"/"+d.ID+"/storage", storageBody("bloblake", "lakedata"))
	h.want(r, http.StatusConflict)
	if e := r.errorBody(t); e.Code != "invalid_state" || !strings.Contains(e.Message, `state "draft"`) {
		t.Fatalf("error %+v", e)
	}

	r = h.call("POST", org, base+"/"+d.ID+"/tenant", map[string]string{"tenant_id": tenantID})
	h.want(r, http.StatusAccepted)
	r.decode(t, &got)
	if got.State != "sp_pending" || got.Generation != 1 || got.Azure.TenantID != tenantID || got.Progress == nil ||
		got.Progress.Kind != "sp_poll" || !got.Progress.Deadline.Equal(h.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("after tenant: %+v progress %+v", got, got.Progress)
	}
	if jobs := h.jobs(credential.JobSPPoll); len(jobs) != 1 || jobs[0].Generation != 1 || jobs[0].CredentialID != d.ID {
		t.Fatalf("sp poll jobs %+v", jobs)
	}

	spObject := uuid.NewString()
	h.advance(org, d.ID, credential.EventSPFound, func(c *credential.Credential) { c.SPObjectID = spObject })

	r = h.call("POST", org, base+"/"+d.ID+"/storage", storageBody("bloblake", "lakedata"))
	h.want(r, http.StatusAccepted)
	r.decode(t, &got)
	if got.State != "access_pending" || got.Generation != 2 || got.Progress.Kind != "access_probe" ||
		!got.Progress.Deadline.Equal(h.clock.Now().Add(5*time.Minute)) || got.Progress.GraceUntil == nil ||
		!got.Progress.GraceUntil.Equal(h.clock.Now().Add(2*time.Minute)) {
		t.Fatalf("after storage: %+v progress %+v", got, got.Progress)
	}
	if !strings.Contains(got.RoleAssignmentCommand, "--assignee-object-id "+spObject) ||
		!strings.HasSuffix(got.PortalURL, "/storageAccounts/bloblake/iam") {
		t.Errorf("role command %q portal %q", got.RoleAssignmentCommand, got.PortalURL)
	}
	if jobs := h.jobs(credential.JobAccessProbe); len(jobs) != 1 || jobs[0].Generation != 2 {
		t.Fatalf("access probe jobs %+v", jobs)
	}

	// Save anyway only once the probe's deadline passed.
	r = h.call("POST", org, base+"/"+d.ID+"/save-unverified", map[string]string{})
	h.want(r, http.StatusConflict)
	h.clock.Advance(5*time.Minute + time.Second)
	r = h.call("POST", org, base+"/"+d.ID+"/save-unverified", "")
	h.want(r, http.StatusOK)
	r.decode(t, &got)
	if got.State != "unverified_saved" {
		t.Fatalf("state %s", got.State)
	}

	r = h.call("PUT", org, "/organizations/"+org+"/credential", map[string]string{"credential_id": d.ID})
	h.want(r, http.StatusOK)
	h.call("GET", org, base+"/"+d.ID, nil).decode(t, &got)
	if !got.IsOrgDefault {
		t.Fatal("not the org default")
	}

	var evs eventsView
	h.call("GET", org, base+"/"+d.ID+"/events", nil).decode(t, &evs)
	var path []string
	for _, ev := range evs.Events {
		path = append(path, fmt.Sprintf("%s>%s:%s", ev.From, ev.To, ev.Cause))
		if ev.Cause != string(credential.EventSPFound) && ev.RequestID == "" {
			t.Errorf("event %+v has no request id", ev)
		}
	}
	want := []string{">draft:created", "draft>sp_pending:submit_tenant", "sp_pending>sp_verified:sp_found",
		"sp_verified>access_pending:submit_storage", "access_pending>unverified_saved:save_unverified"}
	if diff := cmp.Diff(want, path); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}

	h.want(h.call("DELETE", org, base+"/"+d.ID, nil), http.StatusNoContent)
	h.want(h.call("GET", org, base+"/"+d.ID, nil), http.StatusNotFound)
	h.call("GET", org, base, nil).decode(t, &list)
	if len(list.Credentials) != 0 {
		t.Fatalf("list after delete %+v", list)
	}
	if jobs := h.jobs(credential.JobAppCleanup); len(jobs) != 1 || jobs[0].AppObjectID == "" || jobs[0].CredentialID != d.ID {
		t.Fatalf("clean-up jobs %+v", jobs)
	}
	h.want(h.call("DELETE", org, base+"/"+d.ID, nil), http.StatusNotFound)
	// The name is free again and the org default is gone.
	again := h.create(org, "prod-azure-bloblake", "az://bloblake/lakedata")
	h.call("GET", org, base+"/"+again.ID, nil).decode(t, &got)
	if got.IsOrgDefault {
		t.Fatal("org default survived the delete")
	}
}

// TestRefusedTransitionsOverHTTP: every request in a state that does not allow it is a
// 409 whose message names the state.
func TestRefusedTransitionsOverHTTP(t *testing.T) {
	h := newHarness(t)
	base := "/organizations/" + org + "/credentials/"
	d := h.create(org, "c1", "az://bloblake/lakedata")
	cases := []struct {
		path string
		body any
	}{
		{"/storage", storageBody("bloblake", "lakedata")},
		{"/save-unverified", map[string]string{}},
	}
	for _, c := range cases {
		r := h.call("POST", org, base+d.ID+c.path, c.body)
		h.want(r, http.StatusConflict)
		if e := r.errorBody(t); !strings.Contains(e.Message, `"draft"`) {
			t.Errorf("%s: %q does not name the state", c.path, e.Message)
		}
	}
	r := h.call("PUT", org, "/organizations/"+org+"/credential", map[string]string{"credential_id": d.ID})
	h.want(r, http.StatusConflict)
	if e := r.errorBody(t); e.Message != `cannot set the org default: credential is in state "draft"; allowed only in state verified, unverified_saved` {
		t.Errorf("set default message %q", e.Message)
	}
	// Verified is final for submits.
	h.want(h.call("POST", org, base+d.ID+"/tenant", map[string]string{"tenant_id": tenantID}), http.StatusAccepted)
	h.advance(org, d.ID, credential.EventSPFound, nil)
	h.want(h.call("POST", org, base+d.ID+"/storage", storageBody("bloblake", "lakedata")), http.StatusAccepted)
	h.advance(org, d.ID, credential.EventAccessConfirmed, nil)
	r = h.call("POST", org, base+d.ID+"/tenant", map[string]string{"tenant_id": tenantID})
	h.want(r, http.StatusConflict)
	if e := r.errorBody(t); e.Message != `cannot submit the tenant: credential is in state "verified"; allowed only in state draft, sp_pending` {
		t.Errorf("message %q", e.Message)
	}
	r = h.call("POST", org, base+d.ID+"/storage", storageBody("bloblake", "lakedata"))
	h.want(r, http.StatusConflict)
	h.want(h.call("PUT", org, "/organizations/"+org+"/credential", map[string]string{"credential_id": d.ID}), http.StatusOK)
}

// TestResubmitRestartsWindow: a second tenant submit bumps the generation and queues a
// job for the new window only.
func TestResubmitRestartsWindow(t *testing.T) {
	h := newHarness(t)
	base := "/organizations/" + org + "/credentials/"
	d := h.create(org, "c1", "az://bloblake/lakedata")
	h.want(h.call("POST", org, base+d.ID+"/tenant", map[string]string{"tenant_id": tenantID}), http.StatusAccepted)
	h.clock.Advance(time.Minute)
	r := h.call("POST", org, base+d.ID+"/tenant", map[string]string{"tenant_id": "11111111-2222-3333-4444-555555555555"})
	h.want(r, http.StatusAccepted)
	var got detailView
	r.decode(t, &got)
	if got.Generation != 2 || !got.Progress.StartedAt.Equal(h.clock.Now()) {
		t.Fatalf("restart: generation %d progress %+v", got.Generation, got.Progress)
	}
	gens := map[int64]bool{}
	for _, j := range h.jobs(credential.JobSPPoll) {
		gens[j.Generation] = true
	}
	if !gens[1] || !gens[2] || len(gens) != 2 {
		t.Fatalf("job generations %v", gens)
	}
}

func TestValidationMessages(t *testing.T) {
	h := newHarness(t)
	base := "/organizations/" + org + "/credentials"
	createCases := []struct {
		body         map[string]string
		field, msgIs string
	}{
		{map[string]string{"name": "bad name", "storage_type": "azure_federated", "base_path": "az://bloblake/lakedata"}, "name", `name "bad name" contains invalid character " "`},
		{map[string]string{"name": "ok", "storage_type": "s3", "base_path": "az://bloblake/lakedata"}, "storage_type", `storage_type must be "azure_federated"`},
		{map[string]string{"name": "ok", "storage_type": "azure_federated", "base_path": "az://Bloblake/lakedata"}, "base_path", `storage account "Bloblake" contains invalid character "B"`},
		{map[string]string{"name": "ok", "storage_type": "azure_federated", "base_path": "az://bloblake/lake--data"}, "base_path", `container "lake--data" must not contain consecutive hyphens`},
		{map[string]string{"name": "ok", "storage_type": "azure_federated", "base_path": "bloblake/lakedata"}, "base_path", `base_path "bloblake/lakedata" must start with az:// and look like az://<account>/<container>[/<prefix>]`},
	}
	for _, c := range createCases {
		r := h.call("POST", org, base, c.body)
		h.want(r, http.StatusBadRequest)
		if e := r.errorBody(t); e.Field != c.field || e.Message != c.msgIs || e.Code != "validation_failed" || e.RequestID != r.header.Get("X-Request-Id") {
			t.Errorf("create %v: got %+v", c.body, e)
		}
	}
	if h.dir.Apps() != 0 {
		t.Fatal("an invalid create made an app")
	}

	d := h.create(org, "c1", "az://bloblake/lakedata/prefix")
	h.want(h.call("POST", org, base+"/"+d.ID+"/tenant", map[string]string{"tenant_id": "contoso.onmicrosoft.com"}), http.StatusBadRequest)
	h.want(h.call("POST", org, base+"/"+d.ID+"/tenant", map[string]string{"tenant_id": tenantID}), http.StatusAccepted)
	h.advance(org, d.ID, credential.EventSPFound, nil)
	storageCases := []struct {
		body         map[string]string
		field, msgIs string
	}{
		{storageBody("Bloblake", "lakedata"), "storage_account", `storage account "Bloblake" contains invalid character "B"`},
		{storageBody("bloblake", "lakedata/prefix"), "container_name", `container "lakedata/prefix" contains a slash; slashes belong to the prefix of base_path (az://<account>/<container>/<prefix>), never the container name`},
		{storageBody("bloblake", "lake--data"), "container_name", `container "lake--data" must not contain consecutive hyphens`},
		{storageBody("otheracct", "lakedata"), "storage_account", `storage account "otheracct" does not match the account "bloblake" of the credential's base path az://bloblake/lakedata/prefix`},
		{storageBody("bloblake", "otherbox"), "container_name", `container "otherbox" does not match the container "lakedata" of the credential's base path az://bloblake/lakedata/prefix`},
		{map[string]string{"subscription_id": "nope", "resource_group": "rg", "storage_account": "bloblake", "container_name": "lakedata"}, "subscription_id", `subscription_id "nope" is not a UUID (expected the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`},
		{map[string]string{"subscription_id": subID, "resource_group": "bad rg", "storage_account": "bloblake", "container_name": "lakedata"}, "resource_group", `resource group "bad rg" contains invalid character " "`},
	}
	for _, c := range storageCases {
		r := h.call("POST", org, base+"/"+d.ID+"/storage", c.body)
		h.want(r, http.StatusBadRequest)
		if e := r.errorBody(t); e.Field != c.field || e.Message != c.msgIs {
			t.Errorf("storage %v: got %+v", c.body, e)
		}
	}
	var got detailView
	h.call("GET", org, base+"/"+d.ID, nil).decode(t, &got)
	if got.State != "sp_verified" || got.Generation != 1 {
		t.Fatalf("invalid submits changed the row: %s gen %d", got.State, got.Generation)
	}
}

func TestDuplicateNameIsConflict(t *testing.T) {
	h := newHarness(t)
	h.create(org, "prod", "az://bloblake/lakedata")
	r := h.call("POST", org, "/organizations/"+org+"/credentials",
		map[string]string{"name": "prod", "storage_type": "azure_federated", "base_path": "az://other1/box"})
	h.want(r, http.StatusConflict)
	if e := r.errorBody(t); e.Message != `a credential named "prod" already exists in this organization` {
		t.Fatalf("message %q", e.Message)
	}
	if h.dir.Apps() != 1 {
		t.Fatalf("a refused duplicate created an app: %d apps", h.dir.Apps())
	}
	h.create("org-b", "prod", "az://bloblake/lakedata") // other org, same name: fine
}

// TestConcurrentSubmits: racing submits on one row never lose an update: every 202 is one
// generation and one event, every loser is a clear 409.
func TestConcurrentSubmits(t *testing.T) {
	h := newHarness(t)
	d := h.create(org, "c1", "az://bloblake/lakedata")
	const n = 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.call("POST", org, "/organizations/"+org+"/credentials/"+d.ID+"/tenant", map[string]string{"tenant_id": tenantID})
			statuses[i] = r.status
			if r.status == http.StatusConflict && !strings.Contains(string(r.body), "changed by another request") {
				t.Errorf("conflict body %s", r.body)
			}
		}()
	}
	wg.Wait()
	wins := 0
	for _, s := range statuses {
		switch s {
		case http.StatusAccepted:
			wins++
		case http.StatusConflict:
		default:
			t.Errorf("status %d", s)
		}
	}
	if wins == 0 {
		t.Fatal("no submit won")
	}
	var got detailView
	h.call("GET", org, "/organizations/"+org+"/credentials/"+d.ID, nil).decode(t, &got)
	var evs eventsView
	h.call("GET", org, "/organizations/"+org+"/credentials/"+d.ID+"/events", nil).decode(t, &evs)
	if got.Generation != int64(wins) || len(evs.Events) != wins+1 {
		t.Fatalf("%d wins but generation %d and %d events", wins, got.Generation, len(evs.Events))
	}
	if jobs := h.jobs(credential.JobSPPoll); len(jobs) != wins {
		t.Fatalf("%d wins but %d poll jobs", wins, len(jobs))
	}
}

func TestCreateCompensation(t *testing.T) {
	h := newHarness(t)
	base := "/organizations/" + org + "/credentials"
	body := map[string]string{"name": "c1", "storage_type": "azure_federated", "base_path": "az://bloblake/lakedata"}

	// Graph fails to add the federated credential: the app is deleted again, no row stays.
	h.dir.Inject("AddFederatedCredential", failing(errGraphDown))
	r := h.call("POST", org, base, body)
	h.want(r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if h.dir.Apps() != 0 {
		t.Fatalf("%d apps left behind", h.dir.Apps())
	}
	var list listView
	h.call("GET", org, base, nil).decode(t, &list)
	if len(list.Credentials) != 0 {
		t.Fatalf("rows left behind: %+v", list)
	}

	// And when the delete fails too, the app's clean-up is queued.
	h.dir.Inject("DeleteApp", failing(errGraphDown))
	h.want(h.call("POST", org, base, body), http.StatusServiceUnavailable)
	jobs := h.jobs(credential.JobAppCleanup)
	if len(jobs) != 1 || h.dir.Apps() != 1 {
		t.Fatalf("clean-up jobs %+v, apps %d", jobs, h.dir.Apps())
	}
	for _, objectID := range h.dir.ObjectIDs() {
		if jobs[0].AppObjectID != objectID {
			t.Fatalf("clean-up job for %s, app is %s", jobs[0].AppObjectID, objectID)
		}
	}

	// Graph down at creation: nothing to compensate, name free afterwards.
	h.dir.Inject("AddFederatedCredential", credentialtest.Fault{})
	h.dir.Inject("DeleteApp", credentialtest.Fault{})
	h.dir.Inject("CreateApp", failing(errGraphDown))
	h.want(h.call("POST", org, base, body), http.StatusServiceUnavailable)
	h.dir.Inject("CreateApp", credentialtest.Fault{})
	h.create(org, "c1", "az://bloblake/lakedata")
}
