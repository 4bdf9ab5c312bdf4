package store

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
)

const (
	credentialPrefix = "c:"
	namePrefix       = "n:"
	eventPrefix      = "e:"
	healthPrefix     = "h:"
	defaultKey       = "d"
)

func credentialKey(id string) string { return credentialPrefix + id }
func nameKey(name string) string     { return namePrefix + strings.ToLower(name) }
func eventKey(id string, revision int64) string {
	return fmt.Sprintf("%s%s:%010d", eventPrefix, id, revision)
}

// credentialEntity is the stored shape of a credential. Times are RFC 3339 strings in UTC,
// which sort and compare as text.
type credentialEntity struct {
	PartitionKey string
	RowKey       string
	ID           string
	Name         string
	StorageType  string
	BasePath     string
	State        string
	CreatedAt    string
	UpdatedAt    string
	VerifiedAt   string `json:",omitempty"`

	AppObjectID string
	AppID       string
	TenantID    string
	SPObjectID  string

	SubscriptionID string
	ResourceGroup  string
	StorageAccount string
	ContainerName  string

	Generation int64
	Revision   int64
	Progress   string // JSON of progressJSON
	// WriteID is random per write: a write whose answer was lost recognises its own row.
	WriteID string `json:",omitempty"`
	// DeletedAt marks a tombstone (tombstoneEntity): every read of credentials skips it.
	DeletedAt string `json:",omitempty"`
	// OrgDefault marks the organization's default credential, so that a read of the row
	// alone says whether it is. Every change of the default row (set, re-pointed, cleared,
	// its credential deleted) writes the marks of the credentials it leaves and points at in
	// the same transaction. Rows written before the mark existed have none (nil): their
	// reads read the default row as well, as every read did then, and their next write
	// stores the mark.
	OrgDefault *bool `json:",omitempty"`

	LastError              string
	LastErrorCode          string
	LastErrorHint          string `json:",omitempty"`
	LastErrorProviderError string
	LastErrorRequestID     string

	// The health re-probe of a verified credential; absent before the first check.
	// HealthStatus is a column of its own so that queries can filter on it.
	HealthStatus             string `json:",omitempty"`
	HealthCheckedAt          string `json:",omitempty"`
	HealthSince              string `json:",omitempty"`
	HealthChecks             string `json:",omitempty"` // JSON of []checkJSON
	HealthFailures           int    `json:",omitempty"`
	HealthError              string `json:",omitempty"`
	HealthErrorCode          string `json:",omitempty"`
	HealthErrorHint          string `json:",omitempty"`
	HealthErrorProviderError string `json:",omitempty"`
	HealthErrorRequestID     string `json:",omitempty"`
}

type checkJSON struct {
	Name         string `json:"name"`
	Result       string `json:"result"`
	ProviderCode string `json:"provider_code,omitempty"`
}

type progressJSON struct {
	Kind       string      `json:"kind,omitempty"`
	Attempts   int         `json:"attempts,omitempty"`
	StartedAt  string      `json:"started_at,omitempty"`
	Deadline   string      `json:"deadline,omitempty"`
	GraceUntil string      `json:"grace_until,omitempty"`
	Status     string      `json:"status,omitempty"`
	Checks     []checkJSON `json:"checks,omitempty"`
}

// tombstoneEntity replaces a deleted credential's row: what messages about the workspaces
// locked on it, their re-pointing and its app's clean-up need, and nothing else. It has
// no State, so the health sweep's query (State eq 'verified') never meets it either.
type tombstoneEntity struct {
	PartitionKey string
	RowKey       string
	ID           string
	Name         string
	BasePath     string
	AppObjectID  string
	AppID        string
	DeletedAt    string
	WriteID      string
}

func toTombstone(c *credential.Credential, now time.Time) tombstoneEntity {
	return tombstoneEntity{PartitionKey: c.OrgID, RowKey: credentialKey(c.ID), ID: c.ID, Name: c.Name, BasePath: c.BasePath.String(),
		AppObjectID: c.App.ObjectID, AppID: c.App.AppID, DeletedAt: formatTime(now), WriteID: rand.Text()}
}

