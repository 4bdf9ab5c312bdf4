package store

import (
	"context"
	"errors"
	"slices"
	"testing"

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
