package handlers

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// The workload identity of these tests: a managed identity of a customer's tenant.
const (
	wiTenant   = "6069b94b-fef6-4670-9fb7-f7b155ce22d1"
	wiClient   = "7ab7e149-fa92-4d13-b4f5-3968577a83a7"
	wiObject   = "a820f16c-a584-4d66-a058-4e948d87ea75"
	wiTenant2  = "1b78be43-50bf-4fd3-8f25-7a03eb996648"
	wiClient2  = "0a6f4c1e-8b0a-4e59-9d0e-3c6f1b1e2d3c"
	registryOf = "/workload-identities"
)

// entraClaims are those of the token Entra issues to the managed identity (tenant,
// client) for the platform API: v2.0, an app token.
func (h *harness) entraClaims(tenant, client string) jwt.MapClaims {
	now := h.clock.Now()
	return jwt.MapClaims{
		"iss": entraAuthority + tenant + "/v2.0", "aud": testAPIApp, "ver": "2.0", "tid": tenant, "azp": client, "azpacr": "2",
		"oid": wiObject, "sub": wiObject, "idtyp": "app",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// entraToken signs claims with the harness's Entra key; edit, when not nil, changes them.
func (h *harness) entraToken(tenant, client string, edit func(jwt.MapClaims)) string {
	h.t.Helper()
	c := h.entraClaims(tenant, client)
	if edit != nil {
		edit(c)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = h.kid
	s, err := tok.SignedString(h.entra)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// as sends a request with a bearer token and the org header.
func (h *harness) as(token, method, org, path string, body any) response {
	h.t.Helper()
	return h.do(method, path, body, map[string]string{"Authorization": "Bearer " + token, OrgHeader: org})
}

// registerWorkload registers a workload identity in org as a platform user.
func (h *harness) registerWorkload(org, name, tenant, client string) workloadIdentityView {
	h.t.Helper()
	r := h.call("POST", org, "/organizations/"+org+registryOf,
		map[string]string{"display_name": name, "client_id": client, "tenant_id": tenant})
	h.want(r, http.StatusCreated)
	var v workloadIdentityView
	r.decode(h.t, &v)
	return v
}

func (h *harness) registryEvents(org string) []workloadIdentityEventView {
	h.t.Helper()
	r := h.call("GET", org, "/organizations/"+org+registryOf+"/events", nil)
	h.want(r, http.StatusOK)
	var v workloadIdentityEventsView
	r.decode(h.t, &v)
	return v.Events
}

// TestWorkloadIdentityRegistry: register, list, events and remove through the API, with
// their validation, uniqueness per organization, limit and not-found answers.
func TestWorkloadIdentityRegistry(t *testing.T) {
	h := newLimitedHarness(t, credentialtest.Limits{WorkloadIdentities: 2})
	base := "/organizations/" + org + registryOf
	r := h.call("POST", org, base, map[string]string{"display_name": "lake-job", "client_id": strings.ToUpper(wiClient), "tenant_id": wiTenant})
	h.want(r, http.StatusCreated)
	var wi workloadIdentityView
	r.decode(t, &wi)
	want := workloadIdentityView{ID: wi.ID, DisplayName: "lake-job", ClientID: wiClient, TenantID: wiTenant,
		CreatedAt: credentialtest.T0, InstallCommand: "az ad sp create --id " + testAPIApp}
	if wi != want || !isUUID(wi.ID) {
		t.Fatalf("registration %+v, want %+v", wi, want)
	}
	if loc := r.header.Get("Location"); loc != base+"/"+wi.ID {
		t.Errorf("Location %q", loc)
	}

	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"display name with a space", map[string]string{"display_name": "lake job", "client_id": wiClient2, "tenant_id": wiTenant}, 400, codeValidation, "display_name"},
		{"no display name", map[string]string{"client_id": wiClient2, "tenant_id": wiTenant}, 400, codeValidation, "display_name"},
		{"client id not a UUID", map[string]string{"display_name": "j", "client_id": "lake-job", "tenant_id": wiTenant}, 400, codeValidation, "client_id"},
		{"tenant not a UUID", map[string]string{"display_name": "j", "client_id": wiClient2, "tenant_id": "contoso.com"}, 400, codeValidation, "tenant_id"},
		{"unknown field", map[string]string{"display_name": "j", "client_id": wiClient2, "tenant_id": wiTenant, "object_id": wiObject}, 400, codeInvalidRequest, ""},
		{"the pair again", map[string]string{"display_name": "again", "client_id": wiClient, "tenant_id": wiTenant}, 409, codeConflict, ""},
	} {
		r := h.call("POST", org, base, tc.body)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, r.status, tc.status, r.body)
			continue
		}
		if e := r.errorBody(t); e.Code != tc.code || e.Field != tc.field {
			t.Errorf("%s: error %+v, want code %s field %q", tc.name, e, tc.code, tc.field)
		}
	}
	// The same client id in another tenant is another identity; the limit is two.
	h.clock.Advance(time.Second)
	other := h.registerWorkload(org, "other-tenant", wiTenant2, wiClient)
	r = h.call("POST", org, base, map[string]string{"display_name": "third", "client_id": wiClient2, "tenant_id": wiTenant})
	h.want(r, http.StatusConflict)
	if e := r.errorBody(t); e.Code != codeQuota || !strings.Contains(e.Message, "limit of 2 workload identities") {
		t.Errorf("over the limit: %+v", e)
	}
	// Another organization registers the same identity.
	h.registerWorkload("org-b", "lake-job", wiTenant, wiClient)

	r = h.call("GET", org, base, nil)
	h.want(r, http.StatusOK)
	var list workloadIdentitiesView
	r.decode(t, &list)
	if len(list.WorkloadIdentities) != 2 || list.WorkloadIdentities[0] != wi || list.WorkloadIdentities[1].ID != other.ID {
		t.Fatalf("list %+v", list)
	}

	for _, path := range []string{base + "/not-a-uuid", base + "/5f1c8f55-45a4-4f0e-9a55-b3f5c5f6c1a2"} {
		r := h.call("DELETE", org, path, nil)
		if r.status != http.StatusNotFound || r.errorBody(t).Code != codeNotFound {
			t.Errorf("DELETE %s: %d %s, want 404", path, r.status, r.body)
		}
	}
	// Another organization's registration is not found in this one.
	if r := h.call("DELETE", "org-b", "/organizations/org-b"+registryOf+"/"+wi.ID, nil); r.status != http.StatusNotFound {
		t.Errorf("org-b removes org's registration: %d %s", r.status, r.body)
	}
	h.want(h.call("DELETE", org, base+"/"+other.ID, nil), http.StatusNoContent)
	if r := h.call("DELETE", org, base+"/"+other.ID, nil); r.status != http.StatusNotFound {
		t.Errorf("a second removal: %d, want 404", r.status)
	}
	h.registerWorkload(org, "in-its-place", wiTenant, wiClient2) // the removal freed its place

	evs := h.registryEvents(org)
	var causes []string
	for _, ev := range evs {
		causes = append(causes, ev.Cause+":"+ev.DisplayName)
		if ev.Actor == nil || *ev.Actor != (actorView{Kind: "user", ID: "user-1"}) || ev.RequestID == "" {
			t.Errorf("event %+v: want the platform user as its actor, and its request id", ev)
		}
	}
	if got, want := strings.Join(causes, " "), "registered:lake-job registered:other-tenant removed:other-tenant registered:in-its-place"; got != want {
		t.Errorf("events %s, want %s", got, want)
	}
}

