package localazure

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Tenant is a directory the stand-in knows: the home tenant or a customer's.
type Tenant struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"display_name"`
	Home        bool      `json:"home"`
	CreatedAt   time.Time `json:"created_at"`
}

// ServicePrincipal is an app's service principal in one tenant, in the shape
// `az ad sp create` prints (camelCase) plus the stand-in's own fields (snake_case).
type ServicePrincipal struct {
	ID                     string `json:"id"`
	AppID                  string `json:"appId"`
	DisplayName            string `json:"displayName"`
	AppOwnerOrganizationID string `json:"appOwnerOrganizationId"`
	ServicePrincipalType   string `json:"servicePrincipalType"`
	AccountEnabled         bool   `json:"accountEnabled"`
	TenantID               string `json:"tenant_id"`
	// Orphaned is set once the app registration was deleted in the home tenant: the
	// service principal remains but can no longer sign in.
	Orphaned  bool      `json:"orphaned"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) publicSP(sp *servicePrincipal) ServicePrincipal {
	return ServicePrincipal{
		ID: sp.objectID, AppID: sp.appID, DisplayName: sp.displayName, AppOwnerOrganizationID: s.home,
		ServicePrincipalType: "Application", AccountEnabled: !sp.orphaned, TenantID: sp.tenantID,
		Orphaned: sp.orphaned, CreatedAt: sp.createdAt,
	}
}

// AddTenant creates a customer tenant with id (a new GUID when empty). Adding an existing
// tenant returns it with created false.
func (s *Server) AddTenant(id, displayName string) (t Tenant, created bool, err error) {
	if id == "" {
		id = uuid.NewString()
	}
	if !isGUID(id) {
		return Tenant{}, false, badRequest("InvalidTenantId", "tenant id %q is not a GUID", id)
	}
	id = strings.ToLower(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.tenants[id]; ok {
		return s.publicTenant(old), false, nil
	}
	if displayName == "" {
		displayName = "Tenant " + id[:8]
	}
	nt := &tenant{id: id, displayName: displayName, createdAt: s.now(), sps: map[string]*servicePrincipal{},
		identities: map[string]*userAssignedIdentity{}}
	s.tenants[id] = nt
	return s.publicTenant(nt), true, nil
}

func (s *Server) publicTenant(t *tenant) Tenant {
	return Tenant{ID: t.id, DisplayName: t.displayName, Home: t.id == s.home, CreatedAt: t.createdAt}
}

// Tenants lists every tenant, home included.
func (s *Server) Tenants() []Tenant {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Tenant, 0, len(s.tenants))
	for _, id := range sortedKeys(s.tenants) {
		out = append(out, s.publicTenant(s.tenants[id]))
	}
	return out
}

// InstallServicePrincipal creates the service principal of appID in tenantID, as the
// customer's `az ad sp create --id APP_ID` or admin consent does. Installing it again
// returns the existing one with created false. Only a multi-tenant app can be installed
// outside the home tenant.
func (s *Server) InstallServicePrincipal(tenantID, appID string) (sp ServicePrincipal, created bool, err error) {
	tenantID, appID = strings.ToLower(tenantID), strings.ToLower(appID)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[tenantID]
	if !ok {
		return ServicePrincipal{}, false, notFound("TenantNotFound", "tenant %q does not exist", tenantID)
	}
	app := s.lookupAppID(appID)
	if app == nil {
		return ServicePrincipal{}, false, notFound("Request_ResourceNotFound",
			"Resource '%s' does not exist or one of its queried reference-property objects are not present.", appID)
	}
	if old, ok := t.sps[appID]; ok {
		return s.publicSP(old), false, nil
	}
	if tenantID != s.home && app.signInAudience == "AzureADMyOrg" {
		return ServicePrincipal{}, false, badRequest("Request_BadRequest",
			"application %s is single-tenant (signInAudience AzureADMyOrg); it cannot have a service principal outside its home tenant", appID)
	}
	nsp := &servicePrincipal{objectID: uuid.NewString(), appID: appID, displayName: app.displayName, tenantID: tenantID, createdAt: s.now()}
	t.sps[appID] = nsp
	s.log.Info("service principal installed", "tenant_id", tenantID, "app_id", appID, "object_id", nsp.objectID)
	return s.publicSP(nsp), true, nil
}

// RemoveServicePrincipal deletes the service principal named by its app id or object id
// from tenantID, as `az ad sp delete` does.
func (s *Server) RemoveServicePrincipal(tenantID, id string) error {
	tenantID, id = strings.ToLower(tenantID), strings.ToLower(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[tenantID]
	if !ok {
		return notFound("TenantNotFound", "tenant %q does not exist", tenantID)
	}
	for appID, sp := range t.sps {
		if appID == id || sp.objectID == id {
			delete(t.sps, appID)
			s.log.Info("service principal removed", "tenant_id", tenantID, "app_id", appID)
			return nil
		}
	}
	return notFound("Request_ResourceNotFound", "service principal %q does not exist in tenant %s", id, tenantID)
}

// ServicePrincipals lists the service principals of tenantID.
func (s *Server) ServicePrincipals(tenantID string) ([]ServicePrincipal, error) {
	tenantID = strings.ToLower(tenantID)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[tenantID]
	if !ok {
		return nil, notFound("TenantNotFound", "tenant %q does not exist", tenantID)
	}
	out := []ServicePrincipal{}
	for _, appID := range sortedKeys(t.sps) {
		out = append(out, s.publicSP(t.sps[appID]))
	}
	return out, nil
}

func (s *Server) handleListTenants(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Tenants())
}

