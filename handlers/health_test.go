package handlers

import (
	"context"
	"net/http"
	"testing"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// TestCredentialHealthHistory: GET .../health serves the last check and the history of
// status changes. Before any check: null and none; after one failed check: still ok, the
// problem shown, one failure, no event; after the re-check fails too: degraded and one
// event; after a passing check: ok, two events.
func TestCredentialHealthHistory(t *testing.T) {
	h := newHarness(t)
	const org = "org-h"
	d := h.verified(org, "lake", "az://bloblake/lakedata")
	h.sched.Take(credential.JobAccessProbe)
	read := func() healthHistoryView {
		t.Helper()
		r := h.call("GET", org, "/organizations/"+org+"/credentials/"+d.ID+"/health", nil)
		h.want(r, http.StatusOK)
		var v healthHistoryView
		r.decode(t, &v)
		return v
	}
	if v := read(); v.Health != nil || len(v.Events) != 0 {
		t.Fatalf("before any check: %+v", v)
	}
	prober := h.ports.Prober.(*credentialtest.Prober)
	check := func(job credential.Job, report credential.ProbeReport) {
		t.Helper()
		prober.Script(report)
		if err := h.domain.Runner.Run(context.Background(), job); err != nil {
			t.Fatal(err)
		}
	}
	c, err := h.store.Get(context.Background(), org, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	denied := credentialtest.Report("403", "403", "403", "skip")
	check(credential.Job{Kind: credential.JobHealthProbe, OrgID: org, CredentialID: d.ID, Generation: c.Generation, IssuedAt: h.clock.Now()}, denied)
	v := read()
	if v.Health == nil || v.Health.Status != "ok" || v.Health.ConsecutiveFailures != 1 || v.Health.Problem == nil ||
		v.Health.Problem.Code != "role_not_sufficient" || len(v.Events) != 0 {
		t.Fatalf("after one failed check: %+v %+v", v.Health, v.Events)
	}
	recheck := h.sched.Take(credential.JobHealthProbe)
	if len(recheck) != 1 {
		t.Fatalf("re-checks queued: %+v", recheck)
	}
	h.clock.Advance(credential.DefaultHealthRecheck)
	check(recheck[0], denied)
	v = read()
	if v.Health.Status != "degraded" || v.Health.ConsecutiveFailures != 2 || len(v.Events) != 1 ||
		v.Events[0].From != "ok" || v.Events[0].To != "degraded" || v.Events[0].Code != "role_not_sufficient" {
		t.Fatalf("after the re-check failed: %+v %+v", v.Health, v.Events)
	}
	h.clock.Advance(credential.DefaultHealthRecheck)
	check(credential.Job{Kind: credential.JobHealthProbe, OrgID: org, CredentialID: d.ID, Generation: c.Generation, IssuedAt: h.clock.Now()},
		credentialtest.Report("pass", "pass", "pass", "pass"))
	v = read()
	if v.Health.Status != "ok" || v.Health.Problem != nil || len(v.Events) != 2 || v.Events[1].To != "ok" {
		t.Fatalf("after a passing check: %+v %+v", v.Health, v.Events)
	}
	// The detail shows the same last check.
	r := h.call("GET", org, "/organizations/"+org+"/credentials/"+d.ID, nil)
	var det detailView
	r.decode(t, &det)
	if det.Health == nil || det.Health.Status != "ok" || !det.Health.CheckedAt.Equal(v.Health.CheckedAt) {
		t.Errorf("detail's health %+v, want the last check", det.Health)
	}
	h.want(h.call("GET", org, "/organizations/"+org+"/credentials/00000000-0000-0000-0000-000000000000/health", nil), http.StatusNotFound)
}