// TestWorkloadIdentitySignIn: the identity's Entra token acts for the organization that
// registered it, on every kind of route, /creds included; a token that is not good is
// 401, a good one of an identity not registered in the header's organization 403, each
// with a message that says which and never the token.
func TestWorkloadIdentitySignIn(t *testing.T) {
	h := newHarness(t)
	d := h.create(org, "c1", "az://bloblake/lakedata")
	wi := h.registerWorkload(org, "lake-job", wiTenant, wiClient)
	good := h.entraToken(wiTenant, wiClient, nil)

	r := h.as(good, "GET", org, "/organizations/"+org+"/credentials/"+d.ID, nil)
	h.want(r, http.StatusOK)
	r = h.as(good, "POST", org, "/api/org/ws-1/ds/t1/creds", nil)
	h.want(r, http.StatusOK)
	var creds credsView
	r.decode(t, &creds)
	if creds.SASToken == "" || creds.Source != "environment_default" {
		t.Fatalf("/creds as the workload identity: %+v", creds)
	}
	for _, path := range []string{"/organizations/" + org + registryOf, "/organizations/" + org + registryOf + "/events"} {
		h.want(h.as(good, "GET", org, path, nil), http.StatusOK)
	}

	wrongKey := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, h.entraClaims(wiTenant, wiClient)).SignedString(rsaKey(t, h.signingKey))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	cases := []struct {
		name    string
		token   string
		org     string // the header's and path's; org when empty
		status  int
		message string
	}{
		{"registered elsewhere: another organization's header", good, "org-b", http.StatusForbidden,
			`the workload identity with client id ` + wiClient + ` in tenant ` + wiTenant + ` is not registered in organization "org-b"`},
		{"an unregistered identity", h.entraToken(wiTenant, wiClient2, nil), "", http.StatusForbidden, "client id " + wiClient2 + " in tenant " + wiTenant + " is not registered"},
		{"the same client id from another tenant", h.entraToken(wiTenant2, wiClient, nil), "", http.StatusForbidden, "client id " + wiClient + " in tenant " + wiTenant2 + " is not registered"},
		{"another audience", h.entraToken(wiTenant, wiClient, func(c jwt.MapClaims) { c["aud"] = "https://storage.azure.com" }), "", http.StatusUnauthorized, "invalid or expired bearer token"},
		{"a v1.0 token", h.entraToken(wiTenant, wiClient, func(c jwt.MapClaims) {
			c["ver"], c["iss"], c["appid"] = "1.0", "https://sts.windows.net/"+wiTenant+"/", wiClient
			delete(c, "azp")
		}), "", http.StatusUnauthorized, "invalid or expired bearer token"},
		{"expired", h.entraToken(wiTenant, wiClient, func(c jwt.MapClaims) { c["exp"] = h.clock.Now().Add(-time.Hour).Unix() }), "", http.StatusUnauthorized, "invalid or expired bearer token"},
		{"signed by a key Entra does not publish", wrongKey, "", http.StatusUnauthorized, "invalid or expired bearer token"},
		{"issued by another tenant than it names", h.entraToken(wiTenant, wiClient, func(c jwt.MapClaims) { c["iss"] = entraAuthority + wiTenant2 + "/v2.0" }), "", http.StatusUnauthorized, "invalid or expired bearer token"},
		{"a user's delegated token", h.entraToken(wiTenant, wiClient, func(c jwt.MapClaims) { c["scp"] = "user_impersonation"; delete(c, "idtyp") }), "", http.StatusUnauthorized, "invalid or expired bearer token"},
	}
	for _, c := range cases {
		o := c.org
		if o == "" {
			o = org
		}
		for _, path := range []string{"/organizations/" + o + "/credentials", "/api/org/ws-1/ds/t1/creds"} {
			method := "GET"
			if strings.HasSuffix(path, "/creds") {
				method = "POST"
			}
			r := h.as(c.token, method, o, path, nil)
			if r.status != c.status {
				t.Errorf("%s: %s %s: status %d, want %d (%s)", c.name, method, path, r.status, c.status, r.body)
				continue
			}
			assertNoTokenEcho(t, c.name, r, c.token)
			if e := r.errorBody(t); !strings.Contains(e.Message, c.message) {
				t.Errorf("%s: message %q, want it to say %q", c.name, e.Message, c.message)
			}
			if c.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Errorf("%s: WWW-Authenticate %q", c.name, r.header.Get("WWW-Authenticate"))
			}
		}
	}

	// A workload identity cannot change the registry, and nothing changes.
	before := h.store.Snapshot()
	r = h.as(good, "POST", org, "/organizations/"+org+registryOf, map[string]string{"display_name": "another", "client_id": wiClient2, "tenant_id": wiTenant})
	h.want(r, http.StatusForbidden)
	if e := r.errorBody(t); e.Code != codeForbidden || !strings.Contains(e.Message, "needs a platform user's token") {
		t.Errorf("a workload identity registers another: %+v", e)
	}
	r = h.as(good, "DELETE", org, "/organizations/"+org+registryOf+"/"+wi.ID, nil)
	h.want(r, http.StatusForbidden)
	if diff := strings.Join(before, "\n") != strings.Join(h.store.Snapshot(), "\n"); diff {
		t.Error("the refused requests changed the store")
	}

	// Removed by a user: the very next call is refused on this instance.
	h.want(h.call("DELETE", org, "/organizations/"+org+registryOf+"/"+wi.ID, nil), http.StatusNoContent)
	if r := h.as(good, "GET", org, "/organizations/"+org+"/credentials", nil); r.status != http.StatusForbidden {
		t.Errorf("after its removal: %d %s, want 403", r.status, r.body)
	}
}

