package handlers

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// verified makes a credential and moves it to verified as the pollers would.
func (h *harness) verified(org, name, basePath string) detailView {
	h.t.Helper()
	d := h.create(org, name, basePath)
	h.want(h.call("POST", org, "/organizations/"+org+"/credentials/"+d.ID+"/tenant", map[string]string{"tenant_id": tenantID}), http.StatusAccepted)
	h.advance(org, d.ID, credential.EventSPFound, func(c *credential.Credential) { c.SPObjectID = "sp-" + name })
	h.want(h.call("POST", org, "/organizations/"+org+"/credentials/"+d.ID+"/storage", storageBody(strings.Split(strings.TrimPrefix(basePath, "az://"), "/")[0], strings.Split(strings.TrimPrefix(basePath, "az://"), "/")[1])), http.StatusAccepted)
	h.advance(org, d.ID, credential.EventAccessConfirmed, nil)
	return d
}

func (h *harness) workspace(org, ws string) workspaceView {
	h.t.Helper()
	r := h.call("GET", org, "/organizations/"+org+"/workspaces/"+ws, nil)
	h.want(r, http.StatusOK)
	var v workspaceView
	r.decode(h.t, &v)
	return v
}

func (h *harness) creds(org, ws, table string) (credsView, response) {
	h.t.Helper()
	r := h.call("POST", org, "/api/org/"+ws+"/ds/"+table+"/creds", nil)
	var v credsView
	if r.status == http.StatusOK {
		r.decode(h.t, &v)
	}
	return v, r
}

func TestRegisterWorkspaceLinking(t *testing.T) {
	h := newHarness(t)
	ws := "/organizations/" + org + "/workspaces"

	// No credential: no link, the environment default serves.
	r := h.call("POST", org, ws, map[string]string{"workspace_id": "ws-none"})
	h.want(r, http.StatusCreated)
	var v workspaceView
	r.decode(t, &v)
	if v.CredentialID != nil || v.Effective.Source != "environment_default" || v.Effective.StorageAccount != "platformacct" {
		t.Fatalf("no credential: %+v", v)
	}

	// A draft credential is not a candidate; one verified credential links automatically.
	h.create(org, "draft-one", "az://draftacct/box")
	one := h.verified(org, "one", "az://acctone/lake/tables")
	r = h.call("POST", org, ws, map[string]string{"workspace_id": "ws-one"})
	h.want(r, http.StatusCreated)
	r.decode(t, &v)
	if v.CredentialID == nil || *v.CredentialID != one.ID || v.Effective.Source != "workspace" || v.Effective.Prefix != "tables" {
		t.Fatalf("one verified: %+v", v)
	}

	// Several: the caller must name one; the 409 lists them.
	two := h.verified(org, "two", "az://accttwo/lake")
	r = h.call("POST", org, ws, map[string]string{"workspace_id": "ws-two"})
	h.want(r, http.StatusConflict)
	e := r.errorBody(t)
	if !strings.Contains(e.Message, one.ID) || !strings.Contains(e.Message, two.ID) || e.Field != "credential_id" {
		t.Fatalf("candidates error %+v", e)
	}
	byName := cmpopts.SortSlices(func(a, b candidateView) bool { return a.Name < b.Name })
	if diff := cmp.Diff([]candidateView{{ID: one.ID, Name: "one"}, {ID: two.ID, Name: "two"}}, e.Candidates, byName); diff != "" {
		t.Errorf("candidates (-want +got):\n%s", diff)
	}
	r = h.call("POST", org, ws, map[string]string{"workspace_id": "ws-two", "credential_id": two.ID})
	h.want(r, http.StatusCreated)
	r.decode(t, &v)
	if *v.CredentialID != two.ID {
		t.Fatalf("named link %+v", v)
	}
	// Naming a credential that cannot serve is refused; registering twice is a conflict.
	draft := h.create(org, "draft-two", "az://draftacct/box")
	h.want(h.call("POST", org, ws, map[string]string{"workspace_id": "ws-three", "credential_id": draft.ID}), http.StatusConflict)
	h.want(h.call("POST", org, ws, map[string]string{"workspace_id": "ws-two", "credential_id": two.ID}), http.StatusConflict)
	h.want(h.call("POST", org, ws, map[string]string{"workspace_id": "bad/id"}), http.StatusBadRequest)
	h.want(h.call("GET", org, ws+"/never-registered", nil), http.StatusNotFound)
}

