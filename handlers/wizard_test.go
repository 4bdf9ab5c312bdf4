package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// TestClearOrgDefaultOverHTTP: DELETE /organizations/{org}/credential leaves no default
// (204, no body), and again (204); the credential stays, no longer the default; an
// unlocked workspace falls back to the environment default.
func TestClearOrgDefaultOverHTTP(t *testing.T) {
	h := newHarness(t)
	d := h.verified(org, "x", "az://acctx/lake")
	h.setDefault(d.ID)
	h.wantCreds("ws-pinned", "t1", d.ID, org+"/ws-pinned/t1/")
	for i := range 2 {
		r := h.call("DELETE", org, "/organizations/"+org+"/credential", nil)
		h.want(r, http.StatusNoContent)
		if len(r.body) != 0 {
			t.Errorf("DELETE %d: body %q", i+1, r.body)
		}
	}
	var got detailView
	h.call("GET", org, "/organizations/"+org+"/credentials/"+d.ID, nil).decode(t, &got)
	if got.IsOrgDefault || got.State != "verified" {
		t.Fatalf("after the clear: default %v, state %s", got.IsOrgDefault, got.State)
	}
	h.wantCreds("ws-pinned", "t2", d.ID, org+"/ws-pinned/t2/")
	h.wantCreds("ws-free", "t1", "", "lake/"+org+"/ws-free/t1/")
}

// TestEmptyBodiesWhateverTheirType: the routes that take no body accept an empty one with
// any Content-Type (or none), as HTTP clients send an empty POST; a body that is there
// must be JSON.
func TestEmptyBodiesWhateverTheirType(t *testing.T) {
	h := newHarness(t)
	send := func(path, contentType, body string) response {
		t.Helper()
		headers := map[string]string{"Authorization": "Bearer " + h.token(org), OrgHeader: org}
		if contentType != "" {
			headers["Content-Type"] = contentType
		}
		return h.do("POST", path, []byte(body), headers)
	}
	d := h.verified(org, "x", "az://acctx/lake")
	h.setDefault(d.ID)
	creds := "/api/org/ws/ds/t/creds"
	for _, ct := range []string{"", "application/x-www-form-urlencoded", "text/plain; charset=utf-8", "application/json", "multipart/form-data; boundary=x"} {
		if r := send(creds, ct, ""); r.status != http.StatusOK {
			t.Errorf("empty /creds body as %q: %d %s", ct, r.status, r.body)
		}
	}
	for _, c := range []struct {
		contentType, body string
		status            int
	}{
		{"application/x-www-form-urlencoded", "a=1", http.StatusUnsupportedMediaType},
		{"text/plain", "{}", http.StatusUnsupportedMediaType},
		{"", "{}", http.StatusOK},
		{"", "a=1", http.StatusBadRequest},
		{"application/json", `{"x":1}`, http.StatusBadRequest},
	} {
		if r := send(creds, c.contentType, c.body); r.status != c.status {
			t.Errorf("/creds body %q as %q: %d, want %d (%s)", c.body, c.contentType, r.status, c.status, r.body)
		}
	}
	// save-unverified reads its body the same way: the state decides, not the content type.
	other := h.create(org, "y", "az://accty/lake")
	r := send("/organizations/"+org+"/credentials/"+other.ID+"/save-unverified", "application/x-www-form-urlencoded", "")
	if e := r.errorBody(t); r.status != http.StatusConflict || e.Code != "invalid_state" {
		t.Errorf("empty save-unverified as a form: %d %+v", r.status, e)
	}
	if r := send("/organizations/"+org+"/credentials/"+other.ID+"/save-unverified", "text/plain", "x"); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("save-unverified with a text body: %d", r.status)
	}
	// The routes that need a body still refuse another type outright.
	if r := send("/organizations/"+org+"/credentials", "text/plain", ""); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("create as text/plain: %d", r.status)
	}
}