// TestWorkloadIdentityLookupIsCached: a busy workload's calls read its registration once,
// not once per request; the organization's partition is the only one read.
func TestWorkloadIdentityLookupIsCached(t *testing.T) {
	h := newHarness(t)
	h.registerWorkload(org, "lake-job", wiTenant, wiClient)
	good := h.entraToken(wiTenant, wiClient, nil)
	before := h.store.Calls("FindWorkloadIdentity")
	for range 20 {
		h.want(h.as(good, "POST", org, "/api/org/ws-1/ds/t1/creds", nil), http.StatusOK)
	}
	if n := h.store.Calls("FindWorkloadIdentity") - before; n != 1 {
		t.Errorf("%d registry reads for 20 calls, want 1", n)
	}
	// Past the cache's TTL the registration is read again.
	h.clock.Advance(h.cfg.WorkloadIdentityCacheTTL)
	h.want(h.as(h.entraToken(wiTenant, wiClient, nil), "GET", org, "/organizations/"+org+"/credentials", nil), http.StatusOK)
	if n := h.store.Calls("FindWorkloadIdentity") - before; n != 2 {
		t.Errorf("%d registry reads after the TTL, want 2", n)
	}
}

// TestWorkloadIdentityIsTheActor: the events a workload identity's requests write name it
// (its registration id, client id and tenant) as the actor, a platform user's name the
// user, background work names no one; the request's log line names the actor too, at
// info level for a workload identity.
func TestWorkloadIdentityIsTheActor(t *testing.T) {
	h := newHarness(t)
	wi := h.registerWorkload(org, "lake-job", wiTenant, wiClient)
	good := h.entraToken(wiTenant, wiClient, nil)
	r := h.as(good, "POST", org, "/organizations/"+org+"/credentials",
		map[string]string{"name": "by-job", "storage_type": "azure_federated", "base_path": "az://bloblake/lakedata"})
	h.want(r, http.StatusCreated)
	var d detailView
	r.decode(t, &d)
	h.want(h.call("POST", org, "/organizations/"+org+"/credentials/"+d.ID+"/tenant", map[string]string{"tenant_id": tenantID}), http.StatusAccepted)
	h.advance(org, d.ID, credential.EventSPFound, func(c *credential.Credential) { c.SPObjectID = "sp" })

	r = h.call("GET", org, "/organizations/"+org+"/credentials/"+d.ID+"/events", nil)
	h.want(r, http.StatusOK)
	var evs eventsView
	r.decode(t, &evs)
	if len(evs.Events) != 3 {
		t.Fatalf("events %+v", evs)
	}
	byJob := actorView{Kind: "workload_identity", ID: wi.ID, ClientID: wiClient, TenantID: wiTenant}
	if a := evs.Events[0].Actor; a == nil || *a != byJob {
		t.Errorf("the creation's actor %+v, want %+v", a, byJob)
	}
	if a := evs.Events[1].Actor; a == nil || *a != (actorView{Kind: "user", ID: "user-1"}) {
		t.Errorf("the tenant submit's actor %+v, want the user", a)
	}
	if a := evs.Events[2].Actor; a != nil {
		t.Errorf("the background poll's actor %+v, want none", a)
	}
	if !strings.Contains(string(r.body), `"actor":null`) {
		t.Errorf("an event without an actor is not served as null: %s", r.body)
	}

	var line map[string]any
	for _, l := range h.logs.lines(t) {
		if l["msg"] == "request" && l["method"] == "POST" && l["path"] == "/organizations/"+org+"/credentials" {
			line = l
		}
	}
	if line == nil {
		t.Fatal("no log line of the workload identity's request")
	}
	actor, _ := line["actor"].(map[string]any)
	workload, _ := line["workload"].(map[string]any)
	if line["level"] != "INFO" || actor["kind"] != "workload_identity" || actor["id"] != wi.ID || actor["client_id"] != wiClient ||
		actor["tenant_id"] != wiTenant || workload["object_id"] != wiObject {
		t.Errorf("the request's log line %v: want it at INFO naming the workload identity", line)
	}
	// A refused one names the identity too.
	stranger := h.entraToken(wiTenant, wiClient2, nil)
	h.want(h.as(stranger, "GET", org, "/organizations/"+org+"/credentials", nil), http.StatusForbidden)
	var refused map[string]any
	for _, l := range h.logs.lines(t) {
		if l["msg"] == "request failed" && l["status"] == float64(http.StatusForbidden) {
			refused = l
		}
	}
	if w, _ := refused["workload"].(map[string]any); w["client_id"] != wiClient2 || w["tenant_id"] != wiTenant || refused["actor"] != nil {
		t.Errorf("the refused request's log line %v: want it naming the unregistered identity, no actor", refused)
	}
	for _, l := range h.logs.lines(t) {
		if strings.Contains(l["msg"].(string), good[:40]) {
			t.Error("a log line holds the token")
		}
	}
}

// TestWorkloadIdentitiesOff: without the API's app id the registry's routes answer 501
// and an Entra token is refused like any token that is not the platform's.
func TestWorkloadIdentitiesOff(t *testing.T) {
	h := newHarness(t, func(c *credential.Config) { c.APIAppID = "" })
	base := "/organizations/" + org + registryOf
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", base, map[string]string{"display_name": "j", "client_id": wiClient, "tenant_id": wiTenant}},
		{"GET", base, nil}, {"GET", base + "/events", nil}, {"DELETE", base + "/" + wiClient2, nil},
	} {
		r := h.call(c.method, org, c.path, c.body)
		if r.status != http.StatusNotImplemented || r.errorBody(t).Code != codeWorkloadsOff {
			t.Errorf("%s %s: %d %s, want 501 %s", c.method, c.path, r.status, r.body, codeWorkloadsOff)
		}
	}
	if r := h.as(h.entraToken(wiTenant, wiClient, nil), "GET", org, "/organizations/"+org+"/credentials", nil); r.status != http.StatusUnauthorized {
		t.Errorf("an Entra token with workload identities off: %d, want 401", r.status)
	}
}
