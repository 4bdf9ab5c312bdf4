package localazure

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// This file is the customer's side of workload identities: managed identities in customer
// tenants, the identity endpoint their workloads call, and the Entra v2.0 tokens they get
// for the platform API, which is an app registration of the home tenant (Config.APIAppID).

// APIAppDisplayName is the display name of the platform API's app registration.
const APIAppDisplayName = "azcreds-api"

// identityType is the ARM type `az identity create` reports.
const identityType = "Microsoft.ManagedIdentity/userAssignedIdentities"

// UserAssignedIdentity is a managed identity in a customer tenant, in the shape
// `az identity create` prints (camelCase) plus the stand-in's own fields (snake_case).
type UserAssignedIdentity struct {
	Name string `json:"name"`
	// ClientID is the identity's client (application) id: the azp of its v2.0 tokens and
	// the client id a customer registers.
	ClientID string `json:"clientId"`
	// PrincipalID is its service principal's object id: the oid and sub of its tokens.
	PrincipalID string    `json:"principalId"`
	TenantID    string    `json:"tenantId"`
	Type        string    `json:"type"`
	CreatedAt   time.Time `json:"created_at"`
	// IdentityEndpoint is the stand-in's identity endpoint for workloads of the tenant
	// (IDENTITY_ENDPOINT); set in control answers, which know the host they were asked on.
	IdentityEndpoint string `json:"identity_endpoint,omitempty"`
}

type userAssignedIdentity struct {
	name, clientID, principalID, tenantID string
	createdAt                             time.Time
}

func (u *userAssignedIdentity) public() UserAssignedIdentity {
	return UserAssignedIdentity{Name: u.name, ClientID: u.clientID, PrincipalID: u.principalID, TenantID: u.tenantID,
		Type: identityType, CreatedAt: u.createdAt}
}

// WorkloadIdentityPath is the path of the identity endpoint that workloads of tenantID
// call: the App Service managed identity protocol (api-version 2019-08-01), serving the
// tenant's managed identities, as a compute resource's endpoint serves the identities
// assigned to it. Point IDENTITY_ENDPOINT at the stand-in's URL plus this path.
func WorkloadIdentityPath(tenantID string) string { return "/msi/tenants/" + tenantID + "/token" }

