package handlers

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
)

// TestCachedTokenRefusals: the API remembers verified tokens, and every refusal that a
// token's time, its organizations or its identity's registration call for still happens
// for a token it remembers.
func TestCachedTokenRefusals(t *testing.T) {
	h := newHarness(t)
	creds := "/api/org/ws-1/ds/t1/creds"

	t.Run("expired after it was cached", func(t *testing.T) {
		tok, err := h.minter.Mint("user-1", []string{org}, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			h.want(h.as(tok, "POST", org, creds, nil), http.StatusOK)
		}
		h.clock.Advance(2*time.Minute + 31*time.Second) // past exp and the leeway
		h.want(h.as(tok, "POST", org, creds, nil), http.StatusUnauthorized)
	})

	t.Run("another organization's, cached for its own", func(t *testing.T) {
		tok := h.token(org)
		h.want(h.as(tok, "POST", org, creds, nil), http.StatusOK)
		for range 2 {
			h.want(h.as(tok, "POST", "org-b", creds, nil), http.StatusForbidden)
			h.want(h.as(tok, "GET", "org-b", "/organizations/org-b/credentials", nil), http.StatusForbidden)
		}
	})

	t.Run("a workload identity removed elsewhere, within its bound", func(t *testing.T) {
		wi := h.registerWorkload(org, "lake-job", wiTenant, wiClient)
		tok := h.entraToken(wiTenant, wiClient, nil)
		for range 3 {
			h.want(h.as(tok, "POST", org, creds, nil), http.StatusOK)
		}
		// Another instance removes it: this one's registry cache still holds the
		// registration, for at most AZCREDS_WORKLOAD_IDENTITY_CACHE_TTL, then the token,
		// cached or not, is refused.
		ctx := context.Background()
		reg, err := h.store.GetWorkloadIdentity(ctx, org, wi.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.store.DeleteWorkloadIdentity(ctx, reg, credential.WorkloadIdentityEvent{Time: h.clock.Now(),
			Cause: credential.WorkloadIdentityRemoved, WorkloadIdentityID: wi.ID, TenantID: wiTenant, ClientID: wiClient}); err != nil {
			t.Fatal(err)
		}
		h.want(h.as(tok, "POST", org, creds, nil), http.StatusOK)
		h.clock.Advance(h.cfg.WorkloadIdentityCacheTTL)
		h.want(h.as(tok, "POST", org, creds, nil), http.StatusForbidden)
		h.want(h.as(tok, "GET", org, "/organizations/"+org+"/credentials", nil), http.StatusForbidden)
	})
}
