package handlers

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// burst sends n requests at once and returns their answers.
func (h *harness) burst(n int, send func(i int) response) []response {
	out := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = send(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// wantOneWinner checks that exactly one answer has status won and every other one is 409
// quota_exceeded naming the limit.
func wantOneWinner(t *testing.T, rs []response, won int, limit string) {
	t.Helper()
	wins := 0
	for i, r := range rs {
		if r.status == won {
			wins++
			continue
		}
		e := r.errorBody(t)
		if r.status != http.StatusConflict || e.Code != codeQuota || !strings.Contains(e.Message, limit) {
			t.Errorf("request %d: %d %s, want %d or 409 quota_exceeded naming %q", i, r.status, r.body, won, limit)
		}
	}
	if wins != 1 {
		t.Errorf("%d requests won, want exactly 1", wins)
	}
}

// TestCredentialQuota: 16 creates race for an organization's last credential place;
// exactly one gets 201, the others 409 quota_exceeded naming the limit. A delete frees a
// place; another organization has its own count.
func TestCredentialQuota(t *testing.T) {
	const limit = 5
	h := newLimitedHarness(t, credentialtest.Limits{Credentials: limit})
	base := "/organizations/" + org + "/credentials"
	var first detailView
	for i := range limit - 1 {
		d := h.create(org, fmt.Sprintf("c%d", i), "az://bloblake/lakedata")
		if i == 0 {
			first = d
		}
	}
	rs := h.burst(16, func(i int) response {
		return h.call("POST", org, base, map[string]string{"name": fmt.Sprintf("racer%d", i), "storage_type": "azure_federated",
			"base_path": "az://bloblake/lakedata"})
	})
	wantOneWinner(t, rs, http.StatusCreated, "limit of 5 credentials")
	if n := h.dir.Apps(); n != limit {
		t.Errorf("%d app registrations, want %d: a refused create made one", n, limit)
	}
	r := h.call("POST", org, base, map[string]string{"name": "late", "storage_type": "azure_federated", "base_path": "az://bloblake/lakedata"})
	h.want(r, http.StatusConflict)
	h.want(h.call("DELETE", org, base+"/"+first.ID, nil), http.StatusNoContent)
	h.create(org, "late", "az://bloblake/lakedata")
	h.create("org-b", "c0", "az://bloblake/lakedata")
}

// TestWorkspaceQuota: at the workspace limit, /creds for a new workspace answers 409
// quota_exceeded while every existing one (recorded by /creds or registered, locked or
// not) still gets its SAS; registering a new one is refused the same way, an existing one
// is "already registered". 16 /creds calls of new workspaces racing for the last place:
// one wins.
func TestWorkspaceQuota(t *testing.T) {
	const limit = 5
	h := newLimitedHarness(t, credentialtest.Limits{Workspaces: limit})
	ws := "/organizations/" + org + "/workspaces"
	_, r := h.creds(org, "ws-used", "t1") // recorded and locked by /creds
	h.want(r, http.StatusOK)
	h.want(h.call("POST", org, ws, map[string]string{"workspace_id": "ws-registered"}), http.StatusCreated)
	h.want(h.call("POST", org, ws, map[string]string{"workspace_id": "ws-other"}), http.StatusCreated)

	_, r = h.creds(org, "ws-fourth", "t1")
	h.want(r, http.StatusOK)
	rs := h.burst(16, func(i int) response {
		return h.call("POST", org, fmt.Sprintf("/api/org/ws-racer%d/ds/t/creds", i), nil)
	})
	wantOneWinner(t, rs, http.StatusOK, "limit of 5 workspaces")

	_, r = h.creds(org, "ws-new", "t1")
	h.want(r, http.StatusConflict)
	if e := r.errorBody(t); e.Code != codeQuota || !strings.Contains(e.Message, "limit of 5 workspaces") {
		t.Errorf("new workspace at the limit: %s", r.body)
	}
	r = h.call("POST", org, ws, map[string]string{"workspace_id": "ws-new"})
	h.want(r, http.StatusConflict)
	if e := r.errorBody(t); e.Code != codeQuota {
		t.Errorf("registering a new workspace at the limit: %s", r.body)
	}
	for _, existing := range []string{"ws-used", "ws-registered"} {
		for _, table := range []string{"t1", "t2"} {
			if v, r := h.creds(org, existing, table); r.status != http.StatusOK || v.SASToken == "" {
				t.Errorf("/creds for the existing %s/%s at the limit: %d %s", existing, table, r.status, r.body)
			}
		}
	}
	r = h.call("POST", org, ws, map[string]string{"workspace_id": "ws-other"})
	h.want(r, http.StatusConflict)
	if e := r.errorBody(t); e.Code != codeConflict {
		t.Errorf("registering an existing workspace at the limit: %s, want the conflict of an existing one", r.body)
	}
	// Another organization has its own count. Many first calls of one new workspace
	// there, racing for its last place, all get their SAS: the losers, finding the
	// organization at its limit, find the workspace recorded too.
	for i := range limit - 1 {
		_, r = h.creds("org-b", fmt.Sprintf("ws-%d", i), "t1")
		h.want(r, http.StatusOK)
	}
	for i, r := range h.burst(12, func(int) response { return h.call("POST", "org-b", "/api/org/ws-last/ds/t/creds", nil) }) {
		if r.status != http.StatusOK {
			t.Errorf("first calls of one new workspace for the last place: call %d: %d %s", i, r.status, r.body)
		}
	}
	_, r = h.creds("org-b", "ws-over", "t1")
	h.want(r, http.StatusConflict)
}

// TestCreateRateLimit: an organization's creates beyond its burst answer 429 rate_limited
// with Retry-After; the bucket refills with the (injected) clock; other organizations have
// their own.
func TestCreateRateLimit(t *testing.T) {
	h := newHarness(t, func(c *credential.Config) { c.CreateRate = credential.Rate{Count: 2, Per: time.Minute, Burst: 2} })
	body := func(name string) map[string]string {
		return map[string]string{"name": name, "storage_type": "azure_federated", "base_path": "az://bloblake/lakedata"}
	}
	base := "/organizations/" + org + "/credentials"
	h.create(org, "c1", "az://bloblake/lakedata")
	h.create(org, "c2", "az://bloblake/lakedata")
	r := h.call("POST", org, base, body("c3"))
	h.want(r, http.StatusTooManyRequests)
	if got := r.header.Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After %q, want 30 (one create every 30 s)", got)
	}
	if e := r.errorBody(t); e.Code != codeRateLimited || !strings.Contains(e.Message, "at most 2 per minute") {
		t.Errorf("429 body %s", r.body)
	}
	h.create("org-b", "c1", "az://bloblake/lakedata")
	h.clock.Advance(29 * time.Second)
	r = h.call("POST", org, base, body("c3"))
	h.want(r, http.StatusTooManyRequests)
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("after 29 s: Retry-After %q, want 1", got)
	}
	h.clock.Advance(time.Second)
	h.create(org, "c3", "az://bloblake/lakedata")
	h.want(h.call("POST", org, base, body("c4")), http.StatusTooManyRequests)
}
