package store

import (
	"context"
	"encoding/json"
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
	got.FirstTable, got.LockedAt, got.Pin = "t", t0, credential.SourceOrgDefault
	if err := s.UpdateWorkspace(ctx, got, nil); err != nil {
		t.Fatal(err)
	}
	if locked, err := s.GetWorkspace(ctx, "org-a", "ws"); err != nil || locked.Pin != credential.SourceOrgDefault || !locked.LockedAt.Equal(t0) {
		t.Fatalf("locked: %+v, %v", locked, err)
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

// TestDeleteLeavesLinksToTheTombstone: the delete's transaction touches no workspace, so
// its size does not grow with the links. UnlockedLinks then finds the unlocked workspaces
// linked to the deleted credential, a page at a time; locked ones and other links are
// never in it.
func TestDeleteLeavesLinksToTheTombstone(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, b := sample("org-a", "a"), sample("org-a", "b")
	insert(t, s, a)
	insert(t, s, b)
	for _, w := range []struct {
		id     string
		link   *credential.Credential
		locked bool
	}{{"w1", a, false}, {"w2", a, false}, {"w3", a, true}, {"w4", b, false}, {"w5", nil, false}} {
		ws := &credential.Workspace{OrgID: "org-a", ID: w.id, CreatedAt: t0, UpdatedAt: t0}
		if w.link != nil {
			ws.CredentialID = w.link.ID
		}
		if w.locked {
			ws.FirstTable, ws.LockedAt, ws.Pin = "t", t0, credential.SourceWorkspace
		}
		if err := s.InsertWorkspace(ctx, ws, nil); err != nil {
			t.Fatal(err)
		}
	}
	fresh, _ := s.Get(ctx, "org-a", a.ID)
	if err := s.Delete(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	for ws, want := range map[string]string{"w1": a.ID, "w2": a.ID, "w3": a.ID, "w4": b.ID, "w5": ""} {
		w, err := s.GetWorkspace(ctx, "org-a", ws)
		if err != nil || w.CredentialID != want {
			t.Fatalf("%s: link %q, %v; want %q", ws, w.CredentialID, err, want)
		}
	}
	ids := func(ws []*credential.Workspace) []string {
		var out []string
		for _, w := range ws {
			if w.ETag == "" || w.Locked() {
				t.Errorf("%s: ETag %q locked %v", w.ID, w.ETag, w.Locked())
			}
			out = append(out, w.ID)
		}
		return out
	}
	got, err := s.UnlockedLinks(ctx, "org-a", a.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"w1", "w2"}, ids(got)); diff != "" {
		t.Fatalf("unlocked links (-want +got):\n%s", diff)
	}
	got, err = s.UnlockedLinks(ctx, "org-a", a.ID, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("a page of one: %v, %v", ids(got), err)
	}
	got[0].CredentialID = ""
	if err := s.UpdateWorkspace(ctx, got[0], nil); err != nil {
		t.Fatal(err)
	}
	if got, err = s.UnlockedLinks(ctx, "org-a", a.ID, 100); err != nil || len(got) != 1 {
		t.Fatalf("after clearing one: %v, %v", ids(got), err)
	}
	if got, err = s.UnlockedLinks(ctx, "org-b", a.ID, 100); err != nil || len(got) != 0 {
		t.Fatalf("another organization: %v, %v", ids(got), err)
	}
}

// TestWorkspaceRowsWithoutPin: rows written before pins were recorded have no Pin column;
// they read with an empty pin, which Workspace.Pinned interprets.
func TestWorkspaceRowsWithoutPin(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for _, row := range []map[string]string{
		{"PartitionKey": "org-a", "RowKey": workspaceKey("old-linked"), "ID": "old-linked", "CredentialID": "c1", "FirstTable": "t",
			"LockedAt": formatTime(t0), "CreatedAt": formatTime(t0), "UpdatedAt": formatTime(t0)},
		{"PartitionKey": "org-a", "RowKey": workspaceKey("old-env"), "ID": "old-env", "CredentialID": "", "FirstTable": "t",
			"LockedAt": formatTime(t0), "CreatedAt": formatTime(t0), "UpdatedAt": formatTime(t0)},
	} {
		b, _ := json.Marshal(row)
		if _, err := s.table.AddEntity(ctx, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]credential.Source{"old-linked": credential.SourceWorkspace, "old-env": credential.SourceEnvironmentDefault} {
		w, err := s.GetWorkspace(ctx, "org-a", id)
		if err != nil {
			t.Fatal(err)
		}
		if w.Pin != "" || w.Pinned() != want {
			t.Errorf("%s: pin %q, pinned %q; want none stored, pinned %q", id, w.Pin, w.Pinned(), want)
		}
	}
}

var ignoreWorkspaceETag = cmpopts.IgnoreFields(credential.Workspace{}, "ETag")
