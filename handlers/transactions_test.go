package handlers

import (
	"net/http"
	"testing"

	"github.com/activeloopai/azcreds/internal/credential"
)

// TestStorageTransactionsPerRequest pins how many Table and Queue calls each endpoint
// makes, so a change that adds a round trip to a hot path shows up here.
func TestStorageTransactionsPerRequest(t *testing.T) {
	h := newHarness(t)
	base := "/organizations/" + org + "/credentials"
	count := func(name string, want int64, f func()) {
		t.Helper()
		before := h.calls.n.Load()
		f()
		if got := h.calls.n.Load() - before; got != want {
			t.Errorf("%s: %d storage calls, want %d", name, got, want)
		}
		t.Logf("%s: %d storage calls", name, h.calls.n.Load()-before)
	}
	var d detailView
	// The organization's first create also initialises its credential counter: reads it
	// (missing), counts the credential rows, inserts it.
	count("create, the organization's first", 7, func() { h.create(org, "c0", "az://bloblake/lakedata") })
	// the counter, insert (transaction), read back its ETag, the create's guard message, record the app
	count("create", 5, func() { d = h.create(org, "c1", "az://bloblake/lakedata") })
	// the row and the org default
	count("get", 2, func() { h.want(h.call("GET", org, base+"/"+d.ID, nil), http.StatusOK) })
	count("list", 2, func() { h.want(h.call("GET", org, base, nil), http.StatusOK) })
	// read, org default, the window's backstop, transition (transaction), first poll job
	count("tenant", 5, func() {
		h.want(h.call("POST", org, base+"/"+d.ID+"/tenant", map[string]string{"tenant_id": tenantID}), http.StatusAccepted)
	})
	h.advance(org, d.ID, credential.EventSPFound, nil)
	count("storage", 5, func() {
		h.want(h.call("POST", org, base+"/"+d.ID+"/storage", storageBody("bloblake", "lakedata")), http.StatusAccepted)
	})
	h.advance(org, d.ID, credential.EventAccessConfirmed, nil)
	h.want(h.call("POST", org, "/organizations/"+org+"/workspaces", map[string]string{"workspace_id": "ws", "credential_id": d.ID}), http.StatusCreated)
	// workspace, its credential, the lock (first table only)
	count("creds, first table", 3, func() { _, r := h.creds(org, "ws", "t"); h.want(r, http.StatusOK) })
	count("creds", 2, func() { _, r := h.creds(org, "ws", "t"); h.want(r, http.StatusOK) })
	// an unregistered workspace: its (missing) row, the org default pointer, the workspace
	// counter, recording it
	count("creds, environment default, first table", 4, func() { _, r := h.creds(org, "ws-other", "t"); h.want(r, http.StatusOK) })
	// pinned to the environment default: the workspace row alone, never the org default
	count("creds, environment default", 1, func() { _, r := h.creds(org, "ws-other", "t"); h.want(r, http.StatusOK) })
	// read the row, clean-up job, the default, the counter, the transaction (the links are the job's)
	count("delete", 5, func() { h.want(h.call("DELETE", org, base+"/"+d.ID, nil), http.StatusNoContent) })
}