func (s *Server) handleCreateTenant(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
	}
	if err := decodeControl(r, &body); err != nil {
		writeControlError(w, err)
		return
	}
	t, created, err := s.AddTenant(body.ID, body.DisplayName)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, createdStatus(created), t)
}

func (s *Server) handleListServicePrincipals(w http.ResponseWriter, r *http.Request) {
	sps, err := s.ServicePrincipals(r.PathValue("tenant"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, sps)
}

func (s *Server) handleInstallServicePrincipal(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AppID string `json:"appId"`
	}
	if err := decodeControl(r, &body); err != nil {
		writeControlError(w, err)
		return
	}
	sp, created, err := s.InstallServicePrincipal(r.PathValue("tenant"), body.AppID)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, createdStatus(created), sp)
}

func (s *Server) handleRemoveServicePrincipal(w http.ResponseWriter, r *http.Request) {
	if err := s.RemoveServicePrincipal(r.PathValue("tenant"), r.PathValue("id")); err != nil {
		writeControlError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleControlListApplications shows the home tenant's app registrations with their
// federated identity credentials, for a person checking what the backend created.
func (s *Server) handleControlListApplications(w http.ResponseWriter, r *http.Request) {
	type fic struct {
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		Issuer    string    `json:"issuer"`
		Subject   string    `json:"subject"`
		Audiences []string  `json:"audiences"`
		CreatedAt time.Time `json:"created_at"`
	}
	type app struct {
		ID                   string    `json:"id"`
		AppID                string    `json:"appId"`
		UniqueName           string    `json:"uniqueName,omitempty"`
		DisplayName          string    `json:"displayName"`
		SignInAudience       string    `json:"signInAudience"`
		RedirectURIs         []string  `json:"redirectUris"`
		OwnerID              string    `json:"owner_id"`
		CreatedAt            time.Time `json:"created_at"`
		FederatedCredentials []fic     `json:"federated_credentials"`
	}
	s.mu.Lock()
	out := []app{}
	for _, id := range sortedKeys(s.apps) {
		a := s.apps[id]
		v := app{ID: a.objectID, AppID: a.appID, UniqueName: a.uniqueName, DisplayName: a.displayName, SignInAudience: a.signInAudience,
			RedirectURIs: append([]string{}, a.redirectURIs...), OwnerID: a.ownerObjectID, CreatedAt: a.createdAt, FederatedCredentials: []fic{}}
		for _, f := range a.fics {
			v.FederatedCredentials = append(v.FederatedCredentials, fic{f.id, f.name, f.issuer, f.subject, f.audiences, f.createdAt})
		}
		out = append(out, v)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleListStorageAccounts(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.StorageAccounts())
}

func (s *Server) handleRegisterStorageAccount(w http.ResponseWriter, r *http.Request) {
	var a StorageAccount
	if err := decodeControl(r, &a); err != nil {
		writeControlError(w, err)
		return
	}
	a, created, err := s.RegisterStorageAccount(a)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, createdStatus(created), a)
}

func (s *Server) handleCreateContainer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if err := decodeControl(r, &body); err != nil {
		writeControlError(w, err)
		return
	}
	account := r.PathValue("account")
	switch {
	case !accountPattern.MatchString(account):
		writeControlError(w, badRequest("AccountNameInvalid", "%q is not a valid storage account name", account))
		return
	case !validContainer(body.Name):
		writeControlError(w, badRequest("InvalidResourceName", "%q is not a valid container name: 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit", body.Name))
		return
	case s.containers == nil:
		writeControlError(w, &Error{Status: http.StatusNotImplemented, Code: "NotConfigured", Message: "no blob endpoint configured for container creation"})
		return
	}
	created, err := s.containers.CreateContainer(r.Context(), account, body.Name)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Status: http.StatusBadGateway, Code: "ContainerCreationFailed", Message: err.Error()}
		}
		writeControlError(w, e)
		return
	}
	writeJSON(w, createdStatus(created), map[string]any{"created": created, "account": account, "name": body.Name})
}

// roleAssignmentView is an assignment with its state at the time of the response.
type roleAssignmentView struct {
	RoleAssignment
	State string `json:"state"`
}

func (s *Server) view(a RoleAssignment) roleAssignmentView {
	return roleAssignmentView{RoleAssignment: a, State: a.State(s.now())}
}

func (s *Server) handleListRoleAssignments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	list, err := s.RoleAssignments(q.Get("principal_id"), q.Get("scope"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	out := make([]roleAssignmentView, 0, len(list))
	for _, a := range list {
		out = append(out, s.view(a))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGrantRole(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PrincipalID string `json:"principal_id"`
		Role        string `json:"role"`
		Scope       string `json:"scope"`
	}
	if err := decodeControl(r, &body); err != nil {
		writeControlError(w, err)
		return
	}
	a, err := s.GrantRole(body.PrincipalID, body.Role, body.Scope)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.view(a))
}

func (s *Server) handleRevokeRole(w http.ResponseWriter, r *http.Request) {
	a, err := s.RevokeRole(r.PathValue("id"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(a))
}

func (s *Server) handleRevokeRoleByQuery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a, err := s.RevokeRoleOf(q.Get("principal_id"), q.Get("role"), q.Get("scope"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(a))
}

func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}
