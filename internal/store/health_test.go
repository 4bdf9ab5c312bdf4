package store

import (
	"context"
	"slices"
	"testing"

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

// TestEachVerifiedPages: the walk pages through the results whatever the page size (the
// contract, TestStoreContract/Health, holds what it visits).
func TestEachVerifiedPages(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var want []string
	for _, org := range []string{"org-a", "org-b", "org-c"} {
		for _, name := range []string{"one", "two"} {
			want = append(want, verified(t, s, org, name).ID)
		}
		insert(t, s, sample(org, "draft"))
	}
	slices.Sort(want)
	for _, pageSize := range []int32{2, 5, verifiedPageSize} {
		var got []string
		if err := s.eachVerified(ctx, pageSize, func(c *credential.Credential) error { got = append(got, c.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("page size %d: walked %v, want %v", pageSize, got, want)
		}
	}
}