// CreateManagedIdentity creates a user-assigned managed identity in tenantID, as the
// customer's `az identity create` does: in.Name (a new name when empty), and in.ClientID
// and in.PrincipalID when given (fresh GUIDs otherwise; a script may want fixed ids).
// Creating an identity of the same name again returns it with created false. Client ids
// are unique across tenants, as in Azure.
func (s *Server) CreateManagedIdentity(tenantID string, in UserAssignedIdentity) (id UserAssignedIdentity, created bool, err error) {
	tenantID = strings.ToLower(tenantID)
	for _, v := range []*string{&in.ClientID, &in.PrincipalID} {
		switch {
		case *v == "":
			*v = uuid.NewString()
		case !isGUID(*v):
			return UserAssignedIdentity{}, false, badRequest("InvalidIdentityId", "%q is not a GUID", *v)
		}
		*v = strings.ToLower(*v)
	}
	if in.Name == "" {
		in.Name = "id-" + in.ClientID[:8]
	}
	if !identityName.MatchString(in.Name) {
		return UserAssignedIdentity{}, false, badRequest("InvalidResourceName",
			"%q is not a valid managed identity name: 3-128 letters, digits, hyphens and underscores, starting with a letter or digit", in.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[tenantID]
	if !ok {
		return UserAssignedIdentity{}, false, notFound("TenantNotFound", "tenant %q does not exist", tenantID)
	}
	for _, old := range t.identities {
		if strings.EqualFold(old.name, in.Name) {
			return old.public(), false, nil
		}
	}
	if s.clientIDTaken(in.ClientID) || s.principalIDTaken(in.PrincipalID) {
		return UserAssignedIdentity{}, false, conflict("IdentityIdInUse", "client id %s or principal id %s is already in use", in.ClientID, in.PrincipalID)
	}
	u := &userAssignedIdentity{name: in.Name, clientID: in.ClientID, principalID: in.PrincipalID, tenantID: tenantID, createdAt: s.now()}
	t.identities[u.clientID] = u
	s.log.Info("managed identity created", "tenant_id", tenantID, "client_id", u.clientID, "principal_id", u.principalID)
	return u.public(), true, nil
}

// identityName is ARM's rule for user-assigned identity names.
var identityName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$`)

// clientIDTaken reports whether id already names an app, the backend's identity or a
// customer's. Called with s.mu held.
func (s *Server) clientIDTaken(id string) bool {
	if id == s.mi.ClientID || s.lookupAppID(id) != nil {
		return true
	}
	for _, t := range s.tenants {
		if _, ok := t.identities[id]; ok {
			return true
		}
	}
	return false
}

// principalIDTaken reports whether id already names a principal. Called with s.mu held.
func (s *Server) principalIDTaken(id string) bool {
	if id == s.mi.ObjectID {
		return true
	}
	for _, t := range s.tenants {
		for _, u := range t.identities {
			if u.principalID == id {
				return true
			}
		}
		for _, sp := range t.sps {
			if sp.objectID == id {
				return true
			}
		}
	}
	return false
}

// ManagedIdentities lists the managed identities of tenantID.
func (s *Server) ManagedIdentities(tenantID string) ([]UserAssignedIdentity, error) {
	tenantID = strings.ToLower(tenantID)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[tenantID]
	if !ok {
		return nil, notFound("TenantNotFound", "tenant %q does not exist", tenantID)
	}
	out := []UserAssignedIdentity{}
	for _, id := range sortedKeys(t.identities) {
		out = append(out, t.identities[id].public())
	}
	return out, nil
}

// DeleteManagedIdentity deletes the identity named by its client id, principal id or name
// from tenantID, as `az identity delete` does. Its tokens already issued stay valid until
// they expire, as in Azure; new ones are refused.
func (s *Server) DeleteManagedIdentity(tenantID, id string) error {
	tenantID, id = strings.ToLower(tenantID), strings.ToLower(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[tenantID]
	if !ok {
		return notFound("TenantNotFound", "tenant %q does not exist", tenantID)
	}
	u := t.identity(id)
	if u == nil {
		return notFound("ResourceNotFound", "managed identity %q does not exist in tenant %s", id, tenantID)
	}
	delete(t.identities, u.clientID)
	s.log.Info("managed identity deleted", "tenant_id", tenantID, "client_id", u.clientID)
	return nil
}

// identity finds a managed identity by client id, principal id or name (any case).
func (t *tenant) identity(id string) *userAssignedIdentity {
	id = strings.ToLower(id)
	if u, ok := t.identities[id]; ok {
		return u
	}
	for _, u := range t.identities {
		if u.principalID == id || strings.ToLower(u.name) == id {
			return u
		}
	}
	return nil
}

// WorkloadTokenRequest asks for a token as a customer's managed identity. Resource is what
// the workload asks for; the fields after it are deliberate deviations from what Entra
// issues, for tests of a verifier (POST /control/.../token).
type WorkloadTokenRequest struct {
	// Authority is the stand-in's base URL as the caller reached it
	// ("https://127.0.0.1:7443"): v2.0 tokens name <Authority>/<tid>/v2.0 as their issuer.
	Authority string
	TenantID  string
	// Identity is the managed identity's client id, principal id or name.
	Identity string
	// Resource is the resource the token is for: the platform API's client id (a v2.0
	// token, which needs the API's service principal in the tenant), Graph or Storage
	// (v1.0 tokens, as Entra issues for them). Anything else is AADSTS500011.
	Resource string

	// Version "1.0" issues the v1.0 form of the token (issuer https://sts.windows.net/<tid>/,
	// appid instead of azp), as Entra would if the API's registration accepted v1.0 tokens.
	Version string `json:"version,omitempty"`
	// Expired issues a token that expired an hour ago.
	Expired bool `json:"expired,omitempty"`
	// Audience replaces aud (and skips the service principal check): a token for another
	// resource, presented to the API.
	Audience string `json:"audience,omitempty"`
	// UnknownKey signs with a key (and kid) the stand-in never publishes.
	UnknownKey bool `json:"unknown_key,omitempty"`
	// IssuerTenantID issues the token as that tenant would (tid and iss): the same client
	// id from another tenant.
	IssuerTenantID string `json:"tenant_id,omitempty"`
}

// IssuedToken is a token the identity endpoint answers with.
type IssuedToken struct {
	AccessToken string    `json:"access_token"`
	ExpiresOn   time.Time `json:"-"`
	Resource    string    `json:"resource"`
	TokenType   string    `json:"token_type"`
	ClientID    string    `json:"client_id"`
}

// wire is the App Service identity endpoint's answer: expires_on in Unix seconds, as a
// string.
func (t IssuedToken) wire() map[string]any {
	return map[string]any{"access_token": t.AccessToken, "expires_on": strconv.FormatInt(t.ExpiresOn.Unix(), 10),
		"resource": t.Resource, "token_type": t.TokenType, "client_id": t.ClientID}
}

// tokenRefusal is why a workload token was not issued: Entra's error (the resource's
// service principal is missing) or the stand-in's (no such identity).
type tokenRefusal struct {
	entra   *entraError
	control *Error
}

func (r *tokenRefusal) Error() string {
	if r.entra != nil {
		return r.entra.String() + ": " + r.entra.description
	}
	return r.control.Error()
}

// Unwrap exposes the stand-in's own refusal to errors.As.
func (r *tokenRefusal) Unwrap() error {
	if r.control != nil {
		return r.control
	}
	return nil
}

// errResourceNotFound is Entra's answer when the resource has no service principal in the
// tenant that would issue the token: the customer has not installed the app there.
// https://learn.microsoft.com/entra/identity-platform/reference-error-codes (AADSTS500011)
func errResourceNotFound(resource, tenantName string) entraError {
	return entraError{http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf(
		"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
		resource, tenantName)}
}

// IssueWorkloadToken issues a token as a customer's managed identity, as the identity
// endpoint of its workload would, with req's deviations. A refusal is Entra's AADSTS500011
// when the resource's service principal is not in the tenant (the error's text starts
// with the code), and otherwise an *Error (unknown tenant or identity) for errors.As.
func (s *Server) IssueWorkloadToken(req WorkloadTokenRequest) (IssuedToken, error) {
	tenantID := strings.ToLower(req.TenantID)
	resource := strings.TrimSuffix(req.Resource, "/.default")
	s.mu.Lock()
	t, ok := s.tenants[tenantID]
	if !ok {
		s.mu.Unlock()
		return IssuedToken{}, &tokenRefusal{control: notFound("TenantNotFound", "tenant %q does not exist", tenantID)}
	}
	u := t.identity(req.Identity)
	if u == nil {
		s.mu.Unlock()
		return IssuedToken{}, &tokenRefusal{control: notFound("ResourceNotFound",
			"no managed identity %q in tenant %s", req.Identity, tenantID)}
	}
	api := s.apiApp != nil && strings.EqualFold(resource, s.apiApp.appID)
	_, installed := t.sps[strings.ToLower(resource)]
	tenantName := t.displayName
	s.mu.Unlock()

	c := &wireClaims{
		TenantID: tenantID, ObjectID: u.principalID, Subject: u.principalID, IdentityType: "app", TokenID: uuid.NewString(),
	}
	switch {
	case req.Audience != "":
		c.Audience = req.Audience
	case api && installed:
		c.Audience = s.apiApp.appID
	case api || (resource != StorageAudience && resource != GraphAudience):
		e := errResourceNotFound(resource, tenantName)
		return IssuedToken{}, &tokenRefusal{entra: &e}
	default:
		c.Audience = resource
	}
	v2 := (api || req.Audience != "") && req.Version != "1.0"
	if req.IssuerTenantID != "" {
		if !isGUID(req.IssuerTenantID) {
			return IssuedToken{}, &tokenRefusal{control: badRequest("InvalidTenantId", "tenant id %q is not a GUID", req.IssuerTenantID)}
		}
		c.TenantID = strings.ToLower(req.IssuerTenantID)
	}
	if v2 {
		c.Issuer, c.Version = strings.TrimSuffix(req.Authority, "/")+"/"+c.TenantID+"/v2.0", "2.0"
		c.AuthorizedParty, c.AuthorizedPartyACR = u.clientID, "2"
	} else {
		c.Issuer, c.Version, c.AppID = V1Issuer(c.TenantID), "1.0", u.clientID
	}
	issued := s.now()
	if req.Expired {
		issued = issued.Add(-miTokenLifetime - time.Hour)
	}
	exp := issued.Add(miTokenLifetime)
	c.IssuedAt, c.NotBefore, c.ExpiresAt = issued.Add(-clockSkewAllowance).Unix(), issued.Add(-clockSkewAllowance).Unix(), exp.Unix()

	key, kid := s.key, s.keyID
	if req.UnknownKey {
		var err error
		if key, kid, err = s.unpublishedKey(); err != nil {
			return IssuedToken{}, err
		}
	}
	raw, err := sign(c, key, kid)
	if err != nil {
		return IssuedToken{}, err
	}
	s.log.Info("workload token issued", "tenant_id", tenantID, "client_id", u.clientID, "aud", c.Audience, "ver", c.Version,
		"deviations", req.deviations())
	return IssuedToken{AccessToken: raw, ExpiresOn: exp, Resource: resource, TokenType: "Bearer", ClientID: u.clientID}, nil
}

// deviations names what a control request asked to be wrong, for the log.
func (r WorkloadTokenRequest) deviations() []string {
	var out []string
	if r.Version != "" {
		out = append(out, "version "+r.Version)
	}
	if r.Expired {
		out = append(out, "expired")
	}
	if r.Audience != "" {
		out = append(out, "audience")
	}
	if r.UnknownKey {
		out = append(out, "unknown key")
	}
	if r.IssuerTenantID != "" {
		out = append(out, "issuer tenant")
	}
	return out
}

// unpublishedKey is a signing key (and kid) that the keys endpoint never serves, created
// on first use.
func (s *Server) unpublishedKey() (*rsa.PrivateKey, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rogueKey == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, "", fmt.Errorf("generate key: %w", err)
		}
		sum := sha256.Sum256(k.N.Bytes())
		s.rogueKey, s.rogueKeyID = k, base64.RawURLEncoding.EncodeToString(sum[:12])
	}
	return s.rogueKey, s.rogueKeyID, nil
}

func sign(c *wireClaims, key *rsa.PrivateKey, kid string) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	t.Header["kid"] = kid
	raw, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return raw, nil
}

// handleWorkloadIdentityToken is the identity endpoint of a customer's workload: the App
// Service protocol (api-version 2019-08-01) that ManagedIdentityCredential speaks when
// IDENTITY_ENDPOINT and IDENTITY_HEADER are set, serving the managed identities of the
// tenant in the path. The identity is chosen by client_id, principal_id or object_id.
func (s *Server) handleWorkloadIdentityToken(w http.ResponseWriter, r *http.Request) {
	miError := func(status int, msg string) {
		s.log.Info("workload identity token refused", "request_id", requestID(r), "status", status, "reason", msg)
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
	if q.Get("resource") == "" {
		miError(http.StatusBadRequest, "The resource parameter is required.")
		return
	}
	var id string
	for _, p := range []string{"client_id", "principal_id", "object_id"} {
		if v := q.Get(p); v != "" {
			id = v
		}
	}
	if id == "" || q.Get("mi_res_id") != "" {
		// The stand-in's workloads have no system-assigned identity and no ARM resource ids.
		miError(http.StatusBadRequest, "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.")
		return
	}
	tok, err := s.IssueWorkloadToken(WorkloadTokenRequest{Authority: authority(r), TenantID: r.PathValue("tenant"),
		Identity: id, Resource: q.Get("resource")})
	if err != nil {
		s.writeWorkloadRefusal(w, r, err, func(e *Error) {
			if e.Code == "TenantNotFound" {
				miError(http.StatusNotFound, e.Message)
				return
			}
			miError(http.StatusBadRequest, "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.")
		})
		return
	}
	writeJSON(w, http.StatusOK, tok.wire())
}

// writeWorkloadRefusal answers Entra's refusals in Entra's shape and hands the stand-in's
// own to other.
func (s *Server) writeWorkloadRefusal(w http.ResponseWriter, r *http.Request, err error, other func(*Error)) {
	var tr *tokenRefusal
	if errors.As(err, &tr) {
		if tr.entra != nil {
			s.writeEntraError(w, r, *tr.entra)
			return
		}
		other(tr.control)
		return
	}
	writeControlError(w, err)
}

func (s *Server) handleCreateManagedIdentity(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name        string `json:"name"`
		ClientID    string `json:"clientId"`
		PrincipalID string `json:"principalId"`
	}
	if err := decodeControl(r, &body); err != nil {
		writeControlError(w, err)
		return
	}
	u, created, err := s.CreateManagedIdentity(r.PathValue("tenant"),
		UserAssignedIdentity{Name: body.Name, ClientID: body.ClientID, PrincipalID: body.PrincipalID})
	if err != nil {
		writeControlError(w, err)
		return
	}
	u.IdentityEndpoint = authority(r) + WorkloadIdentityPath(u.TenantID)
	writeJSON(w, createdStatus(created), u)
}

func (s *Server) handleListManagedIdentities(w http.ResponseWriter, r *http.Request) {
	list, err := s.ManagedIdentities(r.PathValue("tenant"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	for i := range list {
		list[i].IdentityEndpoint = authority(r) + WorkloadIdentityPath(list[i].TenantID)
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleDeleteManagedIdentity(w http.ResponseWriter, r *http.Request) {
	if err := s.DeleteManagedIdentity(r.PathValue("tenant"), r.PathValue("id")); err != nil {
		writeControlError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleMintWorkloadToken plays the workload: the token its identity endpoint would
// return for the platform API, or, on request, one a verifier must refuse.
func (s *Server) handleMintWorkloadToken(w http.ResponseWriter, r *http.Request) {
	var req WorkloadTokenRequest
	if r.ContentLength != 0 {
		if err := decodeControl(r, &req); err != nil {
			writeControlError(w, err)
			return
		}
	}
	if req.Version != "" && req.Version != "1.0" && req.Version != "2.0" {
		writeControlError(w, badRequest("InvalidVersion", "version must be 1.0 or 2.0, got %q", req.Version))
		return
	}
	s.mu.Lock()
	if s.apiApp == nil && req.Audience == "" {
		s.mu.Unlock()
		writeControlError(w, &Error{Status: http.StatusNotImplemented, Code: "NotConfigured", Message: "no platform API app configured (-api-app-id); give an audience"})
		return
	}
	if s.apiApp != nil {
		req.Resource = s.apiApp.appID
	}
	s.mu.Unlock()
	req.Authority, req.TenantID, req.Identity = authority(r), r.PathValue("tenant"), r.PathValue("id")
	tok, err := s.IssueWorkloadToken(req)
	if err != nil {
		s.writeWorkloadRefusal(w, r, err, func(e *Error) { writeControlError(w, e) })
		return
	}
	writeJSON(w, http.StatusOK, tok.wire())
}
