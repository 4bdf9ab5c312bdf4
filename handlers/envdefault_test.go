package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// TestCredsEnvironmentDefaultPerOrganization: on the environment default every
// organization's SAS, container and container URL name its own container in the platform
// account (prefix plus the hash of its id), which is created before the SAS is signed;
// GET workspace shows the same container. A credential's SAS creates nothing.
func TestCredsEnvironmentDefaultPerOrganization(t *testing.T) {
	h := newHarness(t)
	orgs := []string{"org-b", "Org.C_1"}
	containers := map[string]string{}
	for _, o := range orgs {
		v, r := h.creds(o, "ws", "events")
		h.want(r, http.StatusOK)
		want := credential.OrgContainerName("lake-", o)
		if err := credential.ValidateContainer("container", want); err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		if v.Source != "environment_default" || v.Container != want || v.ContainerURL != "https://platformacct.blob.core.windows.net/"+want ||
			v.PathPrefix != "lake/"+o+"/ws/events/" {
			t.Errorf("%s: creds %+v, want container %s", o, v, want)
		}
		if req := h.signer.Last(); req.Container != want || req.Account != "platformacct" || !req.Identity.Platform {
			t.Errorf("%s: signed %+v", o, req)
		}
		if e := h.workspace(o, "ws").Effective; e.ContainerName != want || e.StorageAccount != "platformacct" || e.Source != "environment_default" {
			t.Errorf("%s: effective %+v", o, e)
		}
		containers[o] = want
	}
	if containers[orgs[0]] == containers[orgs[1]] {
		t.Fatalf("two organizations share container %s", containers[orgs[0]])
	}
	// Asked before each environment-default SAS (the adapter answers a warm call from memory).
	want := []string{"platformacct/" + containers[orgs[0]], "platformacct/" + containers[orgs[1]]}
	if diff := cmp.Diff(want, h.containers.Asked()); diff != "" {
		t.Errorf("containers asked for (-want +got):\n%s", diff)
	}

	d := h.verified(orgs[0], "own", "az://acctown/data")
	h.want(h.call("POST", orgs[0], "/organizations/"+orgs[0]+"/workspaces", map[string]string{"workspace_id": "ws-own", "credential_id": d.ID}), http.StatusCreated)
	v, r := h.creds(orgs[0], "ws-own", "events")
	h.want(r, http.StatusOK)
	if v.Container != "data" || len(h.containers.Asked()) != 2 {
		t.Errorf("credential's creds %+v, containers asked %v: a credential's SAS creates nothing", v, h.containers.Asked())
	}
}

// TestCredsEnvironmentDefaultContainerRefused: when Azure refuses to create the
// organization's container, /creds answers as for a refused SAS (502 naming Azure's code,
// or 503 with Retry-After when Azure was unavailable) and signs nothing.
func TestCredsEnvironmentDefaultContainerRefused(t *testing.T) {
	h := newHarness(t)
	h.containers.Inject(failing(&credential.ProviderError{Code: "AuthorizationPermissionMismatch", Status: http.StatusForbidden, RequestID: "req-1"}))
	signed := len(h.signer.Requests())
	_, r := h.creds(org, "ws", "events")
	h.want(r, http.StatusBadGateway)
	if e := r.errorBody(t); e.Code != "sas_issuance_failed" || !strings.Contains(e.Message, "AuthorizationPermissionMismatch") {
		t.Errorf("error %+v", e)
	}
	h.containers.Inject(failing(&credential.ProviderError{Kind: credential.ErrUnavailable, Code: "ServerBusy", Status: http.StatusServiceUnavailable}))
	_, r = h.creds(org, "ws", "events")
	h.want(r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" || r.errorBody(t).Code != "sas_issuance_failed" {
		t.Errorf("unavailable: %d %v %s", r.status, r.header, r.body)
	}
	if n := len(h.signer.Requests()) - signed; n != 0 {
		t.Errorf("%d SAS signed without a container", n)
	}
	h.containers.Inject(credentialtest.Fault{})
	_, r = h.creds(org, "ws", "events")
	h.want(r, http.StatusOK)
}
