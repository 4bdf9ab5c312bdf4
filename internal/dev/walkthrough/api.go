package walkthrough

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Credential is the part of the credential detail the wizard reads.
type Credential struct {
	ID                     string    `json:"id"`
	Name                   string    `json:"name"`
	BasePath               string    `json:"base_path"`
	State                  string    `json:"state"`
	IsOrgDefault           bool      `json:"is_org_default"`
	InstallCommand         string    `json:"install_command"`
	AdminConsentURL        string    `json:"admin_consent_url"`
	RoleAssignmentCommand  string    `json:"role_assignment_command"`
	PortalURL              string    `json:"portal_url"`
	PortalAccount          string    `json:"portal_account"`
	Generation             int64     `json:"generation"`
	Azure                  Azure     `json:"azure"`
	Progress               *Progress `json:"progress"`
	LastError              string    `json:"last_error"`
	LastErrorCode          string    `json:"last_error_code"`
	LastErrorHint          string    `json:"last_error_hint"`
	LastErrorProviderError string    `json:"last_error_provider_error"`
	LastErrorRequestID     string    `json:"last_error_request_id"`
}

// Azure is the credential's Azure identifiers.
type Azure struct {
	AppID          string `json:"app_id"`
	TenantID       string `json:"tenant_id"`
	SPObjectID     string `json:"sp_object_id"`
	SubscriptionID string `json:"subscription_id"`
	ResourceGroup  string `json:"resource_group"`
	StorageAccount string `json:"storage_account"`
	ContainerName  string `json:"container_name"`
	Prefix         string `json:"prefix"`
}

// Progress is the current window's progress.
type Progress struct {
	Kind     string    `json:"kind"`
	Attempts int       `json:"attempts"`
	Deadline time.Time `json:"deadline"`
	Status   string    `json:"status"`
	Checks   []Check   `json:"checks"`
}

// Check is one step of the access probe.
type Check struct {
	Name         string `json:"name"`
	Result       string `json:"result"`
	ProviderCode string `json:"provider_code"`
}

