package localazure

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	apiAppID   = "bf01b0aa-723e-4500-96ee-1bc388018396"
	wlClientID = "7ab7e149-fa92-4d13-b4f5-3968577a83a7"
	wlObjectID = "a820f16c-a584-4d66-a058-4e948d87ea75"
)

// withAPIApp configures the platform API's app registration.
func withAPIApp(c *Config) { c.APIAppID = apiAppID }

// createIdentity creates the workload's managed identity in the customer tenant.
func (f *fixture) createIdentity() {
	f.t.Helper()
	f.mustStatus(f.do(http.MethodPost, "/control/tenants/"+custTenant+"/managedIdentities",
		map[string]string{"name": "lake-job", "clientId": wlClientID, "principalId": wlObjectID}, nil), http.StatusCreated)
}

// workloadToken asks the tenant's identity endpoint for a token for resource.
func (f *fixture) workloadToken(tenant, resource, clientID string) response {
	f.t.Helper()
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {resource}}
	if clientID != "" {
		q.Set("client_id", clientID)
	}
	return f.do(http.MethodGet, WorkloadIdentityPath(tenant)+"?"+q.Encode(), nil, map[string]string{"X-IDENTITY-HEADER": DefaultIdentityHeader})
}

// claimsOf checks that raw was signed by the key the stand-in publishes (at the
// tenant-independent v2.0 keys URL) and returns its claims as they were written.
func (f *fixture) claimsOf(raw string) jwt.MapClaims {
	f.t.Helper()
	keys := f.mustStatus(f.do(http.MethodGet, "/common/discovery/v2.0/keys", nil, nil), http.StatusOK).json(f.t)["keys"].([]any)
	c := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, c, func(t *jwt.Token) (any, error) {
		for _, k := range keys {
			if k.(map[string]any)["kid"] == t.Header["kid"] {
				return &f.s.key.PublicKey, nil
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		f.t.Fatalf("token not verifiable with the published keys: %v", err)
	}
	return c
}

func TestManagedIdentityControl(t *testing.T) {
	f := newFixture(t, nil)
	base := "/control/tenants/" + custTenant + "/managedIdentities"

	r := f.mustStatus(f.do(http.MethodPost, base, map[string]string{"name": "lake-job", "clientId": strings.ToUpper(wlClientID), "principalId": wlObjectID}, nil), http.StatusCreated)
	m := r.json(t)
	want := map[string]any{"name": "lake-job", "clientId": wlClientID, "principalId": wlObjectID, "tenantId": custTenant,
		"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "identity_endpoint": f.srv.URL + "/msi/tenants/" + custTenant + "/token"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	// az identity create is idempotent by name.
	if again := f.mustStatus(f.do(http.MethodPost, base, map[string]string{"name": "lake-job"}, nil), http.StatusOK).json(t); again["clientId"] != wlClientID {
		t.Errorf("again: %v", again)
	}
	// Fresh ids when none are given.
	fresh := f.mustStatus(f.do(http.MethodPost, base, map[string]string{}, nil), http.StatusCreated).json(t)
	if !isGUID(fresh["clientId"].(string)) || !isGUID(fresh["principalId"].(string)) || fresh["clientId"] == wlClientID {
		t.Errorf("fresh identity: %v", fresh)
	}
	if l := f.mustStatus(f.do(http.MethodGet, base, nil, nil), http.StatusOK).list(t); len(l) != 2 {
		t.Errorf("list: %v", l)
	}

	refusals := []struct {
		name   string
		path   string
		body   any
		status int
		code   string
	}{
		{"client id in use in another tenant", "/control/tenants/" + otherTenant + "/managedIdentities", map[string]string{"clientId": wlClientID}, http.StatusConflict, "IdentityIdInUse"},
		{"the backend's client id", base, map[string]string{"clientId": miClientID}, http.StatusConflict, "IdentityIdInUse"},
		{"principal id in use", base, map[string]string{"name": "other", "principalId": wlObjectID}, http.StatusConflict, "IdentityIdInUse"},
		{"client id not a GUID", base, map[string]string{"clientId": "abc"}, http.StatusBadRequest, "InvalidIdentityId"},
		{"bad name", base, map[string]string{"name": "a b"}, http.StatusBadRequest, "InvalidResourceName"},
		{"unknown field", base, map[string]string{"client_id": wlClientID}, http.StatusBadRequest, "InvalidRequestContent"},
		{"unknown tenant", "/control/tenants/44444444-0000-0000-0000-000000000000/managedIdentities", map[string]string{}, http.StatusNotFound, "TenantNotFound"},
	}
	if _, _, err := f.s.AddTenant(otherTenant, ""); err != nil {
		t.Fatal(err)
	}
	for _, tt := range refusals {
		r := f.do(http.MethodPost, tt.path, tt.body, nil)
		if r.status != tt.status || !strings.Contains(string(r.body), tt.code) {
			t.Errorf("%s: %d %s, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}

	f.mustStatus(f.do(http.MethodDelete, base+"/LAKE-JOB", nil, nil), http.StatusNoContent)
	f.mustStatus(f.do(http.MethodDelete, base+"/"+wlClientID, nil, nil), http.StatusNotFound)
	f.mustStatus(f.do(http.MethodDelete, base+"/"+fresh["principalId"].(string), nil, nil), http.StatusNoContent)
	if l := f.mustStatus(f.do(http.MethodGet, base, nil, nil), http.StatusOK).list(t); len(l) != 0 {
		t.Errorf("after deletes: %v", l)
	}
}

// TestWorkloadTokenNeedsTheAPIServicePrincipal: a managed identity gets a token for the
// platform API only once the API's service principal is in its tenant; before that, and
// after it is removed, Entra answers AADSTS500011.
func TestWorkloadTokenNeedsTheAPIServicePrincipal(t *testing.T) {
	f := newFixture(t, withAPIApp)
	f.createIdentity()

	refused := func(resource string) {
		t.Helper()
		r := f.workloadToken(custTenant, resource, wlClientID)
		if r.status != http.StatusBadRequest || entraCode(t, r) != 500011 {
			t.Fatalf("token for %s: %d %s, want 400 AADSTS500011", resource, r.status, r.body)
		}
		m := r.json(t)
		if m["error"] != "invalid_resource" || !strings.HasPrefix(m["error_description"].(string),
			"AADSTS500011: The resource principal named "+resource+" was not found in the tenant named Tenant 22222222. This can happen if the application has not been installed by the administrator of the tenant") {
			t.Errorf("AADSTS500011 answer: %s", r.body)
		}
	}
	refused(apiAppID)
	refused("api://" + apiAppID) // the API has no identifier URI: its client id is its audience

	// The customer's one step: az ad sp create --id <API app id>.
	sp := f.mustStatus(f.do(http.MethodPost, "/control/tenants/"+custTenant+"/servicePrincipals", map[string]string{"appId": apiAppID}, nil), http.StatusCreated).json(t)
	if sp["displayName"] != APIAppDisplayName || sp["appOwnerOrganizationId"] != homeTenant {
		t.Errorf("API service principal: %v", sp)
	}
	for _, resource := range []string{apiAppID, apiAppID + "/.default", strings.ToUpper(apiAppID)} {
		r := f.mustStatus(f.workloadToken(custTenant, resource, wlClientID), http.StatusOK).json(t)
		c := f.claimsOf(r["access_token"].(string))
		now := f.clock.Now()
		want := jwt.MapClaims{"aud": apiAppID, "iss": f.srv.URL + "/" + custTenant + "/v2.0", "azp": wlClientID, "azpacr": "2",
			"oid": wlObjectID, "sub": wlObjectID, "tid": custTenant, "ver": "2.0", "idtyp": "app",
			"iat": float64(now.Add(-5 * time.Minute).Unix()), "nbf": float64(now.Add(-5 * time.Minute).Unix()),
			"exp": float64(now.Add(24 * time.Hour).Unix())}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("%s: claim %s = %v, want %v", resource, k, c[k], v)
			}
		}
		if _, ok := c["appid"]; ok {
			t.Errorf("a v2.0 token carries appid: %v", c)
		}
		if r["client_id"] != wlClientID || r["token_type"] != "Bearer" || r["expires_on"] != itoa(int(now.Add(24*time.Hour).Unix())) {
			t.Errorf("answer: %v", r)
		}
	}
	// Another tenant's identity, where the API is not installed, is still refused.
	if _, _, err := f.s.AddTenant(otherTenant, "Fabrikam"); err != nil {
		t.Fatal(err)
	}
	other, _, err := f.s.CreateManagedIdentity(otherTenant, UserAssignedIdentity{})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.workloadToken(otherTenant, apiAppID, other.ClientID); r.status != http.StatusBadRequest || entraCode(t, r) != 500011 ||
		!strings.Contains(string(r.body), "the tenant named Fabrikam.") {
		t.Errorf("other tenant: %d %s", r.status, r.body)
	}

	f.mustStatus(f.do(http.MethodDelete, "/control/tenants/"+custTenant+"/servicePrincipals/"+apiAppID, nil, nil), http.StatusNoContent)
	refused(apiAppID)
}

func TestWorkloadIdentityEndpoint(t *testing.T) {
	f := newFixture(t, withAPIApp)
	f.createIdentity()
	f.installSP(custTenant, apiAppID)

	// Microsoft's resources exist in every tenant: v1.0 tokens, as Entra issues for them.
	r := f.mustStatus(f.workloadToken(custTenant, StorageAudience, wlClientID), http.StatusOK).json(t)
	c := f.claimsOf(r["access_token"].(string))
	if c["aud"] != StorageAudience || c["iss"] != V1Issuer(custTenant) || c["appid"] != wlClientID || c["ver"] != "1.0" || c["azp"] != nil {
		t.Errorf("storage token: %v", c)
	}
	// The identity can be named by principal id too.
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {apiAppID}, "principal_id": {wlObjectID}}
	f.mustStatus(f.do(http.MethodGet, WorkloadIdentityPath(custTenant)+"?"+q.Encode(), nil, map[string]string{"X-IDENTITY-HEADER": DefaultIdentityHeader}), http.StatusOK)

	for _, tt := range []struct {
		name   string
		path   string
		header string
		status int
		msg    string
	}{
		{"wrong header", WorkloadIdentityPath(custTenant) + "?api-version=2019-08-01&resource=" + apiAppID + "&client_id=" + wlClientID, "nope", http.StatusUnauthorized, "X-IDENTITY-HEADER"},
		{"no api-version", WorkloadIdentityPath(custTenant) + "?resource=" + apiAppID + "&client_id=" + wlClientID, DefaultIdentityHeader, http.StatusBadRequest, "api-version"},
		{"no resource", WorkloadIdentityPath(custTenant) + "?api-version=2019-08-01&client_id=" + wlClientID, DefaultIdentityHeader, http.StatusBadRequest, "resource"},
		{"no identity named", WorkloadIdentityPath(custTenant) + "?api-version=2019-08-01&resource=" + apiAppID, DefaultIdentityHeader, http.StatusBadRequest, "No User Assigned"},
		{"another tenant's identity", WorkloadIdentityPath(homeTenant) + "?api-version=2019-08-01&resource=" + apiAppID + "&client_id=" + wlClientID, DefaultIdentityHeader, http.StatusBadRequest, "No User Assigned"},
		{"the backend's identity", WorkloadIdentityPath(custTenant) + "?api-version=2019-08-01&resource=" + apiAppID + "&client_id=" + miClientID, DefaultIdentityHeader, http.StatusBadRequest, "No User Assigned"},
		{"unknown tenant", WorkloadIdentityPath(otherTenant) + "?api-version=2019-08-01&resource=" + apiAppID + "&client_id=" + wlClientID, DefaultIdentityHeader, http.StatusNotFound, otherTenant},
	} {
		r := f.do(http.MethodGet, tt.path, nil, map[string]string{"X-IDENTITY-HEADER": tt.header})
		if r.status != tt.status || !strings.Contains(string(r.body), tt.msg) {
			t.Errorf("%s: %d %s, want %d naming %q", tt.name, r.status, r.body, tt.status, tt.msg)
		}
	}

	// A deleted identity gets no more tokens.
	f.mustStatus(f.do(http.MethodDelete, "/control/tenants/"+custTenant+"/managedIdentities/"+wlClientID, nil, nil), http.StatusNoContent)
	if r := f.workloadToken(custTenant, apiAppID, wlClientID); r.status != http.StatusBadRequest {
		t.Errorf("deleted identity: %d %s", r.status, r.body)
	}
}

// TestWorkloadTokenWithoutAPIApp: a stand-in that knows no platform API answers
// AADSTS500011 for it, like a tenant where no such app exists.
func TestWorkloadTokenWithoutAPIApp(t *testing.T) {
	f := newFixture(t, nil)
	f.createIdentity()
	if r := f.workloadToken(custTenant, apiAppID, wlClientID); r.status != http.StatusBadRequest || entraCode(t, r) != 500011 {
		t.Errorf("%d %s", r.status, r.body)
	}
	r := f.do(http.MethodPost, "/control/tenants/"+custTenant+"/servicePrincipals", map[string]string{"appId": apiAppID}, nil)
	if r.status != http.StatusNotFound {
		t.Errorf("installing an unknown API: %d %s", r.status, r.body)
	}
	if r := f.do(http.MethodPost, "/control/tenants/"+custTenant+"/managedIdentities/"+wlClientID+"/token", nil, nil); r.status != http.StatusNotImplemented {
		t.Errorf("minting without an API app: %d %s", r.status, r.body)
	}
}

// TestMintWorkloadToken: the control endpoint issues what the identity endpoint would, and
// on request a token a verifier must refuse.
func TestMintWorkloadToken(t *testing.T) {
	f := newFixture(t, withAPIApp)
	f.createIdentity()
	path := "/control/tenants/" + custTenant + "/managedIdentities/lake-job/token"

	// The prerequisite holds here too.
	if r := f.do(http.MethodPost, path, nil, nil); r.status != http.StatusBadRequest || entraCode(t, r) != 500011 {
		t.Fatalf("before the API is installed: %d %s", r.status, r.body)
	}
	f.installSP(custTenant, apiAppID)
	now := f.clock.Now()
	mint := func(body any) jwt.MapClaims {
		t.Helper()
		r := f.mustStatus(f.do(http.MethodPost, path, body, nil), http.StatusOK).json(t)
		return f.claimsOf(r["access_token"].(string))
	}
	good := mint(nil)
	if good["aud"] != apiAppID || good["iss"] != f.srv.URL+"/"+custTenant+"/v2.0" || good["azp"] != wlClientID || good["ver"] != "2.0" {
		t.Errorf("default token: %v", good)
	}
	if c := mint(map[string]any{"version": "1.0"}); c["ver"] != "1.0" || c["iss"] != V1Issuer(custTenant) || c["appid"] != wlClientID || c["azp"] != nil || c["aud"] != apiAppID {
		t.Errorf("v1.0 token: %v", c)
	}
	if c := mint(map[string]any{"expired": true}); c["exp"].(float64) >= float64(now.Unix()) || c["exp"].(float64) < float64(now.Add(-2*time.Hour).Unix()) {
		t.Errorf("expired token: exp %v, now %v", c["exp"], now.Unix())
	}
	if c := mint(map[string]any{"audience": "https://storage.azure.com"}); c["aud"] != "https://storage.azure.com" || c["ver"] != "2.0" {
		t.Errorf("wrong-audience token: %v", c)
	}
	if c := mint(map[string]any{"tenant_id": otherTenant}); c["tid"] != otherTenant || c["iss"] != f.srv.URL+"/"+otherTenant+"/v2.0" || c["azp"] != wlClientID {
		t.Errorf("other tenant's token: %v", c)
	}

	// Signed by a key the stand-in never publishes, under a kid of its own.
	r := f.mustStatus(f.do(http.MethodPost, path, map[string]any{"unknown_key": true}, nil), http.StatusOK).json(t)
	tok, _, err := jwt.NewParser().ParseUnverified(r["access_token"].(string), jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	keys := f.mustStatus(f.do(http.MethodGet, "/common/discovery/v2.0/keys", nil, nil), http.StatusOK).json(t)["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["kid"] == tok.Header["kid"] {
		t.Errorf("the unknown key's kid %v is published: %v", tok.Header["kid"], keys)
	}
	if _, err := f.s.VerifyToken(r["access_token"].(string)); err == nil {
		t.Error("a token signed by the unpublished key verifies with the published one")
	}

	for _, tt := range []struct {
		name   string
		path   string
		body   any
		status int
	}{
		{"unknown identity", "/control/tenants/" + custTenant + "/managedIdentities/nobody/token", nil, http.StatusNotFound},
		{"unknown tenant", "/control/tenants/" + otherTenant + "/managedIdentities/lake-job/token", nil, http.StatusNotFound},
		{"bad version", path, map[string]any{"version": "3.0"}, http.StatusBadRequest},
		{"bad issuer tenant", path, map[string]any{"tenant_id": "common"}, http.StatusBadRequest},
		{"unknown option", path, map[string]any{"expires": true}, http.StatusBadRequest},
	} {
		if r := f.do(http.MethodPost, tt.path, tt.body, nil); r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
		}
	}
}

// TestTenantIndependentOpenIDConfiguration: the common document names the issuer with
// Entra's {tenantid} placeholder and the tenant-independent keys.
func TestTenantIndependentOpenIDConfiguration(t *testing.T) {
	f := newFixture(t, nil)
	for _, name := range []string{"common", "organizations"} {
		m := f.mustStatus(f.do(http.MethodGet, "/"+name+"/v2.0/.well-known/openid-configuration", nil, nil), http.StatusOK).json(t)
		if m["issuer"] != f.srv.URL+"/{tenantid}/v2.0" || m["jwks_uri"] != f.srv.URL+"/"+name+"/discovery/v2.0/keys" {
			t.Errorf("%s: issuer %v, jwks_uri %v", name, m["issuer"], m["jwks_uri"])
		}
	}
	if m := f.mustStatus(f.do(http.MethodGet, "/"+custTenant+"/v2.0/.well-known/openid-configuration", nil, nil), http.StatusOK).json(t); m["issuer"] != f.srv.URL+"/"+custTenant+"/v2.0" {
		t.Errorf("tenant issuer %v", m["issuer"])
	}
}
