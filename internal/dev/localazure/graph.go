package localazure

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Graph limits and values, as Microsoft Graph enforces them for applications.
const (
	maxFederatedCredentials = 20
	graphMetadata           = "https://graph.microsoft.com/v1.0/$metadata"
)

var signInAudiences = []string{"AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"}

// graphHandler is a Graph route that runs with the verified caller.
type graphHandler func(w http.ResponseWriter, r *http.Request, caller Claims)

// graph authenticates a Graph request: a bearer token this stand-in issued for Graph,
// valid now. Anything else is 401 InvalidAuthenticationToken, as Graph answers.
func (s *Server) graph(h graphHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearer(r)
		if !ok {
			s.writeGraphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
			return
		}
		c, err := s.VerifyToken(raw)
		if err != nil {
			s.writeGraphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure.")
			return
		}
		if c.Audience != GraphAudience && c.Audience != GraphAudience+"/" && c.Audience != "00000003-0000-0000-c000-000000000000" {
			s.writeGraphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
			return
		}
		h(w, r, c)
	}
}

// homeCaller admits the backend's managed identity in the home tenant, the only principal
// that manages app registrations here (Application.ReadWrite.OwnedBy in Azure).
func (s *Server) homeCaller(w http.ResponseWriter, r *http.Request, c Claims) bool {
	if c.TenantID != s.home || c.ObjectID != s.mi.ObjectID {
		s.writeGraphError(w, r, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return false
	}
	return true
}

// graphFault answers with an injected fault for op, if one is pending.
func (s *Server) graphFault(w http.ResponseWriter, r *http.Request, op Operation) bool {
	f := s.takeFault(op)
	if f == nil {
		return false
	}
	if f.RetryAfter != nil {
		w.Header().Set("Retry-After", fmt.Sprint(*f.RetryAfter))
	}
	s.writeGraphError(w, r, f.Status, f.graphCode(), "Injected fault for "+string(op)+".")
	return true
}

func (a *application) json() map[string]any {
	j := map[string]any{
		"@odata.context":  graphMetadata + "#applications/$entity",
		"id":              a.objectID,
		"appId":           a.appID,
		"displayName":     a.displayName,
		"signInAudience":  a.signInAudience,
		"createdDateTime": isoTime(a.createdAt),
	}
	if a.uniqueName != "" {
		j["uniqueName"] = a.uniqueName
	}
	j["web"] = map[string]any{"redirectUris": append([]string{}, a.redirectURIs...)}
	return j
}

// appBody is the part of an application's JSON the stand-in reads on create and upsert.
type appBody struct {
	DisplayName    string   `json:"displayName"`
	SignInAudience string   `json:"signInAudience"`
	UniqueName     string   `json:"uniqueName"`
	Web            *webBody `json:"web"`
}

// webBody is an application's web platform: its redirect URIs.
type webBody struct {
	RedirectURIs []string `json:"redirectUris"`
}

// maxRedirectURIs is how many redirect URIs Graph keeps on an application.
// https://learn.microsoft.com/entra/identity-platform/reply-url
const maxRedirectURIs = 256

// validateApp checks b as Graph does; create says whether it makes a new application.
func (s *Server) validateApp(w http.ResponseWriter, r *http.Request, b *appBody, create bool) bool {
	if create && strings.TrimSpace(b.DisplayName) == "" {
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Property 'displayName' is required.")
		return false
	}
	if create && b.SignInAudience == "" {
		b.SignInAudience = "AzureADMyOrg"
	}
	if b.SignInAudience != "" && !slices.Contains(signInAudiences, b.SignInAudience) {
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest",
			"Invalid value specified for property 'signInAudience' of resource 'Application'.")
		return false
	}
	if b.Web != nil {
		if len(b.Web.RedirectURIs) > maxRedirectURIs {
			s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Too many redirect URIs on property 'web.redirectUris'.")
			return false
		}
		for _, u := range b.Web.RedirectURIs {
			if !validRedirectURI(u) {
				s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest",
					fmt.Sprintf("Invalid value specified for property 'redirectUris' of resource 'WebApplication': %q.", u))
				return false
			}
		}
	}
	return true
}

