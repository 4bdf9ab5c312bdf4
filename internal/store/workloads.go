package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/activeloopai/azcreds/internal/credential"
)

var _ credential.WorkloadIdentityStore = (*Store)(nil)

// The rows of an organization's registry of workload identities (doc.go).
const (
	workloadPrefix      = "wi:"
	workloadIDPrefix    = "wid:"
	workloadEventPrefix = "wie:"
)

// workloadKey is the row key of a registration: what a workload identity's token names, so
// admitting one is a point read.
func workloadKey(tenantID, clientID string) string { return workloadPrefix + tenantID + ":" + clientID }
func workloadIDKey(id string) string               { return workloadIDPrefix + id }

// workloadEventKey orders the registry log by the counter's Seq, zero-padded so that text
// order is numeric order.
func workloadEventKey(seq int64) string { return fmt.Sprintf("%s%019d", workloadEventPrefix, seq) }

// workloadEntity is the stored shape of a registration.
type workloadEntity struct {
	PartitionKey string
	RowKey       string
	ID           string
	DisplayName  string
	TenantID     string
	ClientID     string
	CreatedAt    string
	// WriteID is random per insert: an insert whose answer was lost recognises its row.
	WriteID string `json:",omitempty"`
}

// workloadIndexEntity finds a registration by its id (DELETE .../workload-identities/{id}).
type workloadIndexEntity struct {
	PartitionKey string
	RowKey       string
	TenantID     string
	ClientID     string
}

// workloadEventEntity is one entry of the registry log.
type workloadEventEntity struct {
	PartitionKey       string
	RowKey             string
	Time               string
	Cause              string
	WorkloadIdentityID string
	DisplayName        string
	TenantID           string
	ClientID           string
	RequestID          string
	actorColumns
	// WriteID is the write's: a removal whose answer was lost recognises its event.
	WriteID string
}

func toWorkloadEntity(w *credential.WorkloadIdentity) workloadEntity {
	return workloadEntity{PartitionKey: w.OrgID, RowKey: workloadKey(w.TenantID, w.ClientID), ID: w.ID, DisplayName: w.DisplayName,
		TenantID: w.TenantID, ClientID: w.ClientID, CreatedAt: formatTime(w.CreatedAt)}
}

func fromWorkloadEntity(e workloadEntity, etag string) (*credential.WorkloadIdentity, error) {
	at, err := parseTime(e.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("stored workload identity %s: %w", e.ID, err)
	}
	return &credential.WorkloadIdentity{OrgID: e.PartitionKey, ID: e.ID, DisplayName: e.DisplayName, TenantID: e.TenantID,
		ClientID: e.ClientID, CreatedAt: at, ETag: etag}, nil
}

func toWorkloadEventEntity(orgID string, seq int64, ev credential.WorkloadIdentityEvent, writeID string) workloadEventEntity {
	return workloadEventEntity{PartitionKey: orgID, RowKey: workloadEventKey(seq), Time: formatTime(ev.Time), Cause: string(ev.Cause),
		WorkloadIdentityID: ev.WorkloadIdentityID, DisplayName: ev.DisplayName, TenantID: ev.TenantID, ClientID: ev.ClientID,
		RequestID: ev.RequestID, actorColumns: toActorColumns(ev.Actor), WriteID: writeID}
}

// InsertWorkloadIdentity writes a registration, its index row, its event and the
// organization's count of workload identities in one transaction; at the limit it writes
// nothing (an existing pair is reported as the conflict it is).
func (s *Store) InsertWorkloadIdentity(ctx context.Context, w *credential.WorkloadIdentity, ev credential.WorkloadIdentityEvent) error {
	ent := toWorkloadEntity(w)
	ent.WriteID = rand.Text()
	row, err := action(aztables.TransactionTypeAdd, ent, "")
	if err != nil {
		return err
	}
	index, err := action(aztables.TransactionTypeAdd, workloadIndexEntity{PartitionKey: w.OrgID, RowKey: workloadIDKey(w.ID),
		TenantID: w.TenantID, ClientID: w.ClientID}, "")
	if err != nil {
		return err
	}
	err = s.countedInsert(ctx, w.OrgID, workloadCounter,
		func(take aztables.TransactionAction, seq int64) ([]string, error) {
			event, err := action(aztables.TransactionTypeAdd, toWorkloadEventEntity(w.OrgID, seq, ev, ent.WriteID), "")
			if err != nil {
				return nil, err
			}
			// The count goes first, so a retry of an attempt that landed fails on it.
			etags, _, err := s.submitETags(ctx, "register workload identity "+w.ClientID, take, row, index, event)
			return etags, err
		},
		func() bool {
			got, _, err := s.readWorkload(ctx, w.OrgID, ent.RowKey)
			return err == nil && got.WriteID == ent.WriteID
		},
		func() bool { _, err := s.table.GetEntity(ctx, w.OrgID, ent.RowKey, nil); return err == nil })
	if errors.Is(err, errAlreadyExists) {
		return credential.WorkloadIdentityConflict(w.TenantID, w.ClientID)
	}
	if err != nil {
		return err
	}
	w.ETag = "" // a transaction answers no ETag
	return nil
}

func (s *Store) readWorkload(ctx context.Context, orgID, rowKey string) (workloadEntity, string, error) {
	resp, err := s.table.GetEntity(ctx, orgID, rowKey, nil)
	if err != nil {
		return workloadEntity{}, "", translate(err, "get workload identity "+rowKey)
	}
	var ent workloadEntity
	if err := json.Unmarshal(resp.Value, &ent); err != nil {
		return workloadEntity{}, "", fmt.Errorf("decode workload identity %s: %w", rowKey, err)
	}
	return ent, string(resp.ETag), nil
}

