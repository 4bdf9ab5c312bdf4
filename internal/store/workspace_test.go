package store

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/activeloopai/azcreds/internal/credential"
)

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