// validRedirectURI is Entra ID's rule for a web redirect URI: an absolute https URL, or
// http on localhost and loopback addresses, without a fragment, at most 256 characters.
// https://learn.microsoft.com/entra/identity-platform/reply-url
func validRedirectURI(v string) bool {
	u, err := url.Parse(v)
	if err != nil || len(v) > 256 || u.Fragment != "" || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return false
}

// addApp registers a new application for owner. Called with s.mu held.
func (s *Server) addApp(b appBody, owner string) *application {
	app := &application{
		objectID: uuid.NewString(), appID: uuid.NewString(), uniqueName: b.UniqueName,
		displayName: b.DisplayName, signInAudience: b.SignInAudience,
		createdAt: s.now(), ownerObjectID: owner,
	}
	if b.Web != nil {
		app.redirectURIs = slices.Clone(b.Web.RedirectURIs)
	}
	s.apps[app.objectID] = app
	s.appsByAppID[app.appID] = app
	return app
}

// appByUniqueName finds an application by its alternate key. Called with s.mu held.
func (s *Server) appByUniqueName(name string) *application {
	for _, a := range s.apps {
		if a.uniqueName != "" && strings.EqualFold(a.uniqueName, name) {
			return a
		}
	}
	return nil
}

func (f *federatedCredential) json(appObjectID string) map[string]any {
	return map[string]any{
		"@odata.context": graphMetadata + "#applications('" + appObjectID + "')/federatedIdentityCredentials/$entity",
		"id":             f.id,
		"name":           f.name,
		"issuer":         f.issuer,
		"subject":        f.subject,
		"audiences":      f.audiences,
		"description":    f.description,
	}
}

func (s *Server) handleCreateApplication(w http.ResponseWriter, r *http.Request, caller Claims) {
	if !s.homeCaller(w, r, caller) || s.graphFault(w, r, OpCreateApplication) {
		return
	}
	var body appBody
	if !s.decodeGraphBody(w, r, &body) || !s.validateApp(w, r, &body, true) {
		return
	}
	s.mu.Lock()
	if body.UniqueName != "" && s.appByUniqueName(body.UniqueName) != nil {
		s.mu.Unlock()
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_MultipleObjectsWithSameKeyValue",
			"Another object with the same value for property uniqueName already exists.")
		return
	}
	app := s.addApp(body, caller.ObjectID)
	out := app.json()
	s.mu.Unlock()
	s.log.Info("application created", "request_id", requestID(r), "object_id", app.objectID, "app_id", app.appID)
	writeJSON(w, http.StatusCreated, out)
}

var displayNameFilter = regexp.MustCompile(`^\s*displayName\s+eq\s+'((?:[^']|'')*)'\s*$`)

func (s *Server) handleListApplications(w http.ResponseWriter, r *http.Request, caller Claims) {
	if !s.homeCaller(w, r, caller) {
		return
	}
	var name *string
	if f := r.URL.Query().Get("$filter"); f != "" {
		m := displayNameFilter.FindStringSubmatch(f)
		if m == nil {
			s.writeGraphError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property 'displayName' of resource 'Application'.")
			return
		}
		n := strings.ReplaceAll(m[1], "''", "'")
		name = &n
	}
	s.mu.Lock()
	value := []map[string]any{}
	for _, id := range sortedKeys(s.apps) {
		a := s.apps[id]
		if name != nil && a.displayName != *name {
			continue
		}
		j := a.json()
		delete(j, "@odata.context")
		value = append(value, j)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"@odata.context": graphMetadata + "#applications", "value": value})
}

