package handlers

import (
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
)

// detailView is the credential detail the wizard polls.
type detailView struct {
	ID                     string        `json:"id"`
	OrgID                  string        `json:"org_id"`
	Name                   string        `json:"name"`
	StorageType            string        `json:"storage_type"`
	BasePath               string        `json:"base_path"`
	State                  string        `json:"state"`
	CreatedAt              time.Time     `json:"created_at"`
	UpdatedAt              time.Time     `json:"updated_at"`
	VerifiedAt             *time.Time    `json:"verified_at"`
	IsOrgDefault           bool          `json:"is_org_default"`
	InstallCommand         string        `json:"install_command"`
	AdminConsentURL        string        `json:"admin_consent_url"`
	Azure                  azureView     `json:"azure"`
	RoleAssignmentCommand  string        `json:"role_assignment_command"`
	PortalURL              string        `json:"portal_url"`
	PortalAccount          string        `json:"portal_account"`
	Progress               *progressView `json:"progress"`
	Generation             int64         `json:"generation"`
	LastError              string        `json:"last_error"`
	LastErrorCode          string        `json:"last_error_code"`
	LastErrorHint          string        `json:"last_error_hint,omitempty"`
	LastErrorProviderError string        `json:"last_error_provider_error"`
	LastErrorRequestID     string        `json:"last_error_request_id"`
	Health                 *healthView   `json:"health"`
}

// healthView is the last health re-probe of a verified credential; null before the first.
// A problem while the status is ok is a first failed check, not yet confirmed
// (consecutive_failures 1): the credential is checked again soon.
type healthView struct {
	Status              string       `json:"status"`
	CheckedAt           time.Time    `json:"checked_at"`
	Since               *time.Time   `json:"since"`
	ConsecutiveFailures int          `json:"consecutive_failures"`
	Checks              []checkView  `json:"checks"`
	Problem             *problemView `json:"problem"`
}

// healthHistoryView is a credential's health: the last check and every change of status.
type healthHistoryView struct {
	Health *healthView       `json:"health"`
	Events []healthEventView `json:"events"`
}

// healthEventView is one change of a credential's health status.
type healthEventView struct {
	Time          time.Time `json:"time"`
	From          string    `json:"from"`
	To            string    `json:"to"`
	Code          string    `json:"code,omitempty"`
	ProviderError string    `json:"provider_error,omitempty"`
	RequestID     string    `json:"request_id,omitempty"`
	Generation    int64     `json:"generation"`
}

func healthEventOf(ev credential.HealthEvent) healthEventView {
	return healthEventView{Time: ev.Time, From: string(ev.From), To: string(ev.To), Code: ev.Code,
		ProviderError: ev.ProviderError, RequestID: ev.RequestID, Generation: ev.Generation}
}

// problemView is what is wrong with a degraded credential, classified like last_error.
type problemView struct {
	Code          string `json:"code"`
	Message       string `json:"message"`
	Hint          string `json:"hint,omitempty"`
	ProviderError string `json:"provider_error"`
	RequestID     string `json:"request_id"`
}

type azureView struct {
	AppID          string `json:"app_id"`
	TenantID       string `json:"tenant_id"`
	SPObjectID     string `json:"sp_object_id"`
	SubscriptionID string `json:"subscription_id"`
	ResourceGroup  string `json:"resource_group"`
	StorageAccount string `json:"storage_account"`
	ContainerName  string `json:"container_name"`
	Prefix         string `json:"prefix"`
}

type progressView struct {
	Kind       string      `json:"kind"`
	Attempts   int         `json:"attempts"`
	StartedAt  time.Time   `json:"started_at"`
	Deadline   time.Time   `json:"deadline"`
	GraceUntil *time.Time  `json:"grace_until,omitempty"`
	Status     string      `json:"status"`
	Checks     []checkView `json:"checks"`
}

