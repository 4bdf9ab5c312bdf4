package localazure

import (
	"net/http"
	"net/url"
	"testing"
)

func TestGraphAuthentication(t *testing.T) {
	f := newFixture(t, nil)
	app := f.createApp("caller")
	f.installSP(custTenant, app.appID)
	customerGraphToken := f.mustStatus(f.do(http.MethodPost, "/"+custTenant+"/oauth2/v2.0/token",
		tokenForm(app.appID, f.miToken(TokenExchangeAudience), GraphAudience+"/.default"), nil), http.StatusOK).json(t)["access_token"].(string)

	tests := []struct {
		name   string
		header map[string]string
		status int
		code   string
	}{
		{"no token", nil, http.StatusUnauthorized, "InvalidAuthenticationToken"},
		{"not a bearer token", map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}, http.StatusUnauthorized, "InvalidAuthenticationToken"},
		{"garbage token", bearerHeader("abc.def.ghi"), http.StatusUnauthorized, "InvalidAuthenticationToken"},
		{"storage audience", bearerHeader(f.miToken(StorageAudience)), http.StatusUnauthorized, "InvalidAuthenticationToken"},
		{"customer tenant token on home routes", bearerHeader(customerGraphToken), http.StatusForbidden, "Authorization_RequestDenied"},
		{"managed identity", bearerHeader(f.miToken(GraphAudience)), http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(http.MethodGet, "/v1.0/applications", nil, tt.header)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.status, r.body)
			}
			if tt.code != "" {
				if code := graphCode(t, r); code != tt.code {
					t.Errorf("code = %s, want %s", code, tt.code)
				}
			}
		})
	}

	t.Run("expired token", func(t *testing.T) {
		tok := f.miToken(GraphAudience)
		f.clock.Advance(miTokenLifetime)
		r := f.mustStatus(f.do(http.MethodGet, "/v1.0/applications", nil, bearerHeader(tok)), http.StatusUnauthorized)
		if code := graphCode(t, r); code != "InvalidAuthenticationToken" {
			t.Errorf("code = %s", code)
		}
	})
}

