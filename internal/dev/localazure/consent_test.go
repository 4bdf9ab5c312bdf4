package localazure

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const wizard = "https://azcreds.example.net/wizard/?from=entra"

// createConsentApp registers a multi-tenant app with the wizard as its redirect URI, the
// way the backend does.
func (f *fixture) createConsentApp(audience string, redirects ...string) testApp {
	f.t.Helper()
	r := f.mustStatus(f.graphAsMI(http.MethodPost, "/v1.0/applications", map[string]any{"displayName": "consent",
		"signInAudience": audience, "web": map[string]any{"redirectUris": redirects}}), http.StatusCreated)
	m := r.json(f.t)
	return testApp{objectID: m["id"].(string), appID: m["appId"].(string)}
}

// consent opens an admin consent URL as a browser would, without following the redirect.
func (f *fixture) consent(tenant string, q url.Values) (int, *url.URL, response) {
	f.t.Helper()
	client := *f.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get(f.srv.URL + "/" + tenant + "/adminconsent?" + q.Encode())
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var loc *url.URL
	if l := resp.Header.Get("Location"); l != "" {
		if loc, err = url.Parse(l); err != nil {
			f.t.Fatal(err)
		}
	}
	return resp.StatusCode, loc, response{status: resp.StatusCode, header: resp.Header, body: body}
}

func (f *fixture) hasSP(tenant, appID string) bool {
	f.t.Helper()
	for _, sp := range f.mustStatus(f.do(http.MethodGet, "/control/tenants/"+tenant+"/servicePrincipals", nil, nil), http.StatusOK).list(f.t) {
		if sp["appId"] == appID {
			return true
		}
	}
	return false
}

// TestAdminConsentAccepted: an administrator who accepts installs the service principal
// in the URL's tenant and returns to the exact redirect URI with admin_consent=True, the
// tenant and the state, the redirect URI's own query kept.
func TestAdminConsentAccepted(t *testing.T) {
	f := newFixture(t, nil)
	app := f.createConsentApp("AzureADMultipleOrgs", wizard)
	status, loc, r := f.consent(custTenant, url.Values{"client_id": {app.appID}, "redirect_uri": {wizard}, "state": {"cred-1"}})
	if status != http.StatusFound || loc == nil {
		t.Fatalf("status %d, body %s", status, r.body)
	}
	q := loc.Query()
	if loc.Scheme+"://"+loc.Host+loc.Path != "https://azcreds.example.net/wizard/" || q.Get("from") != "entra" ||
		q.Get("admin_consent") != "True" || q.Get("tenant") != custTenant || q.Get("state") != "cred-1" || q.Get("error") != "" {
		t.Fatalf("redirected to %s", loc)
	}
	if !f.hasSP(custTenant, app.appID) {
		t.Fatal("no service principal after the consent")
	}
	// Again: the service principal exists already, the answer is the same.
	if status, loc, _ := f.consent(custTenant, url.Values{"client_id": {app.appID}, "redirect_uri": {wizard}, "state": {"cred-1"}}); status != http.StatusFound || loc.Query().Get("tenant") != custTenant {
		t.Fatalf("second consent: %d %v", status, loc)
	}
}

// TestAdminConsentOrganizations: a URL for organizations installs the service principal
// in the administrator's own tenant, which the control endpoint (or admin_tenant) names.
func TestAdminConsentOrganizations(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Tenants = append(c.Tenants, otherTenant) })
	app := f.createConsentApp("AzureADMultipleOrgs", wizard)
	q := url.Values{"client_id": {app.appID}, "redirect_uri": {wizard}, "state": {"s"}}
	if status, _, r := f.consent("organizations", q); status != http.StatusBadRequest || entraCode(t, r) != 90002 {
		t.Fatalf("organizations without a tenant: %d %s", status, r.body)
	}
	f.mustStatus(f.do(http.MethodPut, "/control/consent/"+app.appID, map[string]any{"tenant_id": otherTenant}, nil), http.StatusOK)
	status, loc, r := f.consent("organizations", q)
	if status != http.StatusFound || loc.Query().Get("tenant") != otherTenant || !f.hasSP(otherTenant, app.appID) || f.hasSP(custTenant, app.appID) {
		t.Fatalf("organizations: %d %v %s", status, loc, r.body)
	}
	q.Set("admin_tenant", custTenant)
	if status, loc, _ := f.consent("organizations", q); status != http.StatusFound || loc.Query().Get("tenant") != custTenant || !f.hasSP(custTenant, app.appID) {
		t.Fatalf("admin_tenant: %d %v", status, loc)
	}
}