func fromTombstone(e tombstoneEntity) (*credential.DeletedCredential, error) {
	bp, err := credential.ParseBasePath(e.BasePath)
	if err != nil {
		return nil, fmt.Errorf("stored base path of deleted credential %s: %w", e.ID, err)
	}
	at, err := parseTime(e.DeletedAt)
	if err != nil {
		return nil, fmt.Errorf("stored time of deleted credential %s: %w", e.ID, err)
	}
	return &credential.DeletedCredential{OrgID: e.PartitionKey, ID: e.ID, Name: e.Name, BasePath: bp,
		App: credential.App{ObjectID: e.AppObjectID, AppID: e.AppID}, DeletedAt: at}, nil
}

type nameEntity struct {
	PartitionKey string
	RowKey       string
	CredentialID string
}

type defaultEntity struct {
	PartitionKey string
	RowKey       string
	CredentialID string
}

type eventEntity struct {
	PartitionKey string
	RowKey       string
	CredentialID string
	Time         string
	From         string
	To           string
	Cause        string
	RequestID    string
	Generation   int64
	actorColumns
	// WriteID is the write id of the credential row written in the same transaction: a
	// write whose answer was lost is recognised by it once the row has moved on.
	WriteID string `json:",omitempty"`
}

func (e eventEntity) logged(writeID string) logRow {
	e.WriteID = writeID
	return e
}

func (e eventEntity) keys() (string, string, string) { return e.PartitionKey, e.RowKey, e.WriteID }

// logRow is a row of a credential's log (its events, its health events), written in one
// transaction with the credential row.
type logRow interface {
	// logged is the row carrying the write id of the credential row's write.
	logged(writeID string) logRow
	// keys are the row's partition and row keys, and the write id it carries.
	keys() (partition, row, writeID string)
}

// actorColumns are an event's actor, flattened into its row; all absent for an event
// without one (a background job's, or one written before actors were recorded).
type actorColumns struct {
	ActorKind     string `json:",omitempty"`
	ActorID       string `json:",omitempty"`
	ActorClientID string `json:",omitempty"`
	ActorTenantID string `json:",omitempty"`
}

func toActorColumns(a credential.Actor) actorColumns {
	return actorColumns{ActorKind: string(a.Kind), ActorID: a.ID, ActorClientID: a.ClientID, ActorTenantID: a.TenantID}
}

