package store

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/activeloopai/azcreds/internal/credential"
)

// stripMark rewrites credential id's row as a build before the org-default mark wrote it:
// the same properties, no OrgDefault.
func stripMark(t *testing.T, s *Store, org, id string) {
	t.Helper()
	ctx := context.Background()
	resp, err := s.table.GetEntity(ctx, org, credentialKey(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	var row map[string]any
	if err := json.Unmarshal(resp.Value, &row); err != nil {
		t.Fatal(err)
	}
	if _, ok := row["OrgDefault"]; !ok {
		t.Fatalf("row %s has no mark to strip", id)
	}
	delete(row, "OrgDefault")
	for k := range row {
		if len(k) > 6 && k[:6] == "odata." {
			delete(row, k)
		}
	}
	b, err := json.Marshal(row)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.table.UpdateEntity(ctx, b, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		t.Fatal(err)
	}
}

func rowMark(t *testing.T, s *Store, org, id string) *bool {
	t.Helper()
	resp, err := s.table.GetEntity(context.Background(), org, credentialKey(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ent credentialEntity
	if err := json.Unmarshal(resp.Value, &ent); err != nil {
		t.Fatal(err)
	}
	return ent.OrgDefault
}

// TestRowsWithoutTheMark: a credential row written before the org-default mark existed is
// read as the default exactly when the default row points at it (Get, List and
// EachVerified read the default row for it), and its next write stores the mark.
func TestRowsWithoutTheMark(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, b := sample("org-a", "a"), sample("org-a", "b")
	for _, c := range []*credential.Credential{a, b} {
		insert(t, s, c)
		c.State = credential.StateVerified
		if err := s.Update(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	fresh, err := s.Get(ctx, "org-a", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetOrgDefault(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if m := rowMark(t, s, "org-a", a.ID); m == nil || !*m {
		t.Fatalf("the default's row mark = %v, want true", m)
	}
	stripMark(t, s, "org-a", a.ID)
	stripMark(t, s, "org-a", b.ID)

	check := func(step string) {
		t.Helper()
		for _, c := range []*credential.Credential{a, b} {
			got, err := s.Get(ctx, "org-a", c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.IsOrgDefault != (c == a) {
				t.Errorf("%s: Get(%s).IsOrgDefault = %v", step, c.Name, got.IsOrgDefault)
			}
		}
		list, err := s.List(ctx, "org-a")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			if c.IsOrgDefault != (c.ID == a.ID) {
				t.Errorf("%s: List: %s.IsOrgDefault = %v", step, c.Name, c.IsOrgDefault)
			}
		}
		if err := s.EachVerified(ctx, func(c *credential.Credential) error {
			if c.OrgID == "org-a" && c.IsOrgDefault != (c.ID == a.ID) {
				t.Errorf("%s: EachVerified: %s.IsOrgDefault = %v", step, c.Name, c.IsOrgDefault)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	check("without marks")

	// Written again (as a read found it), each row stores its mark.
	for _, c := range []*credential.Credential{a, b} {
		got, err := s.Get(ctx, "org-a", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		got.TenantID = "t"
		if err := s.Update(ctx, got, nil); err != nil {
			t.Fatal(err)
		}
		if m := rowMark(t, s, "org-a", c.ID); m == nil || *m != (c == a) {
			t.Errorf("%s's row mark after a write = %v, want %v", c.Name, m, c == a)
		}
	}
	check("after writes")

	// The default re-pointed from a row without the mark clears the old default's mark.
	stripMark(t, s, "org-a", a.ID)
	fresh, err = s.Get(ctx, "org-a", b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetOrgDefault(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if m := rowMark(t, s, "org-a", a.ID); m == nil || *m {
		t.Errorf("the former default's mark = %v, want false", m)
	}
	a, b = b, a
	check("re-pointed")
}
