package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
)

// verified inserts a credential of org and moves it to verified with one plain update.
func verified(t *testing.T, s *Store, org, name string) *credential.Credential {
	t.Helper()
	c := sample(org, name)
	insert(t, s, c)
	c.State = credential.StateVerified
	c.VerifiedAt = t0
	if err := s.Update(context.Background(), c, nil); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHealthRoundTripAndEvents(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := verified(t, s, "org-a", "prod")
	if got, _ := s.Get(ctx, "org-a", c.ID); !cmp.Equal(got.Health, credential.Health{}) {
		t.Fatalf("health before the first check: %+v", got.Health)
	}
	c.Health = credential.Health{Status: credential.HealthDegraded, CheckedAt: t0.Add(time.Minute), Since: t0.Add(time.Minute),
		Checks:  []credential.Check{{Name: "user_delegation_key", Result: "fail", ProviderCode: "AuthorizationPermissionMismatch"}, {Name: "write", Result: "skip"}},
		Problem: credential.Problem{Message: "Role is not sufficient", Code: "role_not_sufficient", Hint: "no_role", ProviderError: "AuthorizationPermissionMismatch", RequestID: "r-9"}}
	ev := &credential.HealthEvent{Time: t0.Add(time.Minute), From: credential.HealthOK, To: credential.HealthDegraded,
		Code: "role_not_sufficient", ProviderError: "AuthorizationPermissionMismatch", RequestID: "r-9", Generation: c.Generation}
	if err := s.UpdateHealth(ctx, c, ev); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "org-a", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got, ignoreStoreFields); diff != "" {
		t.Fatalf("round trip (-wrote +read):\n%s", diff)
	}
	// Without an event the write is a plain conditional update; a stale one conflicts.
	stale := *got
	got.Health.CheckedAt = t0.Add(2 * time.Minute)
	if err := s.UpdateHealth(ctx, got, nil); err != nil {
		t.Fatal(err)
	}
	stale.Health.Status = credential.HealthOK
	if err := s.UpdateHealth(ctx, &stale, &credential.HealthEvent{Time: t0, From: credential.HealthDegraded, To: credential.HealthOK}); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale health write = %v, want ErrConflict", err)
	}
	hevs, err := s.HealthEvents(ctx, "org-a", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]credential.HealthEvent{*ev}, hevs); diff != "" {
		t.Fatalf("health events (-want +got):\n%s", diff)
	}
	// The transition log holds the creation alone: health events are not transitions.
	evs, err := s.Events(ctx, "org-a", c.ID)
	if err != nil || len(evs) != 1 || evs[0].Cause != credential.EventCreated {
		t.Fatalf("transition log %+v, %v", evs, err)
	}
}

// TestEachVerified: the walk crosses organizations, pages through the results and sees
// only verified credentials.
func TestEachVerified(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var want []string
	for _, org := range []string{"org-a", "org-b", "org-c"} {
		for _, name := range []string{"one", "two"} {
			want = append(want, verified(t, s, org, name).ID)
		}
		insert(t, s, sample(org, "draft"))
		pending := sample(org, "pending")
		insert(t, s, pending)
		pending.State = credential.StateUnverifiedSaved
		if err := s.Update(ctx, pending, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, pageSize := range []int32{2, 5, verifiedPageSize} {
		var got []string
		err := s.eachVerified(ctx, pageSize, func(c *credential.Credential) error {
			if c.State != credential.StateVerified || c.ETag == "" {
				t.Errorf("walk gave %s in %s with ETag %q", c.ID, c.State, c.ETag)
			}
			got = append(got, c.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("page size %d: verified credentials (-want +got):\n%s", pageSize, diff)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := s.EachVerified(ctx, func(*credential.Credential) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("a failing callback: %v after %d calls, want it returned after 1", err, n)
	}
}