type checkView struct {
	Name         string `json:"name"`
	Result       string `json:"result"`
	ProviderCode string `json:"provider_code,omitempty"`
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func detailOf(c *credential.Credential) detailView {
	account, container := c.Storage.Account, c.Storage.Container
	if account == "" {
		account, container = c.BasePath.Account, c.BasePath.Container
	}
	v := detailView{
		ID: c.ID, OrgID: c.OrgID, Name: c.Name, StorageType: c.StorageType, BasePath: c.BasePath.String(),
		State: string(c.State), CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, VerifiedAt: optionalTime(c.VerifiedAt),
		IsOrgDefault: c.IsOrgDefault, InstallCommand: c.InstallCommand(), AdminConsentURL: c.Links.AdminConsentURL,
		Azure: azureView{AppID: c.App.AppID, TenantID: c.TenantID, SPObjectID: c.SPObjectID,
			SubscriptionID: c.Storage.SubscriptionID, ResourceGroup: c.Storage.ResourceGroup,
			StorageAccount: account, ContainerName: container, Prefix: c.BasePath.Prefix},
		RoleAssignmentCommand: c.RoleAssignmentCommand(), PortalURL: c.Links.PortalURL, PortalAccount: c.Links.PortalAccount,
		Generation: c.Generation,
		LastError:  c.LastError.Message, LastErrorCode: c.LastError.Code, LastErrorHint: c.LastError.Hint,
		LastErrorProviderError: c.LastError.ProviderError, LastErrorRequestID: c.LastError.RequestID,
	}
	if p := c.Progress; p.Kind != "" {
		pv := &progressView{Kind: string(p.Kind), Attempts: p.Attempts, StartedAt: p.StartedAt, Deadline: p.Deadline,
			GraceUntil: optionalTime(p.GraceUntil), Status: string(p.Status), Checks: []checkView{}}
		for _, ch := range p.Checks {
			pv.Checks = append(pv.Checks, checkView(ch))
		}
		v.Progress = pv
	}
	if h := c.Health; h.Status != "" {
		hv := &healthView{Status: string(h.Status), CheckedAt: h.CheckedAt, Since: optionalTime(h.Since),
			ConsecutiveFailures: h.Failures, Checks: []checkView{}}
		for _, ch := range h.Checks {
			hv.Checks = append(hv.Checks, checkView(ch))
		}
		if p := h.Problem; p != (credential.Problem{}) {
			hv.Problem = &problemView{Code: p.Code, Message: p.Message, Hint: p.Hint, ProviderError: p.ProviderError, RequestID: p.RequestID}
		}
		v.Health = hv
	}
	return v
}

// summaryView is one line of the credential list.
type summaryView struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	StorageType  string     `json:"storage_type"`
	BasePath     string     `json:"base_path"`
	State        string     `json:"state"`
	IsOrgDefault bool       `json:"is_org_default"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	VerifiedAt   *time.Time `json:"verified_at"`
}

type listView struct {
	Credentials []summaryView `json:"credentials"`
}

func summaryOf(c *credential.Credential) summaryView {
	return summaryView{ID: c.ID, Name: c.Name, StorageType: c.StorageType, BasePath: c.BasePath.String(),
		State: string(c.State), IsOrgDefault: c.IsOrgDefault, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		VerifiedAt: optionalTime(c.VerifiedAt)}
}

type eventView struct {
	Time       time.Time `json:"time"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Cause      string    `json:"cause"`
	RequestID  string    `json:"request_id"`
	Generation int64     `json:"generation"`
	// Actor is who made the request that caused the transition; null for the background
	// jobs' transitions and for events recorded before actors were.
	Actor *actorView `json:"actor"`
}

// actorView names who acted: a platform user (its token's subject) or a workload
// identity (its registration's id, and its managed identity's client and tenant id).
type actorView struct {
	Kind     string `json:"kind"`
	ID       string `json:"id"`
	ClientID string `json:"client_id,omitempty"`
	TenantID string `json:"tenant_id,omitempty"`
}

func actorOf(a credential.Actor) *actorView {
	if a.IsZero() {
		return nil
	}
	return &actorView{Kind: string(a.Kind), ID: a.ID, ClientID: a.ClientID, TenantID: a.TenantID}
}

type eventsView struct {
	Events []eventView `json:"events"`
}

func eventOf(ev credential.EventRecord) eventView {
	return eventView{Time: ev.Time, From: string(ev.From), To: string(ev.To), Cause: string(ev.Cause),
		RequestID: ev.RequestID, Generation: ev.Generation, Actor: actorOf(ev.Actor)}
}
