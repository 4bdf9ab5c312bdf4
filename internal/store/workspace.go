package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/activeloopai/azcreds/internal/credential"
)

var _ credential.WorkspaceStore = (*Store)(nil)

const workspacePrefix = "w:"

func workspaceKey(id string) string { return workspacePrefix + id }

// workspaceEntity is the stored shape of a workspace.
type workspaceEntity struct {
	PartitionKey string
	RowKey       string
	ID           string
	CredentialID string
	FirstTable   string
	LockedAt     string // "" while unlocked; the clean-up of a deleted credential filters on it
	// Pin is what the workspace locked on (credential.Source); absent on rows locked
	// before pins were recorded (credential.Workspace.Pinned reads those).
	Pin       string `json:",omitempty"`
	CreatedAt string
	UpdatedAt string
	// WriteID is random per insert: an insert whose answer was lost recognises its row.
	WriteID string `json:",omitempty"`
}

func toWorkspaceEntity(w *credential.Workspace) workspaceEntity {
	return workspaceEntity{PartitionKey: w.OrgID, RowKey: workspaceKey(w.ID), ID: w.ID, CredentialID: w.CredentialID,
		FirstTable: w.FirstTable, LockedAt: formatTime(w.LockedAt), Pin: string(w.Pin), CreatedAt: formatTime(w.CreatedAt), UpdatedAt: formatTime(w.UpdatedAt)}
}

func fromWorkspaceEntity(e workspaceEntity, etag string) (*credential.Workspace, error) {
	w := &credential.Workspace{OrgID: e.PartitionKey, ID: e.ID, CredentialID: e.CredentialID, FirstTable: e.FirstTable,
		Pin: credential.Source(e.Pin), ETag: etag}
	for _, t := range []struct {
		dst *time.Time
		src string
	}{{&w.LockedAt, e.LockedAt}, {&w.CreatedAt, e.CreatedAt}, {&w.UpdatedAt, e.UpdatedAt}} {
		v, err := parseTime(t.src)
		if err != nil {
			return nil, fmt.Errorf("stored workspace %s: %w", e.ID, err)
		}
		*t.dst = v
	}
	return w, nil
}

// touch is a transaction action that changes nothing of c but fails unless c is unchanged
// since it was read: it ties a workspace write to the credential it links to.
func touch(c *credential.Credential) (aztables.TransactionAction, error) {
	if c.ETag == "" {
		return aztables.TransactionAction{}, fmt.Errorf("credential %s: no ETag; read it first", c.ID)
	}
	return action(aztables.TransactionTypeUpdateMerge, map[string]string{"PartitionKey": c.OrgID, "RowKey": credentialKey(c.ID)}, c.ETag)
}

// writeWorkspace writes ent (w) with kind, conditional on etag, and, in the same
// transaction, checks c (when not nil) and runs the extra actions.
func (s *Store) writeWorkspace(ctx context.Context, kind aztables.TransactionType, w *credential.Workspace, ent workspaceEntity, etag string,
	c *credential.Credential, extra ...aztables.TransactionAction) error {
	row, err := action(kind, ent, etag)
	if err != nil {
		return err
	}
	actions := []aztables.TransactionAction{row}
	if c != nil {
		t, err := touch(c)
		if err != nil {
			return err
		}
		actions = append(actions, t)
	}
	actions = append(actions, extra...)
	if err := s.submit(ctx, "write workspace "+w.ID, actions...); err != nil {
		if errors.Is(err, errAlreadyExists) {
			return err // the callers say which row
		}
		if c != nil && errors.Is(err, credential.ErrNotFound) {
			return &credential.ConflictError{Message: fmt.Sprintf("credential %s was deleted meanwhile", c.ID)}
		}
		return err
	}
	if c != nil {
		c.ETag = ""
	}
	w.ETag = ""
	return nil
}

func workspaceExists(id string) error {
	return &credential.ConflictError{Message: fmt.Sprintf("workspace %q already exists", id)}
}

// InsertWorkspace writes a new workspace and the organization's workspace count, checking
// c (when not nil) in the same transaction. At the limit it writes nothing: a workspace
// that exists is reported as existing, a new one as over the quota.
func (s *Store) InsertWorkspace(ctx context.Context, w *credential.Workspace, c *credential.Credential) error {
	ent := toWorkspaceEntity(w)
	ent.WriteID = rand.Text()
	err := s.countedInsert(ctx, w.OrgID, workspaceCounter,
		func(take aztables.TransactionAction, _ int64) ([]string, error) {
			return nil, s.writeWorkspace(ctx, aztables.TransactionTypeAdd, w, ent, "", c, take)
		},
		func() bool { return s.workspaceLanded(ctx, ent) },
		func() bool { _, err := s.table.GetEntity(ctx, w.OrgID, ent.RowKey, nil); return err == nil })
	if errors.Is(err, errAlreadyExists) {
		return workspaceExists(w.ID)
	}
	if err == nil {
		w.ETag = ""
		if c != nil {
			c.ETag = ""
		}
	}
	return err
}

// workspaceLanded reports whether the workspace row is the insert want.
func (s *Store) workspaceLanded(ctx context.Context, want workspaceEntity) bool {
	_, ok := s.writtenBy(ctx, want.PartitionKey, want.RowKey, want.WriteID)
	return ok
}

// UpdateWorkspace writes w if unchanged since read, checking c (when not nil) as well.
func (s *Store) UpdateWorkspace(ctx context.Context, w *credential.Workspace, c *credential.Credential) error {
	if w.ETag == "" {
		return fmt.Errorf("update workspace %s: no ETag; read it first", w.ID)
	}
	return s.writeWorkspace(ctx, aztables.TransactionTypeUpdateReplace, w, toWorkspaceEntity(w), w.ETag, c)
}

// GetWorkspace reads one workspace.
func (s *Store) GetWorkspace(ctx context.Context, orgID, id string) (*credential.Workspace, error) {
	resp, err := s.table.GetEntity(ctx, orgID, workspaceKey(id), nil)
	if err != nil {
		return nil, translate(err, "get workspace "+id)
	}
	var ent workspaceEntity
	if err := json.Unmarshal(resp.Value, &ent); err != nil {
		return nil, fmt.Errorf("decode workspace %s: %w", id, err)
	}
	return fromWorkspaceEntity(ent, string(resp.ETag))
}

// UnlockedLinks reads up to max unlocked workspaces linked to credential id: one query of
// the organization's partition, filtered on the link and on LockedAt being empty (every
// workspace row carries the column). Its first page is enough: the caller clears what it
// read, so the next call finds the rest.
func (s *Store) UnlockedLinks(ctx context.Context, orgID, id string, max int) ([]*credential.Workspace, error) {
	filter := rangeFilter(orgID, workspacePrefix) + fmt.Sprintf(" and CredentialID eq '%s' and LockedAt eq ''", odataQuote(id))
	top := int32(max)
	pager := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Top: &top})
	var out []*credential.Workspace
	for pager.More() && len(out) < max {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("workspaces linked to %s: %w", id, translate(err, "query"))
		}
		for _, raw := range page.Entities {
			var ent struct {
				workspaceEntity
				ETag string `json:"odata.etag"`
			}
			if err := json.Unmarshal(raw, &ent); err != nil {
				return nil, fmt.Errorf("decode workspace: %w", err)
			}
			w, err := fromWorkspaceEntity(ent.workspaceEntity, ent.ETag)
			if err != nil {
				return nil, err
			}
			if len(out) < max {
				out = append(out, w)
			}
		}
	}
	return out, nil
}