// Event is one state transition.
type Event struct {
	Time       time.Time `json:"time"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Cause      string    `json:"cause"`
	Generation int64     `json:"generation"`
	Actor      *Actor    `json:"actor"`
}

// Actor is who made the request behind an event: a platform user or a workload identity.
type Actor struct {
	Kind     string `json:"kind"`
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	TenantID string `json:"tenant_id"`
}

// WorkloadIdentity is a customer's managed identity registered with the organization.
type WorkloadIdentity struct {
	ID             string    `json:"id"`
	DisplayName    string    `json:"display_name"`
	ClientID       string    `json:"client_id"`
	TenantID       string    `json:"tenant_id"`
	CreatedAt      time.Time `json:"created_at"`
	InstallCommand string    `json:"install_command"`
}

// WorkloadIdentityEvent is one registration or removal.
type WorkloadIdentityEvent struct {
	Time               time.Time `json:"time"`
	Cause              string    `json:"cause"`
	WorkloadIdentityID string    `json:"workload_identity_id"`
	ClientID           string    `json:"client_id"`
	TenantID           string    `json:"tenant_id"`
	Actor              *Actor    `json:"actor"`
}

// Status is the progress status, "" when there is no window yet.
func (c Credential) Status() string {
	if c.Progress == nil {
		return ""
	}
	return c.Progress.Status
}

// StorageForm is the wizard's storage step.
type StorageForm struct {
	SubscriptionID string `json:"subscription_id"`
	ResourceGroup  string `json:"resource_group"`
	StorageAccount string `json:"storage_account"`
	ContainerName  string `json:"container_name"`
}

// Error is an error answer of either API.
type Error struct {
	Status int
	Body   string
}

func (e *Error) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

// API is a client of the credential API for one organization.
type API struct {
	BaseURL string // e.g. http://127.0.0.1:7071
	Org     string
	Token   string
	HTTP    *http.Client
}

func do(ctx context.Context, hc *http.Client, method, url string, header http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return &Error{Status: resp.StatusCode, Body: string(bytes.TrimSpace(data))}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode %s %s answer: %w", method, url, err)
		}
	}
	return nil
}

func (a *API) call(ctx context.Context, method, path string, in, out any) error {
	h := http.Header{"Authorization": {"Bearer " + a.Token}, "X-Activeloop-Org-Id": {a.Org}}
	return do(ctx, a.HTTP, method, a.BaseURL+"/organizations/"+a.Org+path, h, in, out)
}

// Create makes a credential.
func (a *API) Create(ctx context.Context, name, basePath string) (Credential, error) {
	var c Credential
	err := a.call(ctx, http.MethodPost, "/credentials", map[string]string{
		"name": name, "storage_type": "azure_federated", "base_path": basePath}, &c)
	return c, err
}

// Get reads a credential.
func (a *API) Get(ctx context.Context, id string) (Credential, error) {
	var c Credential
	err := a.call(ctx, http.MethodGet, "/credentials/"+id, nil, &c)
	return c, err
}

// Events reads a credential's transitions.
func (a *API) Events(ctx context.Context, id string) ([]Event, error) {
	var out struct {
		Events []Event `json:"events"`
	}
	err := a.call(ctx, http.MethodGet, "/credentials/"+id+"/events", nil, &out)
	return out.Events, err
}

// SubmitTenant is the wizard's tenant step.
func (a *API) SubmitTenant(ctx context.Context, id, tenantID string) (Credential, error) {
	var c Credential
	err := a.call(ctx, http.MethodPost, "/credentials/"+id+"/tenant", map[string]string{"tenant_id": tenantID}, &c)
	return c, err
}

// SubmitStorage is the wizard's storage step.
func (a *API) SubmitStorage(ctx context.Context, id string, f StorageForm) (Credential, error) {
	var c Credential
	err := a.call(ctx, http.MethodPost, "/credentials/"+id+"/storage", f, &c)
	return c, err
}

// SaveUnverified is the wizard's "Save anyway".
func (a *API) SaveUnverified(ctx context.Context, id string) (Credential, error) {
	var c Credential
	err := a.call(ctx, http.MethodPost, "/credentials/"+id+"/save-unverified", map[string]string{}, &c)
	return c, err
}

// SetOrgDefault is the wizard's "Set as org default" toggle switched on.
func (a *API) SetOrgDefault(ctx context.Context, id string) error {
	return a.call(ctx, http.MethodPut, "/credential", map[string]string{"credential_id": id}, nil)
}

// ClearOrgDefault is the toggle switched off.
func (a *API) ClearOrgDefault(ctx context.Context) error {
	return a.call(ctx, http.MethodDelete, "/credential", nil, nil)
}

// Delete removes a credential.
func (a *API) Delete(ctx context.Context, id string) error {
	return a.call(ctx, http.MethodDelete, "/credentials/"+id, nil, nil)
}

// Wait polls the credential every interval, as the wizard does, until done says so or ctx
// ends. seen, when not nil, gets every distinct (state, status) on the way.
func (a *API) Wait(ctx context.Context, id string, interval time.Duration, done func(Credential) bool, seen func(Credential)) (Credential, error) {
	last := ""
	for {
		c, err := a.Get(ctx, id)
		if err != nil {
			return c, err
		}
		if key := c.State + "/" + c.Status(); seen != nil && key != last {
			last = key
			seen(c)
		}
		if done(c) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("waiting for credential %s (state %s, status %s): %w", id, c.State, c.Status(), ctx.Err())
		case <-time.After(interval):
		}
	}
}

// InState is a Wait condition: the credential reached one of states.
func InState(states ...string) func(Credential) bool {
	return func(c Credential) bool {
		for _, s := range states {
			if c.State == s {
				return true
			}
		}
		return false
	}
}

// Creds is the SDK's answer for a table: where it writes and the SAS to do it.
type Creds struct {
	AccountURL   string    `json:"account_url"`
	Container    string    `json:"container"`
	PathPrefix   string    `json:"path_prefix"`
	SASToken     string    `json:"sas_token"`
	ContainerURL string    `json:"container_url"`
	ExpiresAt    time.Time `json:"expires_at"`
	CredentialID *string   `json:"credential_id"`
	Source       string    `json:"source"`
}

// RegisterWorkspace records a workspace, linked to credentialID ("" lets the backend
// choose: the one verified credential, or none).
func (a *API) RegisterWorkspace(ctx context.Context, workspaceID, credentialID string) error {
	body := map[string]string{"workspace_id": workspaceID}
	if credentialID != "" {
		body["credential_id"] = credentialID
	}
	return a.call(ctx, http.MethodPost, "/workspaces", body, nil)
}

// Creds asks for a table's storage, as the SDK does when it opens the table.
func (a *API) Creds(ctx context.Context, workspaceID, table string) (Creds, error) {
	var c Creds
	h := http.Header{"Authorization": {"Bearer " + a.Token}, "X-Activeloop-Org-Id": {a.Org}}
	err := do(ctx, a.HTTP, http.MethodPost, a.BaseURL+"/api/org/"+workspaceID+"/ds/"+table+"/creds", h, nil, &c)
	return c, err
}

// RegisterWorkloadIdentity registers a customer's managed identity with the organization.
func (a *API) RegisterWorkloadIdentity(ctx context.Context, displayName, clientID, tenantID string) (WorkloadIdentity, error) {
	var w WorkloadIdentity
	err := a.call(ctx, http.MethodPost, "/workload-identities", map[string]string{
		"display_name": displayName, "client_id": clientID, "tenant_id": tenantID}, &w)
	return w, err
}

// WorkloadIdentities lists the organization's workload identities.
func (a *API) WorkloadIdentities(ctx context.Context) ([]WorkloadIdentity, error) {
	var out struct {
		WorkloadIdentities []WorkloadIdentity `json:"workload_identities"`
	}
	err := a.call(ctx, http.MethodGet, "/workload-identities", nil, &out)
	return out.WorkloadIdentities, err
}

// WorkloadIdentityEvents reads the registry's registrations and removals.
func (a *API) WorkloadIdentityEvents(ctx context.Context) ([]WorkloadIdentityEvent, error) {
	var out struct {
		Events []WorkloadIdentityEvent `json:"events"`
	}
	err := a.call(ctx, http.MethodGet, "/workload-identities/events", nil, &out)
	return out.Events, err
}

// RemoveWorkloadIdentity removes a registration.
func (a *API) RemoveWorkloadIdentity(ctx context.Context, id string) error {
	return a.call(ctx, http.MethodDelete, "/workload-identities/"+id, nil, nil)
}