func TestGraphApplications(t *testing.T) {
	f := newFixture(t, nil)
	tok := bearerHeader(f.miToken(GraphAudience))
	gz := map[string]string{"Authorization": tok["Authorization"], "Content-Encoding": "gzip"}

	// Create with a gzip body, as msgraph-sdk-go sends it.
	r := f.mustStatus(f.do(http.MethodPost, "/v1.0/applications",
		gzipped(t, map[string]any{"displayName": "azcreds-cred-1", "signInAudience": "AzureADMultipleOrgs"}), gz), http.StatusCreated)
	app := r.json(t)
	id, appID := app["id"].(string), app["appId"].(string)
	if !isGUID(id) || !isGUID(appID) || app["displayName"] != "azcreds-cred-1" || app["signInAudience"] != "AzureADMultipleOrgs" ||
		app["createdDateTime"] != "2025-03-01T12:00:00Z" {
		t.Errorf("created app = %v", app)
	}

	got := f.mustStatus(f.do(http.MethodGet, "/v1.0/applications/"+id, nil, tok), http.StatusOK).json(t)
	if got["appId"] != appID {
		t.Errorf("get: appId = %v, want %s", got["appId"], appID)
	}

	// A second app, and the displayName filter.
	f.mustStatus(f.do(http.MethodPost, "/v1.0/applications", map[string]any{"displayName": "it's another"}, tok), http.StatusCreated)
	for filter, want := range map[string]int{
		"":                                   2,
		"displayName eq 'azcreds-cred-1'":    1,
		"displayName eq 'it''s another'":     1,
		"displayName eq 'nothing like this'": 0,
	} {
		path := "/v1.0/applications"
		if filter != "" {
			path += "?$filter=" + url.QueryEscape(filter)
		}
		value := f.mustStatus(f.do(http.MethodGet, path, nil, tok), http.StatusOK).json(t)["value"].([]any)
		if len(value) != want {
			t.Errorf("filter %q: %d apps, want %d", filter, len(value), want)
		}
	}
	r = f.mustStatus(f.do(http.MethodGet, "/v1.0/applications?$filter="+url.QueryEscape("startswith(displayName,'a')"), nil, tok), http.StatusBadRequest)
	if code := graphCode(t, r); code != "Request_UnsupportedQuery" {
		t.Errorf("unsupported filter: code %s", code)
	}

	// Validation.
	for name, body := range map[string]any{
		"no display name":      map[string]any{"signInAudience": "AzureADMultipleOrgs"},
		"bad sign-in audience": map[string]any{"displayName": "x", "signInAudience": "Everyone"},
	} {
		r := f.do(http.MethodPost, "/v1.0/applications", body, tok)
		if r.status != http.StatusBadRequest || graphCode(t, r) != "Request_BadRequest" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	f.mustStatus(f.do(http.MethodPost, "/v1.0/applications", []byte("{"), tok), http.StatusBadRequest)
	f.mustStatus(f.do(http.MethodPost, "/v1.0/applications", []byte("{}"),
		map[string]string{"Authorization": tok["Authorization"], "Content-Encoding": "br"}), http.StatusUnsupportedMediaType)

	// Federated identity credentials.
	fic := map[string]any{"name": "backend", "issuer": V2Issuer(homeTenant), "subject": miObjectID,
		"audiences": []string{TokenExchangeAudience}, "description": "the backend's managed identity"}
	created := f.mustStatus(f.do(http.MethodPost, "/v1.0/applications/"+id+"/federatedIdentityCredentials", gzipped(t, fic), gz), http.StatusCreated).json(t)
	for _, k := range []string{"name", "issuer", "subject", "description"} {
		if created[k] != fic[k] {
			t.Errorf("FIC %s = %v, want %v", k, created[k], fic[k])
		}
	}
	r = f.mustStatus(f.do(http.MethodPost, "/v1.0/applications/"+id+"/federatedIdentityCredentials", fic, tok), http.StatusConflict)
	if code := graphCode(t, r); code != "Request_MultipleObjectsWithSameKeyValue" {
		t.Errorf("duplicate FIC: code %s", code)
	}
	two := map[string]any{"name": "two", "issuer": "i", "subject": "s", "audiences": []string{"a", "b"}}
	f.mustStatus(f.do(http.MethodPost, "/v1.0/applications/"+id+"/federatedIdentityCredentials", two, tok), http.StatusBadRequest)
	r = f.mustStatus(f.do(http.MethodPost, "/v1.0/applications/"+custTenant+"/federatedIdentityCredentials", fic, tok), http.StatusNotFound)
	if code := graphCode(t, r); code != "Request_ResourceNotFound" {
		t.Errorf("FIC on missing app: code %s", code)
	}
	list := f.mustStatus(f.do(http.MethodGet, "/v1.0/applications/"+id+"/federatedIdentityCredentials", nil, tok), http.StatusOK).json(t)["value"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["name"] != "backend" {
		t.Errorf("FIC list = %v", list)
	}

	// Delete: the app goes, its customer SPs are orphaned and can no longer sign in.
	f.installSP(custTenant, appID)
	f.mustStatus(f.do(http.MethodDelete, "/v1.0/applications/"+id, nil, tok), http.StatusNoContent)
	r = f.mustStatus(f.do(http.MethodDelete, "/v1.0/applications/"+id, nil, tok), http.StatusNotFound)
	if code := graphCode(t, r); code != "Request_ResourceNotFound" {
		t.Errorf("second delete: code %s", code)
	}
	f.mustStatus(f.do(http.MethodGet, "/v1.0/applications/"+id, nil, tok), http.StatusNotFound)
	sps := f.mustStatus(f.do(http.MethodGet, "/control/tenants/"+custTenant+"/servicePrincipals", nil, nil), http.StatusOK).list(t)
	if len(sps) != 1 || sps[0]["orphaned"] != true {
		t.Errorf("customer SPs after delete = %v, want one orphaned", sps)
	}
	r = f.mustStatus(f.do(http.MethodPost, "/"+custTenant+"/oauth2/v2.0/token",
		tokenForm(appID, f.miToken(TokenExchangeAudience), StorageAudience+"/.default"), nil), http.StatusBadRequest)
	if code := entraCode(t, r); code != 700016 {
		t.Errorf("token for deleted app: AADSTS%d, want 700016", code)
	}

	// Unknown routes answer Graph's 400.
	r = f.mustStatus(f.do(http.MethodGet, "/v1.0/users", nil, tok), http.StatusBadRequest)
	if code := graphCode(t, r); code != "BadRequest" {
		t.Errorf("unknown segment: code %s", code)
	}
}

func TestGraphServicePrincipalLookup(t *testing.T) {
	f := newFixture(t, nil)
	app := f.createApp("lookup")
	other := f.createApp("other")
	spID := f.installSP(custTenant, app.appID)
	f.installSP(custTenant, other.appID)
	exchange := f.miToken(TokenExchangeAudience)
	graphTokenOf := func(appID string) map[string]string {
		r := f.mustStatus(f.do(http.MethodPost, "/"+custTenant+"/oauth2/v2.0/token",
			tokenForm(appID, exchange, GraphAudience+"/.default"), nil), http.StatusOK)
		return bearerHeader(r.json(t)["access_token"].(string))
	}
	own := graphTokenOf(app.appID)
	path := "/v1.0/servicePrincipals(appId='" + app.appID + "')"

	sp := f.mustStatus(f.do(http.MethodGet, path, nil, own), http.StatusOK).json(t)
	if sp["id"] != spID || sp["appId"] != app.appID || sp["displayName"] != "lookup" {
		t.Errorf("SP = %v, want id %s", sp, spID)
	}

	r := f.mustStatus(f.do(http.MethodGet, path, nil, graphTokenOf(other.appID)), http.StatusForbidden)
	if code := graphCode(t, r); code != "Authorization_RequestDenied" {
		t.Errorf("another app's SP: code %s", code)
	}

	// The MI can read SPs in the home tenant, where this app has none.
	r = f.mustStatus(f.do(http.MethodGet, path, nil, bearerHeader(f.miToken(GraphAudience))), http.StatusNotFound)
	if code := graphCode(t, r); code != "Request_ResourceNotFound" {
		t.Errorf("home tenant: code %s", code)
	}

	// The customer removes the SP; the app's token still works until it expires.
	f.mustStatus(f.do(http.MethodDelete, "/control/tenants/"+custTenant+"/servicePrincipals/"+app.appID, nil, nil), http.StatusNoContent)
	r = f.mustStatus(f.do(http.MethodGet, path, nil, own), http.StatusNotFound)
	if code := graphCode(t, r); code != "Request_ResourceNotFound" {
		t.Errorf("removed SP: code %s", code)
	}
}

// TestGraphApplicationUpsert: PATCH /applications(uniqueName='...') creates with
// "Prefer: create-if-missing" (201, then 204 for the same name, one app), is 404 without
// it, and GET by unique name finds the app.
func TestGraphApplicationUpsert(t *testing.T) {
	f := newFixture(t, nil)
	tok := bearerHeader(f.miToken(GraphAudience))
	upsert := map[string]string{"Authorization": tok["Authorization"], "Prefer": "create-if-missing"}
	path := "/v1.0/applications(uniqueName='azcreds-c1')"
	body := map[string]any{"displayName": "deeplake-c1", "signInAudience": "AzureADMultipleOrgs"}

	f.mustStatus(f.do(http.MethodGet, path, nil, tok), http.StatusNotFound)
	f.mustStatus(f.do(http.MethodPatch, path, body, tok), http.StatusNotFound)
	app := f.mustStatus(f.do(http.MethodPatch, path, body, upsert), http.StatusCreated).json(t)
	if app["uniqueName"] != "azcreds-c1" || app["displayName"] != "deeplake-c1" || !isGUID(app["id"].(string)) {
		t.Fatalf("created %v", app)
	}
	again := f.mustStatus(f.do(http.MethodPatch, path, map[string]any{"displayName": "deeplake-renamed"}, upsert), http.StatusNoContent)
	if len(again.body) != 0 {
		t.Errorf("204 with a body: %s", again.body)
	}
	got := f.mustStatus(f.do(http.MethodGet, path, nil, tok), http.StatusOK).json(t)
	if got["id"] != app["id"] || got["displayName"] != "deeplake-renamed" {
		t.Errorf("got %v, want app %v renamed", got, app["id"])
	}
	list := f.mustStatus(f.do(http.MethodGet, "/v1.0/applications", nil, tok), http.StatusOK).json(t)
	if n := len(list["value"].([]any)); n != 1 {
		t.Errorf("%d apps after two upserts, want 1", n)
	}
	// The unique name is an alternate key: a plain create cannot take it again.
	r := f.mustStatus(f.do(http.MethodPost, "/v1.0/applications", map[string]any{"displayName": "x", "uniqueName": "azcreds-c1"}, tok), http.StatusBadRequest)
	if code := graphCode(t, r); code != "Request_MultipleObjectsWithSameKeyValue" {
		t.Errorf("code = %s", code)
	}
	// Only the managed identity manages apps.
	f.mustStatus(f.do(http.MethodPatch, "/v1.0/applications(uniqueName='other')", body,
		map[string]string{"Prefer": "create-if-missing"}), http.StatusUnauthorized)
}