// TestAdminConsentRefused: an administrator who refuses returns with error and
// error_description (AADSTS65004), the state kept, and nothing is installed.
func TestAdminConsentRefused(t *testing.T) {
	f := newFixture(t, nil)
	app := f.createConsentApp("AzureADMultipleOrgs", wizard)
	f.mustStatus(f.do(http.MethodPut, "/control/consent/"+app.appID, map[string]any{"refuse": true}, nil), http.StatusOK)
	status, loc, r := f.consent(custTenant, url.Values{"client_id": {app.appID}, "redirect_uri": {wizard}, "state": {"cred-2"}})
	if status != http.StatusFound {
		t.Fatalf("status %d, body %s", status, r.body)
	}
	q := loc.Query()
	if q.Get("error") != "consent_required" || !strings.HasPrefix(q.Get("error_description"), "AADSTS65004:") ||
		q.Get("state") != "cred-2" || q.Get("tenant") != "" {
		t.Fatalf("redirected to %s", loc)
	}
	if f.hasSP(custTenant, app.appID) {
		t.Fatal("a refused consent installed the service principal")
	}
}

// TestAdminConsentRefusesWhatEntraRefuses: no client_id, an unknown app, a redirect URI
// the app does not list exactly, an app without any, a single-tenant app in another
// tenant and an unknown tenant get Entra's error, with no redirect and nothing installed.
func TestAdminConsentRefusesWhatEntraRefuses(t *testing.T) {
	f := newFixture(t, nil)
	multi := f.createConsentApp("AzureADMultipleOrgs", wizard)
	single := f.createConsentApp("AzureADMyOrg", wizard)
	bare := f.createConsentApp("AzureADMultipleOrgs")
	cases := []struct {
		name   string
		tenant string
		q      url.Values
		code   int
	}{
		{"no client_id", custTenant, url.Values{"redirect_uri": {wizard}}, 900144},
		{"unknown app", custTenant, url.Values{"client_id": {"99999999-9999-9999-9999-999999999999"}, "redirect_uri": {wizard}}, 700016},
		{"another redirect URI", custTenant, url.Values{"client_id": {multi.appID}, "redirect_uri": {"https://evil.example.com/"}}, 50011},
		{"a redirect URI spelled otherwise", custTenant, url.Values{"client_id": {multi.appID}, "redirect_uri": {strings.TrimSuffix(wizard, "?from=entra")}}, 50011},
		{"no redirect URI registered", custTenant, url.Values{"client_id": {bare.appID}}, 500113},
		{"a single-tenant app", custTenant, url.Values{"client_id": {single.appID}, "redirect_uri": {wizard}}, 700016},
		{"unknown tenant", otherTenant, url.Values{"client_id": {multi.appID}, "redirect_uri": {wizard}}, 90002},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, loc, r := f.consent(tc.tenant, tc.q)
			if status != http.StatusBadRequest || loc != nil || entraCode(t, r) != tc.code {
				t.Fatalf("%d %v %s, want 400 AADSTS%d", status, loc, r.body, tc.code)
			}
		})
	}
	for _, app := range []testApp{multi, single, bare} {
		if f.hasSP(custTenant, app.appID) {
			t.Errorf("app %s installed by a refused request", app.appID)
		}
	}
}

// TestRedirectURIsKept: the redirect URIs an app is created or updated with are what
// Graph and the control endpoint show; Graph refuses one Entra would.
func TestRedirectURIsKept(t *testing.T) {
	f := newFixture(t, nil)
	app := f.createConsentApp("AzureADMultipleOrgs", wizard)
	got := f.mustStatus(f.graphAsMI(http.MethodGet, "/v1.0/applications/"+app.objectID, nil), http.StatusOK).json(t)
	if web, _ := got["web"].(map[string]any); web == nil || len(web["redirectUris"].([]any)) != 1 || web["redirectUris"].([]any)[0] != wizard {
		t.Fatalf("application %v", got)
	}
	for _, bad := range []string{"http://azcreds.example.net/wizard/", "https://azcreds.example.net/wizard/#x", "/wizard/"} {
		r := f.graphAsMI(http.MethodPost, "/v1.0/applications", map[string]any{"displayName": "bad", "web": map[string]any{"redirectUris": []string{bad}}})
		if r.status != http.StatusBadRequest {
			t.Errorf("redirect URI %q: %d %s", bad, r.status, r.body)
		}
	}
	r := f.graphAsMI(http.MethodPost, "/v1.0/applications", map[string]any{"displayName": "local", "web": map[string]any{"redirectUris": []string{"http://127.0.0.1:7071/wizard/"}}})
	if r.status != http.StatusCreated {
		t.Errorf("a loopback http redirect URI: %d %s", r.status, r.body)
	}
}
