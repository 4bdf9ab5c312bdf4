package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/activeloopai/azcreds/internal/credential"
)

var _ credential.HealthStore = (*Store)(nil)

// verifiedPageSize is how many credentials one page of the cross-organization walk holds
// (the Table service's maximum is 1,000).
const verifiedPageSize = 500

func healthEventKey(id string, revision int64) string {
	return fmt.Sprintf("%s%s:%010d", healthPrefix, id, revision)
}

// healthEventEntity is one change of a credential's health status, in a key range
// (h:<credential id>:<revision>) apart from the transition log's.
type healthEventEntity struct {
	PartitionKey  string
	RowKey        string
	CredentialID  string
	Time          string
	From          string
	To            string
	Code          string `json:",omitempty"`
	ProviderError string `json:",omitempty"`
	RequestID     string `json:",omitempty"`
	Generation    int64
	// WriteID is the write id of the credential row written in the same transaction.
	WriteID string `json:",omitempty"`
}

func (e healthEventEntity) logged(writeID string) logRow {
	e.WriteID = writeID
	return e
}

func (e healthEventEntity) keys() (string, string, string) {
	return e.PartitionKey, e.RowKey, e.WriteID
}

func putHealth(e *credentialEntity, h credential.Health) error {
	if h.Status == "" && h.CheckedAt.IsZero() {
		return nil
	}
	checks := make([]checkJSON, 0, len(h.Checks))
	for _, ch := range h.Checks {
		checks = append(checks, checkJSON(ch))
	}
	b, err := json.Marshal(checks)
	if err != nil {
		return fmt.Errorf("encode health checks: %w", err)
	}
	e.HealthStatus = string(h.Status)
	e.HealthCheckedAt = formatTime(h.CheckedAt)
	e.HealthSince = formatTime(h.Since)
	e.HealthChecks = string(b)
	e.HealthFailures = h.Failures
	e.HealthError = h.Problem.Message
	e.HealthErrorCode = h.Problem.Code
	e.HealthErrorHint = h.Problem.Hint
	e.HealthErrorProviderError = h.Problem.ProviderError
	e.HealthErrorRequestID = h.Problem.RequestID
	return nil
}

func getHealth(e credentialEntity, h *credential.Health) error {
	if e.HealthStatus == "" && e.HealthCheckedAt == "" {
		return nil
	}
	*h = credential.Health{Status: credential.HealthStatus(e.HealthStatus), Failures: e.HealthFailures,
		Problem: credential.Problem{Message: e.HealthError, Code: e.HealthErrorCode, Hint: e.HealthErrorHint,
			ProviderError: e.HealthErrorProviderError, RequestID: e.HealthErrorRequestID}}
	if e.HealthChecks != "" {
		var checks []checkJSON
		if err := json.Unmarshal([]byte(e.HealthChecks), &checks); err != nil {
			return err
		}
		for _, ch := range checks {
			h.Checks = append(h.Checks, credential.Check(ch))
		}
	}
	var err error
	if h.CheckedAt, err = parseTime(e.HealthCheckedAt); err != nil {
		return err
	}
	if h.Since, err = parseTime(e.HealthSince); err != nil {
		return err
	}
	return nil
}

// EachVerified walks the verified credentials of every organization: one query across
// partitions, filtered on the state by the service, a page at a time.
func (s *Store) EachVerified(ctx context.Context, fn func(*credential.Credential) error) error {
	return s.eachVerified(ctx, verifiedPageSize, fn)
}

func (s *Store) eachVerified(ctx context.Context, pageSize int32, fn func(*credential.Credential) error) error {
	filter := fmt.Sprintf("State eq '%s' and RowKey ge '%s' and RowKey lt '%s'",
		odataQuote(string(credential.StateVerified)), odataQuote(credentialPrefix), odataQuote(credentialPrefix[:len(credentialPrefix)-1]+";"))
	pager := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Top: &pageSize})
	var defaults map[string]string // org defaults read for rows without the mark
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list verified credentials: %w", translate(err, "query"))
		}
		for _, raw := range page.Entities {
			c, marked, err := decodeCredential(raw)
			if err != nil {
				return err
			}
			if c == nil {
				continue // a tombstone has no state, so the filter leaves it out; never probe one
			}
			if !marked {
				if defaults, err = s.unmarked(ctx, c, defaults); err != nil {
					return fmt.Errorf("list verified credentials: %w", err)
				}
			}
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// UpdateHealth writes c if it is unchanged since it was read. With an event, the row and
// the event are one transaction, whose answer names c's new ETag, as Update's does.
func (s *Store) UpdateHealth(ctx context.Context, c *credential.Credential, ev *credential.HealthEvent) error {
	if ev == nil {
		return s.Update(ctx, c, nil)
	}
	if c.ETag == "" {
		return fmt.Errorf("update health of credential %s: no ETag; read it first", c.ID)
	}
	c.Revision++
	ent, err := toEntity(c)
	if err != nil {
		c.Revision--
		return err
	}
	event := healthEventEntity{
		PartitionKey: c.OrgID, RowKey: healthEventKey(c.ID, c.Revision), CredentialID: c.ID,
		Time: formatTime(ev.Time), From: string(ev.From), To: string(ev.To), Code: ev.Code,
		ProviderError: ev.ProviderError, RequestID: ev.RequestID, Generation: ev.Generation}
	if err := s.updateWithEvent(ctx, c, ent, event, "update health of credential "+c.ID); err != nil {
		c.Revision--
		return err
	}
	return nil
}

// HealthEvents reads a credential's health log, oldest first (row keys carry the revision).
func (s *Store) HealthEvents(ctx context.Context, orgID, id string) ([]credential.HealthEvent, error) {
	var out []credential.HealthEvent
	err := s.query(ctx, rangeFilter(orgID, healthPrefix+id+":"), func(raw []byte) error {
		var ent healthEventEntity
		if err := json.Unmarshal(raw, &ent); err != nil {
			return fmt.Errorf("decode health event: %w", err)
		}
		t, err := parseTime(ent.Time)
		if err != nil {
			return fmt.Errorf("stored health event %s: %w", ent.RowKey, err)
		}
		out = append(out, credential.HealthEvent{Time: t, From: credential.HealthStatus(ent.From), To: credential.HealthStatus(ent.To),
			Code: ent.Code, ProviderError: ent.ProviderError, RequestID: ent.RequestID, Generation: ent.Generation})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("health events of credential %s: %w", id, err)
	}
	return out, nil
}