// TestCredsResolutionOrder: workspace link, then org default, then environment default;
// the SAS request and the answer follow the resolved storage.
func TestCredsResolutionOrder(t *testing.T) {
	h := newHarness(t)
	linked := h.verified(org, "linked", "az://acctlinked/data/base")
	def := h.verified(org, "default", "az://acctdefault/lake")
	h.want(h.call("POST", org, "/organizations/"+org+"/workspaces", map[string]string{"workspace_id": "ws-a", "credential_id": linked.ID}), http.StatusCreated)

	v, r := h.creds(org, "ws-a", "events")
	h.want(r, http.StatusOK)
	if v.Source != "workspace" || *v.CredentialID != linked.ID || v.Container != "data" || v.PathPrefix != "base/"+org+"/ws-a/events/" ||
		v.AccountURL != "https://acctlinked.blob.core.windows.net" || v.SASToken == "" || v.ContainerURL != v.AccountURL+"/data" {
		t.Fatalf("workspace link: %+v", v)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	req := h.signer.Last()
	now := h.clock.Now()
	if !req.Expiry.Equal(now.Add(time.Hour)) || !req.Start.Equal(now.Add(-5*time.Minute)) || !v.ExpiresAt.Equal(req.Expiry) ||
		req.Identity.AppID != linked.Azure.AppID || req.Identity.TenantID != tenantID || req.Identity.Platform {
		t.Fatalf("SAS request %+v", req)
	}

	// No link and no org default: the environment default. The first table pins the
	// workspace there, so an org default set later does not move it.
	v, r = h.creds(org, "ws-b", "t1")
	h.want(r, http.StatusOK)
	if v.Source != "environment_default" || v.CredentialID != nil || v.PathPrefix != "lake/"+org+"/ws-b/t1/" || !h.signer.Last().Identity.Platform {
		t.Fatalf("environment default: %+v", v)
	}
	h.want(h.call("PUT", org, "/organizations/"+org+"/credential", map[string]string{"credential_id": def.ID}), http.StatusOK)
	v, r = h.creds(org, "ws-b", "t2")
	h.want(r, http.StatusOK)
	if v.Source != "environment_default" || v.CredentialID != nil || v.PathPrefix != "lake/"+org+"/ws-b/t2/" || !h.signer.Last().Identity.Platform {
		t.Fatalf("pinned to the environment default, after an org default was set: %+v", v)
	}
	// No link, and an org default: the org default.
	v, r = h.creds(org, "ws-d", "t1")
	h.want(r, http.StatusOK)
	if v.Source != "org_default" || *v.CredentialID != def.ID || v.PathPrefix != org+"/ws-d/t1/" {
		t.Fatalf("org default: %+v", v)
	}

	// A workspace that locks while following the org default keeps that credential: a
	// later change of the default does not move where its new tables land.
	h.want(h.call("PUT", org, "/organizations/"+org+"/credential", map[string]string{"credential_id": linked.ID}), http.StatusOK)
	v, r = h.creds(org, "ws-c", "t1") // locks ws-c on the default of the moment
	h.want(r, http.StatusOK)
	h.want(h.call("PUT", org, "/organizations/"+org+"/credential", map[string]string{"credential_id": def.ID}), http.StatusOK)
	v, r = h.creds(org, "ws-c", "t2")
	h.want(r, http.StatusOK)
	if v.Source != "workspace" || *v.CredentialID != linked.ID {
		t.Fatalf("after the default moved: %+v", v)
	}
}

// TestLinkLockedAfterFirstTable: a link changes freely until the first /creds call, then
// the API answers 400 saying the link is locked and why.
func TestLinkLockedAfterFirstTable(t *testing.T) {
	h := newHarness(t)
	a := h.verified(org, "a", "az://accta/box")
	b := h.verified(org, "b", "az://acctb/box")
	path := "/organizations/" + org + "/workspaces/ws"
	h.want(h.call("POST", org, "/organizations/"+org+"/workspaces", map[string]string{"workspace_id": "ws", "credential_id": a.ID}), http.StatusCreated)
	h.want(h.call("PUT", org, path+"/credential", map[string]string{"credential_id": b.ID}), http.StatusOK)
	h.want(h.call("DELETE", org, path+"/credential", nil), http.StatusOK)
	if v := h.workspace(org, "ws"); v.CredentialID != nil || v.Locked {
		t.Fatalf("after unlink: %+v", v)
	}
	h.want(h.call("PUT", org, path+"/credential", map[string]string{"credential_id": a.ID}), http.StatusOK)

	_, r := h.creds(org, "ws", "first_table")
	h.want(r, http.StatusOK)
	v := h.workspace(org, "ws")
	if !v.Locked || v.FirstTable != "first_table" || v.LockedAt == nil {
		t.Fatalf("after the first table: %+v", v)
	}
	for _, c := range []struct {
		method string
		body   any
	}{{"PUT", map[string]string{"credential_id": b.ID}}, {"DELETE", nil}} {
		r := h.call(c.method, org, path+"/credential", c.body)
		h.want(r, http.StatusBadRequest)
		e := r.errorBody(t)
		if e.Code != "workspace_locked" || !strings.Contains(e.Message, "locked") || !strings.Contains(e.Message, "first_table") || !strings.Contains(e.Message, "unreachable") {
			t.Fatalf("%s: %+v", c.method, e)
		}
	}
	if v := h.workspace(org, "ws"); *v.CredentialID != a.ID {
		t.Fatalf("the locked link moved: %+v", v)
	}
	// An unregistered workspace is recorded, unlinked and locked, by its first table.
	_, r = h.creds(org, "ws-new", "t")
	h.want(r, http.StatusOK)
	if v := h.workspace(org, "ws-new"); !v.Locked || v.CredentialID != nil {
		t.Fatalf("unregistered workspace after /creds: %+v", v)
	}
}

// TestDeleteCredentialFallsBack: deleting a credential removes the org default pointing at
// it; unlocked workspaces linked to it fall back at once (before the clean-up job clears
// their stored links), while a locked one keeps its credential and answers 409
// credential_deleted naming it, never a SAS for other storage.
func TestDeleteCredentialFallsBack(t *testing.T) {
	h := newHarness(t)
	a := h.verified(org, "a", "az://accta/box")
	h.want(h.call("POST", org, "/organizations/"+org+"/workspaces", map[string]string{"workspace_id": "ws1"}), http.StatusCreated)
	h.want(h.call("POST", org, "/organizations/"+org+"/workspaces", map[string]string{"workspace_id": "ws2", "credential_id": a.ID}), http.StatusCreated)
	h.want(h.call("PUT", org, "/organizations/"+org+"/credential", map[string]string{"credential_id": a.ID}), http.StatusOK)
	_, r := h.creds(org, "ws1", "t") // locks ws1 on a
	h.want(r, http.StatusOK)
	h.want(h.call("DELETE", org, "/organizations/"+org+"/credentials/"+a.ID, nil), http.StatusNoContent)

	v := h.workspace(org, "ws1")
	if v.CredentialID == nil || *v.CredentialID != a.ID || !v.Effective.CredentialDeleted || *v.Effective.CredentialID != a.ID ||
		v.Effective.StorageAccount != "accta" || v.Effective.ContainerName != "box" || v.Pin == nil || v.Pin.Source != "workspace" {
		t.Fatalf("locked ws1 after the delete: %+v", v)
	}
	signed := len(h.signer.Requests())
	_, r = h.creds(org, "ws1", "t2")
	h.want(r, http.StatusConflict)
	if e := r.errorBody(t); e.Code != "credential_deleted" || !strings.Contains(e.Message, a.ID) || !strings.Contains(e.Message, `"a"`) ||
		!strings.Contains(e.Message, "az://accta/box") {
		t.Fatalf("locked ws1 /creds after the delete: %+v", e)
	}
	if len(h.signer.Requests()) != signed {
		t.Fatal("a SAS was signed for the workspace of a deleted credential")
	}

	check := func(when string) {
		t.Helper()
		v := h.workspace(org, "ws2")
		if v.CredentialID != nil || v.Effective.Source != "environment_default" || v.Pin != nil {
			t.Fatalf("unlocked ws2 %s: %+v", when, v)
		}
	}
	check("before the clean-up")
	jobs := h.jobs(credential.JobAppCleanup)
	if len(jobs) != 1 {
		t.Fatalf("clean-up jobs %+v", jobs)
	}
	if err := h.domain.Runner.Run(context.Background(), jobs[0]); err != nil {
		t.Fatal(err)
	}
	check("after the clean-up")
	if w, err := h.store.GetWorkspace(context.Background(), org, "ws2"); err != nil || w.CredentialID != "" {
		t.Fatalf("stored link of ws2 after the clean-up: %+v, %v", w, err)
	}
	cv, r := h.creds(org, "ws2", "t2")
	h.want(r, http.StatusOK)
	if cv.Source != "environment_default" {
		t.Fatalf("ws2 /creds after the delete: %+v", cv)
	}
	if w := h.workspace(org, "ws1"); *w.CredentialID != a.ID {
		t.Fatalf("the clean-up moved the locked ws1: %+v", w)
	}
}

// TestUnverifiedSavedPromotion: a SAS from an unverified_saved credential promotes it to
// verified; a failure is a clear error with the provider's code and the state stays.
func TestUnverifiedSavedPromotion(t *testing.T) {
	h := newHarness(t)
	d := h.create(org, "saved", "az://acctsaved/box")
	base := "/organizations/" + org + "/credentials/" + d.ID
	h.want(h.call("POST", org, base+"/tenant", map[string]string{"tenant_id": tenantID}), http.StatusAccepted)
	h.advance(org, d.ID, credential.EventSPFound, nil)
	h.want(h.call("POST", org, base+"/storage", storageBody("acctsaved", "box")), http.StatusAccepted)
	h.clock.Advance(6 * time.Minute)
	h.want(h.call("POST", org, base+"/save-unverified", nil), http.StatusOK)
	h.want(h.call("PUT", org, "/organizations/"+org+"/credential", map[string]string{"credential_id": d.ID}), http.StatusOK)

	h.signer.Inject(failing(&credential.ProviderError{Code: "AuthorizationPermissionMismatch", Status: 403, RequestID: "storage-req-1"}))
	_, r := h.creds(org, "ws", "t")
	h.want(r, http.StatusBadGateway)
	if e := r.errorBody(t); e.Code != "sas_issuance_failed" || !strings.Contains(e.Message, "AuthorizationPermissionMismatch") || !strings.Contains(e.Message, "unverified_saved") {
		t.Fatalf("failure: %+v", e)
	}
	var got detailView
	h.call("GET", org, base, nil).decode(t, &got)
	if got.State != "unverified_saved" {
		t.Fatalf("state after a failed SAS: %s", got.State)
	}

	h.signer.Inject(credentialtest.Fault{})
	_, r = h.creds(org, "ws", "t")
	h.want(r, http.StatusOK)
	h.call("GET", org, base, nil).decode(t, &got)
	if got.State != "verified" || got.VerifiedAt == nil {
		t.Fatalf("state after the first SAS: %s", got.State)
	}
	var evs eventsView
	h.call("GET", org, base+"/events", nil).decode(t, &evs)
	if last := evs.Events[len(evs.Events)-1]; last.Cause != "sas_issued" || last.From != "unverified_saved" || last.To != "verified" {
		t.Fatalf("last event %+v", last)
	}

	// A linked credential that went back to probing serves no SAS: a clear 409.
	p := h.create(org, "pending", "az://acctpending/box")
	pbase := "/organizations/" + org + "/credentials/" + p.ID
	h.want(h.call("POST", org, pbase+"/tenant", map[string]string{"tenant_id": tenantID}), http.StatusAccepted)
	h.advance(org, p.ID, credential.EventSPFound, nil)
	h.want(h.call("POST", org, pbase+"/storage", storageBody("acctpending", "box")), http.StatusAccepted)
	h.clock.Advance(6 * time.Minute)
	h.want(h.call("POST", org, pbase+"/save-unverified", nil), http.StatusOK)
	h.want(h.call("POST", org, "/organizations/"+org+"/workspaces", map[string]string{"workspace_id": "ws-p", "credential_id": p.ID}), http.StatusCreated)
	h.want(h.call("POST", org, pbase+"/storage", storageBody("acctpending", "box")), http.StatusAccepted)
	_, r = h.creds(org, "ws-p", "t")
	h.want(r, http.StatusConflict)
	if e := r.errorBody(t); e.Code != "invalid_state" || !strings.Contains(e.Message, `"access_pending"`) {
		t.Fatalf("other state: %+v", e)
	}
}

func TestCredsInputValidation(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/api/org/ws/ds/bad..name/creds", "/api/org/.hidden/ds/t/creds", "/api/org/ws/ds/" + strings.Repeat("t", 129) + "/creds"} {
		if r := h.call("POST", org, path, nil); r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d", path, r.status)
		}
	}
	// The org comes from the header, which the token must cover.
	r := h.do("POST", "/api/org/ws/ds/t/creds", nil, map[string]string{"Authorization": "Bearer " + h.token(org), OrgHeader: "org-b"})
	h.want(r, http.StatusForbidden)
	r = h.do("POST", "/api/org/ws/ds/t/creds", nil, map[string]string{"Authorization": "Bearer " + h.token(org)})
	h.want(r, http.StatusForbidden)
}

