package localazure

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const jwtBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// authority is the scheme and host (with port) the client used to reach us. MSAL requires
// the issuer of the OpenID configuration to match the authority it was given, so the
// document is built from the request rather than from a configured URL.
func authority(r *http.Request) string {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

// handleOpenIDConfiguration serves the v2.0 OpenID configuration MSAL reads before it asks
// for a token. An unknown tenant gets Entra's AADSTS90002 (error "invalid_tenant").
func (s *Server) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	name := strings.ToLower(r.PathValue("tenant"))
	s.mu.Lock()
	_, ok := s.tenants[name]
	s.mu.Unlock()
	// The tenant-independent documents name the issuer with a {tenantid} placeholder: a
	// token's issuer is its own tenant's.
	issuer := authority(r) + "/" + name + "/v2.0"
	if name == "common" || name == "organizations" {
		ok, issuer = true, authority(r)+"/{tenantid}/v2.0"
	}
	if !ok {
		e := errTenantNotFound(name)
		e.oauth = "invalid_tenant"
		s.writeEntraError(w, r, e)
		return
	}
	base := authority(r) + "/" + name
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                issuer,
		"request_uri_parameter_supported":       false,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"tenant_region_scope":                   nil,
		"cloud_instance_name":                   "microsoftonline.com",
	})
}

// handleToken is the client-credentials grant with a federated client assertion: the
// second hop of the token chain (managed identity token -> app token in a tenant).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if f := s.takeFault(OpToken); f != nil {
		setRetryAfter(w, f)
		s.writeEntraError(w, r, f.entraError())
		return
	}
	if err := r.ParseForm(); err != nil {
		s.writeEntraError(w, r, errMissingParameter("grant_type"))
		return
	}
	tenantID := strings.ToLower(r.PathValue("tenant"))
	clientID := strings.ToLower(r.PostForm.Get("client_id"))

	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[tenantID]
	if !ok {
		s.writeEntraError(w, r, errTenantNotFound(tenantID))
		return
	}
	grant := r.PostForm.Get("grant_type")
	switch {
	case grant == "":
		s.writeEntraError(w, r, errMissingParameter("grant_type"))
		return
	case grant != "client_credentials":
		s.writeEntraError(w, r, entraError{http.StatusBadRequest, "unsupported_grant_type", 70003,
			fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant)})
		return
	case clientID == "":
		s.writeEntraError(w, r, errMissingParameter("client_id"))
		return
	}
	resource, eerr := resourceOf(r.PostForm.Get("scope"))
	if eerr != nil {
		s.writeEntraError(w, r, *eerr)
		return
	}
	app, ok := s.appsByAppID[clientID]
	if !ok {
		s.writeEntraError(w, r, errAppNotFound(clientID, tenantID))
		return
	}
	sp, ok := t.sps[clientID]
	if !ok {
		s.writeEntraError(w, r, errAppNotFound(clientID, tenantID))
		return
	}
	if r.PostForm.Get("client_secret") != "" {
		s.writeEntraError(w, r, entraError{http.StatusUnauthorized, "invalid_client", 7000215,
			fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID)})
		return
	}
	assertion := r.PostForm.Get("client_assertion")
	if assertion == "" || r.PostForm.Get("client_assertion_type") != jwtBearerAssertionType {
		s.writeEntraError(w, r, entraError{http.StatusUnauthorized, "invalid_client", 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'."})
		return
	}
	if eerr := s.checkAssertion(app, assertion); eerr != nil {
		s.writeEntraError(w, r, *eerr)
		return
	}

	token, _, err := s.issue(V1Issuer(tenantID), resource, tenantID, sp.objectID, app.appID, "1.0", accessTokenLifetime)
	if err != nil {
		s.writeEntraError(w, r, errTransient())
		return
	}
	s.log.Info("token issued", "request_id", requestID(r), "tenant_id", tenantID, "app_id", app.appID, "aud", resource)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     int(accessTokenLifetime.Seconds()),
		"ext_expires_in": int(accessTokenLifetime.Seconds()),
		"access_token":   token,
	})
}

