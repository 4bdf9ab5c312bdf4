package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/activeloopai/azcreds/internal/credential"
)

var _ credential.WindowIndex = (*Store)(nil)

// windowPartition holds the open-window index, one row per credential whose background
// work the reconciler watches. No organization id can name it: they start with a letter
// or digit.
const windowPartition = "~open-windows"

// windowPageSize is how many index rows one page holds (the Table service's maximum).
const windowPageSize = 1000

func windowKey(orgID, id string) string { return orgID + ":" + id }

// windowEntity is one row of the open-window index.
type windowEntity struct {
	PartitionKey string
	RowKey       string // <org id>:<credential id>
	OrgID        string
	CredentialID string
	Generation   int64
	OpenedAt     string

	// The failure a job met on its last delivery (JobFailure), absent until then.
	FailedKind           string `json:",omitempty"`
	FailedGeneration     int64  `json:",omitempty"`
	FailedAttempt        int    `json:",omitempty"`
	FailedAt             string `json:",omitempty"`
	FailureMessage       string `json:",omitempty"`
	FailureCode          string `json:",omitempty"`
	FailureProviderError string `json:",omitempty"`
	FailureRequestID     string `json:",omitempty"`
}

// failureEntity is the part of a window row that NoteFailure merges in.
type failureEntity struct {
	PartitionKey         string
	RowKey               string
	FailedKind           string
	FailedGeneration     int64
	FailedAttempt        int
	FailedAt             string
	FailureMessage       string
	FailureCode          string
	FailureProviderError string
	FailureRequestID     string
}

// OpenWindow writes w's row, replacing the credential's row (and a failure it noted) if
// it has one: one unconditional write.
func (s *Store) OpenWindow(ctx context.Context, w credential.OpenWindow) error {
	b, err := json.Marshal(windowEntity{PartitionKey: windowPartition, RowKey: windowKey(w.OrgID, w.CredentialID),
		OrgID: w.OrgID, CredentialID: w.CredentialID, Generation: w.Generation, OpenedAt: formatTime(w.OpenedAt)})
	if err != nil {
		return err
	}
	_, err = s.table.UpsertEntity(ctx, b, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
	return translate(err, "index the background work of credential "+w.CredentialID)
}

// OpenWindows reads the index partition a page at a time: one query per thousand rows,
// whatever the number of credentials.
func (s *Store) OpenWindows(ctx context.Context, fn func(credential.OpenWindow) error) error {
	filter := fmt.Sprintf("PartitionKey eq '%s'", odataQuote(windowPartition))
	top := int32(windowPageSize)
	pager := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Top: &top})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("read the open-window index: %w", translate(err, "query"))
		}
		for _, raw := range page.Entities {
			var ent struct {
				windowEntity
				ETag string `json:"odata.etag"`
			}
			if err := json.Unmarshal(raw, &ent); err != nil {
				return fmt.Errorf("decode an open-window row: %w", err)
			}
			w, err := fromWindowEntity(ent.windowEntity, ent.ETag)
			if err != nil {
				return err
			}
			if err := fn(w); err != nil {
				return err
			}
		}
	}
	return nil
}

func fromWindowEntity(e windowEntity, etag string) (credential.OpenWindow, error) {
	w := credential.OpenWindow{OrgID: e.OrgID, CredentialID: e.CredentialID, Generation: e.Generation, ETag: etag,
		Failure: credential.JobFailure{Kind: credential.JobKind(e.FailedKind), Generation: e.FailedGeneration, Attempt: e.FailedAttempt,
			Problem: credential.Problem{Message: e.FailureMessage, Code: e.FailureCode, ProviderError: e.FailureProviderError,
				RequestID: e.FailureRequestID}}}
	var err error
	if w.OpenedAt, err = parseTime(e.OpenedAt); err != nil {
		return w, fmt.Errorf("stored open-window row %s: %w", e.RowKey, err)
	}
	if w.Failure.At, err = parseTime(e.FailedAt); err != nil {
		return w, fmt.Errorf("stored open-window row %s: %w", e.RowKey, err)
	}
	return w, nil
}

// NoteFailure merges f into the credential's row, if it has one.
func (s *Store) NoteFailure(ctx context.Context, orgID, id string, f credential.JobFailure) error {
	b, err := json.Marshal(failureEntity{PartitionKey: windowPartition, RowKey: windowKey(orgID, id),
		FailedKind: string(f.Kind), FailedGeneration: f.Generation, FailedAttempt: f.Attempt, FailedAt: formatTime(f.At),
		FailureMessage: f.Problem.Message, FailureCode: f.Problem.Code, FailureProviderError: f.Problem.ProviderError,
		FailureRequestID: f.Problem.RequestID})
	if err != nil {
		return err
	}
	exists := azcore.ETagAny
	_, err = s.table.UpdateEntity(ctx, b, &aztables.UpdateEntityOptions{IfMatch: &exists, UpdateMode: aztables.UpdateModeMerge})
	if err = translate(err, "note a failure of credential "+id); errors.Is(err, credential.ErrNotFound) {
		return nil
	}
	return err
}

// CloseWindow removes w's row if its ETag is still w.ETag (whatever it is without one).
func (s *Store) CloseWindow(ctx context.Context, w credential.OpenWindow) error {
	etag := azcore.ETag(w.ETag)
	if w.ETag == "" {
		etag = azcore.ETagAny
	}
	_, err := s.table.DeleteEntity(ctx, windowPartition, windowKey(w.OrgID, w.CredentialID), &aztables.DeleteEntityOptions{IfMatch: &etag})
	err = translate(err, "remove the open-window row of credential "+w.CredentialID)
	if errors.Is(err, credential.ErrNotFound) || errors.Is(err, credential.ErrConflict) {
		return nil // gone already, or written again by a new window: not ours to remove
	}
	return err
}
