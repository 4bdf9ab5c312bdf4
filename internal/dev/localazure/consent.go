package localazure

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// AdministratorChoice is how the stand-in's tenant administrator answers the admin consent
// of one app (PUT /control/consent/{appId}): which tenant they sign in to when the URL
// names organizations (or common), and whether they refuse.
type AdministratorChoice struct {
	// TenantID is the administrator's own tenant, where an organizations URL installs the
	// service principal. The query parameter admin_tenant does the same for one request.
	TenantID string `json:"tenant_id,omitempty"`
	// Refuse makes the administrator cancel the consent: Entra sends them back with error
	// and error_description, and installs nothing.
	Refuse bool `json:"refuse,omitempty"`
}

// SetAdministratorChoice records how the administrator answers the admin consent of appID.
func (s *Server) SetAdministratorChoice(appID string, c AdministratorChoice) error {
	appID = strings.ToLower(appID)
	if c.TenantID != "" && !isGUID(c.TenantID) {
		return badRequest("InvalidTenantId", "tenant id %q is not a GUID", c.TenantID)
	}
	c.TenantID = strings.ToLower(c.TenantID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lookupAppID(appID) == nil {
		return notFound("Request_ResourceNotFound", "no application with app id %s", appID)
	}
	if s.consent == nil {
		s.consent = map[string]AdministratorChoice{}
	}
	s.consent[appID] = c
	return nil
}

// handleAdminConsent is Entra ID's (v1) admin consent endpoint,
// GET /{tenant}/adminconsent?client_id=...&redirect_uri=...&state=..., played as a tenant
// administrator who signs in and accepts (or refuses, AdministratorChoice): accepting
// installs the app's service principal in the tenant and redirects to redirect_uri with
// admin_consent=True, tenant and state; refusing with admin_consent=True, error,
// error_description and state. Requests Entra would not redirect (no such app, a redirect
// URI the app does not list exactly, a single-tenant app outside its home tenant, no such
// tenant) get Entra's error, as JSON, instead of its error page.
// https://learn.microsoft.com/entra/identity-platform/v2-admin-consent
// https://learn.microsoft.com/entra/identity/enterprise-apps/grant-admin-consent
func (s *Server) handleAdminConsent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clientID := strings.ToLower(q.Get("client_id"))
	if clientID == "" {
		s.writeEntraError(w, r, errMissingParameter("client_id"))
		return
	}
	s.mu.Lock()
	app := s.lookupAppID(clientID)
	var redirects []string
	audience := ""
	choice := s.consent[clientID]
	if app != nil {
		redirects, audience = slices.Clone(app.redirectURIs), app.signInAudience
	}
	s.mu.Unlock()
	if app == nil {
		s.writeEntraError(w, r, errAppNotFound(clientID, r.PathValue("tenant")))
		return
	}
	redirect := q.Get("redirect_uri")
	switch {
	case redirect == "" && len(redirects) == 0:
		s.writeEntraError(w, r, entraError{http.StatusBadRequest, "invalid_request", 500113, "No reply address is registered for the application."})
		return
	case redirect == "":
		redirect = redirects[0]
	case !slices.Contains(redirects, redirect):
		s.writeEntraError(w, r, entraError{http.StatusBadRequest, "invalid_request", 50011, fmt.Sprintf(
			"The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.",
			redirect, clientID)})
		return
	}
	tenantID := strings.ToLower(r.PathValue("tenant"))
	if tenantID == "organizations" || tenantID == "common" {
		tenantID = strings.ToLower(q.Get("admin_tenant"))
		if tenantID == "" {
			tenantID = choice.TenantID
		}
		if tenantID == "" {
			s.writeEntraError(w, r, entraError{http.StatusBadRequest, "invalid_request", 90002,
				"The stand-in does not know which tenant the administrator signs in to: name it with PUT /control/consent/{appId} {\"tenant_id\"} or the admin_tenant query parameter."})
			return
		}
	}
	s.mu.Lock()
	_, known := s.tenants[tenantID]
	s.mu.Unlock()
	switch {
	case !known:
		s.writeEntraError(w, r, errTenantNotFound(tenantID))
		return
	case audience == "AzureADMyOrg" && tenantID != s.home:
		s.writeEntraError(w, r, errAppNotFound(clientID, tenantID))
		return
	}
	back, err := url.Parse(redirect)
	if err != nil {
		s.writeEntraError(w, r, errMissingParameter("redirect_uri"))
		return
	}
	answer := back.Query()
	answer.Set("admin_consent", "True")
	if choice.Refuse {
		answer.Set("error", "consent_required")
		answer.Set("error_description", fmt.Sprintf("AADSTS65004: The resource owner or authorization server denied the request. Trace ID: %s Correlation ID: %s Timestamp: %s",
			requestID(r), requestID(r), s.now().UTC().Format("2006-01-02 15:04:05Z")))
		s.log.Info("admin consent refused", "request_id", requestID(r), "tenant_id", tenantID, "app_id", clientID)
	} else {
		if _, _, err := s.InstallServicePrincipal(tenantID, clientID); err != nil {
			writeControlError(w, err)
			return
		}
		answer.Set("tenant", tenantID)
		s.log.Info("admin consent granted", "request_id", requestID(r), "tenant_id", tenantID, "app_id", clientID)
	}
	if state := q.Get("state"); state != "" {
		answer.Set("state", state)
	}
	back.RawQuery = answer.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (s *Server) handleSetAdministratorChoice(w http.ResponseWriter, r *http.Request) {
	var body AdministratorChoice
	if err := decodeControl(r, &body); err != nil {
		writeControlError(w, err)
		return
	}
	if err := s.SetAdministratorChoice(r.PathValue("appId"), body); err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}