// TestNoRoleOverHTTP runs the access probe with no role at all: after the grace the detail shows waiting_for_role_propagation with
// hint no_role and the role check, save-unverified before the deadline names the state,
// the rule and the deadline, and at the deadline the probe times out keeping the hint.
func TestNoRoleOverHTTP(t *testing.T) {
	h := newHarness(t)
	base := "/organizations/" + org + "/credentials/"
	d := h.create(org, "norole", "az://bloblake/lakedata")
	h.want(h.call("POST", org, base+d.ID+"/tenant", map[string]string{"tenant_id": tenantID}), http.StatusAccepted)
	const sp = "2c7e9f1a-3b4d-4e5f-8a6b-7c8d9e0f1a2b"
	h.advance(org, d.ID, credential.EventSPFound, func(c *credential.Credential) { c.SPObjectID = sp })
	h.sched.Take(credential.JobSPPoll)
	h.want(h.call("POST", org, base+d.ID+"/storage", storageBody("bloblake", "lakedata")), http.StatusAccepted)
	h.ports.Prober.(*credentialtest.Prober).Script(credentialtest.Report("403", "403", "403", "skip"))

	h.clock.Advance(2 * time.Minute)
	h.invoke(h.sched.Take(credential.JobAccessProbe)[0])
	var got detailView
	h.call("GET", org, base+d.ID, nil).decode(t, &got)
	if got.State != "access_pending" || got.Progress.Status != "waiting_for_role_propagation" || got.LastErrorHint != "no_role" ||
		!strings.Contains(got.LastError, credential.RoleCheckCommand(sp)) {
		t.Fatalf("after the grace: %s/%s hint %q: %s", got.State, got.Progress.Status, got.LastErrorHint, got.LastError)
	}
	r := h.call("POST", org, base+d.ID+"/save-unverified", nil)
	h.want(r, http.StatusConflict)
	deadline := got.Progress.Deadline.UTC().Format(time.RFC3339)
	if e := r.errorBody(t); e.Code != "invalid_state" || e.Message != `cannot save unverified: credential is in state "access_pending" with the access probe running until `+
		deadline+`; allowed only in state access_pending after the access probe's deadline (`+deadline+`)` {
		t.Errorf("save-unverified before the deadline: %+v", e)
	}

	h.clock.Advance(3 * time.Minute)
	h.invoke(h.sched.Take(credential.JobAccessProbe)[0])
	h.call("GET", org, base+d.ID, nil).decode(t, &got)
	if got.State != "access_pending" || got.Progress.Status != "timed_out" || got.LastErrorHint != "no_role" || got.LastErrorCode != "timed_out" {
		t.Fatalf("at the deadline: %s/%s hint %q code %s", got.State, got.Progress.Status, got.LastErrorHint, got.LastErrorCode)
	}
	r = h.call("POST", org, base+d.ID+"/save-unverified", nil)
	h.want(r, http.StatusOK)
	r.decode(t, &got)
	if got.State != "unverified_saved" {
		t.Fatalf("save anyway: %s", got.State)
	}
}

// invoke runs job as the queue functions do.
func (h *harness) invoke(job credential.Job) {
	h.t.Helper()
	if err := h.domain.Runner.Run(context.Background(), job); err != nil {
		h.t.Fatalf("run %+v: %v", job, err)
	}
}

// TestWizardLinks: the admin consent URL is the cloud's v1 endpoint with client_id, the
// configured redirect URI and the credential id as state; the portal button leads to the
// storage accounts (the account beside it) from sp_verified on, then to the account's
// Access control (IAM) blade.
func TestWizardLinks(t *testing.T) {
	const redirect = "https://azcreds.example.net/wizard/"
	h := newHarness(t, func(c *credential.Config) { c.AdminConsentRedirectURI = redirect })
	base := "/organizations/" + org + "/credentials/"
	d := h.create(org, "links", "az://bloblake/lakedata")
	u, err := url.Parse(d.AdminConsentURL)
	if err != nil || u.Scheme+"://"+u.Host+u.Path != "https://login.microsoftonline.com/organizations/adminconsent" ||
		u.Query().Get("client_id") != d.Azure.AppID || u.Query().Get("redirect_uri") != redirect || u.Query().Get("state") != d.ID {
		t.Fatalf("admin consent URL %q", d.AdminConsentURL)
	}
	if d.PortalURL != "" || d.PortalAccount != "" {
		t.Errorf("portal in draft: %q %q", d.PortalURL, d.PortalAccount)
	}
	if spec, ok := h.dir.Spec(h.dirObjectID(d.Azure.AppID)); !ok || len(spec.RedirectURIs) != 1 || spec.RedirectURIs[0] != redirect {
		t.Errorf("app registration %+v", spec)
	}
	h.want(h.call("POST", org, base+d.ID+"/tenant", map[string]string{"tenant_id": tenantID}), http.StatusAccepted)
	h.advance(org, d.ID, credential.EventSPFound, func(c *credential.Credential) { c.SPObjectID = "sp" })
	var got detailView
	h.call("GET", org, base+d.ID, nil).decode(t, &got)
	if got.PortalURL != "https://portal.azure.com/#browse/Microsoft.Storage%2FStorageAccounts" || got.PortalAccount != "bloblake" ||
		!strings.HasPrefix(got.AdminConsentURL, "https://login.microsoftonline.com/"+tenantID+"/adminconsent?") {
		t.Errorf("sp_verified: portal %q (%q), consent %q", got.PortalURL, got.PortalAccount, got.AdminConsentURL)
	}
	r := h.call("POST", org, base+d.ID+"/storage", storageBody("bloblake", "lakedata"))
	h.want(r, http.StatusAccepted)
	r.decode(t, &got)
	want := "https://portal.azure.com/#@" + tenantID + "/resource/subscriptions/" + subID + "/resourceGroups/data-rg/providers/Microsoft.Storage/storageAccounts/bloblake/iam"
	if got.PortalURL != want || got.PortalAccount != "bloblake" {
		t.Errorf("access_pending: portal %q (%q), want %q", got.PortalURL, got.PortalAccount, want)
	}
}

// dirObjectID is the object id of the app whose client id is appID.
func (h *harness) dirObjectID(appID string) string {
	h.t.Helper()
	for _, id := range h.dir.ObjectIDs() {
		if spec, ok := h.dir.Spec(id); ok && spec.UniqueName != "" {
			if app, ok := h.dir.AppByName(spec.UniqueName); ok && app.AppID == appID {
				return id
			}
		}
	}
	h.t.Fatalf("no app %s", appID)
	return ""
}
