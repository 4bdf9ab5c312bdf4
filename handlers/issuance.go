package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
)

// Issuance is the domain's storage issuance: the workspace endpoints and the SDK's SAS
// endpoint (credential.Issuance is one).
type Issuance interface {
	RegisterWorkspace(ctx context.Context, orgID, wsID, credentialID string) (*credential.Resolution, error)
	Workspace(ctx context.Context, orgID, wsID string) (*credential.Resolution, error)
	LinkWorkspace(ctx context.Context, orgID, wsID, credentialID string) (*credential.Resolution, error)
	IssueSAS(ctx context.Context, orgID, wsID, table, requestID string) (*credential.Issued, error)
}

type registerWorkspaceRequest struct {
	WorkspaceID  string `json:"workspace_id"`
	CredentialID string `json:"credential_id"`
}

type linkRequest struct {
	CredentialID string `json:"credential_id"`
}

// workspaceView is a workspace with where its storage comes from.
type workspaceView struct {
	WorkspaceID  string        `json:"workspace_id"`
	CredentialID *string       `json:"credential_id"` // the link; null when none
	Locked       bool          `json:"locked"`
	FirstTable   string        `json:"first_table,omitempty"`
	LockedAt     *time.Time    `json:"locked_at,omitempty"`
	Pin          *pinView      `json:"pin"` // null while unlocked
	Effective    effectiveView `json:"effective"`
}

// pinView is what a locked workspace resolved to at its first table, where it stays.
type pinView struct {
	Source       string  `json:"source"`
	CredentialID *string `json:"credential_id"` // null for the environment default
}

// effectiveView is the storage a workspace's tables use.
type effectiveView struct {
	Source          string  `json:"source"`
	CredentialID    *string `json:"credential_id"`
	CredentialName  string  `json:"credential_name,omitempty"`
	CredentialState string  `json:"credential_state,omitempty"`
	// CredentialDeleted: the locked workspace's credential was deleted; /creds answers 409
	// credential_deleted, and the storage fields say where its tables are.
	CredentialDeleted bool   `json:"credential_deleted,omitempty"`
	StorageAccount    string `json:"storage_account"`
	ContainerName     string `json:"container_name"`
	Prefix            string `json:"prefix"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func effectiveOf(r *credential.Resolution) effectiveView {
	e := effectiveView{Source: string(r.Source), StorageAccount: r.Account, ContainerName: r.Container, Prefix: r.Prefix}
	if c := r.Credential; c != nil {
		e.CredentialID, e.CredentialName, e.CredentialState = optional(c.ID), c.Name, string(c.State)
	}
	if d := r.Deleted; d != nil {
		e.CredentialID, e.CredentialName, e.CredentialDeleted = optional(d.ID), d.Name, true
	}
	return e
}

func workspaceOf(r *credential.Resolution) workspaceView {
	w := r.Workspace
	v := workspaceView{WorkspaceID: w.ID, CredentialID: optional(w.CredentialID), Locked: w.Locked(),
		FirstTable: w.FirstTable, LockedAt: optionalTime(w.LockedAt), Effective: effectiveOf(r)}
	if pin := w.Pinned(); pin != "" {
		v.Pin = &pinView{Source: string(pin)}
		if pin != credential.SourceEnvironmentDefault {
			v.Pin.CredentialID = optional(w.CredentialID)
		}
	}
	return v
}

func (a *API) registerWorkspace(w http.ResponseWriter, r *http.Request) error {
	var req registerWorkspaceRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if req.WorkspaceID == "" {
		return &credential.ValidationError{Field: "workspace_id", Message: "workspace_id is required"}
	}
	if req.CredentialID != "" && !isUUID(req.CredentialID) {
		return credential.ErrNotFound
	}
	res, err := a.issuance.RegisterWorkspace(r.Context(), orgOf(r), req.WorkspaceID, req.CredentialID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, workspaceOf(res))
	return nil
}

func (a *API) getWorkspace(w http.ResponseWriter, r *http.Request) error {
	res, err := a.issuance.Workspace(r.Context(), orgOf(r), r.PathValue("ws"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, workspaceOf(res))
	return nil
}

func (a *API) linkWorkspace(w http.ResponseWriter, r *http.Request) error {
	var req linkRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if req.CredentialID == "" {
		return &credential.ValidationError{Field: "credential_id", Message: "credential_id is required (DELETE the link to fall back to the org default)"}
	}
	if !isUUID(req.CredentialID) {
		return credential.ErrNotFound
	}
	res, err := a.issuance.LinkWorkspace(r.Context(), orgOf(r), r.PathValue("ws"), req.CredentialID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, workspaceOf(res))
	return nil
}

func (a *API) unlinkWorkspace(w http.ResponseWriter, r *http.Request) error {
	res, err := a.issuance.LinkWorkspace(r.Context(), orgOf(r), r.PathValue("ws"), "")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, workspaceOf(res))
	return nil
}

// The /creds answer's cache headers, shared by every answer (headers are only read once set).
var noStore, noCache = []string{"no-store"}, []string{"no-cache"}

// credsView answers the SDK: where a table's data goes and the SAS to write it.
type credsView struct {
	AccountURL   string    `json:"account_url"`
	Container    string    `json:"container"`
	PathPrefix   string    `json:"path_prefix"`
	SASToken     string    `json:"sas_token"`
	ContainerURL string    `json:"container_url"`
	ExpiresAt    time.Time `json:"expires_at"`
	CredentialID *string   `json:"credential_id"`
	Source       string    `json:"source"`
}

func (a *API) issueSAS(w http.ResponseWriter, r *http.Request) error {
	if err := decode(w, r, &emptyRequest{}, true); err != nil {
		return err
	}
	is, err := a.issuance.IssueSAS(r.Context(), orgOf(r), r.PathValue("ws"), r.PathValue("table"), RequestID(r.Context()))
	if err != nil {
		return err
	}
	v := credsView{AccountURL: is.AccountURL, Container: is.Container, PathPrefix: is.PathPrefix,
		SASToken: is.SAS.Reveal(), ContainerURL: is.AccountURL + "/" + is.Container, ExpiresAt: is.ExpiresAt, Source: string(is.Source)}
	if is.Credential != nil {
		v.CredentialID = optional(is.Credential.ID)
	}
	h := w.Header()
	h["Cache-Control"], h["Pragma"] = noStore, noCache
	writeCreds(w, &v)
	return nil
}