// FindWorkloadIdentity reads the registration of a tenant and client id: one point read.
func (s *Store) FindWorkloadIdentity(ctx context.Context, orgID, tenantID, clientID string) (*credential.WorkloadIdentity, error) {
	ent, etag, err := s.readWorkload(ctx, orgID, workloadKey(tenantID, clientID))
	if err != nil {
		return nil, err
	}
	return fromWorkloadEntity(ent, etag)
}

// GetWorkloadIdentity reads a registration by its id, through its index row.
func (s *Store) GetWorkloadIdentity(ctx context.Context, orgID, id string) (*credential.WorkloadIdentity, error) {
	resp, err := s.table.GetEntity(ctx, orgID, workloadIDKey(id), nil)
	if err != nil {
		return nil, translate(err, "get workload identity "+id)
	}
	var idx workloadIndexEntity
	if err := json.Unmarshal(resp.Value, &idx); err != nil {
		return nil, fmt.Errorf("decode workload identity index %s: %w", id, err)
	}
	return s.FindWorkloadIdentity(ctx, orgID, idx.TenantID, idx.ClientID)
}

// ListWorkloadIdentities reads an organization's registrations (one query of its
// partition), oldest first.
func (s *Store) ListWorkloadIdentities(ctx context.Context, orgID string) ([]*credential.WorkloadIdentity, error) {
	var out []*credential.WorkloadIdentity
	err := s.query(ctx, rangeFilter(orgID, workloadPrefix), func(raw []byte) error {
		var ent struct {
			workloadEntity
			ETag string `json:"odata.etag"`
		}
		if err := json.Unmarshal(raw, &ent); err != nil {
			return fmt.Errorf("decode workload identity: %w", err)
		}
		w, err := fromWorkloadEntity(ent.workloadEntity, ent.ETag)
		if err != nil {
			return err
		}
		out = append(out, w)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list workload identities of %s: %w", orgID, err)
	}
	slices.SortFunc(out, func(a, b *credential.WorkloadIdentity) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DeleteWorkloadIdentity removes a registration (conditional on the ETag it was read
// with) and its index row, adds its removal event and frees its place, in one
// transaction. A conflict of the counter alone (another registration or removal moved
// it) is tried again on the counter as it is now; a removal whose answer was lost is
// recognised by its event's write id.
func (s *Store) DeleteWorkloadIdentity(ctx context.Context, w *credential.WorkloadIdentity, ev credential.WorkloadIdentityEvent) error {
	if w.ETag == "" {
		return fmt.Errorf("delete workload identity %s: no ETag; read it first", w.ID)
	}
	key := func(rk string) map[string]string { return map[string]string{"PartitionKey": w.OrgID, "RowKey": rk} }
	// First: a stale or missing registration fails the transaction on its own row.
	row, err := action(aztables.TransactionTypeDelete, key(workloadKey(w.TenantID, w.ClientID)), w.ETag)
	if err != nil {
		return err
	}
	index, err := action(aztables.TransactionTypeDelete, key(workloadIDKey(w.ID)), "*")
	if err != nil {
		return err
	}
	writeID := rand.Text()
	for attempt := 1; ; attempt++ {
		count, err := s.readCounter(ctx, w.OrgID, workloadCounter)
		if err != nil {
			return err
		}
		free, err := count.action(-1)
		if err != nil {
			return err
		}
		event, err := action(aztables.TransactionTypeAdd, toWorkloadEventEntity(w.OrgID, count.next(), ev, writeID), "")
		if err != nil {
			return err
		}
		err = s.submit(ctx, "remove workload identity "+w.ID, row, index, free, event)
		if err == nil {
			return nil
		}
		if (errors.Is(err, credential.ErrConflict) || errors.Is(err, credential.ErrNotFound)) && s.workloadEventLanded(ctx, w.OrgID, count.next(), writeID) {
			return nil
		}
		if !errors.Is(err, credential.ErrConflict) {
			return err
		}
		if now, rerr := s.readCounter(ctx, w.OrgID, workloadCounter); rerr != nil || now.etag == count.etag {
			return err // the registration changed since it was read
		}
		if attempt == counterAttempts {
			return fmt.Errorf("remove workload identity %s: %w", w.ID, errCounterBusy)
		}
	}
}

// workloadEventLanded reports whether the registry log's entry seq is the one writeID wrote.
func (s *Store) workloadEventLanded(ctx context.Context, orgID string, seq int64, writeID string) bool {
	_, ok := s.writtenBy(ctx, orgID, workloadEventKey(seq), writeID)
	return ok
}

// WorkloadIdentityEvents reads an organization's registry log, oldest first.
func (s *Store) WorkloadIdentityEvents(ctx context.Context, orgID string) ([]credential.WorkloadIdentityEvent, error) {
	var out []credential.WorkloadIdentityEvent
	err := s.query(ctx, rangeFilter(orgID, workloadEventPrefix), func(raw []byte) error {
		var ent workloadEventEntity
		if err := json.Unmarshal(raw, &ent); err != nil {
			return fmt.Errorf("decode workload identity event: %w", err)
		}
		at, err := parseTime(ent.Time)
		if err != nil {
			return fmt.Errorf("stored workload identity event %s: %w", ent.RowKey, err)
		}
		out = append(out, credential.WorkloadIdentityEvent{Time: at, Cause: credential.WorkloadIdentityCause(ent.Cause),
			WorkloadIdentityID: ent.WorkloadIdentityID, DisplayName: ent.DisplayName, TenantID: ent.TenantID, ClientID: ent.ClientID,
			RequestID: ent.RequestID, Actor: ent.actor()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("workload identity events of %s: %w", orgID, err)
	}
	return out, nil
}