// TestCredsConcurrentFirstCalls: many first /creds calls of a new workspace at once (the
// SDK opening a dataset from several workers) race to record its first table; the losers
// read again and get the same answer, not a conflict.
func TestCredsConcurrentFirstCalls(t *testing.T) {
	h := newHarness(t)
	def := h.verified(org, "default", "az://acctdefault/lake")
	h.want(h.call("PUT", org, "/organizations/"+org+"/credential", map[string]string{"credential_id": def.ID}), http.StatusOK)
	for _, ws := range []string{"ws-burst", "ws-burst-registered"} {
		if ws == "ws-burst-registered" {
			h.want(h.call("POST", org, "/organizations/"+org+"/workspaces", map[string]string{"workspace_id": ws}), http.StatusCreated)
		}
		const n = 12
		statuses := make([]int, n)
		bodies := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := h.call("POST", org, "/api/org/"+ws+"/ds/t1/creds", nil)
				statuses[i], bodies[i] = r.status, string(r.body)
			})
		}
		wg.Wait()
		for i, s := range statuses {
			if s != http.StatusOK {
				t.Errorf("%s: call %d: %d %s", ws, i, s, bodies[i])
			}
		}
		v, r := h.creds(org, ws, "t2")
		h.want(r, http.StatusOK)
		if v.Source != "workspace" || v.CredentialID == nil || *v.CredentialID != def.ID {
			t.Errorf("%s after the burst: %+v, want pinned to the org default %s", ws, v, def.ID)
		}
	}
}