func (c actorColumns) actor() credential.Actor {
	return credential.Actor{Kind: credential.ActorKind(c.ActorKind), ID: c.ActorID, ClientID: c.ActorClientID, TenantID: c.ActorTenantID}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func toEntity(c *credential.Credential) (credentialEntity, error) {
	p := c.Progress
	pj := progressJSON{Kind: string(p.Kind), Attempts: p.Attempts, StartedAt: formatTime(p.StartedAt),
		Deadline: formatTime(p.Deadline), GraceUntil: formatTime(p.GraceUntil), Status: string(p.Status)}
	for _, ch := range p.Checks {
		pj.Checks = append(pj.Checks, checkJSON(ch))
	}
	progress, err := json.Marshal(pj)
	if err != nil {
		return credentialEntity{}, fmt.Errorf("encode progress: %w", err)
	}
	ent := credentialEntity{
		PartitionKey: c.OrgID, RowKey: credentialKey(c.ID), ID: c.ID,
		Name: c.Name, StorageType: c.StorageType, BasePath: c.BasePath.String(), State: string(c.State),
		CreatedAt: formatTime(c.CreatedAt), UpdatedAt: formatTime(c.UpdatedAt), VerifiedAt: formatTime(c.VerifiedAt),
		AppObjectID: c.App.ObjectID, AppID: c.App.AppID, TenantID: c.TenantID, SPObjectID: c.SPObjectID,
		SubscriptionID: c.Storage.SubscriptionID, ResourceGroup: c.Storage.ResourceGroup,
		StorageAccount: c.Storage.Account, ContainerName: c.Storage.Container,
		Generation: c.Generation, Revision: c.Revision, Progress: string(progress),
		LastError: c.LastError.Message, LastErrorCode: c.LastError.Code, LastErrorHint: c.LastError.Hint,
		LastErrorProviderError: c.LastError.ProviderError, LastErrorRequestID: c.LastError.RequestID,
	}
	mark := c.IsOrgDefault
	ent.OrgDefault = &mark
	if err := putHealth(&ent, c.Health); err != nil {
		return credentialEntity{}, err
	}
	return ent, nil
}

func fromEntity(e credentialEntity, etag string) (*credential.Credential, error) {
	bp, err := credential.ParseBasePath(e.BasePath)
	if err != nil {
		return nil, fmt.Errorf("stored base path of %s: %w", e.ID, err)
	}
	c := &credential.Credential{
		OrgID: e.PartitionKey, ID: e.ID, Name: e.Name, StorageType: e.StorageType, BasePath: bp,
		State:      credential.State(e.State),
		App:        credential.App{ObjectID: e.AppObjectID, AppID: e.AppID},
		TenantID:   e.TenantID,
		SPObjectID: e.SPObjectID,
		Storage: credential.StorageTarget{SubscriptionID: e.SubscriptionID, ResourceGroup: e.ResourceGroup,
			Account: e.StorageAccount, Container: e.ContainerName},
		Generation: e.Generation, Revision: e.Revision,
		LastError: credential.Problem{Message: e.LastError, Code: e.LastErrorCode, Hint: e.LastErrorHint,
			ProviderError: e.LastErrorProviderError, RequestID: e.LastErrorRequestID},
		ETag:         etag,
		IsOrgDefault: e.OrgDefault != nil && *e.OrgDefault,
	}
	if !c.State.Known() {
		return nil, fmt.Errorf("stored credential %s has unknown state %q", e.ID, e.State)
	}
	times := []struct {
		dst *time.Time
		src string
	}{{&c.CreatedAt, e.CreatedAt}, {&c.UpdatedAt, e.UpdatedAt}, {&c.VerifiedAt, e.VerifiedAt}}
	if e.Progress != "" {
		var pj progressJSON
		if err := json.Unmarshal([]byte(e.Progress), &pj); err != nil {
			return nil, fmt.Errorf("stored progress of %s: %w", e.ID, err)
		}
		c.Progress = credential.Progress{Kind: credential.WindowKind(pj.Kind), Attempts: pj.Attempts,
			Status: credential.Status(pj.Status)}
		for _, ch := range pj.Checks {
			c.Progress.Checks = append(c.Progress.Checks, credential.Check(ch))
		}
		times = append(times, []struct {
			dst *time.Time
			src string
		}{{&c.Progress.StartedAt, pj.StartedAt}, {&c.Progress.Deadline, pj.Deadline}, {&c.Progress.GraceUntil, pj.GraceUntil}}...)
	}
	if err := getHealth(e, &c.Health); err != nil {
		return nil, fmt.Errorf("stored health of %s: %w", e.ID, err)
	}
	for _, t := range times {
		v, err := parseTime(t.src)
		if err != nil {
			return nil, fmt.Errorf("stored time of %s: %w", e.ID, err)
		}
		*t.dst = v
	}
	return c, nil
}

func toEventEntity(orgID, id string, revision int64, ev credential.EventRecord) eventEntity {
	return eventEntity{PartitionKey: orgID, RowKey: eventKey(id, revision), CredentialID: id,
		Time: formatTime(ev.Time), From: string(ev.From), To: string(ev.To), Cause: string(ev.Cause),
		RequestID: ev.RequestID, Generation: ev.Generation, actorColumns: toActorColumns(ev.Actor)}
}

func fromEventEntity(e eventEntity) (credential.EventRecord, error) {
	t, err := parseTime(e.Time)
	if err != nil {
		return credential.EventRecord{}, fmt.Errorf("stored event %s: %w", e.RowKey, err)
	}
	return credential.EventRecord{Time: t, From: credential.State(e.From), To: credential.State(e.To),
		Cause: credential.Event(e.Cause), RequestID: e.RequestID, Generation: e.Generation, Actor: e.actor()}, nil
}