// checkAssertion validates a federated client assertion against app's federated identity
// credentials, in the order Entra reports failures. Called with s.mu held.
func (s *Server) checkAssertion(app *application, assertion string) *entraError {
	c, err := s.verify(assertion)
	switch {
	case errors.Is(err, ErrTokenExpired):
		e := errAssertionExpired(s.now(), time.Unix(c.NotBefore, 0), time.Unix(c.ExpiresAt, 0))
		return &e
	case err != nil && strings.Count(assertion, ".") != 2:
		e := entraError{http.StatusBadRequest, "invalid_request", 50027, "JWT token is invalid or malformed."}
		return &e
	case err != nil:
		// Signed by someone else: no issuer we trust vouches for it, so it can match no
		// federated identity record.
		e := errNoMatchingFIC("")
		return &e
	}
	if len(app.fics) == 0 {
		e := entraError{http.StatusUnauthorized, "invalid_client", 70025,
			"Client application has no configured federated identity credentials."}
		return &e
	}
	propagating := false
	for _, f := range app.fics {
		if f.issuer != c.Issuer || f.subject != c.Subject || !slices.Contains(f.audiences, c.Audience) {
			continue
		}
		if s.now().Before(f.createdAt.Add(s.ficDelay)) {
			propagating = true
			continue
		}
		return nil
	}
	if propagating {
		e := entraError{http.StatusBadRequest, "invalid_request", 70021, fmt.Sprintf(
			"No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
			c.Issuer, c.Subject, c.Audience)}
		return &e
	}
	e := errNoMatchingFIC(c.Subject)
	return &e
}

// resourceOf returns the resource of the one "<resource>/.default" scope among the
// space-separated scopes (MSAL adds openid, offline_access and profile).
func resourceOf(scope string) (string, *entraError) {
	if strings.TrimSpace(scope) == "" {
		e := errMissingParameter("scope")
		return "", &e
	}
	for _, sc := range strings.Fields(scope) {
		if res, ok := strings.CutSuffix(sc, "/.default"); ok && res != "" {
			return res, nil
		}
	}
	return "", &entraError{http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf(
		"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)}
}

func errTenantNotFound(tenantID string) entraError {
	return entraError{http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf(
		"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenantID)}
}

func errAppNotFound(appID, tenantID string) entraError {
	return entraError{http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
		"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", appID, tenantID)}
}

func errNoMatchingFIC(subject string) entraError {
	return entraError{http.StatusUnauthorized, "invalid_client", 700213, fmt.Sprintf(
		"No matching federated identity record found for presented assertion subject '%s'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation", subject)}
}

func errAssertionExpired(now, nbf, exp time.Time) entraError {
	const layout = "2006-01-02T15:04:05.0000000Z"
	return entraError{http.StatusUnauthorized, "invalid_client", 700024, fmt.Sprintf(
		"Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
		now.UTC().Format(layout), nbf.UTC().Format(layout), exp.UTC().Format(layout))}
}

func errMissingParameter(name string) entraError {
	return entraError{http.StatusBadRequest, "invalid_request", 900144,
		fmt.Sprintf("The request body must contain the following parameter: '%s'.", name)}
}

func errTransient() entraError {
	return entraError{http.StatusServiceUnavailable, "temporarily_unavailable", 90033,
		"A transient error has occurred. Please try again."}
}

// handleManagedIdentityToken is the App Service managed identity endpoint (api-version
// 2019-08-01) that ManagedIdentityCredential calls when IDENTITY_ENDPOINT and
// IDENTITY_HEADER are set, as in Azure Functions.
func (s *Server) handleManagedIdentityToken(w http.ResponseWriter, r *http.Request) {
	miError := func(status int, msg string) {
		s.log.Info("managed identity token refused", "request_id", requestID(r), "status", status, "reason", msg)
		writeJSON(w, status, map[string]any{"statusCode": status, "message": msg, "correlationId": requestID(r)})
	}
	if r.Header.Get("X-IDENTITY-HEADER") != s.identityHeader {
		miError(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is missing or does not match.")
		return
	}
	q := r.URL.Query()
	if q.Get("api-version") != "2019-08-01" {
		miError(http.StatusBadRequest, "The api-version parameter must be 2019-08-01.")
		return
	}
	resource := strings.TrimSuffix(q.Get("resource"), "/.default")
	if resource == "" {
		miError(http.StatusBadRequest, "The resource parameter is required.")
		return
	}
	for _, p := range []string{"client_id", "principal_id", "object_id"} {
		v := strings.ToLower(q.Get(p))
		if v != "" && v != s.mi.ClientID && v != s.mi.ObjectID {
			miError(http.StatusBadRequest, "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.")
			return
		}
	}
	if q.Get("mi_res_id") != "" {
		miError(http.StatusBadRequest, "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.")
		return
	}
	if f := s.takeFault(OpManagedIdentityToken); f != nil {
		setRetryAfter(w, f)
		miError(f.Status, "Injected fault.")
		return
	}

	iss, ver := V1Issuer(s.home), "1.0"
	if resource == TokenExchangeAudience {
		iss, ver = V2Issuer(s.home), "2.0"
	}
	token, exp, err := s.issue(iss, resource, s.home, s.mi.ObjectID, s.mi.ClientID, ver, miTokenLifetime)
	if err != nil {
		miError(http.StatusInternalServerError, "Could not sign the token.")
		return
	}
	s.log.Info("managed identity token issued", "request_id", requestID(r), "aud", resource)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token,
		"expires_on":   strconv.FormatInt(exp.Unix(), 10),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    s.mi.ClientID,
	})
}