// lookupApp finds an application by object id or answers Graph's 404. Called with s.mu held.
func (s *Server) lookupApp(w http.ResponseWriter, r *http.Request, id string) (*application, bool) {
	app, ok := s.apps[strings.ToLower(id)]
	if !ok {
		s.writeGraphError(w, r, http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
	}
	return app, ok
}

func (s *Server) handleGetApplication(w http.ResponseWriter, r *http.Request, caller Claims) {
	if !s.homeCaller(w, r, caller) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if app, ok := s.lookupApp(w, r, r.PathValue("id")); ok {
		writeJSON(w, http.StatusOK, app.json())
	}
}

// handleDeleteApplication deletes an app registration and its federated identity
// credentials. Service principals of the app in customer tenants stay in those directories
// (the customer owns them, as in Azure) but are marked orphaned: the app can no longer
// sign in anywhere, so token requests for it answer AADSTS700016.
func (s *Server) handleDeleteApplication(w http.ResponseWriter, r *http.Request, caller Claims) {
	if !s.homeCaller(w, r, caller) || s.graphFault(w, r, OpDeleteApplication) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.lookupApp(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	delete(s.apps, app.objectID)
	delete(s.appsByAppID, app.appID)
	for _, t := range s.tenants {
		if sp, ok := t.sps[app.appID]; ok {
			sp.orphaned = true
		}
	}
	s.log.Info("application deleted", "request_id", requestID(r), "object_id", app.objectID, "app_id", app.appID)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleCreateFederatedCredential(w http.ResponseWriter, r *http.Request, caller Claims) {
	if !s.homeCaller(w, r, caller) || s.graphFault(w, r, OpCreateFederatedCredential) {
		return
	}
	var body struct {
		Name        string   `json:"name"`
		Issuer      string   `json:"issuer"`
		Subject     string   `json:"subject"`
		Audiences   []string `json:"audiences"`
		Description string   `json:"description"`
	}
	if !s.decodeGraphBody(w, r, &body) {
		return
	}
	switch {
	case body.Name == "" || body.Issuer == "" || body.Subject == "":
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Properties 'name', 'issuer' and 'subject' are required.")
		return
	case len(body.Audiences) != 1 || body.Audiences[0] == "":
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Property 'audiences' must contain exactly one value.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.lookupApp(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	for _, f := range app.fics {
		if strings.EqualFold(f.name, body.Name) {
			s.writeGraphError(w, r, http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue",
				fmt.Sprintf("FederatedIdentityCredential with name %s already exists.", body.Name))
			return
		}
	}
	if len(app.fics) >= maxFederatedCredentials {
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest",
			fmt.Sprintf("An application can have at most %d federated identity credentials.", maxFederatedCredentials))
		return
	}
	f := &federatedCredential{
		id: uuid.NewString(), name: body.Name, issuer: body.Issuer, subject: body.Subject,
		audiences: body.Audiences, description: body.Description, createdAt: s.now(),
	}
	app.fics = append(app.fics, f)
	s.log.Info("federated credential created", "request_id", requestID(r), "app_id", app.appID, "name", f.name)
	writeJSON(w, http.StatusCreated, f.json(app.objectID))
}

func (s *Server) handleListFederatedCredentials(w http.ResponseWriter, r *http.Request, caller Claims) {
	if !s.homeCaller(w, r, caller) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.lookupApp(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	value := []map[string]any{}
	for _, f := range app.fics {
		j := f.json(app.objectID)
		delete(j, "@odata.context")
		value = append(value, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": graphMetadata + "#applications('" + app.objectID + "')/federatedIdentityCredentials",
		"value":          value,
	})
}

var (
	servicePrincipalByAppID = regexp.MustCompile(`^servicePrincipals\(appId='([^']*)'\)$`)
	applicationByUniqueName = regexp.MustCompile(`^applications\(uniqueName='((?:[^']|'')*)'\)$`)
)

// handleUpsertApplication serves PATCH /applications(uniqueName='...'): with the header
// "Prefer: create-if-missing" a missing application is created (201 with the object),
// an existing one is updated (204, no body); without it a missing one is 404. Graph's
// upsert, which makes creating an app with a known key safe to repeat.
func (s *Server) handleUpsertApplication(w http.ResponseWriter, r *http.Request, caller Claims) {
	m := applicationByUniqueName.FindStringSubmatch(r.PathValue("segment"))
	if m == nil {
		s.handleGraphUnknown(w, r, caller)
		return
	}
	if !s.homeCaller(w, r, caller) || s.graphFault(w, r, OpCreateApplication) {
		return
	}
	name := strings.ReplaceAll(m[1], "''", "'")
	var body appBody
	if !s.decodeGraphBody(w, r, &body) {
		return
	}
	if body.UniqueName != "" && !strings.EqualFold(body.UniqueName, name) {
		s.writeGraphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Property 'uniqueName' is read-only and cannot be changed.")
		return
	}
	body.UniqueName = name
	s.mu.Lock()
	app := s.appByUniqueName(name)
	if app == nil {
		create := slices.ContainsFunc(strings.Split(r.Header.Get("Prefer"), ","), func(p string) bool {
			return strings.EqualFold(strings.TrimSpace(p), "create-if-missing")
		})
		if !create {
			s.mu.Unlock()
			s.writeGraphError(w, r, http.StatusNotFound, "Request_ResourceNotFound",
				fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", name))
			return
		}
		if !s.validateApp(w, r, &body, true) {
			s.mu.Unlock()
			return
		}
		app = s.addApp(body, caller.ObjectID)
		out := app.json()
		s.mu.Unlock()
		s.log.Info("application created", "request_id", requestID(r), "object_id", app.objectID, "app_id", app.appID, "unique_name", name)
		writeJSON(w, http.StatusCreated, out)
		return
	}
	if !s.validateApp(w, r, &body, false) {
		s.mu.Unlock()
		return
	}
	if body.DisplayName != "" {
		app.displayName = body.DisplayName
	}
	if body.SignInAudience != "" {
		app.signInAudience = body.SignInAudience
	}
	if body.Web != nil {
		app.redirectURIs = slices.Clone(body.Web.RedirectURIs)
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// handleGetApplicationByUniqueName serves GET /applications(uniqueName='...').
func (s *Server) handleGetApplicationByUniqueName(w http.ResponseWriter, r *http.Request, caller Claims, name string) {
	if !s.homeCaller(w, r, caller) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.appByUniqueName(name)
	if app == nil {
		s.writeGraphError(w, r, http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", name))
		return
	}
	writeJSON(w, http.StatusOK, app.json())
}

// handleGraphSegment serves the one single-segment route Graph addresses by key:
// servicePrincipals(appId='...') in the caller's tenant. An app may read its own service
// principal without any Graph permission; the managed identity may read any in the home
// tenant.
func (s *Server) handleGraphSegment(w http.ResponseWriter, r *http.Request, caller Claims) {
	if m := applicationByUniqueName.FindStringSubmatch(r.PathValue("segment")); m != nil {
		s.handleGetApplicationByUniqueName(w, r, caller, strings.ReplaceAll(m[1], "''", "'"))
		return
	}
	m := servicePrincipalByAppID.FindStringSubmatch(r.PathValue("segment"))
	if m == nil {
		s.handleGraphUnknown(w, r, caller)
		return
	}
	appID := strings.ToLower(m[1])
	if caller.AppID != appID && !(caller.TenantID == s.home && caller.ObjectID == s.mi.ObjectID) {
		s.writeGraphError(w, r, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	if s.graphFault(w, r, OpGetServicePrincipal) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[caller.TenantID]
	var sp *servicePrincipal
	if ok {
		sp = t.sps[appID]
	}
	if sp == nil {
		s.writeGraphError(w, r, http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", m[1]))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context":         graphMetadata + "#servicePrincipals/$entity",
		"id":                     sp.objectID,
		"appId":                  sp.appID,
		"displayName":            sp.displayName,
		"appOwnerOrganizationId": s.home,
		"servicePrincipalType":   "Application",
		"accountEnabled":         true,
	})
}

func (s *Server) handleGraphUnknown(w http.ResponseWriter, r *http.Request, _ Claims) {
	s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest",
		fmt.Sprintf("Resource not found for the segment '%s'.", strings.TrimPrefix(r.URL.Path, "/v1.0/")))
}

// decodeGraphBody decodes a Graph request body or answers the error Graph would: 415 for
// an encoding it cannot read (msgraph-sdk-go then resends uncompressed), 400 otherwise.
func (s *Server) decodeGraphBody(w http.ResponseWriter, r *http.Request, v any) bool {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if enc != "" && enc != "identity" && enc != "gzip" {
		s.writeGraphError(w, r, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "Unsupported content encoding "+enc+".")
		return false
	}
	if err := decodeGraph(r, v); err != nil {
		s.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload: "+err.Error())
		return false
	}
	return true
}
