package store

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/activeloopai/azcreds/internal/credential"
)

func TestWorkspaceRoundTripAndETag(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := sample("org-a", "prod")
	insert(t, s, c)
	w := &credential.Workspace{OrgID: "org-a", ID: "ws", CredentialID: c.ID, CreatedAt: t0, UpdatedAt: t0}
	if err := s.InsertWorkspace(ctx, w, c); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertWorkspace(ctx, &credential.Workspace{OrgID: "org-a", ID: "ws"}, nil); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("second insert: %v", err)
	}
	got, err := s.GetWorkspace(ctx, "org-a", "ws")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w, got, ignoreWorkspaceETag); diff != "" {
		t.Fatalf("round trip (-wrote +read):\n%s", diff)
	}
	stale, _ := s.GetWorkspace(ctx, "org-a", "ws")
	got.FirstTable, got.LockedAt = "t", t0
	if err := s.UpdateWorkspace(ctx, got, nil); err != nil {
		t.Fatal(err)
	}
	stale.CredentialID = ""
	if err := s.UpdateWorkspace(ctx, stale, nil); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := s.GetWorkspace(ctx, "org-b", "ws"); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("another org's workspace: %v", err)
	}
}

// TestLinkRacesDelete: a link written from a stale read of a credential deleted
// meanwhile is refused, so no link ever dangles.
func TestLinkRacesDelete(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	c := sample("org-a", "prod")
	insert(t, s, c)
	stale, _ := s.Get(ctx, "org-a", c.ID)
	fresh, _ := s.Get(ctx, "org-a", c.ID)
	if err := s.Delete(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	w := &credential.Workspace{OrgID: "org-a", ID: "ws", CredentialID: c.ID, CreatedAt: t0, UpdatedAt: t0}
	if err := s.InsertWorkspace(ctx, w, stale); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("link to a deleted credential: %v", err)
	}
	if _, err := s.GetWorkspace(ctx, "org-a", "ws"); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("the refused link left a workspace: %v", err)
	}
}

func TestDeleteUnlinksWorkspaces(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, b := sample("org-a", "a"), sample("org-a", "b")
	insert(t, s, a)
	insert(t, s, b)
	for i, link := range []*credential.Credential{a, a, b} {
		fresh, _ := s.Get(ctx, "org-a", link.ID)
		w := &credential.Workspace{OrgID: "org-a", ID: []string{"w1", "w2", "w3"}[i], CredentialID: link.ID, CreatedAt: t0, UpdatedAt: t0}
		if err := s.InsertWorkspace(ctx, w, fresh); err != nil {
			t.Fatal(err)
		}
	}
	fresh, _ := s.Get(ctx, "org-a", a.ID)
	if err := s.Delete(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	for ws, want := range map[string]string{"w1": "", "w2": "", "w3": b.ID} {
		w, err := s.GetWorkspace(ctx, "org-a", ws)
		if err != nil || w.CredentialID != want {
			t.Fatalf("%s: link %q, %v; want %q", ws, w.CredentialID, err, want)
		}
	}
}

var ignoreWorkspaceETag = cmpopts.IgnoreFields(credential.Workspace{}, "ETag")
