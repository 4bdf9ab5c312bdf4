package handlers

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/credential"
)

// Onboarding is the domain's onboarding: the credential endpoints' commands and reads
// (credential.Onboarding is one).
type Onboarding interface {
	Create(ctx context.Context, orgID string, in credential.CreateInput, requestID string) (*credential.Credential, error)
	List(ctx context.Context, orgID string) ([]*credential.Credential, error)
	Get(ctx context.Context, orgID, id string) (*credential.Credential, error)
	Events(ctx context.Context, orgID, id string) ([]credential.EventRecord, error)
	SubmitTenant(ctx context.Context, orgID, id string, in credential.TenantInput, requestID string) (*credential.Credential, error)
	SubmitStorage(ctx context.Context, orgID, id string, in credential.StorageInput, requestID string) (*credential.Credential, error)
	SaveUnverified(ctx context.Context, orgID, id, requestID string) (*credential.Credential, error)
	SetOrgDefault(ctx context.Context, orgID, id string) (*credential.Credential, error)
	ClearOrgDefault(ctx context.Context, orgID string) error
	Delete(ctx context.Context, orgID, id string) error
}

// isUUID reports whether id is a credential id in its canonical form.
func isUUID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

// credentialID reads the {id} path value. Ids are UUIDs; anything else cannot exist.
func credentialID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !isUUID(id) {
		return "", credential.ErrNotFound
	}
	return id, nil
}

type createRequest struct {
	Name        string `json:"name"`
	StorageType string `json:"storage_type"`
	BasePath    string `json:"base_path"`
}

func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	var req createRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	c, err := a.onboarding.Create(r.Context(), orgOf(r), credential.CreateInput{
		Name: req.Name, StorageType: req.StorageType, BasePath: req.BasePath}, RequestID(r.Context()))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/organizations/"+c.OrgID+"/credentials/"+c.ID)
	writeJSON(w, http.StatusCreated, detailOf(c))
	return nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	cs, err := a.onboarding.List(r.Context(), orgOf(r))
	if err != nil {
		return err
	}
	out := listView{Credentials: make([]summaryView, 0, len(cs))}
	for _, c := range cs {
		out.Credentials = append(out.Credentials, summaryOf(c))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	id, err := credentialID(r)
	if err != nil {
		return err
	}
	c, err := a.onboarding.Get(r.Context(), orgOf(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, detailOf(c))
	return nil
}

func (a *API) events(w http.ResponseWriter, r *http.Request) error {
	id, err := credentialID(r)
	if err != nil {
		return err
	}
	evs, err := a.onboarding.Events(r.Context(), orgOf(r), id)
	if err != nil {
		return err
	}
	out := eventsView{Events: make([]eventView, 0, len(evs))}
	for _, ev := range evs {
		out.Events = append(out.Events, eventOf(ev))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// health serves a credential's health: the last check (as in the detail) and the history
// of its status changes, oldest first.
func (a *API) health(w http.ResponseWriter, r *http.Request) error {
	id, err := credentialID(r)
	if err != nil {
		return err
	}
	if a.healthLog == nil {
		return fail(http.StatusNotFound, codeNotFound, "no health history is kept here")
	}
	c, err := a.onboarding.Get(r.Context(), orgOf(r), id)
	if err != nil {
		return err
	}
	evs, err := a.healthLog.HealthEvents(r.Context(), orgOf(r), id)
	if err != nil {
		return err
	}
	out := healthHistoryView{Health: detailOf(c).Health, Events: make([]healthEventView, 0, len(evs))}
	for _, ev := range evs {
		out.Events = append(out.Events, healthEventOf(ev))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type tenantRequest struct {
	TenantID string `json:"tenant_id"`
}

func (a *API) submitTenant(w http.ResponseWriter, r *http.Request) error {
	id, err := credentialID(r)
	if err != nil {
		return err
	}
	var req tenantRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	c, err := a.onboarding.SubmitTenant(r.Context(), orgOf(r), id, credential.TenantInput{TenantID: req.TenantID}, RequestID(r.Context()))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, detailOf(c))
	return nil
}

type storageRequest struct {
	SubscriptionID string `json:"subscription_id"`
	ResourceGroup  string `json:"resource_group"`
	StorageAccount string `json:"storage_account"`
	ContainerName  string `json:"container_name"`
}

func (a *API) submitStorage(w http.ResponseWriter, r *http.Request) error {
	id, err := credentialID(r)
	if err != nil {
		return err
	}
	var req storageRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	c, err := a.onboarding.SubmitStorage(r.Context(), orgOf(r), id, credential.StorageInput{
		SubscriptionID: req.SubscriptionID, ResourceGroup: req.ResourceGroup,
		StorageAccount: req.StorageAccount, ContainerName: req.ContainerName}, RequestID(r.Context()))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, detailOf(c))
	return nil
}

type emptyRequest struct{}

func (a *API) saveUnverified(w http.ResponseWriter, r *http.Request) error {
	id, err := credentialID(r)
	if err != nil {
		return err
	}
	if err := decode(w, r, &emptyRequest{}, true); err != nil {
		return err
	}
	c, err := a.onboarding.SaveUnverified(r.Context(), orgOf(r), id, RequestID(r.Context()))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, detailOf(c))
	return nil
}

type defaultRequest struct {
	CredentialID string `json:"credential_id"`
}

func (a *API) setOrgDefault(w http.ResponseWriter, r *http.Request) error {
	var req defaultRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if req.CredentialID == "" {
		return &credential.ValidationError{Field: "credential_id", Message: "credential_id is required"}
	}
	if !isUUID(req.CredentialID) {
		return credential.ErrNotFound
	}
	c, err := a.onboarding.SetOrgDefault(r.Context(), orgOf(r), req.CredentialID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, detailOf(c))
	return nil
}

// clearOrgDefault switches the wizard's org-default toggle off: no default any more, and
// none already is the same answer.
func (a *API) clearOrgDefault(w http.ResponseWriter, r *http.Request) error {
	if err := a.onboarding.ClearOrgDefault(r.Context(), orgOf(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	id, err := credentialID(r)
	if err != nil {
		return err
	}
	if err := a.onboarding.Delete(r.Context(), orgOf(r), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
