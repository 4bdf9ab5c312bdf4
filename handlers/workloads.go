package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
)

// WorkloadIdentities is the domain's registry of workload identities, as its endpoints
// use it (credential.WorkloadIdentities is one).
type WorkloadIdentities interface {
	Register(ctx context.Context, orgID string, in credential.WorkloadIdentityInput, requestID string) (*credential.WorkloadIdentity, error)
	List(ctx context.Context, orgID string) ([]*credential.WorkloadIdentity, error)
	Remove(ctx context.Context, orgID, id, requestID string) error
	Events(ctx context.Context, orgID string) ([]credential.WorkloadIdentityEvent, error)
	InstallCommand() string
}

type registerWorkloadRequest struct {
	DisplayName string `json:"display_name"`
	ClientID    string `json:"client_id"`
	TenantID    string `json:"tenant_id"`
}

// workloadIdentityView is a registration, with the one step the customer takes in their
// tenant before its tokens can be issued.
type workloadIdentityView struct {
	ID             string    `json:"id"`
	DisplayName    string    `json:"display_name"`
	ClientID       string    `json:"client_id"`
	TenantID       string    `json:"tenant_id"`
	CreatedAt      time.Time `json:"created_at"`
	InstallCommand string    `json:"install_command"`
}

type workloadIdentitiesView struct {
	WorkloadIdentities []workloadIdentityView `json:"workload_identities"`
}

type workloadIdentityEventView struct {
	Time               time.Time  `json:"time"`
	Cause              string     `json:"cause"`
	WorkloadIdentityID string     `json:"workload_identity_id"`
	DisplayName        string     `json:"display_name"`
	ClientID           string     `json:"client_id"`
	TenantID           string     `json:"tenant_id"`
	RequestID          string     `json:"request_id"`
	Actor              *actorView `json:"actor"`
}

type workloadIdentityEventsView struct {
	Events []workloadIdentityEventView `json:"events"`
}

func (a *API) workloadIdentityOf(w *credential.WorkloadIdentity) workloadIdentityView {
	return workloadIdentityView{ID: w.ID, DisplayName: w.DisplayName, ClientID: w.ClientID, TenantID: w.TenantID,
		CreatedAt: w.CreatedAt, InstallCommand: a.workloads.InstallCommand()}
}

// workloadIdentitiesOn refuses the registry's routes while workload identities are off.
func (a *API) workloadIdentitiesOn() error {
	if a.authn.WorkloadIdentities() {
		return nil
	}
	return fail(http.StatusNotImplemented, codeWorkloadsOff,
		"workload identities are not enabled on this deployment: the platform API has no Entra app registration configured")
}

func (a *API) registerWorkloadIdentity(w http.ResponseWriter, r *http.Request) error {
	if err := a.workloadIdentitiesOn(); err != nil {
		return err
	}
	var req registerWorkloadRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	wi, err := a.workloads.Register(r.Context(), orgOf(r), credential.WorkloadIdentityInput{
		DisplayName: req.DisplayName, ClientID: req.ClientID, TenantID: req.TenantID}, RequestID(r.Context()))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/organizations/"+wi.OrgID+"/workload-identities/"+wi.ID)
	writeJSON(w, http.StatusCreated, a.workloadIdentityOf(wi))
	return nil
}

func (a *API) listWorkloadIdentities(w http.ResponseWriter, r *http.Request) error {
	if err := a.workloadIdentitiesOn(); err != nil {
		return err
	}
	list, err := a.workloads.List(r.Context(), orgOf(r))
	if err != nil {
		return err
	}
	out := workloadIdentitiesView{WorkloadIdentities: make([]workloadIdentityView, 0, len(list))}
	for _, wi := range list {
		out.WorkloadIdentities = append(out.WorkloadIdentities, a.workloadIdentityOf(wi))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) workloadIdentityEvents(w http.ResponseWriter, r *http.Request) error {
	if err := a.workloadIdentitiesOn(); err != nil {
		return err
	}
	evs, err := a.workloads.Events(r.Context(), orgOf(r))
	if err != nil {
		return err
	}
	out := workloadIdentityEventsView{Events: make([]workloadIdentityEventView, 0, len(evs))}
	for _, ev := range evs {
		out.Events = append(out.Events, workloadIdentityEventView{Time: ev.Time, Cause: string(ev.Cause),
			WorkloadIdentityID: ev.WorkloadIdentityID, DisplayName: ev.DisplayName, ClientID: ev.ClientID, TenantID: ev.TenantID,
			RequestID: ev.RequestID, Actor: actorOf(ev.Actor)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) removeWorkloadIdentity(w http.ResponseWriter, r *http.Request) error {
	if err := a.workloadIdentitiesOn(); err != nil {
		return err
	}
	id := r.PathValue("id")
	// Ids are UUIDs: anything else cannot exist. Another organization's is not found either.
	notFound := fail(http.StatusNotFound, codeNotFound, "workload identity not found")
	if !isUUID(id) {
		return notFound
	}
	err := a.workloads.Remove(r.Context(), orgOf(r), id, RequestID(r.Context()))
	if errors.Is(err, credential.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
